package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

// fakeHost is a stateful host firewall: kernel entries, a journal and the
// hook of each family, behaving like hostfw.Firewall for the engine.
type fakeHost struct {
	mu       sync.Mutex
	now      func() time.Time
	kernel   map[netip.Prefix]hostfw.Entry
	journal  map[netip.Prefix]hostfw.Entry
	unhooked bool
}

func newFakeHost(now func() time.Time) *fakeHost {
	return &fakeHost{now: now, kernel: map[netip.Prefix]hostfw.Entry{}, journal: map[netip.Prefix]hostfw.Entry{}}
}

func (f *fakeHost) Block(_ context.Context, es []hostfw.Entry) (hostfw.BlockResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res hostfw.BlockResult
	for _, e := range es {
		e.ExpiresAt = time.Time{}
		if e.TTL > 0 {
			e.ExpiresAt = f.now().Add(e.TTL)
		}
		if _, ok := f.kernel[e.Prefix]; ok {
			res.Refreshed = append(res.Refreshed, e.Prefix)
		} else {
			res.Added++
		}
		f.kernel[e.Prefix], f.journal[e.Prefix] = e, e
	}
	return res, nil
}

func (f *fakeHost) Unblock(_ context.Context, ps []netip.Prefix) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var absent []netip.Prefix
	for _, p := range ps {
		if _, ok := f.kernel[p]; !ok {
			absent = append(absent, p)
		}
		delete(f.kernel, p)
		delete(f.journal, p)
	}
	return absent, nil
}

func (f *fakeHost) List(context.Context) ([]hostfw.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hostfw.Entry
	for _, e := range f.kernel {
		out = append(out, e)
	}
	return out, nil
}

func (f *fakeHost) Existing(_ context.Context, ps []netip.Prefix) (map[netip.Prefix]hostfw.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[netip.Prefix]hostfw.Entry{}
	for _, p := range ps {
		if e, ok := f.kernel[p]; ok {
			out[p] = e
		}
	}
	return out, nil
}

func (f *fakeHost) Recorded() ([]hostfw.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hostfw.Entry
	for _, e := range f.journal {
		out = append(out, e)
	}
	return out, nil
}

func (f *fakeHost) Status(context.Context) (hostfw.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs := hostfw.FamilyStatus{Family: "ipv4", Set: "banshee4", SetOK: true, Entries: len(f.kernel), Chain: true, Hooks: []string{"INPUT"}}
	if f.unhooked {
		fs.Hooks = nil
	}
	return hostfw.Status{Families: []hostfw.FamilyStatus{fs}}, nil
}

func (f *fakeHost) Restore(_ context.Context, check func(netip.Prefix) error) (hostfw.RestoreResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unhooked = false
	var res hostfw.RestoreResult
	for p, e := range f.journal {
		if !e.ExpiresAt.IsZero() && !e.ExpiresAt.After(f.now()) {
			res.Expired++
			continue
		}
		if err := check(p); err != nil {
			res.Refused = append(res.Refused, hostfw.Refusal{Prefix: p, Why: err.Error()})
			continue
		}
		f.kernel[p] = e
		res.Restored++
	}
	return res, nil
}

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
type fakeRemote struct{ reqs []remote.Request }

func (f *fakeRemote) Run(_ context.Context, r remote.Request) (remote.Result, error) {
	f.reqs = append(f.reqs, r)
	return remote.Result{Sent: []remote.Sent{{CommandID: fmt.Sprintf("cmd-%d", len(f.reqs)), Instances: r.Instances, Targets: r.Targets}}}, nil
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
	var out []policy.Block
	for _, b := range f.denies {
		out = append(out, b)
	}
	return out, nil
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
