package main

import (
	"io"
	"os"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/spf13/cobra"
)

func init() { register(newListCmd) }

func newListCmd(a *app) *cobra.Command {
	var scope string
	var subnets, nacls []string
	var wide bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List blocks as they are in force, and drift",
		Long: `list reads both layers as they are (this host's kernel sets and hooks, the
network ACLs' entries) and prints every block with its scope, expiry, reason
and origin. It marks drift from what banshee recorded: missing (recorded but
not in the kernel), not-hooked (in the set, but the chain is not jumped to, so
nothing is dropped), unrecorded (in force but not in the journal),
expired (past its expiry, still in the network ACL until a sweep) and
no-metadata (a deny in banshee's range without banshee's tags). banshee
reconcile repairs drift; banshee status exits 1 while there is any.

Blocks are sorted by address, IPv4 first, both layers of an address together.
Reasons are cut to the terminal width (COLUMNS, else 120); --wide and -o json
give them in full.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.list(cmd, scope, subnets, nacls)
			if err != nil {
				return err
			}
			return a.emit(listOutput(res), func(w io.Writer) {
				width := terminalWidth(os.Getenv)
				if wide {
					width = 0
				}
				writeListed(w, res, time.Now(), width)
			})
		},
	}
	addScopeFlags(cmd, &scope, &subnets, &nacls, "which blocks")
	cmd.Flags().BoolVar(&wide, "wide", false, "print every reason in full (by default cut to the terminal width: COLUMNS, else 120)")
	return cmd
}

// list runs the engine's List for a command's scope flags.
func (a *app) list(cmd *cobra.Command, scope string, subnets, nacls []string) (*engine.ListResult, error) {
	where, err := engine.ParseWhere(scope)
	if err != nil {
		return nil, usageErrorf("--scope: %v", err)
	}
	ids, err := vpcIDs(subnets, nacls)
	if err != nil {
		return nil, err
	}
	eng, err := a.engine()
	if err != nil {
		return nil, err
	}
	res, err := eng.List(cmd.Context(), engine.ListRequest{Where: where, NACLs: ids})
	if err != nil {
		return nil, err
	}
	sortListed(res.Blocks)
	return res, nil
}

// addScopeFlags adds --scope all|host|vpc, --subnet and --nacl.
func addScopeFlags(cmd *cobra.Command, scope *string, subnets, nacls *[]string, what string) {
	cmd.Flags().StringVar(scope, "scope", "all", what+": all (this host and the network ACLs), host or vpc")
	cmd.Flags().StringArrayVar(subnets, "subnet", nil, "vpc: the network ACL of this subnet (repeatable; default: every network ACL banshee manages)")
	cmd.Flags().StringArrayVar(nacls, "nacl", nil, "vpc: this network ACL (repeatable)")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"all", "host", "vpc"}, cobra.ShellCompDirectiveNoFileComp))
}
