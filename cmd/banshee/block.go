package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() { register(newBlockCmd) }

// blockOutput is the JSON shape of block: {"decisions": [...]}.
type blockOutput struct {
	Decisions []policy.Decision `json:"decisions"`
	Added     int               `json:"added"`
	Refreshed int               `json:"refreshed"`
	// NotBlocked lists targets decided for the NACL that found no room
	// there at write time and could not fall back to this host.
	NotBlocked []notBlocked `json:"not_blocked,omitempty"`
}

// blockHostFn enforces host decisions on this machine; tests replace it
// with a fake firewall.
var blockHostFn = (*app).blockHost

func newBlockCmd(a *app) *cobra.Command {
	var f attackFlags
	cmd := &cobra.Command{
		Use:   "block TARGET... [flags]",
		Short: "Block addresses or CIDRs at the layer the policy chooses",
		Long: `block decides, per target (an IPv4/IPv6 address or CIDR; - reads targets from
standard input, one per line, # starts a comment), where to block it and
enforces that: a host firewall DROP on this host (ipset entry with a kernel
timeout) or a VPC network ACL deny.

Blocking an address that is already blocked refreshes its TTL and reason.
When the policy refuses any target (the allowlist, a security-group
whitelist, the VPC's own CIDRs, your own SSH address, a too-broad prefix),
nothing changes and block exits 3. Use plan to see the decisions first.`,
		Example: `  banshee block 174.132.223.252 --reason "pop3 bruteforce" --ttl 2h
  banshee block - --ttl 24h --reason "threat list" < list.txt`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBlock(cmd.Context(), &f, args)
		},
	}
	f.register(cmd)
	return cmd
}

func (a *app) runBlock(ctx context.Context, f *attackFlags, args []string) error {
	targets, err := readTargetArgs(args, a.stdin)
	if err != nil {
		return err
	}
	atk, err := f.attack(targets)
	if err != nil {
		return err
	}
	if err := checkReason(atk.Reason); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	defer a.startHostProbe(ctx, targets)() // read-only; overlaps the decision
	snap := policy.Snapshot{Now: time.Now().UTC(), Callers: a.protectedPeers()}
	vpc, err := a.prepareVPC(ctx, &atk, &snap) // vpc.go: targets and snapshot from EC2
	if err != nil {
		return err
	}
	ds := policy.New(cfg).Decide(atk, snap)
	out := blockOutput{Decisions: ds}
	if n := countRefused(ds); n > 0 {
		if err := a.emit(out, func(w io.Writer) { writeDecisions(w, refusedOnly(ds)) }); err != nil {
			return err
		}
		return refusal(ds, "nothing blocked")
	}
	// Host blocks this command cannot make (on other instances) are found
	// before anything changes.
	vpc.onThisHost(ctx, ds)
	if _, err := hostEntries(ds, atk); err != nil {
		return usageErrorf("%v (nothing changed)", err)
	}
	applied, noRoom, vpcErr := vpc.block(ctx, ds, atk)
	if vpcErr != nil && len(applied) == 0 {
		return vpcErr // nothing changed
	}
	// Some VPC blocks are in place: finish the rest and report, then fail.
	// A NACL full at write time: host blocks here, or reported below.
	out.NotBlocked = vpc.fallBack(ctx, ds, atk, noRoom)
	res, err := blockHostFn(a, ctx, ds, atk)
	if err != nil {
		return err
	}
	out.Added, out.Refreshed = res.Added, len(res.Refreshed)
	clampHostTTL(out.Decisions, res.Clamped)
	refreshed := map[string]bool{}
	for _, p := range res.Refreshed {
		refreshed[p.String()] = true
	}
	if err := a.emit(out, func(w io.Writer) {
		if len(ds) > summaryAbove {
			writeSummary(w, ds)
			return
		}
		for _, d := range ds {
			if d.Action == policy.ActionBlock && refreshed[d.Target.String()] {
				d.Reasons = append([]string{"already blocked: TTL and reason refreshed"}, d.Reasons...)
			}
			writeDecisions(w, []policy.Decision{d})
		}
	}); err != nil {
		return err
	}
	if vpcErr != nil {
		return vpcErr
	}
	if n := len(out.NotBlocked); n > 0 {
		nb := out.NotBlocked[0]
		return fmt.Errorf("%d of %d target(s) not blocked: %s: %s", n, len(ds), showPrefix(nb.Target), nb.Reason)
	}
	return nil
}

// summaryAbove is how many decisions text output lists one by one; a bulk
// block prints counts instead.
const summaryAbove = 20

// writeSummary prints counts per scope and action.
func writeSummary(w io.Writer, ds []policy.Decision) {
	type key struct {
		scope  policy.Scope
		action policy.Action
	}
	counts := map[key]int{}
	var order []key
	for _, d := range ds {
		k := key{d.Scope, d.Action}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	for _, k := range order {
		fmt.Fprintf(w, "%d target(s): %s %s\n", counts[k], k.scope, k.action)
	}
}

// refusal is the error of a command whose targets the policy refused: it
// names the first refused target and why, and wraps errRefused (exit 3).
func refusal(ds []policy.Decision, what string) error {
	n := countRefused(ds)
	for _, d := range ds {
		if d.Action == policy.ActionRefuse {
			why := strings.Join(d.Reasons, "; ")
			return fmt.Errorf("%s (%d of %d target(s) refused; %s): %w", why, n, len(ds), what, errRefused)
		}
	}
	return nil
}

func refusedOnly(ds []policy.Decision) []policy.Decision {
	var out []policy.Decision
	for _, d := range ds {
		if d.Action == policy.ActionRefuse {
			out = append(out, d)
		}
	}
	return out
}

// checkReason rejects a reason that could never be stored safely.
func checkReason(reason string) error {
	for _, r := range reason {
		if r < 0x20 || r == 0x7f {
			return &policy.InputError{Value: reason, Msg: "--reason must not contain control characters such as newlines"}
		}
	}
	return nil
}
