package engine

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
// seeing what the earlier ones planned; then, with Enforce, enforces: VPC
// blocks in one edge write per attacked port and severity (EnforceVPC),
// the decisions without room falling back to host blocks on their
// instances (ToHost), denies a lower allow rule would bypass refused, and
// host blocks in one remote command per instance set and TTL. The
// decisions always come back, with an error joining every failure.
func (e *Engine) Batch(ctx context.Context, req BatchRequest) (*BatchResult, error) {
	snap, err := e.Gather(ctx, req)
	if err != nil {
		return nil, err
	}
	res := &BatchResult{}
	attackOf := map[netip.Prefix]policy.Attack{}
	type decided struct {
		atk policy.Attack
		ds  []policy.Decision
	}
	var all []decided
	for _, atk := range req.Attacks {
		ds := e.pol.Decide(atk, snap)
		planned(&snap, atk, ds)
		all = append(all, decided{atk, ds})
		for _, d := range ds {
			attackOf[d.Target] = atk
		}
		res.Decisions = append(res.Decisions, ds...)
	}
	res.World = snap
	if !req.Enforce {
		return res, nil
	}

	var errs []error
	// VPC scope, grouped by attacked port (the order check depends on it)
	// and severity (kept for eviction choices).
	type vpcGroup struct {
		port     policy.Port
		severity int
	}
	tagged := map[vpcGroup][]policy.Decision{}
	for _, x := range all {
		for _, d := range x.ds {
			if !isVPCBlock(d) {
				continue
			}
			g := vpcGroup{x.atk.Port, x.atk.Severity}
			if req.TagReason != nil {
				d.Reasons = append([]string{req.TagReason(d, x.atk)}, d.Reasons...)
			}
			tagged[g] = append(tagged[g], d)
		}
	}
	groupOrder := func(a, b vpcGroup) int {
		if c := strings.Compare(fmt.Sprint(a.port), fmt.Sprint(b.port)); c != 0 {
			return c
		}
		return a.severity - b.severity
	}
	for _, g := range slices.SortedFunc(maps.Keys(tagged), groupOrder) {
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
			for _, b := range bs {
				if covers(b.Target, d.Target) {
					d.NACLID, d.RuleNumber, d.ExpiresAt = b.NACLID, b.RuleNumber, b.ExpiresAt
					break
				}
			}
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

// planned records decisions in the snapshot, so the next attack's
// decisions see the NACL slots and blocks this batch already planned.
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
			snap.Blocks = append(snap.Blocks, policy.Block{Target: cidr, Scope: policy.ScopeVPC, NACLID: d.NACLID, RuleNumber: d.RuleNumber, ExpiresAt: d.ExpiresAt, Origin: atk.Origin})
			if n, ok := snap.NACLs[d.SubnetID]; ok && !slices.ContainsFunc(n.Entries, func(e policy.NACLEntry) bool { return !e.Egress && e.RuleNumber == d.RuleNumber }) {
				n.Entries = append(slices.Clone(n.Entries), policy.NACLEntry{RuleNumber: d.RuleNumber, CIDR: cidr, Port: atk.Port, ExpiresAt: d.ExpiresAt, Origin: atk.Origin})
				snap.NACLs[d.SubnetID] = n
			}
		case policy.ScopeHost:
			for _, id := range hostInstances(d, atk) {
				snap.Blocks = append(snap.Blocks, policy.Block{Target: cidr, Scope: policy.ScopeHost, InstanceID: id, ExpiresAt: d.ExpiresAt, Origin: atk.Origin})
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
		if d.Scope != policy.ScopeHost || d.Action != policy.ActionBlock {
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
