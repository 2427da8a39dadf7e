package engine

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/cmd/internal/engine/enginetest"
	"github.com/banshee-project/banshee/policy"
)

type testWorld struct {
	now  time.Time
	host *enginetest.Host
	edge *fakeEdge
	prot []policy.Protected
}

func newTestWorld() *testWorld {
	w := &testWorld{now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	w.host = enginetest.NewHost(func() time.Time { return w.now })
	w.edge = newFakeEdge()
	return w
}

// engine builds an engine over the world; onEC2 gives it the edge and
// this instance's identity.
func (w *testWorld) engine(onEC2 bool) *Engine {
	d := Deps{
		Config:    policy.Default(),
		Host:      func(context.Context) (Host, error) { return w.host, nil },
		Now:       func() time.Time { return w.now },
		Protected: func() []policy.Protected { return w.prot },
		Self:      func(context.Context) (string, error) { return "", awsnacl.ErrNotOnEC2 },
		Edge:      func(context.Context) (Edge, error) { return nil, Usagef("no AWS region") },
	}
	if onEC2 {
		d.Edge = func(context.Context) (Edge, error) { return w.edge, nil }
		d.Self = func(context.Context) (string, error) { return "i-00000000000000001", nil }
	}
	return New(d)
}

func pfx(s string) netip.Prefix { return policy.Canonical(netip.MustParsePrefix(s)) }

func attack(ttl time.Duration, reason string, srcs ...string) policy.Attack {
	a := policy.Attack{Origin: policy.OriginCLI, Reason: reason, TTL: ttl, Scope: policy.ScopeAuto}
	for _, s := range srcs {
		if !strings.Contains(s, "/") {
			s += "/32"
		}
		a.Sources = append(a.Sources, pfx(s))
	}
	return a
}

func TestReblockNeverShortens(t *testing.T) {
	w := newTestWorld()
	ctx := context.Background()
	if _, err := w.engine(false).Block(ctx, BlockRequest{Attack: attack(24*time.Hour, "keep me", "198.51.100.7"), Enforce: true}); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(time.Hour)
	res, err := w.engine(false).Block(ctx, BlockRequest{Attack: attack(10*time.Minute, "", "198.51.100.7"), Enforce: true})
	if err != nil {
		t.Fatal(err)
	}
	e := w.host.Kernel[pfx("198.51.100.7/32")]
	if want := w.now.Add(23 * time.Hour); !e.ExpiresAt.Equal(want) || e.Reason != "keep me" {
		t.Errorf("after a shorter bare re-block: expires %v reason %q, want %v and the reason kept", e.ExpiresAt, e.Reason, want)
	}
	if d := res.Decisions[0]; d.TTL != 23*time.Hour || !strings.Contains(strings.Join(d.Reasons, ";"), "TTL kept") {
		t.Errorf("decision %+v: want the kept 23h and a reason saying so", d)
	}
	// A longer one extends, and the reasons are kept newest first.
	if _, err := w.engine(false).Block(ctx, BlockRequest{Attack: attack(48*time.Hour, "again", "198.51.100.7"), Enforce: true}); err != nil {
		t.Fatal(err)
	}
	e = w.host.Kernel[pfx("198.51.100.7/32")]
	if want := w.now.Add(48 * time.Hour); !e.ExpiresAt.Equal(want) || e.Reason != "again | keep me" {
		t.Errorf("after a longer re-block: expires %v reason %q", e.ExpiresAt, e.Reason)
	}
	// --replace is exact.
	if _, err := w.engine(false).Block(ctx, BlockRequest{Attack: attack(10*time.Minute, "exact", "198.51.100.7"), Enforce: true, Replace: true}); err != nil {
		t.Fatal(err)
	}
	e = w.host.Kernel[pfx("198.51.100.7/32")]
	if want := w.now.Add(10 * time.Minute); !e.ExpiresAt.Equal(want) || e.Reason != "exact" {
		t.Errorf("after --replace: expires %v reason %q", e.ExpiresAt, e.Reason)
	}
}

func TestPlanIsBlockWithoutEnforcement(t *testing.T) {
	for _, srcs := range [][]string{{"198.51.100.7"}, {"10.99.1.7"}, {"198.51.100.7", "10.99.1.0/24"}} {
		w := newTestWorld()
		w.prot = []policy.Protected{{Prefix: pfx("10.99.1.7/32"), What: "an established SSH peer of this host (port 2222)"}}
		plan, perr := w.engine(false).Block(context.Background(), BlockRequest{Attack: attack(time.Hour, "r", srcs...)})
		if len(w.host.Kernel) != 0 {
			t.Fatalf("plan changed the host: %v", w.host.Kernel)
		}
		block, berr := w.engine(false).Block(context.Background(), BlockRequest{Attack: attack(time.Hour, "r", srcs...), Enforce: true})
		if !reflect.DeepEqual(plan.Decisions, block.Decisions) {
			t.Errorf("%v: plan %+v\nblock %+v", srcs, plan.Decisions, block.Decisions)
		}
		if errors.Is(perr, ErrRefused) != errors.Is(berr, ErrRefused) || (perr == nil) != (berr == nil) {
			t.Errorf("%v: plan error %v, block error %v: want the same outcome", srcs, perr, berr)
		}
	}
}

func TestRefusalNamesThePeerAndChangesNothing(t *testing.T) {
	w := newTestWorld()
	w.prot = []policy.Protected{{Prefix: pfx("10.99.1.7/32"), What: "an established SSH peer of this host (port 2222)"}}
	res, err := w.engine(false).Block(context.Background(), BlockRequest{Attack: attack(time.Hour, "r", "198.51.100.7", "10.99.1.7"), Enforce: true})
	if !errors.Is(err, ErrRefused) || len(w.host.Kernel) != 0 {
		t.Fatalf("err %v, kernel %v: want a refusal blocking none", err, w.host.Kernel)
	}
	if msg := err.Error(); !strings.Contains(msg, "10.99.1.7: 10.99.1.7 is an established SSH peer of this host (port 2222)") || strings.Count(msg, "refused") != 1 {
		t.Errorf("error %q: want the target and its cause named once, one line", msg)
	}
	if got := res.Decisions[1].Reasons[0]; !strings.Contains(got, "an established SSH peer of this host (port 2222)") || strings.Contains(got, "caller") {
		t.Errorf("reason %q: want the peer named as a peer", got)
	}
	if len(res.Refused) != 1 || res.Refused[0] != pfx("10.99.1.7/32") {
		t.Errorf("refused %v", res.Refused)
	}
	// --skip-refused blocks the rest and succeeds.
	res, err = w.engine(false).Block(context.Background(), BlockRequest{Attack: attack(time.Hour, "r", "198.51.100.7", "10.99.1.7"), Enforce: true, SkipRefused: true})
	if err != nil || len(w.host.Kernel) != 1 || res.Decisions[1].Action != policy.ActionRefuse {
		t.Errorf("--skip-refused: err %v kernel %v decisions %+v", err, w.host.Kernel, res.Decisions)
	}
}

func TestPortOnAHostBlockIsRefusedAsUsage(t *testing.T) {
	w := newTestWorld()
	atk := attack(time.Hour, "r", "198.51.100.7")
	atk.Port = policy.Port{Proto: "tcp", From: 2222, To: 2222}
	_, err := w.engine(false).Block(context.Background(), BlockRequest{Attack: atk, Enforce: true, StrictPort: true})
	if !IsUsage(err) || !strings.Contains(err.Error(), "tcp/2222") || len(w.host.Kernel) != 0 {
		t.Errorf("err %v, kernel %v: want a usage error naming the port, nothing blocked", err, w.host.Kernel)
	}
}

func TestUnblockEverywhereAndNamesWhatStillCovers(t *testing.T) {
	w := newTestWorld()
	ctx := context.Background()
	atk := attack(time.Hour, "edge", "198.51.100.7")
	atk.Scope = policy.ScopeVPC
	atk.Targets = []policy.Target{{SubnetID: "subnet-1"}}
	if _, err := w.engine(true).Block(ctx, BlockRequest{Attack: atk, Enforce: true}); err != nil {
		t.Fatal(err)
	}
	if len(w.edge.denies) != 1 {
		t.Fatalf("denies %v", w.edge.denies)
	}
	net := attack(time.Hour, "net", "10.77.6.0/24")
	net.Scope = policy.ScopeHost
	if _, err := w.engine(true).Block(ctx, BlockRequest{Attack: net, Enforce: true}); err != nil {
		t.Fatal(err)
	}
	res, err := w.engine(true).Unblock(ctx, UnblockRequest{Targets: []netip.Prefix{pfx("198.51.100.7/32"), pfx("10.77.6.5/32")}})
	if err != nil {
		t.Fatal(err)
	}
	if u := res.Results[0]; !u.Removed || u.Scope != "vpc" || len(w.edge.denies) != 0 {
		t.Errorf("bare unblock of a VPC block: %+v, denies %v", u, w.edge.denies)
	}
	if u := res.Results[1]; u.Removed || len(u.CoveredBy) != 1 || !strings.Contains(u.Message, "banshee unblock 10.77.6.0/24") {
		t.Errorf("unblock inside a /24: %+v, want the /24 named with how to lift it", u)
	}
	// Off EC2: the host only, with a note that NACLs were not checked.
	res, err = w.engine(false).Unblock(ctx, UnblockRequest{Targets: []netip.Prefix{pfx("10.77.6.0/24")}})
	if err != nil || !res.Results[0].Removed || len(res.Notes) != 1 {
		t.Errorf("off EC2: %+v %v", res, err)
	}
}

func TestListMarksDriftAndReconcileRepairs(t *testing.T) {
	w := newTestWorld()
	ctx := context.Background()
	for _, s := range []string{"198.51.100.7", "198.51.100.8"} {
		if _, err := w.engine(false).Block(ctx, BlockRequest{Attack: attack(time.Hour, "r", s), Enforce: true}); err != nil {
			t.Fatal(err)
		}
	}
	delete(w.host.Kernel, pfx("198.51.100.8/32"))                                                             // lost by the kernel
	w.host.Kernel[pfx("203.0.113.9/32")] = w.host.Journal[pfx("198.51.100.7/32")]                             // added by hand
	w.host.Kernel[pfx("203.0.113.9/32")] = withPrefix(w.host.Kernel[pfx("203.0.113.9/32")], "203.0.113.9/32") // (its own prefix)
	w.host.Unhooked = true
	lr, err := w.engine(false).List(ctx, ListRequest{Where: Everywhere})
	if err != nil {
		t.Fatal(err)
	}
	drift := map[string]string{}
	for _, b := range lr.Blocks {
		drift[Show(b.Target)] = b.Drift
	}
	want := map[string]string{"198.51.100.7": DriftUnhooked, "198.51.100.8": DriftMissing, "203.0.113.9": DriftUnrecorded}
	if !reflect.DeepEqual(drift, want) || !lr.Drifted() || len(lr.Problems) != 1 || len(lr.Notes) != 1 {
		t.Errorf("drift %v problems %v notes %v, want %v", drift, lr.Problems, lr.Notes, want)
	}
	if _, err := w.engine(false).Reconcile(ctx, Everywhere, nil); err != nil {
		t.Fatal(err)
	}
	lr, err = w.engine(false).List(ctx, ListRequest{Where: HostOnly})
	if err != nil || lr.Drifted() || len(lr.Blocks) != 3 {
		t.Errorf("after reconcile: %+v %v, want 3 blocks and no drift", lr, err)
	}
}

func TestExpiredVPCBlockIsDriftUntilReconcile(t *testing.T) {
	w := newTestWorld()
	ctx := context.Background()
	atk := attack(time.Hour, "edge", "198.51.100.0/24")
	atk.Targets = []policy.Target{{SubnetID: "subnet-1"}}
	res, err := w.engine(true).Block(ctx, BlockRequest{Attack: atk, Enforce: true})
	if err != nil || len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "banshee sweep") {
		t.Fatalf("block: %v %+v, want a note on how VPC blocks expire", err, res)
	}
	w.now = w.now.Add(2 * time.Hour)
	lr, _ := w.engine(true).List(ctx, ListRequest{Where: VPCOnly})
	if len(lr.Blocks) != 1 || lr.Blocks[0].Drift != DriftExpired {
		t.Fatalf("list after expiry: %+v", lr.Blocks)
	}
	w.edge.vanished = []policy.Block{{Target: pfx("203.0.113.0/24"), Scope: policy.ScopeVPC, NACLID: w.edge.nacl, RuleNumber: 7, ExpiresAt: w.now.Add(time.Hour)}}
	lr, _ = w.engine(true).List(ctx, ListRequest{Where: VPCOnly})
	if len(lr.Blocks) != 2 || lr.Blocks[1].Drift != DriftMissing {
		t.Errorf("a tagged entry someone deleted: %+v, want it listed missing", lr.Blocks)
	}
	// Reconcile removes the expired deny and re-creates the deleted one
	// from its tags; one that overlaps a protected network it leaves, and
	// says why.
	w.edge.vanished = append(w.edge.vanished, policy.Block{Target: pfx("127.0.0.1/32"), Scope: policy.ScopeVPC, NACLID: w.edge.nacl, RuleNumber: 8, ExpiresAt: w.now.Add(time.Hour)})
	rr, err := w.engine(true).Reconcile(ctx, VPCOnly, nil)
	if err != nil || rr.Sweep == nil || len(rr.Sweep.Removed) != 1 || len(w.edge.denies) != 1 || w.edge.denies[pfx("203.0.113.0/24")].RuleNumber == 0 {
		t.Errorf("reconcile: %+v %v, denies %v; want the expired deny removed and 203.0.113.0/24 denied again", rr, err, w.edge.denies)
	}
	if len(rr.Recreated) != 1 || rr.Recreated[0].Target != pfx("203.0.113.0/24") || len(rr.NotRecreated) != 1 || !strings.Contains(rr.NotRecreated[0].Why, "loopback") {
		t.Errorf("reconcile re-created %+v, not %+v; want 203.0.113.0/24, and 127.0.0.1 refused as loopback", rr.Recreated, rr.NotRecreated)
	}
	var text strings.Builder
	rr.WriteText(&text)
	if !strings.Contains(text.String(), "re-created: 203.0.113.0/24 in "+w.edge.nacl) || !strings.Contains(text.String(), "not re-created: 127.0.0.1 in") {
		t.Errorf("reconcile prints %q", text.String())
	}
	if lr, _ := w.engine(true).List(ctx, ListRequest{Where: VPCOnly}); lr.Drifted() {
		t.Errorf("list after reconcile: %+v, want no drift", lr.Blocks)
	}
}

func TestResolvers(t *testing.T) {
	got := resolvers([]byte("# c\nnameserver 10.99.0.2\nnameserver fe80::1%eth0\nsearch x\nnameserver bad\n"))
	if len(got) != 2 || got[0] != netip.MustParseAddr("10.99.0.2") {
		t.Errorf("resolvers %v", got)
	}
}

func TestRepeatOffenderOnTheHostPath(t *testing.T) {
	w := newTestWorld()
	dir := t.TempDir()
	eng := func() *Engine {
		e := w.engine(false)
		e.d.Offences = FileOffences{Path: dir + "/offences.json"}
		return e
	}
	var ttls []time.Duration
	for range 3 {
		w.host = enginetest.NewHost(func() time.Time { return w.now }) // the last block expired, say
		res, err := eng().Block(context.Background(), BlockRequest{Attack: attack(0, "again", "198.51.100.7"), Enforce: true})
		if err != nil {
			t.Fatal(err)
		}
		ttls = append(ttls, res.Decisions[0].TTL)
		w.now = w.now.Add(time.Minute)
	}
	if ttls[0] != time.Hour || ttls[1] != 2*time.Hour || ttls[2] != 4*time.Hour {
		t.Errorf("TTLs %v, want 1h, 2h, 4h", ttls)
	}
	plan, _ := eng().Block(context.Background(), BlockRequest{Attack: attack(0, "again", "198.51.100.7")})
	if plan.Decisions[0].TTL != 8*time.Hour {
		t.Errorf("plan after three offences: %v, want 8h as block would", plan.Decisions[0].TTL)
	}
	if os, _ := (FileOffences{Path: dir + "/offences.json"}).Load(); len(os) != 3 {
		t.Errorf("plan recorded an offence: %d", len(os))
	}
}
