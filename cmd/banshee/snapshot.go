package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() { register(newSnapshotCmd) }

func newSnapshotCmd(a *app) *cobra.Command {
	var scope, subnet string
	var instances []string
	cmd := &cobra.Command{
		Use:   "snapshot [--instance ID]... [--subnet ID]",
		Short: "Print the live world as plan --snapshot reads it",
		Long: `snapshot prints the world banshee decides against as one JSON object, in the
format plan --snapshot reads: the security-group rules of the instances, the
VPC's CIDRs, the subnets' network ACLs with every entry (banshee's with expiry,
reason and origin) and the active blocks, host and VPC. Save it, change the
configuration, and rehearse the change offline with plan --snapshot.

The host part is this host's firewall (--scope vpc leaves it out). The VPC part
is read from EC2, read-only, for the instances and subnet named, or for this
instance when running on EC2; off EC2 without --instance or --subnet there is
none. plan needs the same --instance and --subnet flags to find the targets in
the snapshot.`,
		Example: `  banshee snapshot --instance i-0123 --instance i-0456 --subnet subnet-0aa > world.json
  banshee plan 203.0.113.7 --port 22/tcp --instance i-0123 --instance i-0456 --subnet subnet-0aa --snapshot world.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f := attackFlags{scope: string(policy.ScopeAuto), instances: instances, subnet: subnet, kind: string(policy.KindManual)}
			switch scope {
			case "all", "host":
			case "vpc":
				f.scope = string(policy.ScopeVPC)
			default:
				return usageErrorf("--scope %q: want all, host or vpc", scope)
			}
			atk, err := f.attack(nil)
			if err != nil {
				return err
			}
			snap := policy.Snapshot{Now: time.Now().UTC().Truncate(time.Second)}
			if scope != "host" {
				if atk.Targets, err = a.snapshotVPC(ctx, atk, &snap); err != nil {
					return err
				}
			}
			if scope != "vpc" {
				fw, err := a.firewall(ctx)
				if err != nil {
					return err
				}
				es, err := fw.List(ctx)
				if err != nil {
					return err
				}
				for _, e := range es {
					snap.Blocks = append(snap.Blocks, policy.Block{Target: e.Prefix, Scope: policy.ScopeHost, ExpiresAt: e.ExpiresAt, Reason: e.Reason, Origin: policy.Origin(e.Origin)})
				}
			}
			slices.SortStableFunc(snap.Blocks, func(x, y policy.Block) int {
				return cmp.Or(comparePrefix(x.Target, y.Target), strings.Compare(string(x.Scope), string(y.Scope)))
			})
			enc := json.NewEncoder(a.stdout)
			enc.SetEscapeHTML(false)
			if a.output == "text" {
				enc.SetIndent("", "  ")
			}
			if err := enc.Encode(snap); err != nil {
				return fmt.Errorf("writing the snapshot: %w", err)
			}
			if a.output == "text" && len(atk.Targets) > 0 {
				var flags []string
				for _, t := range atk.Targets {
					if t.InstanceID != "" {
						flags = append(flags, "--instance "+t.InstanceID)
					}
				}
				if atk.Targets[0].SubnetID != "" {
					flags = append(flags, "--subnet "+atk.Targets[0].SubnetID)
				}
				fmt.Fprintf(a.stderr, "banshee: plan against it with: banshee plan TARGET %s --snapshot FILE\n", strings.Join(flags, " "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&scope, "scope", "all", "which layers: all, host (this host's blocks) or vpc (EC2 only)")
	fl.StringArrayVar(&instances, "instance", nil, "instance whose security groups, subnet and network ACL to read (repeatable); default: this instance on EC2")
	fl.StringVar(&subnet, "subnet", "", "subnet whose network ACL to read")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"all", "host", "vpc"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// snapshotVPC reads the VPC part of the world from EC2 (read-only): the
// targets named by atk (or this instance on EC2) resolved to their subnet
// and VPC, their security groups, the VPC's CIDRs and the network ACLs with
// banshee's blocks. Off EC2 with nothing named it reads nothing, unless
// --scope vpc asked for it.
func (a *app) snapshotVPC(ctx context.Context, atk policy.Attack, snap *policy.Snapshot) ([]policy.Target, error) {
	var instances []string
	subnet := ""
	for _, t := range atk.Targets {
		if t.InstanceID != "" {
			instances = append(instances, t.InstanceID)
		}
		subnet = cmp.Or(subnet, t.SubnetID)
	}
	if len(instances) == 0 && subnet == "" {
		id, err := whoAmI(ctx)
		if err != nil {
			if atk.Scope == policy.ScopeVPC {
				return nil, usageErrorf("--scope vpc needs --instance or --subnet when not running on EC2")
			}
			return nil, nil
		}
		instances = []string{id.InstanceID}
	}
	m, err := a.naclManager(ctx)
	if err != nil {
		return nil, err
	}
	targets, err := m.Resolve(ctx, instances, subnet)
	if err != nil {
		return nil, err
	}
	if err := m.FillSnapshot(ctx, targets, snap); err != nil {
		return nil, err
	}
	return targets, nil
}
