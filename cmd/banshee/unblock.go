package main

import (
	"io"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/spf13/cobra"
)

func init() { register(newUnblockCmd) }

func newUnblockCmd(a *app) *cobra.Command {
	var scope string
	var subnets, nacls []string
	cmd := &cobra.Command{
		Use:   "unblock TARGET... [flags]",
		Short: "Remove blocks, wherever banshee put them",
		Long: `unblock removes the blocks of the targets (addresses or CIDRs, exactly as they
were blocked; - reads them from standard input) wherever banshee put them:
this host's sets and every network ACL whose banshee metadata records them
(the ones named with --subnet/--nacl, else every network ACL banshee manages
in the region; skipped with a note when no AWS region is configured). No
scope is needed. Unblocking a target that is not blocked is a no-op and says
so; a wider block that still covers the target (a /24 around an address) is
named, with the command that lifts it.`,
		Example: `  banshee unblock 174.132.223.252
  banshee unblock 198.51.100.0/24 --scope vpc --subnet subnet-0aa`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: a.completeBlocked,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			targets, err := readTargetArgs(args, a.stdin)
			if err != nil {
				return err
			}
			where, err := engine.ParseWhere(scope)
			if err != nil {
				return usageErrorf("--scope: %v", err)
			}
			ids, err := vpcIDs(subnets, nacls)
			if err != nil {
				return err
			}
			eng, err := a.engine()
			if err != nil {
				return err
			}
			res, err := eng.Unblock(ctx, engine.UnblockRequest{Targets: targets, Where: where, NACLs: ids})
			if res != nil {
				if eerr := a.emit(res, func(w io.Writer) { res.WriteText(w) }); eerr != nil {
					return eerr
				}
			}
			return err
		},
	}
	addScopeFlags(cmd, &scope, &subnets, &nacls, "where to unblock")
	return cmd
}
