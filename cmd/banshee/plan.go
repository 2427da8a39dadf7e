package main

import (
	"fmt"
	"os"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() { register(newPlanCmd) }

func newPlanCmd(a *app) *cobra.Command {
	var f attackFlags
	cmd := &cobra.Command{
		Use:   "plan TARGET... [flags]",
		Short: "Show what block would decide, changing nothing",
		Long: `plan is block with enforcement switched off: the same decisions against the
same world, the same exit code (3 when any target would be refused), and
nothing changes. For a target already blocked on this host it says until when
and whether the TTL would be kept or extended.

Without --snapshot, plan reads the world from EC2 as block does when
--instance or --subnet is given, --scope vpc is asked for, or it runs on an EC2
instance: the targets' security groups, the VPC's CIDRs and the subnet's
network ACL (read-only calls). --snapshot FILE decides against a JSON snapshot
of the world instead (security-group rules, network ACLs, active blocks, past
offences; the fields of policy.Snapshot) to rehearse a policy change offline.
The networks of this host (SSH peers, addresses, gateways, DNS resolvers) and
your own SSH session are protected either way.`,
		Example: `  banshee plan 174.132.223.252 --port 110/tcp --instance i-0123 --subnet subnet-0aa
  banshee plan - --snapshot world.json -o json < threat-list.txt`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBlock(cmd.Context(), &f, args, false)
		},
	}
	f.register(cmd)
	f.registerBlock(cmd)
	cmd.Flags().StringVar(&f.snapshot, "snapshot", "", "decide against this JSON snapshot (security groups, NACLs, blocks, offences) instead of reading EC2")
	return cmd
}

// loadSnapshot reads the snapshot at path.
func loadSnapshot(path string) (policy.Snapshot, error) {
	fh, err := os.Open(path)
	if err != nil {
		return policy.Snapshot{}, usageErrorf("reading snapshot %s: %v", path, err)
	}
	defer fh.Close()
	s, err := policy.ReadSnapshot(fh)
	if err != nil {
		return policy.Snapshot{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return s, nil
}
