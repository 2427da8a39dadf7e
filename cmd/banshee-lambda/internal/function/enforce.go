package function

import (
	"context"
	"maps"
	"slices"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

// batch is the engine request of attacks from one trigger: the same
// decide → enforce → fall back path as every door (engine.Batch), with what
// only the function knows: the network ACLs it may change (confine), the
// sources' past offences from the VPC blocks and the host command history
// (offences.go), the reasons its tags and commands carry, and the
// de-duplication key of each host command (trigger.go).
func (f *Function) batch(cfg policy.Config, nacls NACLs, tr trigger, attacks []policy.Attack, enforce bool) engine.BatchRequest {
	req := engine.BatchRequest{
		Attacks: attacks, Enforce: enforce,
		Prepare: func(ctx context.Context, attacks []policy.Attack, snap *policy.Snapshot) error {
			f.confine(attacks, snap)
			offences, err := f.offences(ctx, cfg, tr, attacks, snap.Blocks)
			snap.Offences = offences
			return err
		},
		TagReason:  tr.vpcReason,
		Reason:     tr.requestReason(),
		HostReason: tr.hostReason(),
		HostKey:    tr.hostKey,
		Since:      tr.since,
	}
	if nacls != nil {
		req.Edge = nacls
	}
	if f.d.Hosts != nil {
		req.Remote = &ssmHosts{d: f.d.Hosts}
	}
	return req
}

// ssmHosts sends the engine's host commands through the SSM driver
// (hostfw/remote), keeping each command's result for the response.
type ssmHosts struct {
	d       Hosts
	results []remote.Result
}

func (h *ssmHosts) Block(ctx context.Context, c engine.HostCommand) (engine.HostSent, error) {
	r, err := h.d.Run(ctx, remote.Request{Action: remote.Block, Targets: c.Targets, TTL: c.TTL, Reason: c.Reason, Instances: c.Instances, Key: c.Key, Since: c.Since})
	h.results = append(h.results, r)
	sent := engine.HostSent{Untargeted: r.Untargeted}
	for _, s := range r.Sent {
		if !s.Duplicate {
			sent.Blocks += len(s.Targets) * len(s.Instances)
		}
	}
	return sent, err
}

// engine is the engine of one invocation.
func (f *Function) engine(cfg policy.Config) *engine.Engine {
	return engine.New(engine.Deps{Config: cfg, Now: f.d.Now})
}

// snapshot resolves the attacks' instances into targets (written back into
// the attacks) and reads the world the policy decides against, confined to
// the ACLs the function manages, with the sources' prior offences.
func (f *Function) snapshot(ctx context.Context, cfg policy.Config, nacls NACLs, tr trigger, attacks []policy.Attack) (policy.Snapshot, error) {
	return f.engine(cfg).Gather(ctx, f.batch(cfg, nacls, tr, attacks, false))
}

// decideAndEnforce answers the attacks through the engine, then logs each
// decision and counts what was done.
func (f *Function) decideAndEnforce(ctx context.Context, cfg policy.Config, attacks []policy.Attack, tr trigger, resp *Response) error {
	nacls := f.d.NACLs(cfg)
	req := f.batch(cfg, nacls, tr, attacks, true)
	res, err := f.engine(cfg).Batch(ctx, req)
	if res == nil {
		return err
	}
	if h, ok := req.Remote.(*ssmHosts); ok {
		resp.Host = append(resp.Host, h.results...)
	}
	resp.Decisions = append(resp.Decisions, res.Decisions...)
	resp.VPCBlocks = append(resp.VPCBlocks, res.VPCBlocks...)
	for _, p := range res.Fallbacks {
		resp.Fallbacks = append(resp.Fallbacks, p.String())
	}
	counts := map[string]int{}
	for _, d := range res.Decisions {
		counts[string(d.Action)+"/"+string(d.Scope)]++
		f.d.Log.InfoContext(ctx, "decision", "target", d.Target.String(), "scope", d.Scope, "action", d.Action, "reasons", d.Reasons, "ttl_seconds", d.TTLSeconds, "nacl_id", d.NACLID, "rule_number", d.RuleNumber, "instances", d.Instances)
	}
	for _, te := range res.Shadowed {
		f.d.Log.WarnContext(ctx, "vpc block refused", "target", te.Target.String(), "error", te.Err.Error())
	}
	if len(res.Untargeted) > 0 {
		f.d.Log.WarnContext(ctx, "instances not targeted: not running or without the instance tag", "instances", res.Untargeted)
	}
	f.count(nil, "Refusals", float64(counts["refuse/none"]+len(res.Untargeted)))
	f.count(nil, "Skips", float64(counts["skip/none"]+counts["skip/host"]+counts["skip/vpc"]))
	f.count(map[string]string{"Scope": string(policy.ScopeVPC)}, "Blocks", float64(len(res.VPCBlocks)))
	f.count(map[string]string{"Scope": string(policy.ScopeHost)}, "Blocks", float64(res.HostBlocks))
	if nacls != nil {
		f.freeSlots(ctx, cfg, nacls, res.World)
	}
	return err
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
