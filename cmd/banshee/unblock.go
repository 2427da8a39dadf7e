package main

import (
	"fmt"
	"io"
	"net/netip"

	"github.com/spf13/cobra"
)

func init() { register(newUnblockCmd) }

// unblockResult is one target of unblock.
type unblockResult struct {
	Target  netip.Prefix `json:"target"`
	Scope   string       `json:"scope"`
	Removed bool         `json:"removed"`
	Message string       `json:"message"`
}

func newUnblockCmd(a *app) *cobra.Command {
	var scope string
	var subnets, nacls []string
	cmd := &cobra.Command{
		Use:   "unblock TARGET... [flags]",
		Short: "Remove blocks",
		Long: `unblock removes the blocks of the targets (addresses or CIDRs, exactly as they
were blocked; - reads them from standard input). Unblocking a target that is
not blocked is a no-op and says so.`,
		Example: `  banshee unblock 174.132.223.252`,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			targets, err := readTargetArgs(args, a.stdin)
			if err != nil {
				return err
			}
			switch scope {
			case "host":
			case "vpc":
				return a.runUnblockVPC(ctx, subnets, nacls, targets) // vpc.go
			default:
				return usageErrorf("--scope %q: want host or vpc", scope)
			}
			fw, err := a.firewall(ctx)
			if err != nil {
				return err
			}
			absent, err := fw.Unblock(ctx, targets)
			if err != nil {
				return err
			}
			notThere := map[netip.Prefix]bool{}
			for _, p := range absent {
				notThere[p] = true
			}
			var res []unblockResult
			for _, p := range targets {
				r := unblockResult{Target: p, Scope: "host", Removed: !notThere[p], Message: "unblocked"}
				if notThere[p] {
					r.Message = "was not blocked on this host: nothing to do"
				}
				res = append(res, r)
			}
			return a.emit(struct {
				Results []unblockResult `json:"results"`
			}{res}, func(w io.Writer) {
				for _, r := range res {
					fmt.Fprintf(w, "%s %s: %s\n", showPrefix(r.Target), r.Scope, r.Message)
				}
			})
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "host", "where to unblock: host or vpc")
	cmd.Flags().StringArrayVar(&subnets, "subnet", nil, "vpc: the network ACL of this subnet (repeatable; default: this instance's subnet)")
	cmd.Flags().StringArrayVar(&nacls, "nacl", nil, "vpc: this network ACL (repeatable)")
	return cmd
}

func showPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
