package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() { register(newPlanCmd) }

// planOutput is the JSON shape of plan: {"decisions": [...]}.
type planOutput struct {
	Decisions []policy.Decision `json:"decisions"`
}

func newPlanCmd(a *app) *cobra.Command {
	var f attackFlags
	var snapshotPath string
	cmd := &cobra.Command{
		Use:   "plan TARGET... [flags]",
		Short: "Show what block would decide, changing nothing",
		Long: `plan prints the decision banshee would take for each target (an IPv4/IPv6
address or CIDR; - reads targets from standard input, one per line, # starts a
comment): the scope (host or vpc), the action (block, skip or refuse) and the
reasons. It changes nothing. It exits 3 when any target would be refused.

Without --snapshot, plan reads the world from EC2 as block does when
--instance or --subnet is given, --scope vpc is asked for, or it runs on an EC2
instance: the targets' security groups, the VPC's CIDRs and the subnet's
network ACL (read-only calls). --snapshot FILE decides against a JSON snapshot
of the world instead (security-group rules, network ACLs, active blocks, past
offences; the fields of policy.Snapshot) to rehearse a policy change offline.`,
		Example: `  banshee plan 174.132.223.252 --port 110/tcp --instance i-0123 --subnet subnet-0aa
  banshee plan - --snapshot world.json -o json < threat-list.txt`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := readTargetArgs(args, a.stdin)
			if err != nil {
				return err
			}
			atk, err := f.attack(targets)
			if err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			snap, err := loadSnapshot(snapshotPath, time.Now(), os.Getenv)
			if err != nil {
				return err
			}
			if snapshotPath == "" {
				// The world block would decide against: the targets,
				// security groups, VPC CIDRs and NACLs from EC2 (vpc.go,
				// reads only). Nothing when no instance or subnet is named
				// and this is not an EC2 instance.
				if _, err := a.prepareVPC(cmd.Context(), &atk, &snap); err != nil {
					return err
				}
			}
			ds := policy.New(cfg).Decide(atk, snap)
			if err := a.emit(planOutput{Decisions: ds}, func(w io.Writer) { writeDecisions(w, ds) }); err != nil {
				return fmt.Errorf("writing the plan: %w", err)
			}
			if n := countRefused(ds); n > 0 {
				return fmt.Errorf("%d of %d target(s) would be refused: %w", n, len(ds), errRefused)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&snapshotPath, "snapshot", "", "decide against this JSON snapshot (security groups, NACLs, blocks, offences) instead of an empty world")
	return cmd
}

// loadSnapshot reads the snapshot at path ("" for an empty world), sets
// Now when the file has none, and adds the caller's own SSH client
// address so the policy never blocks the operator.
func loadSnapshot(path string, now time.Time, getenv func(string) string) (policy.Snapshot, error) {
	var s policy.Snapshot
	if path != "" {
		fh, err := os.Open(path)
		if err != nil {
			return policy.Snapshot{}, usageErrorf("reading snapshot %s: %v", path, err)
		}
		defer fh.Close()
		s, err = policy.ReadSnapshot(fh)
		if err != nil {
			return policy.Snapshot{}, fmt.Errorf("snapshot %s: %w", path, err)
		}
	}
	if s.Now.IsZero() {
		s.Now = now.UTC()
	}
	s.Callers = append(s.Callers, callerAddrs(getenv)...)
	return s, nil
}

func countRefused(ds []policy.Decision) int {
	n := 0
	for _, d := range ds {
		if d.Action == policy.ActionRefuse {
			n++
		}
	}
	return n
}

// writeDecisions prints one line per decision: target, scope, action,
// where, how long, and the reasons.
func writeDecisions(w io.Writer, ds []policy.Decision) {
	for _, d := range ds {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s", showTarget(d), d.Scope, d.Action)
		if d.Action == policy.ActionBlock {
			if d.NACLID != "" {
				fmt.Fprintf(&b, " %s rule %d", d.NACLID, d.RuleNumber)
				if d.Aggregate != nil {
					fmt.Fprintf(&b, " as %s", d.Aggregate)
				}
			}
			if len(d.Instances) > 0 {
				fmt.Fprintf(&b, " on %s", strings.Join(d.Instances, ","))
			}
			fmt.Fprintf(&b, " for %s until %s", shortDuration(d.TTL), d.ExpiresAt.UTC().Format(time.RFC3339))
		}
		reasons := slices.Clone(d.Reasons)
		if len(reasons) > 0 { // "none skip: skip: ..." says skip once
			reasons[0] = strings.TrimPrefix(reasons[0], string(d.Action)+": ")
			reasons[0] = strings.TrimPrefix(reasons[0], "refused: ")
		}
		fmt.Fprintf(&b, ": %s", strings.Join(reasons, "; "))
		fmt.Fprintln(w, b.String())
	}
}

func showTarget(d policy.Decision) string {
	if d.Target.IsValid() && d.Target.IsSingleIP() {
		return d.Target.Addr().String()
	}
	return d.Target.String()
}

// shortDuration writes a duration without trailing zero units: 1h, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
