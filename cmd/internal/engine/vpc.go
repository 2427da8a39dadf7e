package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/policy"
)

// vpcSide is the subnet edge of one request: the edge and the instance
// this process runs on, when known.
type vpcSide struct {
	e    *Engine
	m    Edge
	self string
}

// prepareVPC resolves the attack's targets through EC2 (instance → subnet
// → VPC, addresses) and fills snap with security groups, VPC CIDRs, NACLs
// and VPC blocks. Without instances and subnet it targets the instance it
// runs on when that is on EC2; off EC2 with scope auto it returns nil (host
// scope only), with scope vpc it is a usage error.
func (e *Engine) prepareVPC(ctx context.Context, atk *policy.Attack, snap *policy.Snapshot) (*vpcSide, error) {
	if atk.Scope == policy.ScopeHost && len(atk.Targets) == 0 {
		return nil, nil
	}
	var instances []string
	subnet, self := "", ""
	for _, t := range atk.Targets {
		if t.InstanceID != "" {
			instances = append(instances, t.InstanceID)
		}
		if t.SubnetID != "" {
			subnet = t.SubnetID
		}
	}
	if len(instances) == 0 && subnet == "" {
		id, err := e.selfID(ctx)
		if err != nil {
			if atk.Scope == policy.ScopeVPC {
				return nil, Usagef("--scope vpc needs --instance or --subnet when not running on EC2 (%v)", err)
			}
			return nil, nil
		}
		instances = []string{id}
		self = id
	}
	m, err := e.edgeMgr(ctx)
	if err != nil {
		return nil, err
	}
	targets, err := m.Resolve(ctx, instances, subnet)
	if err != nil {
		return nil, err
	}
	atk.Targets = targets
	if err := m.FillSnapshot(ctx, targets, snap); err != nil {
		return nil, err
	}
	return &vpcSide{e: e, m: m, self: self}, nil
}

// block enforces the VPC decisions through the edge (EnforceVPC).
func (v *vpcSide) block(ctx context.Context, ds []policy.Decision, atk policy.Attack) (bs []policy.Block, noRoom map[netip.Prefix]error, err error) {
	if v == nil {
		for _, d := range ds {
			if d.Scope == policy.ScopeVPC && d.Action == policy.ActionBlock {
				return nil, nil, fmt.Errorf("VPC block of %s: no network ACL backend for this invocation", d.Target)
			}
		}
		return nil, nil, nil
	}
	return EnforceVPC(ctx, v.m, ds, atk)
}

// VPCWriter is the part of the network ACL manager that writes denies.
type VPCWriter interface {
	Block(ctx context.Context, decisions []policy.Decision, req awsnacl.Request) ([]policy.Block, error)
}

// EnforceVPC writes decisions already made (scope vpc, action block)
// through m and fills in the rule numbers used. A deny that a
// lower-numbered allow rule would bypass (awsnacl.ErrShadowed, found at
// write time) is a refusal (ErrRefused) when nothing else failed and
// nothing was applied; when other decisions were applied (or failed
// otherwise), it is a failure naming the refused targets, since "nothing
// changed" would be false. Decisions the NACL had no room for at write
// time come back in noRoom, by target, for the caller's fallback. Block
// and the Lambda function (which decides many attacks against one
// snapshot) enforce through it.
func EnforceVPC(ctx context.Context, m VPCWriter, ds []policy.Decision, atk policy.Attack) (bs []policy.Block, noRoom map[netip.Prefix]error, err error) {
	if !slices.ContainsFunc(ds, isVPCBlock) {
		return nil, nil, nil
	}
	bs, err = m.Block(ctx, ds, awsnacl.Request{Origin: atk.Origin, Reason: atk.Reason, Severity: atk.Severity, Port: atk.Port})
	noRoom, err = splitNoRoom(err)
	for i := range ds {
		d := &ds[i]
		if !isVPCBlock(*d) {
			continue
		}
		if _, failed := noRoom[d.Target]; failed {
			continue
		}
		for _, b := range bs {
			if covers(b.Target, d.Target) {
				d.NACLID, d.RuleNumber, d.ExpiresAt = b.NACLID, b.RuleNumber, b.ExpiresAt
				break
			}
		}
	}
	shadowed, rest := splitShadowed(err)
	if len(shadowed) == 0 {
		return bs, noRoom, err
	}
	if len(bs) == 0 && rest == nil {
		return bs, noRoom, fmt.Errorf("%w: %w", err, ErrRefused)
	}
	names := make([]string, len(shadowed))
	for i, te := range shadowed {
		names[i] = Show(te.Target)
	}
	return bs, noRoom, fmt.Errorf("%d VPC block(s) applied, but refused for %s: %w", len(bs), strings.Join(names, ", "), err)
}

func isVPCBlock(d policy.Decision) bool {
	return d.Scope == policy.ScopeVPC && d.Action == policy.ActionBlock
}

// covers reports whether block prefix b contains target t.
func covers(b, t netip.Prefix) bool {
	return b.Bits() <= t.Bits() && b.Contains(t.Addr())
}

// splitTargetErrors takes the per-target failures of one kind (an awsnacl
// sentinel such as ErrShadowed) out of a Block error and returns them with
// what is left of the error (nil when nothing is).
func splitTargetErrors(err, kind error) ([]*awsnacl.TargetError, error) {
	var hits []*awsnacl.TargetError
	var rest []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var te *awsnacl.TargetError
		if errors.As(e, &te) && errors.Is(e, kind) {
			hits = append(hits, te)
			return
		}
		rest = append(rest, e)
	}
	if err != nil {
		walk(err)
	}
	return hits, errors.Join(rest...)
}

func splitShadowed(err error) ([]*awsnacl.TargetError, error) {
	return splitTargetErrors(err, awsnacl.ErrShadowed)
}

func splitNoRoom(err error) (map[netip.Prefix]error, error) {
	tes, rest := splitTargetErrors(err, awsnacl.ErrNoRoom)
	if len(tes) == 0 {
		return nil, rest
	}
	noRoom := make(map[netip.Prefix]error, len(tes))
	for _, te := range tes {
		noRoom[te.Target] = te.Err
	}
	return noRoom, rest
}

// NotBlocked is a target a request could not block, and why.
type NotBlocked struct {
	Target netip.Prefix `json:"target"`
	Reason string       `json:"reason"`
}

// local says whether host blocks for the instances ids belong on this
// machine (every one is the instance the process runs on); when not, why.
func (v *vpcSide) local(ctx context.Context, ids []string) (bool, string) {
	if len(ids) == 0 {
		return false, "no instance named (only a subnet), so no host to drop it on"
	}
	self := v.self
	if self == "" {
		id, err := v.e.selfID(ctx)
		if err != nil {
			return false, fmt.Sprintf("the target instance %s is not this machine (%v)", strings.Join(ids, ", "), err)
		}
		self, v.self = id, id
	}
	for _, id := range ids {
		if id != self {
			return false, fmt.Sprintf("instance %s is not this machine (%s); host blocks there need SSM", id, self)
		}
	}
	return true, ""
}

func attackInstances(atk policy.Attack) []string {
	var ids []string
	for _, t := range atk.Targets {
		if t.InstanceID != "" && !slices.Contains(ids, t.InstanceID) {
			ids = append(ids, t.InstanceID)
		}
	}
	return ids
}

// onThisHost clears the instance list of host decisions that name only the
// instance the process runs on: those blocks belong in this machine's
// firewall, not behind SSM.
func (v *vpcSide) onThisHost(ctx context.Context, ds []policy.Decision) {
	if v == nil {
		return
	}
	for i := range ds {
		d := &ds[i]
		if d.Scope != policy.ScopeHost || d.Action != policy.ActionBlock || len(d.Instances) == 0 {
			continue
		}
		if local, _ := v.local(ctx, d.Instances); local {
			d.Instances = nil
		}
	}
}

// ToHost turns a VPC decision into the host decision it falls back to: the
// first reason names the outcome, and the NACL fields go (the merges of
// entries the placement meant it to carry too: nothing of the NACL is
// written for a host decision).
func ToHost(d *policy.Decision, why string) {
	d.Scope, d.SubnetID, d.NACLID, d.RuleNumber, d.Aggregate, d.Evicts, d.Merges, d.Instances = policy.ScopeHost, "", "", 0, nil, nil, nil, nil
	d.Reasons = append([]string{"host: fallback, " + why}, d.Reasons...)
}

// fallBack deals with the decisions the NACL had no room for (or whose
// write failed), never dropping one silently: when the targets are this
// machine they become host blocks here; otherwise they come back as not
// blocked, with the reason.
func (v *vpcSide) fallBack(ctx context.Context, ds []policy.Decision, atk policy.Attack, failed map[netip.Prefix]error) []NotBlocked {
	if len(failed) == 0 {
		return nil
	}
	local, why := v.local(ctx, attackInstances(atk))
	var out []NotBlocked
	for i := range ds {
		d := &ds[i]
		cause, ok := failed[d.Target]
		if !ok || !isVPCBlock(*d) {
			continue
		}
		nacl := d.NACLID
		if local {
			ToHost(d, fmt.Sprintf("no room in %s at write time (%v)", nacl, cause))
			continue
		}
		d.NACLID, d.RuleNumber, d.Aggregate, d.Evicts, d.Merges = "", 0, nil, nil, nil
		reason := fmt.Sprintf("no room in %s at write time (%v) and %s", nacl, cause, why)
		d.Scope, d.Action = policy.ScopeNone, policy.ActionSkip
		d.Reasons = append([]string{"not blocked: " + reason}, d.Reasons...)
		out = append(out, NotBlocked{Target: d.Target, Reason: reason})
	}
	return out
}

// Show writes a single-address prefix as its address, anything else as a
// CIDR.
func Show(p netip.Prefix) string {
	if p.IsValid() && p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
