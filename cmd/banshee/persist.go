package main

import (
	"fmt"
	"io"

	"github.com/banshee-project/banshee/policy"
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
at boot.

Every record passes the protected-network check again: a block that covers
loopback, link-local, the metadata address, an allowlisted network or the
caller's own address is not restored. A record that cannot be read is
skipped and named with its line (a copy of the file is kept as NAME.damaged);
the rest is restored and restore exits 0 with a warning. restore refuses a
state directory that others can write and a journal that is a symbolic link.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				// At boot a broken config must not leave the host without
				// its blocks: the fixed protections still apply.
				fmt.Fprintf(a.stderr, "banshee: warning: %v; restoring with the default policy\n", err)
				cfg = policy.Default()
			}
			fw, err := a.firewall(ctx)
			if err != nil {
				return err
			}
			// The protected-network check every re-added record passes
			// (the engine's, as reconcile's).
			check := a.engineWith(cfg).RestoreCheck()
			res, err := fw.Restore(ctx, check)
			for _, d := range res.Damaged {
				fmt.Fprintf(a.stderr, "banshee: warning: skipped %s\n", d)
			}
			for _, r := range res.Refused {
				fmt.Fprintf(a.stderr, "banshee: warning: not restored: %s\n", r.Why)
			}
			if err != nil {
				return fmt.Errorf("restoring host blocks: %w", err)
			}
			out := map[string]any{"restored": res.Restored, "expired": res.Expired, "backend": fw.Backend(),
				"refused": orEmpty(res.Refused), "damaged": orEmpty(res.Damaged)}
			return a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "restored %d host block(s) (%d expired) with the %s backend\n", res.Restored, res.Expired, fw.Backend())
				if n := len(res.Refused) + len(res.Damaged); n > 0 {
					fmt.Fprintf(w, "%d record(s) not restored: %d refused by the protection check, %d unreadable (see the warnings)\n", n, len(res.Refused), len(res.Damaged))
				}
			})
		},
	}
}

// orEmpty makes a nil slice print as [] in JSON.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
