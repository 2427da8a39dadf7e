package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/policy"
)

// vpcSide is the VPC network ACL half of a command: the awsnacl Manager of
// this invocation, built on first use from the SDK's default chain
// (AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_EC2 included).
type vpcSide struct {
	m    *awsnacl.Manager
	self string // this instance's id, when IMDS named it
}

// localIdentity is how a command learns which instance it runs on, and
// onEC2 whether to ask at all (no network call); tests replace them.
var (
	localIdentity = awsnacl.LocalIdentity
	onEC2         = awsnacl.OnEC2
)

// whoAmI returns this instance's identity, failing at once off EC2.
func whoAmI(ctx context.Context) (awsnacl.Identity, error) {
	if !onEC2() {
		return awsnacl.Identity{}, awsnacl.ErrNotOnEC2
	}
	return localIdentity(ctx)
}

// naclManager builds the Manager. Without a configured region it asks the
// instance metadata service for this instance's region.
func (a *app) naclManager(ctx context.Context) (*awsnacl.Manager, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		id, err := whoAmI(ctx)
		if err != nil {
			return nil, usageErrorf("no AWS region: set AWS_REGION (and credentials) or run on EC2 (%v)", err)
		}
		awsCfg.Region = id.Region
	}
	return awsnacl.NewFromConfig(awsCfg, cfg.NACL), nil
}

// prepareVPC resolves the attack's targets through EC2 (instance → subnet
// → VPC, addresses) and fills snap with security groups, VPC CIDRs, NACLs
// and VPC blocks. Without --instance and --subnet it targets the instance
// it runs on when that is on EC2; off EC2 with scope auto it returns nil
// (host scope only), with scope vpc it is a usage error.
func (a *app) prepareVPC(ctx context.Context, atk *policy.Attack, snap *policy.Snapshot) (*vpcSide, error) {
	return prepareVPCWith(ctx, a.naclManager, atk, snap)
}

// prepareVPCWith is prepareVPC with the Manager built by newManager.
func prepareVPCWith(ctx context.Context, newManager func(context.Context) (*awsnacl.Manager, error), atk *policy.Attack, snap *policy.Snapshot) (*vpcSide, error) {
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
		id, err := whoAmI(ctx)
		if err != nil {
			if atk.Scope == policy.ScopeVPC {
				return nil, usageErrorf("--scope vpc needs --instance or --subnet when not running on EC2 (%v)", err)
			}
			return nil, nil
		}
		instances = []string{id.InstanceID}
		self = id.InstanceID
	}
	m, err := newManager(ctx)
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
	return &vpcSide{m: m, self: self}, nil
}

// block enforces the VPC decisions and writes the rule numbers actually
// used back into them. A deny that a lower-numbered allow rule would
// bypass (awsnacl.ErrShadowed, found at write time) is a refusal (exit 3)
// when nothing else failed and nothing was applied; when other decisions
// of the call were applied (or failed otherwise), it is a failure (exit
// 1) naming the refused targets, since "nothing changed" would be false.
// Decisions the NACL had no room for
// (awsnacl.ErrNoRoom: the range filled up between the decision and the
// write) are not an error here: they come back in noRoom, by target, with
// the reason, for fallBack. v may be nil (no VPC side).
func (v *vpcSide) block(ctx context.Context, ds []policy.Decision, atk policy.Attack) (bs []policy.Block, noRoom map[netip.Prefix]error, err error) {
	if v == nil {
		for _, d := range ds {
			if d.Scope == policy.ScopeVPC && d.Action == policy.ActionBlock {
				return nil, nil, fmt.Errorf("VPC block of %s: no network ACL backend for this invocation", d.Target)
			}
		}
		return nil, nil, nil
	}
	bs, err = v.m.Block(ctx, ds, awsnacl.Request{Origin: atk.Origin, Reason: atk.Reason, Severity: atk.Severity, Port: atk.Port})
	noRoom, err = splitNoRoom(err)
	for i := range ds {
		d := &ds[i]
		if d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock {
			continue
		}
		if _, failed := noRoom[d.Target]; failed {
			continue
		}
		for _, b := range bs {
			if b.Target.Bits() <= d.Target.Bits() && b.Target.Contains(d.Target.Addr()) {
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
		return bs, noRoom, fmt.Errorf("%w: %w", err, errRefused)
	}
	names := make([]string, len(shadowed))
	for i, te := range shadowed {
		names[i] = showPrefix(te.Target)
	}
	return bs, noRoom, fmt.Errorf("%d VPC block(s) applied, but refused for %s: %w", len(bs), strings.Join(names, ", "), err)
}

// splitTargetErrors takes the per-target failures of one kind (an
// awsnacl sentinel such as ErrShadowed) out of a Block error and returns
// them with what is left of the error (nil when nothing is).
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

// splitShadowed returns the per-target ErrShadowed failures inside a
// Block error and the rest of it.
func splitShadowed(err error) ([]*awsnacl.TargetError, error) {
	return splitTargetErrors(err, awsnacl.ErrShadowed)
}

// splitNoRoom takes the per-target ErrNoRoom failures out of a Block
// error and returns them by target, with what is left of the error.
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

// notBlocked is a target a command could not block, and why.
type notBlocked struct {
	Target netip.Prefix `json:"target"`
	Reason string       `json:"reason"`
}

// local says whether host blocks for atk's targets belong on this
// machine: every instance target is the instance banshee runs on (as IMDS
// names it). When not, it says why.
func (v *vpcSide) local(ctx context.Context, atk policy.Attack) (bool, string) {
	var ids []string
	for _, t := range atk.Targets {
		if t.InstanceID != "" && !slices.Contains(ids, t.InstanceID) {
			ids = append(ids, t.InstanceID)
		}
	}
	if len(ids) == 0 {
		return false, "no instance named (only a subnet), so no host to drop it on"
	}
	self := v.self
	if self == "" {
		id, err := whoAmI(ctx)
		if err != nil {
			return false, fmt.Sprintf("the target instance %s is not this machine (%v)", strings.Join(ids, ", "), err)
		}
		self, v.self = id.InstanceID, id.InstanceID
	}
	for _, id := range ids {
		if id != self {
			return false, fmt.Sprintf("instance %s is not this machine (%s); host blocks there need SSM", id, self)
		}
	}
	return true, ""
}

// onThisHost clears the instance list of host decisions that name only
// the instance banshee runs on: those blocks belong in this machine's
// firewall, not behind SSM. Others are left for blockHost to refuse.
func (v *vpcSide) onThisHost(ctx context.Context, ds []policy.Decision) {
	if v == nil {
		return
	}
	for i := range ds {
		d := &ds[i]
		if d.Scope != policy.ScopeHost || d.Action != policy.ActionBlock || len(d.Instances) == 0 {
			continue
		}
		if local, _ := v.local(ctx, policy.Attack{Targets: instanceTargets(d.Instances)}); local {
			d.Instances = nil
		}
	}
}

func instanceTargets(ids []string) []policy.Target {
	out := make([]policy.Target, len(ids))
	for i, id := range ids {
		out[i] = policy.Target{InstanceID: id}
	}
	return out
}

// fallBack deals with the decisions the NACL had no room for, never
// dropping one silently: when the targets are this machine they become
// host blocks here (the policy's own fallback for a full NACL); otherwise
// they come back as not blocked, with the reason.
func (v *vpcSide) fallBack(ctx context.Context, ds []policy.Decision, atk policy.Attack, noRoom map[netip.Prefix]error) []notBlocked {
	if len(noRoom) == 0 {
		return nil
	}
	local, why := v.local(ctx, atk)
	var out []notBlocked
	for i := range ds {
		d := &ds[i]
		cause, ok := noRoom[d.Target]
		if !ok || d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock {
			continue
		}
		nacl := d.NACLID
		d.NACLID, d.RuleNumber, d.Aggregate, d.Evicts = "", 0, nil, nil
		if local {
			d.Scope, d.SubnetID, d.Instances = policy.ScopeHost, "", nil
			d.Reasons = append([]string{fmt.Sprintf("host: fallback, no room in %s at write time (%v)", nacl, cause)}, d.Reasons...)
			continue
		}
		reason := fmt.Sprintf("no room in %s at write time (%v) and %s", nacl, cause, why)
		d.Reasons = append([]string{"not blocked: " + reason}, d.Reasons...)
		out = append(out, notBlocked{Target: d.Target, Reason: reason})
	}
	return out
}

// vpcTargets names the NACLs of unblock, list and sweep: --subnet and
// --nacl ids, or else this instance's subnet on EC2, or else (all true)
// every NACL of the region.
func (a *app) vpcTargets(ctx context.Context, m *awsnacl.Manager, subnets, nacls []string, all bool) ([]string, error) {
	var ids []string
	for _, s := range subnets {
		if s = strings.TrimSpace(s); !strings.HasPrefix(s, "subnet-") {
			return nil, fmt.Errorf("--subnet: %w", &policy.InputError{Value: s, Msg: "not a subnet id (subnet-...)"})
		}
		ids = append(ids, strings.TrimSpace(s))
	}
	for _, n := range nacls {
		if n = strings.TrimSpace(n); !strings.HasPrefix(n, "acl-") {
			return nil, fmt.Errorf("--nacl: %w", &policy.InputError{Value: n, Msg: "not a network ACL id (acl-...)"})
		}
		ids = append(ids, strings.TrimSpace(n))
	}
	if len(ids) > 0 || all {
		return ids, nil
	}
	id, err := whoAmI(ctx)
	if err != nil {
		return nil, usageErrorf("name the network ACL with --subnet or --nacl when not running on EC2 (%v)", err)
	}
	ts, err := m.Resolve(ctx, []string{id.InstanceID}, "")
	if err != nil {
		return nil, err
	}
	return []string{ts[0].SubnetID}, nil
}

// unblockVPC removes the VPC blocks of targets from each named NACL and
// reports, per target, whether it was removed.
func (a *app) unblockVPC(ctx context.Context, subnets, nacls []string, targets []netip.Prefix) (map[netip.Prefix]string, error) {
	m, err := a.naclManager(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := a.vpcTargets(ctx, m, subnets, nacls, false)
	if err != nil {
		return nil, err
	}
	removed := map[netip.Prefix]string{}
	var errs []error
	for _, id := range ids {
		bs, err := m.Unblock(ctx, id, targets)
		for _, b := range bs {
			removed[b.Target] = fmt.Sprintf("%s rule %d", b.NACLID, b.RuleNumber)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// listVPC returns the VPC blocks of the named NACLs, or of the region.
func (a *app) listVPC(ctx context.Context, subnets, nacls []string) ([]policy.Block, error) {
	m, err := a.naclManager(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := a.vpcTargets(ctx, m, subnets, nacls, true)
	if err != nil {
		return nil, err
	}
	return m.List(ctx, ids...)
}

// runUnblockVPC is unblock --scope vpc.
func (a *app) runUnblockVPC(ctx context.Context, subnets, nacls []string, targets []netip.Prefix) error {
	removed, err := a.unblockVPC(ctx, subnets, nacls, targets)
	if err != nil && len(removed) == 0 {
		return err
	}
	var res []unblockResult
	for _, p := range targets {
		r := unblockResult{Target: p, Scope: string(policy.ScopeVPC), Message: "was not blocked in the network ACL: nothing to do"}
		if where, ok := removed[p]; ok {
			r.Removed, r.Message = true, "unblocked ("+where+")"
		}
		res = append(res, r)
	}
	if eerr := a.emit(struct {
		Results []unblockResult `json:"results"`
	}{res}, func(w io.Writer) {
		for _, r := range res {
			fmt.Fprintf(w, "%s %s: %s\n", showPrefix(r.Target), r.Scope, r.Message)
		}
	}); eerr != nil {
		return eerr
	}
	return err
}

// listScopes returns the blocks of list: host blocks, VPC blocks or both.
// With all, the VPC side is left out when no AWS region is configured (not
// on EC2, no AWS_REGION), and the host side when VPC ids were named.
func (a *app) listScopes(ctx context.Context, scope string, subnets, nacls []string) ([]policy.Block, error) {
	var out []policy.Block
	switch scope {
	case "all", "host", "vpc":
	default:
		return nil, usageErrorf("--scope %q: want all, host or vpc", scope)
	}
	if scope == "host" || scope == "all" && len(subnets)+len(nacls) == 0 {
		fw, err := a.firewall(ctx)
		if err != nil {
			return nil, err
		}
		bs, err := hostBlocks(ctx, fw)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	if scope == "vpc" || scope == "all" {
		bs, err := a.listVPC(ctx, subnets, nacls)
		var ue *usageError
		if err != nil && !(scope == "all" && len(subnets)+len(nacls) == 0 && errors.As(err, &ue)) {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// ec2Edge is watch's way to the subnet edge: the instance watch runs on,
// as IMDS names it, and the SDK configuration, loaded once. Each use
// builds its own awsnacl Manager, so nothing read is cached beyond one
// enforcement.
type ec2Edge struct {
	self   string
	awsCfg aws.Config
}

// newEC2Edge returns the edge when AWS can be used from here: on EC2
// (IMDS names this instance) with a region from the SDK's chain or IMDS.
// Credentials are only tried by the first call.
func newEC2Edge(ctx context.Context) (*ec2Edge, error) {
	id, err := whoAmI(ctx)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = id.Region
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region (set AWS_REGION)")
	}
	return &ec2Edge{self: id.InstanceID, awsCfg: awsCfg}, nil
}

func (e *ec2Edge) manager(cfg policy.NACLConfig) func(context.Context) (*awsnacl.Manager, error) {
	return e.managerAt(cfg, time.Time{})
}

// managerAt is manager with the Manager's clock running from at (the
// decision's snapshot time) instead of the system clock, so that the
// expiries it compares (is an entry about to expire?) are on the clock
// the policy decided with. Zero at: the system clock.
func (e *ec2Edge) managerAt(cfg policy.NACLConfig, at time.Time) func(context.Context) (*awsnacl.Manager, error) {
	return func(context.Context) (*awsnacl.Manager, error) {
		if at.IsZero() {
			return awsnacl.NewFromConfig(e.awsCfg, cfg), nil
		}
		skew := time.Until(at)
		return awsnacl.NewFromConfig(e.awsCfg, cfg, awsnacl.WithClock(func() time.Time { return time.Now().Add(skew) })), nil
	}
}

// world reads what watch's own decisions need to see VPC scope coming:
// this instance as the attacks' target (subnet, VPC, addresses), its
// subnet's network ACL and the VPC's CIDRs (read-only calls).
func (e *ec2Edge) world(ctx context.Context, cfg policy.NACLConfig) ([]policy.Target, policy.Snapshot, error) {
	atk := policy.Attack{Targets: []policy.Target{{InstanceID: e.self}}}
	var snap policy.Snapshot
	if _, err := prepareVPCWith(ctx, e.manager(cfg), &atk, &snap); err != nil {
		return nil, policy.Snapshot{}, err
	}
	return atk.Targets, snap, nil
}

// enforce is block's path (prepareVPC, Decide, vpcSide.block) for an
// attack on this instance: it reads the world fresh, decides with eng
// against it and enforces the VPC decisions. It returns every decision:
// VPC blocks it enforced, and host blocks for the caller, including the
// fallback of any VPC block that found no room or failed (with the
// failure in err). With no decisions, nothing was decided (AWS failed
// before) and err says why.
func (e *ec2Edge) enforce(ctx context.Context, eng *policy.Engine, atk policy.Attack, snap policy.Snapshot) ([]policy.Decision, error) {
	atk.Targets = []policy.Target{{InstanceID: e.self}}
	side, err := prepareVPCWith(ctx, e.managerAt(eng.Config().NACL, snap.Now), &atk, &snap)
	if err != nil {
		return nil, err
	}
	side.self = e.self
	ds := eng.Decide(atk, snap)
	bs, noRoom, err := side.block(ctx, ds, atk)
	side.fallBack(ctx, ds, atk, noRoom)
	if err != nil {
		for i := range ds {
			d := &ds[i]
			if d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock || slices.ContainsFunc(bs, func(b policy.Block) bool {
				return b.Target.Bits() <= d.Target.Bits() && b.Target.Contains(d.Target.Addr())
			}) {
				continue
			}
			d.Scope, d.SubnetID, d.NACLID, d.RuleNumber, d.Aggregate, d.Evicts, d.Instances = policy.ScopeHost, "", "", 0, nil, nil, nil
			d.Reasons = append([]string{"host: fallback, the VPC block failed"}, d.Reasons...)
		}
	}
	return ds, err
}
