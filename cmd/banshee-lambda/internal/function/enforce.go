package function

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

// snapshot resolves the attacks' instances into targets (subnet, VPC,
// addresses), writes them back into the attacks, and reads the world the
// policy decides against: allowlist, security groups, VPC CIDRs, NACLs and
// their blocks, and the sources' prior offences (offences.go).
func (f *Function) snapshot(ctx context.Context, cfg policy.Config, nacls NACLs, tr trigger, attacks []policy.Attack) (policy.Snapshot, error) {
	snap := policy.Snapshot{Now: f.d.Now(), Allowlist: cfg.Allowlist}
	var ids []string
	for _, a := range attacks {
		for _, t := range a.Targets {
			if t.InstanceID != "" && !slices.Contains(ids, t.InstanceID) {
				ids = append(ids, t.InstanceID)
			}
		}
	}
	resolved := map[string]policy.Target{}
	if len(ids) > 0 {
		ts, err := nacls.Resolve(ctx, ids, "")
		if err != nil {
			return snap, fmt.Errorf("resolve attacked instances: %w", err)
		}
		for _, t := range ts {
			resolved[t.InstanceID] = t
		}
	}
	var all []policy.Target
	for i := range attacks {
		for j, t := range attacks[i].Targets {
			if r, ok := resolved[t.InstanceID]; ok && t.InstanceID != "" {
				attacks[i].Targets[j] = r
				t = r
			}
			if !slices.ContainsFunc(all, func(x policy.Target) bool { return x.InstanceID == t.InstanceID && x.SubnetID == t.SubnetID }) {
				all = append(all, t)
			}
		}
	}
	if err := nacls.FillSnapshot(ctx, all, &snap); err != nil {
		return snap, fmt.Errorf("read security groups and network ACLs: %w", err)
	}
	f.confine(attacks, &snap)
	offences, err := f.offences(ctx, cfg, tr, attacks, snap.Blocks)
	if err != nil {
		return snap, err
	}
	snap.Offences = offences
	return snap, nil
}

// planned records decisions in the snapshot, so the next attack's
// decisions see the NACL slots and blocks this invocation already planned.
func planned(snap *policy.Snapshot, atk policy.Attack, ds []policy.Decision) {
	for _, d := range ds {
		if d.Action != policy.ActionBlock {
			continue
		}
		cidr := d.Target
		if d.Aggregate != nil {
			cidr = *d.Aggregate
		}
		switch d.Scope {
		case policy.ScopeVPC:
			snap.Blocks = append(snap.Blocks, policy.Block{Target: cidr, Scope: policy.ScopeVPC, NACLID: d.NACLID, RuleNumber: d.RuleNumber, ExpiresAt: d.ExpiresAt, Origin: policy.OriginLambda})
			if n, ok := snap.NACLs[d.SubnetID]; ok && !slices.ContainsFunc(n.Entries, func(e policy.NACLEntry) bool { return !e.Egress && e.RuleNumber == d.RuleNumber }) {
				n.Entries = append(slices.Clone(n.Entries), policy.NACLEntry{RuleNumber: d.RuleNumber, CIDR: cidr, Port: atk.Port, ExpiresAt: d.ExpiresAt, Origin: policy.OriginLambda})
				snap.NACLs[d.SubnetID] = n
			}
		case policy.ScopeHost:
			for _, id := range hostInstances(d, atk) {
				snap.Blocks = append(snap.Blocks, policy.Block{Target: cidr, Scope: policy.ScopeHost, InstanceID: id, ExpiresAt: d.ExpiresAt, Origin: policy.OriginLambda})
			}
		}
	}
}

// hostInstances are where a host decision is enforced: the instances the
// policy named, or else every instance the attack reached.
func hostInstances(d policy.Decision, atk policy.Attack) []string {
	if len(d.Instances) > 0 {
		return d.Instances
	}
	var ids []string
	for _, t := range atk.Targets {
		if t.InstanceID != "" {
			ids = append(ids, t.InstanceID)
		}
	}
	return ids
}

// hostGroup is the host blocks that go out in one SSM command.
type hostGroup struct {
	instances []string
	ttl       time.Duration
	targets   []policy.Decision
}

// decideAndEnforce decides every attack against one snapshot (updated as it
// goes), then enforces: VPC blocks in one awsnacl call per attacked port
// and severity, each block recording its reason (tr.vpcReason) and origin
// lambda in the ACL's tags; host blocks in one SSM command per instance set
// and TTL, keyed by the triggering event for de-duplication (each
// decision's own reasons are logged and returned).
func (f *Function) decideAndEnforce(ctx context.Context, cfg policy.Config, attacks []policy.Attack, tr trigger, resp *Response) error {
	nacls := f.d.NACLs(cfg)
	snap, err := f.snapshot(ctx, cfg, nacls, tr, attacks)
	if err != nil {
		return err
	}
	pol := policy.New(cfg)
	type decided struct {
		atk policy.Attack
		ds  []policy.Decision
	}
	var all []decided
	for _, atk := range attacks {
		ds := pol.Decide(atk, snap)
		planned(&snap, atk, ds)
		all = append(all, decided{atk, ds})
		resp.Decisions = append(resp.Decisions, ds...)
	}
	counts := map[string]int{}
	for _, d := range resp.Decisions {
		counts[string(d.Action)+"/"+string(d.Scope)]++
		lvl := "decision"
		f.d.Log.InfoContext(ctx, lvl, "target", d.Target.String(), "scope", d.Scope, "action", d.Action, "reasons", d.Reasons, "ttl_seconds", d.TTLSeconds, "nacl_id", d.NACLID, "rule_number", d.RuleNumber, "instances", d.Instances)
	}
	f.count(nil, "Refusals", float64(counts["refuse/none"]))
	f.count(nil, "Skips", float64(counts["skip/none"]+counts["skip/host"]+counts["skip/vpc"]))

	var errs []error
	// VPC scope, grouped by attacked port (the order check depends on it)
	// and severity (kept for eviction choices). Block gets copies of the
	// decisions whose first reason is the one the ACL's tag records.
	type vpcGroup struct {
		port     policy.Port
		severity int
	}
	byGroup := map[vpcGroup][]policy.Decision{}
	tagged := map[vpcGroup][]policy.Decision{}
	attackOf := map[string]policy.Attack{}
	for _, x := range all {
		for _, d := range x.ds {
			attackOf[d.Target.String()] = x.atk
			if d.Scope == policy.ScopeVPC && d.Action == policy.ActionBlock {
				g := vpcGroup{x.atk.Port, x.atk.Severity}
				byGroup[g] = append(byGroup[g], d)
				td := d
				td.Reasons = append([]string{tr.vpcReason(d, x.atk)}, d.Reasons...)
				tagged[g] = append(tagged[g], td)
			}
		}
	}
	var fallback []policy.Decision
	groupOrder := func(a, b vpcGroup) int {
		if c := strings.Compare(fmt.Sprint(a.port), fmt.Sprint(b.port)); c != 0 {
			return c
		}
		return a.severity - b.severity
	}
	for _, g := range slices.SortedFunc(maps.Keys(byGroup), groupOrder) {
		bs, noRoom, err := engine.EnforceVPC(ctx, nacls, tagged[g], policy.Attack{Origin: policy.OriginLambda, Port: g.port, Severity: g.severity, Reason: tr.requestReason()})
		resp.VPCBlocks = append(resp.VPCBlocks, bs...)
		var shadowed []*awsnacl.TargetError
		failed := awsnacl.Failed(err)
		for _, te := range failed {
			switch {
			case errors.Is(te.Err, awsnacl.ErrShadowed):
				shadowed = append(shadowed, te)
			case !errors.Is(te.Err, awsnacl.ErrNoRoom):
				errs = append(errs, te)
			}
		}
		for i := range resp.Decisions {
			d := &resp.Decisions[i]
			if !inGroup(byGroup[g], d.Target) || d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock {
				continue
			}
			if cause, ok := noRoom[d.Target]; ok {
				// The same fallback as every door: the first reason
				// names the outcome; no NACL fields stay behind.
				engine.ToHost(d, fmt.Sprintf("no room in %s at write time (%v)", d.NACLID, cause))
				fallback = append(fallback, *d)
				resp.Fallbacks = append(resp.Fallbacks, d.Target.String())
				continue
			}
			for _, te := range shadowed {
				if te.Target == d.Target {
					// A refusal, as the CLI's exit 3: nothing is written.
					d.Scope, d.Action = policy.ScopeNone, policy.ActionRefuse
					d.NACLID, d.RuleNumber, d.SubnetID, d.Aggregate, d.Evicts = "", 0, "", nil, nil
					d.Reasons = append([]string{"refused: " + te.Err.Error()}, d.Reasons...)
					f.d.Log.WarnContext(ctx, "vpc block refused", "target", te.Target.String(), "error", te.Err.Error())
					f.count(nil, "Refusals", 1)
				}
			}
			for _, b := range bs {
				if b.Target.Bits() <= d.Target.Bits() && b.Target.Contains(d.Target.Addr()) {
					d.NACLID, d.RuleNumber, d.ExpiresAt = b.NACLID, b.RuleNumber, b.ExpiresAt
					break
				}
			}
		}
		if err != nil && len(failed) == 0 {
			errs = append(errs, fmt.Errorf("vpc block: %w", err))
		}
	}
	f.count(map[string]string{"Scope": string(policy.ScopeVPC)}, "Blocks", float64(len(resp.VPCBlocks)))

	// Host scope, grouped by instance set and TTL.
	groups := map[string]*hostGroup{}
	var order []string
	addHost := func(d policy.Decision) {
		ids := slices.Clone(hostInstances(d, attackOf[d.Target.String()]))
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if len(ids) == 0 {
			errs = append(errs, fmt.Errorf("host block of %s: no instance to enforce on", d.Target))
			return
		}
		k := strings.Join(ids, ",") + "|" + d.TTL.String()
		g := groups[k]
		if g == nil {
			g = &hostGroup{instances: ids, ttl: d.TTL}
			groups[k] = g
			order = append(order, k)
		}
		g.targets = append(g.targets, d)
	}
	for _, d := range resp.Decisions {
		if d.Scope == policy.ScopeHost && d.Action == policy.ActionBlock {
			addHost(d)
		}
	}
	for _, d := range fallback {
		addHost(d)
	}
	hostBlocks := 0
	for _, k := range order {
		g := groups[k]
		if f.d.Hosts == nil {
			errs = append(errs, fmt.Errorf("host block on %s: no SSM document configured (BANSHEE_SSM_DOCUMENT)", strings.Join(g.instances, ",")))
			continue
		}
		req := remote.Request{
			Action: remote.Block, TTL: g.ttl, Instances: g.instances,
			Reason: tr.hostReason(),
			Key:    tr.hostKey(k), Since: tr.since,
		}
		for _, d := range g.targets {
			req.Targets = append(req.Targets, d.Target)
		}
		slices.SortFunc(req.Targets, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		r, err := f.d.Hosts.Run(ctx, req)
		resp.Host = append(resp.Host, r)
		for _, s := range r.Sent {
			if !s.Duplicate {
				hostBlocks += len(s.Targets) * len(s.Instances)
			}
		}
		if len(r.Untargeted) > 0 {
			f.d.Log.WarnContext(ctx, "instances not targeted: not running or without the instance tag", "instances", r.Untargeted)
			f.count(nil, "Refusals", float64(len(r.Untargeted)))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	f.count(map[string]string{"Scope": string(policy.ScopeHost)}, "Blocks", float64(hostBlocks))
	f.freeSlots(ctx, cfg, nacls, snap)
	return errors.Join(errs...)
}

func inGroup(ds []policy.Decision, target netip.Prefix) bool {
	return slices.ContainsFunc(ds, func(d policy.Decision) bool { return d.Target == target })
}

// freeSlots writes the free IPv4 ingress slots of every NACL the snapshot
// holds, as the NACL reads after enforcement (from the invocation's cache).
func (f *Function) freeSlots(ctx context.Context, cfg policy.Config, nacls NACLs, snap policy.Snapshot) {
	for _, subnet := range slices.Sorted(maps.Keys(snap.NACLs)) {
		n, err := nacls.NACLFor(ctx, subnet)
		if err != nil {
			f.d.Log.WarnContext(ctx, "reading NACL for its free slots failed", "subnet", subnet, "error", err.Error())
			continue
		}
		used, ours := 0, 0
		for _, e := range n.Entries {
			if e.Egress || !e.CIDR.Addr().Is4() {
				continue
			}
			used++
			if e.RuleNumber >= cfg.NACL.RuleMin && e.RuleNumber <= cfg.NACL.RuleMax {
				ours++
			}
		}
		free := min(cfg.NACL.Quota-used, cfg.NACL.RuleMax-cfg.NACL.RuleMin+1-ours)
		f.count(map[string]string{"NaclId": n.ID}, "NACLFreeSlots", float64(max(free, 0)))
	}
}
