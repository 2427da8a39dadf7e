package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
)

// fakeEdge is a network ACL manager with one ACL: its denies by prefix.
type fakeEdge struct {
	mu     sync.Mutex
	nacl   string
	denies map[netip.Prefix]policy.Block
	next   int
	// vanished are tagged blocks whose entry someone else deleted.
	vanished []policy.Block
	// room, when above zero, is how many denies fit: the rest fail with
	// awsnacl.ErrNoRoom at write time; shadow fails its target with
	// awsnacl.ErrShadowed.
	room   int
	shadow netip.Prefix
}

func newFakeEdge() *fakeEdge {
	return &fakeEdge{nacl: "acl-00000000000000001", denies: map[netip.Prefix]policy.Block{}, next: 1}
}

func (f *fakeEdge) Resolve(_ context.Context, ids []string, subnet string) ([]policy.Target, error) {
	var out []policy.Target
	for _, id := range ids {
		out = append(out, policy.Target{InstanceID: id, SubnetID: "subnet-1", VPCID: "vpc-1"})
	}
	if len(ids) == 0 {
		out = append(out, policy.Target{SubnetID: subnet, VPCID: "vpc-1"})
	}
	return out, nil
}

func (f *fakeEdge) FillSnapshot(_ context.Context, _ []policy.Target, snap *policy.Snapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := policy.NACL{ID: f.nacl, SubnetIDs: []string{"subnet-1"}, Entries: []policy.NACLEntry{{RuleNumber: 100, Allow: true, CIDR: netip.MustParsePrefix("0.0.0.0/0")}, {RuleNumber: 32767, CIDR: netip.MustParsePrefix("0.0.0.0/0")}}}
	for _, b := range f.denies {
		n.Entries = append(n.Entries, policy.NACLEntry{RuleNumber: b.RuleNumber, CIDR: b.Target, ExpiresAt: b.ExpiresAt, Origin: b.Origin})
		snap.Blocks = append(snap.Blocks, b)
	}
	if snap.NACLs == nil {
		snap.NACLs = map[string]policy.NACL{}
	}
	snap.NACLs["subnet-1"] = n
	return nil
}

func (f *fakeEdge) Block(_ context.Context, ds []policy.Decision, req awsnacl.Request) ([]policy.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []policy.Block
	var errs []error
	for _, d := range ds {
		if d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock {
			continue
		}
		if d.Target == f.shadow {
			errs = append(errs, &awsnacl.TargetError{Target: d.Target, Err: fmt.Errorf("rule 90 allows it first: %w", awsnacl.ErrShadowed)})
			continue
		}
		if f.room > 0 && len(f.denies) >= f.room {
			errs = append(errs, &awsnacl.TargetError{Target: d.Target, Err: awsnacl.ErrNoRoom})
			continue
		}
		b := policy.Block{Target: d.Target, Scope: policy.ScopeVPC, NACLID: f.nacl, RuleNumber: f.next, ExpiresAt: d.ExpiresAt, Reason: req.Reason, Origin: req.Origin}
		f.next++
		f.denies[d.Target] = b
		out = append(out, b)
	}
	return out, errors.Join(errs...)
}

// fakeRemote records the host commands sent through SSM.
type fakeRemote struct{ reqs []HostCommand }

func (f *fakeRemote) Block(_ context.Context, c HostCommand) (HostSent, error) {
	f.reqs = append(f.reqs, c)
	return HostSent{Blocks: len(c.Targets) * len(c.Instances)}, nil
}

func (f *fakeEdge) Unblock(_ context.Context, _ string, ps []netip.Prefix) ([]policy.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []policy.Block
	for _, p := range ps {
		if b, ok := f.denies[p]; ok {
			out = append(out, b)
			delete(f.denies, p)
		}
	}
	return out, nil
}

func (f *fakeEdge) List(context.Context, ...string) ([]policy.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.denies)), nil
}

func (f *fakeEdge) Sweep(_ context.Context, now time.Time, _ ...string) (awsnacl.SweepResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := awsnacl.SweepResult{Removed: []policy.Block{}}
	for p, b := range f.denies {
		if !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now) {
			res.Removed = append(res.Removed, b)
			delete(f.denies, p)
		}
	}
	return res, nil
}

func withPrefix(e hostfw.Entry, p string) hostfw.Entry {
	e.Prefix = netip.MustParsePrefix(p)
	return e
}

func (f *fakeEdge) Vanished(context.Context, time.Time, ...string) ([]policy.Block, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.vanished), nil
}

// Restore denies the vanished blocks again (those check lets through, at a
// free number when theirs is taken) and forgets them.
func (f *fakeEdge) Restore(_ context.Context, now time.Time, check func(policy.Block) error, _ ...string) (awsnacl.RestoreResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res awsnacl.RestoreResult
	for _, b := range f.vanished {
		if !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now) {
			continue
		}
		if err := check(b); err != nil {
			res.NotRestored = append(res.NotRestored, awsnacl.NotRestored{Block: b, Why: err.Error()})
			continue
		}
		if slices.ContainsFunc(slices.Collect(maps.Values(f.denies)), func(d policy.Block) bool { return d.RuleNumber == b.RuleNumber }) {
			b.RuleNumber = f.next
			f.next++
		}
		f.denies[b.Target] = b
		res.Restored = append(res.Restored, b)
	}
	f.vanished = nil
	return res, nil
}
