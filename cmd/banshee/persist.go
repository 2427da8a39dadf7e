package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func init() {
	register(newSaveCmd)
	register(newRestoreCmd)
}

func newSaveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "save",
		Short: "Save the host blocks to the state directory",
		Long: `save writes the kernel's current host blocks, with their absolute expiry, to
the state directory (atomically: temp file, fsync, rename). Every block is
also journaled when it is made, so save is a compaction, not a requirement.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			fw, err := a.firewall(ctx)
			if err != nil {
				return err
			}
			n, err := fw.Save(ctx)
			if err != nil {
				return fmt.Errorf("saving host blocks: %w", err)
			}
			return a.emit(map[string]any{"saved": n, "state_dir": a.stateDir}, func(w io.Writer) {
				fmt.Fprintf(w, "saved %d host block(s) to %s\n", n, a.stateDir)
			})
		},
	}
}

func newRestoreCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "restore",
		Short: "Re-create chain, sets and saved blocks (at boot)",
		Long: `restore re-creates banshee's chain, its hooks and the ipset sets, and puts back
every saved or journaled host block with its remaining TTL; blocks whose time
ran out are dropped. The shipped systemd unit banshee-restore.service runs it
at boot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			fw, err := a.firewall(ctx)
			if err != nil {
				return err
			}
			res, err := fw.Restore(ctx)
			if err != nil {
				return fmt.Errorf("restoring host blocks: %w", err)
			}
			return a.emit(map[string]any{"restored": res.Restored, "expired": res.Expired, "backend": fw.Backend()}, func(w io.Writer) {
				fmt.Fprintf(w, "restored %d host block(s) (%d expired) with the %s backend\n", res.Restored, res.Expired, fw.Backend())
			})
		},
	}
}
