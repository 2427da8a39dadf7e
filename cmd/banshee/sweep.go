package main

import (
	"fmt"
	"io"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() { register(newSweepCmd) }

func newSweepCmd(a *app) *cobra.Command {
	var subnets, nacls []string
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Remove expired VPC network ACL blocks and their metadata",
		Long: `sweep deletes the network ACL deny entries whose block has expired, one call
per entry, and their metadata in one batched call per NACL. It also repairs
what an interrupted writer left behind: metadata without an entry is
deleted; an entry of the reserved range without metadata, in a network ACL
banshee manages, is recorded on first sight and adopted with an expiry of
nacl.orphan_ttl from now when a sweep at least nacl.orphan_grace (5 minutes)
later finds it
unchanged and still without metadata (never on first sight: a writer
tags its entry right after creating it).

Without --subnet or --nacl it sweeps every network ACL of the region that
banshee manages (one carrying a banshee: tag); anyone else's network ACLs
are not touched. Host blocks need no sweep: the kernel expires them.`,
		Example: `  banshee sweep
  banshee sweep --subnet subnet-0aa -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			m, err := a.naclManager(ctx)
			if err != nil {
				return err
			}
			ids, err := vpcIDs(subnets, nacls)
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			res, err := m.Sweep(ctx, now, ids...)
			if res.Removed == nil {
				res.Removed = []policy.Block{}
			}
			if eerr := a.emit(res, func(w io.Writer) { writeSweep(w, res, now) }); eerr != nil {
				return eerr
			}
			if err != nil {
				return fmt.Errorf("sweeping: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&subnets, "subnet", nil, "sweep the network ACL of this subnet (repeatable)")
	cmd.Flags().StringArrayVar(&nacls, "nacl", nil, "sweep this network ACL (repeatable)")
	return cmd
}

func writeSweep(w io.Writer, res awsnacl.SweepResult, now time.Time) {
	fmt.Fprintf(w, "removed %d expired block(s)", len(res.Removed))
	if len(res.Adopted) > 0 {
		fmt.Fprintf(w, ", adopted %d entr(ies) without metadata", len(res.Adopted))
	}
	if res.Waiting > 0 {
		fmt.Fprintf(w, ", %d entr(ies) without metadata seen, not adopted yet", res.Waiting)
	}
	if res.StaleTags > 0 {
		fmt.Fprintf(w, ", deleted %d metadata tag(s) without an entry", res.StaleTags)
	}
	fmt.Fprintln(w)
	if len(res.Removed) > 0 {
		writeBlocks(w, res.Removed, now)
	}
	if len(res.Vanished) > 0 {
		fmt.Fprintf(w, "warning: %d block(s) vanished: their entries were deleted by something other than banshee before they expired "+
			"(typically a Terraform apply of an aws_default_network_acl or an aws_network_acl with inline rules); their metadata is deleted now, "+
			"so block them again if they are still wanted:\n", len(res.Vanished))
		writeBlocks(w, res.Vanished, now)
	}
}
