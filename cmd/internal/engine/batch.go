package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/policy"
)

// HostCommand is one host block sent to other instances: every target on
// every instance, for TTL. Key identifies the command across deliveries of
// the same trigger (sent since Since: not sent again).
type HostCommand struct {
	Targets   []netip.Prefix
	TTL       time.Duration
	Reason    string
	Instances []string
	Key       string
	Since     time.Time
}

// HostSent is what sending a HostCommand did: Blocks counts target ×
// instance blocks sent now (not by an earlier delivery); Untargeted are the
// instances nothing was sent to (not running, or not banshee's).
type HostSent struct {
	Blocks     int
	Untargeted []string
}

// Remote blocks on other instances' host firewalls (the Lambda's SSM Run
// Command driver, hostfw/remote, behind an adapter: the engine does not
// depend on SSM).
type Remote interface {
	Block(ctx context.Context, c HostCommand) (HostSent, error)
}

// BatchEdge is the part of the network ACL manager a batch uses: it reads
// the world of the attacked instances and writes denies.
type BatchEdge interface {
	Resolve(ctx context.Context, instanceIDs []string, subnetID string) ([]policy.Target, error)
	FillSnapshot(ctx context.Context, targets []policy.Target, snap *policy.Snapshot) error
	VPCWriter
}

// BatchRequest is several attacks answered against one world read: the
// Lambda function's alarm (its offenders grouped by port) or manual event.
// Host blocks go to the attacked instances through Remote.
type BatchRequest struct {
	Attacks []policy.Attack
	// Enforce off is plan: the same decisions, nothing changes.
	Enforce bool
	// Edge reads and writes the network ACLs (nil: host scope only).
	Edge BatchEdge
	// Remote enforces host blocks on the attacked instances (nil: a host
	// block is an error naming the missing SSM document).
	Remote Remote
	// Prepare completes the world read before anything is decided: what
	// the door knows that EC2 does not show (the Lambda marks the network
	// ACLs it may not change, policy.NACL.Unmanaged, and loads the
	// sources' past offences). Nil: nothing to add.
	Prepare func(ctx context.Context, attacks []policy.Attack, snap *policy.Snapshot) error
	// TagReason is the reason a VPC block's tag records for d (nil: the
	// decision's own first reason).
	TagReason func(d policy.Decision, atk policy.Attack) string
	// Reason is the request's reason (awsnacl.Request.Reason).
	Reason string
	// HostReason is the reason host blocks carry; HostKey derives the
	// de-duplication key of the command of one host group (instance set
	// and TTL), and Since bounds the search for earlier deliveries
	// (HostCommand).
	HostReason string
	HostKey    func(group string) string
	Since      time.Time
}

// BatchResult is what a batch decided and did.
type BatchResult struct {
	Decisions []policy.Decision `json:"decisions"`
	// VPCBlocks are the network ACL entries written.
	VPCBlocks []policy.Block `json:"vpc_blocks,omitempty"`
	// Fallbacks are the VPC decisions the NACL had no room for at write
	// time: host blocks on the attacked instances now.
	Fallbacks []netip.Prefix `json:"host_fallbacks,omitempty"`
	// Shadowed are the VPC decisions refused at write time (a lower
	// allow rule would bypass the deny); their decisions are refusals.
	Shadowed []*awsnacl.TargetError `json:"-"`
	// Untargeted are instances a host command was not sent to.
	Untargeted []string `json:"untargeted,omitempty"`
	// HostBlocks counts target×instance host blocks sent now (not
	// earlier deliveries).
	HostBlocks int `json:"host_blocks"`
	// World is the world the decisions were made against, with what this
	// batch planned added (its NACLs name the ACLs involved).
	World policy.Snapshot `json:"-"`
}

// Batch decides every attack against one world read, in order, each
// seeing what the earlier ones planned as entries of ours (planned): a
// later attack's placement may merge them or evict one, whose decisions
// then fall back to host blocks before anything is written. Then, with
// Enforce, it enforces: VPC blocks in one edge write per attacked port and
// severity (EnforceVPC), in the order decided, the decisions without room
// falling back to host blocks on their instances (ToHost), denies a lower
// allow rule would bypass refused, and host blocks (with the instances a
// VPC decision names outside its ACL's subnets) in one remote command per
// instance set and TTL. The decisions always come back, with an error
// joining every failure.
func (e *Engine) Batch(ctx context.Context, req BatchRequest) (*BatchResult, error) {
	snap, err := e.Gather(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &BatchResult{}
	attackOf := map[netip.Prefix]policy.Attack{}
	var atkOf []int // per decision, the index of its attack
	// at lists, per NACL entry this batch plans (NACL id and rule
	// number), the decisions it denies: a later attack's placement may
	// merge the entry into a wider one or evict it, as any entry of ours.
	at := map[string][]int{}
	for k, atk := range req.Attacks {
		ds := e.pol.Decide(atk, snap)
		for _, d := range ds {
			if d.Evicts == nil {
				continue
			}
			// The entry it evicts was planned by this batch and is not
			// written yet: its sources stay on the hosts instead.
			key := entryKey(d.Evicts.NACLID, d.Evicts.RuleNumber)
			for _, i := range at[key] {
				ev := &res.Decisions[i]
				if isVPCBlock(*ev) {
					ToHost(ev, fmt.Sprintf("evicted from %s rule %d by %s, worth more, before it was written", ev.NACLID, d.Evicts.RuleNumber, Show(d.Target)))
					res.Fallbacks = append(res.Fallbacks, ev.Target)
				}
			}
			delete(at, key)
		}
		base := len(res.Decisions)
		res.Decisions = append(res.Decisions, ds...)
		for i, d := range ds {
			attackOf[d.Target] = atk
			atkOf = append(atkOf, k)
			if !isVPCBlock(d) {
				continue
			}
			for gone, into := range planned(&snap, e.d.Config.NACL, atk, d) {
				// Entries a merge replaced: their sources are denied by
				// the merged one now.
				key := entryKey(d.NACLID, into)
				at[key] = append(at[key], at[entryKey(d.NACLID, gone)]...)
				delete(at, entryKey(d.NACLID, gone))
			}
			key := entryKey(d.NACLID, d.RuleNumber)
			at[key] = append(at[key], base+i)
		}
		for _, d := range ds {
			if d.Action == policy.ActionBlock && (d.Scope == policy.ScopeHost || len(d.Instances) > 0) {
				plannedHost(&snap, atk, d)
			}
		}
	}
	res.World = snap
	if !req.Enforce {
		return res, nil
	}

	var errs []error
	// VPC scope, grouped by attacked port (the order check depends on it)
	// and severity (kept for eviction choices), written in the order the
	// groups were decided: a later attack's merge of entries an earlier
	// one planned rewrites them once they are there.
	type vpcGroup struct {
		port     policy.Port
		severity int
	}
	tagged := map[vpcGroup][]policy.Decision{}
	var groups []vpcGroup
	for i, d := range res.Decisions {
		if !isVPCBlock(d) {
			continue
		}
		atk := req.Attacks[atkOf[i]]
		g := vpcGroup{atk.Port, atk.Severity}
		if req.TagReason != nil {
			d.Reasons = append([]string{req.TagReason(d, atk)}, d.Reasons...)
		}
		if _, ok := tagged[g]; !ok {
			groups = append(groups, g)
		}
		tagged[g] = append(tagged[g], d)
	}
	for _, g := range groups {
		if req.Edge == nil {
			errs = append(errs, fmt.Errorf("VPC block of %s: no network ACL backend for this invocation", tagged[g][0].Target))
			continue
		}
		bs, noRoom, err := EnforceVPC(ctx, req.Edge, tagged[g], policy.Attack{Origin: policy.OriginLambda, Port: g.port, Severity: g.severity, Reason: req.Reason})
		res.VPCBlocks = append(res.VPCBlocks, bs...)
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
		res.Shadowed = append(res.Shadowed, shadowed...)
		if err != nil && len(failed) == 0 {
			errs = append(errs, fmt.Errorf("vpc block: %w", err))
		}
		for i := range res.Decisions {
			d := &res.Decisions[i]
			if !isVPCBlock(*d) || !slices.ContainsFunc(tagged[g], func(x policy.Decision) bool { return x.Target == d.Target }) {
				continue
			}
			if cause, ok := noRoom[d.Target]; ok {
				ToHost(d, fmt.Sprintf("no room in %s at write time (%v)", d.NACLID, cause))
				res.Fallbacks = append(res.Fallbacks, d.Target)
				continue
			}
			if i := slices.IndexFunc(shadowed, func(te *awsnacl.TargetError) bool { return te.Target == d.Target }); i >= 0 {
				// A refusal, as the CLI's exit 3: nothing is written.
				d.Scope, d.Action = policy.ScopeNone, policy.ActionRefuse
				d.NACLID, d.RuleNumber, d.SubnetID, d.Aggregate, d.Evicts = "", 0, "", nil, nil
				d.Reasons = append([]string{"refused: " + shadowed[i].Err.Error()}, d.Reasons...)
				continue
			}
		}
	}
	// Each deny as written: a later group's merge may have rewritten an
	// earlier group's entry into a wider one at another number.
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if !isVPCBlock(*d) {
			continue
		}
		for _, b := range slices.Backward(res.VPCBlocks) {
			if !covers(b.Target, d.Target) || (d.NACLID != "" && b.NACLID != d.NACLID) {
				continue
			}
			if planned := d.Target; b.Target != planned && (d.Aggregate == nil || *d.Aggregate != b.Target) {
				d.Reasons = append(d.Reasons, fmt.Sprintf("vpc: merged into %s at %s rule %d with sources decided after it", Show(b.Target), b.NACLID, b.RuleNumber))
			}
			d.NACLID, d.RuleNumber, d.ExpiresAt = b.NACLID, b.RuleNumber, b.ExpiresAt
			break
		}
	}
	errs = append(errs, e.remoteHosts(ctx, req, res, attackOf)...)
	return res, errors.Join(errs...)
}

// Gather resolves the attacks' instances into targets (subnet, VPC,
// addresses), writes them back into the attacks, and reads the world the
// policy decides against: security groups, VPC CIDRs, NACLs and their
// blocks, completed by req.Prepare.
func (e *Engine) Gather(ctx context.Context, req BatchRequest) (policy.Snapshot, error) {
	snap := e.snapshot()
	snap.Allowlist = e.d.Config.Allowlist
	attacks := req.Attacks
	if req.Edge != nil {
		var ids []string
		for _, a := range attacks {
			ids = append(ids, attackInstances(a)...)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		resolved := map[string]policy.Target{}
		if len(ids) > 0 {
			ts, err := req.Edge.Resolve(ctx, ids, "")
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
		if err := req.Edge.FillSnapshot(ctx, all, &snap); err != nil {
			return snap, fmt.Errorf("read security groups and network ACLs: %w", err)
		}
	}
	if req.Prepare != nil {
		if err := req.Prepare(ctx, attacks, &snap); err != nil {
			return snap, err
		}
	}
	return snap, nil
}

func entryKey(nacl string, rule int) string { return fmt.Sprintf("%s/%d", nacl, rule) }

// planned records a VPC decision in the snapshot, so the next attack's
// decisions see the NACL entries this batch already planned as the entries
// of ours they will be: all traffic (what awsnacl writes), with the
// source's volume and the attack's severity, so a later placement weighs
// them, merges them into a wider entry or evicts them like any other. A
// merge (Aggregate, Merges) replaces the entries of ours inside it; it
// returns their rule numbers, each with the number of the entry that
// replaced it.
func planned(snap *policy.Snapshot, cfg policy.NACLConfig, atk policy.Attack, d policy.Decision) map[int]int {
	cidr := d.Target
	if d.Aggregate != nil {
		cidr = *d.Aggregate
	}
	snap.Blocks = append(snap.Blocks, policy.Block{Target: cidr, Scope: policy.ScopeVPC, NACLID: d.NACLID, RuleNumber: d.RuleNumber, ExpiresAt: d.ExpiresAt, Origin: atk.Origin})
	n, ok := snap.NACLs[d.SubnetID]
	if !ok {
		return nil
	}
	ours := func(e policy.NACLEntry) bool {
		return !e.Egress && !e.Allow && e.RuleNumber >= cfg.RuleMin && e.RuleNumber <= cfg.RuleMax
	}
	gone := map[int]int{}
	put := func(es []policy.NACLEntry, e policy.NACLEntry) []policy.NACLEntry {
		i := slices.IndexFunc(es, func(x policy.NACLEntry) bool { return !x.Egress && x.RuleNumber == e.RuleNumber })
		if i >= 0 && ours(es[i]) && es[i].CIDR == e.CIDR {
			// Another source of the same entry, or a refresh.
			x := &es[i]
			x.Volume += e.Volume
			x.ExpiresAt = laterExpiry(x.ExpiresAt, e.ExpiresAt)
			x.LastSeen, x.Severity = e.LastSeen, max(x.Severity, e.Severity)
			return es
		}
		// A new entry, or one written in place of what the number held
		// (a merge of the entries inside it, or an evicted entry).
		out := es[:0:0]
		for j, x := range es {
			inside := ours(x) && x.CIDR.Bits() > e.CIDR.Bits() && e.CIDR.Contains(x.CIDR.Addr()) && x.CIDR.Addr().Is4() == e.CIDR.Addr().Is4()
			switch {
			case j == i && inside:
				e.Volume += x.Volume
				e.ExpiresAt = laterExpiry(e.ExpiresAt, x.ExpiresAt)
				continue
			case j == i:
				continue
			case inside:
				e.Volume += x.Volume
				e.ExpiresAt = laterExpiry(e.ExpiresAt, x.ExpiresAt)
				gone[x.RuleNumber] = e.RuleNumber
				continue
			}
			out = append(out, x)
		}
		return append(out, e)
	}
	es := put(slices.Clone(n.Entries), policy.NACLEntry{RuleNumber: d.RuleNumber, CIDR: cidr, ExpiresAt: d.ExpiresAt, Origin: atk.Origin,
		Reason: atk.Reason, Severity: atk.Severity, Volume: d.Volume, LastSeen: snap.Now})
	for _, mg := range d.Merges {
		es = put(es, policy.NACLEntry{RuleNumber: mg.RuleNumber, CIDR: mg.Target, ExpiresAt: mg.ExpiresAt, Origin: atk.Origin, Severity: atk.Severity, LastSeen: snap.Now})
	}
	n.Entries = es
	snap.NACLs[d.SubnetID] = n
	return gone
}

// laterExpiry is the later of two expiries, zero (never) winning.
func laterExpiry(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if b.After(a) {
		return b
	}
	return a
}

// plannedHost records a host decision in the snapshot.
func plannedHost(snap *policy.Snapshot, atk policy.Attack, d policy.Decision) {
	for _, id := range hostInstances(d, atk) {
		snap.Blocks = append(snap.Blocks, policy.Block{Target: d.Target, Scope: policy.ScopeHost, InstanceID: id, ExpiresAt: d.ExpiresAt, Origin: atk.Origin})
	}
}

// hostInstances are where a host decision is enforced: the instances the
// policy named, or else every instance the attack reached.
func hostInstances(d policy.Decision, atk policy.Attack) []string {
	if len(d.Instances) > 0 {
		return d.Instances
	}
	return attackInstances(atk)
}

// hostGroup is the host blocks that go out in one remote command.
type hostGroup struct {
	instances []string
	ttl       time.Duration
	targets   []netip.Prefix
}

// remoteHosts sends the batch's host blocks (fallbacks included) to their
// instances, one command per instance set and TTL.
func (e *Engine) remoteHosts(ctx context.Context, req BatchRequest, res *BatchResult, attackOf map[netip.Prefix]policy.Attack) []error {
	var errs []error
	groups := map[string]*hostGroup{}
	var order []string
	for _, d := range res.Decisions {
		// Host decisions, and the instances a VPC decision names outside
		// its network ACL's subnets.
		if d.Action != policy.ActionBlock || (d.Scope != policy.ScopeHost && (d.Scope != policy.ScopeVPC || len(d.Instances) == 0)) {
			continue
		}
		ids := slices.Clone(hostInstances(d, attackOf[d.Target]))
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if len(ids) == 0 {
			errs = append(errs, fmt.Errorf("host block of %s: no instance to enforce on", d.Target))
			continue
		}
		k := strings.Join(ids, ",") + "|" + d.TTL.String()
		g := groups[k]
		if g == nil {
			g = &hostGroup{instances: ids, ttl: d.TTL}
			groups[k] = g
			order = append(order, k)
		}
		g.targets = append(g.targets, d.Target)
	}
	for _, k := range order {
		g := groups[k]
		if req.Remote == nil {
			errs = append(errs, fmt.Errorf("host block on %s: no SSM document configured (BANSHEE_SSM_DOCUMENT)", strings.Join(g.instances, ",")))
			continue
		}
		c := HostCommand{TTL: g.ttl, Instances: g.instances, Reason: req.HostReason, Since: req.Since, Targets: g.targets}
		if req.HostKey != nil {
			c.Key = req.HostKey(k)
		}
		slices.SortFunc(c.Targets, func(a, b netip.Prefix) int {
			if cmp := a.Addr().Compare(b.Addr()); cmp != 0 {
				return cmp
			}
			return a.Bits() - b.Bits()
		})
		sent, err := req.Remote.Block(ctx, c)
		res.HostBlocks += sent.Blocks
		res.Untargeted = append(res.Untargeted, sent.Untargeted...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
