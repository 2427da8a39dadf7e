package engine

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// TestBatchDecidesEnforcesAndFallsBack is the Lambda's path through the
// engine: two attacks against one world read; the NACL has room for two
// denies, so the third VPC decision falls back to host blocks on the
// attacked instances (first reason naming the outcome, no NACL fields
// left), a deny a lower allow would bypass becomes a refusal, and host
// blocks go out as one SSM command per instance set and TTL. A plan is
// the same call without enforcement: the same decisions, nothing written.
func TestBatchDecidesEnforcesAndFallsBack(t *testing.T) {
	w := newTestWorld()
	w.edge.room = 2
	w.edge.shadow = pfx("198.51.100.4/32")
	rem := &fakeRemote{}
	e := w.engine(true)
	targets := []policy.Target{{InstanceID: "i-00000000000000002"}, {InstanceID: "i-00000000000000001"}}
	mk := func() []policy.Attack {
		vpc := attack(0, "alarm ssh", "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4")
		vpc.Origin, vpc.Targets, vpc.Scope = policy.OriginLambda, slices.Clone(targets), policy.ScopeVPC
		host := attack(0, "alarm ssh", "203.0.113.9")
		host.Origin, host.Targets, host.Scope = policy.OriginLambda, slices.Clone(targets), policy.ScopeHost
		return []policy.Attack{vpc, host}
	}
	req := func(enforce bool) BatchRequest {
		return BatchRequest{Attacks: mk(), Enforce: enforce, Edge: w.edge, Remote: rem, Reason: "alarm ssh", HostReason: "alarm ssh",
			HostKey: func(g string) string { return "key-" + g }}
	}

	plan, err := e.Batch(t.Context(), req(false))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.edge.denies) != 0 || len(rem.reqs) != 0 {
		t.Fatalf("a plan wrote %d denies and %d host commands", len(w.edge.denies), len(rem.reqs))
	}
	var planned []string
	for _, d := range plan.Decisions {
		planned = append(planned, Show(d.Target)+" "+string(d.Scope)+" "+string(d.Action))
	}
	want := []string{"198.51.100.1 vpc block", "198.51.100.2 vpc block", "198.51.100.3 vpc block", "198.51.100.4 vpc block", "203.0.113.9 host block"}
	if !slices.Equal(planned, want) {
		t.Fatalf("plan: %q, want %q", planned, want)
	}

	res, err := e.Batch(t.Context(), req(true))
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	byTarget := map[string]policy.Decision{}
	for _, d := range res.Decisions {
		byTarget[Show(d.Target)] = d
	}
	for _, a := range []string{"198.51.100.1", "198.51.100.2"} {
		if d := byTarget[a]; d.Scope != policy.ScopeVPC || d.NACLID == "" || d.RuleNumber == 0 {
			t.Errorf("%s: %+v, want a VPC deny with its rule number", a, d)
		}
	}
	fb := byTarget["198.51.100.3"]
	if fb.Scope != policy.ScopeHost || fb.Action != policy.ActionBlock || fb.NACLID != "" || fb.RuleNumber != 0 || fb.SubnetID != "" || fb.Aggregate != nil || fb.Evicts != nil ||
		!strings.HasPrefix(fb.Reasons[0], "host: fallback, no room in ") {
		t.Errorf("no room: %+v, want a host fallback whose first reason says so and no NACL fields", fb)
	}
	if !slices.Equal(res.Fallbacks, []netip.Prefix{pfx("198.51.100.3/32")}) {
		t.Errorf("fallbacks %v", res.Fallbacks)
	}
	sh := byTarget["198.51.100.4"]
	if sh.Action != policy.ActionRefuse || sh.Scope != policy.ScopeNone || sh.NACLID != "" || !strings.HasPrefix(sh.Reasons[0], "refused: ") || len(res.Shadowed) != 1 {
		t.Errorf("shadowed: %+v, want a refusal", sh)
	}
	// One command for the instance set and TTL: the fallback and the host
	// decision together, instances sorted, the door's key.
	if len(rem.reqs) != 1 {
		t.Fatalf("host commands: %+v, want one", rem.reqs)
	}
	r := rem.reqs[0]
	if !slices.Equal(r.Instances, []string{"i-00000000000000001", "i-00000000000000002"}) ||
		!slices.Equal(r.Targets, []netip.Prefix{pfx("198.51.100.3/32"), pfx("203.0.113.9/32")}) || !strings.HasPrefix(r.Key, "key-i-00000000000000001,i-00000000000000002|") {
		t.Errorf("host command %+v", r)
	}
	if res.HostBlocks != 4 || len(res.VPCBlocks) != 2 {
		t.Errorf("host blocks %d (want 2 targets × 2 instances), VPC blocks %d (want 2)", res.HostBlocks, len(res.VPCBlocks))
	}

	// Without an SSM document, a host block is an error naming it; the
	// decisions still come back.
	req2 := req(true)
	req2.Remote = nil
	req2.Attacks = req2.Attacks[1:]
	res, err = e.Batch(context.Background(), req2)
	if err == nil || !strings.Contains(err.Error(), "no SSM document configured") || res == nil || len(res.Decisions) != 1 {
		t.Errorf("without SSM: %v", err)
	}
}

// An entry one attack of a batch planned is an entry of ours to the next
// attack's placement (all traffic, with its source's volume): a heavier
// source of a later attack evicts it before it is written, and its source
// falls back to the hosts, saying so; nothing is written for it.
func TestBatchEvictsWhatItPlanned(t *testing.T) {
	w := newTestWorld()
	cfg := policy.Default()
	cfg.NACL.RuleMax = 3 // room for three denies
	e := New(Deps{Config: cfg, Now: func() time.Time { return w.now }})
	rem := &fakeRemote{}
	targets := []policy.Target{{InstanceID: "i-00000000000000001"}, {InstanceID: "i-00000000000000002"}}
	ssh := attack(0, "alarm ssh", "198.51.100.1", "192.0.2.1", "203.0.113.1") // apart: nothing to widen
	ssh.Origin, ssh.Targets, ssh.Port, ssh.Volume = policy.OriginLambda, slices.Clone(targets), policy.Port{Proto: "tcp", From: 22, To: 22}, []int64{10, 10, 1}
	smtp := attack(0, "alarm smtp", "45.33.9.9")
	smtp.Origin, smtp.Targets, smtp.Port, smtp.Volume = policy.OriginLambda, slices.Clone(targets), policy.Port{Proto: "tcp", From: 25, To: 25}, []int64{1000}
	res, err := e.Batch(t.Context(), BatchRequest{Attacks: []policy.Attack{ssh, smtp}, Enforce: true, Edge: w.edge, Remote: rem, HostKey: func(g string) string { return g }})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]policy.Decision{}
	for _, d := range res.Decisions {
		by[Show(d.Target)] = d
	}
	ev, heavy := by["203.0.113.1"], by["45.33.9.9"]
	if ev.Scope != policy.ScopeHost || ev.Action != policy.ActionBlock || ev.RuleNumber != 0 || !strings.HasPrefix(ev.Reasons[0], "host: fallback, evicted from "+w.edge.nacl) ||
		!strings.Contains(ev.Reasons[0], "by 45.33.9.9") {
		t.Errorf("evicted: %+v, want a host fallback saying 45.33.9.9 evicted it", ev)
	}
	if heavy.Scope != policy.ScopeVPC || heavy.Action != policy.ActionBlock {
		t.Errorf("heavy source: %+v, want a VPC deny", heavy)
	}
	var denied []string
	for p := range w.edge.denies {
		denied = append(denied, Show(p))
	}
	slices.Sort(denied)
	if want := []string{"192.0.2.1", "198.51.100.1", "45.33.9.9"}; !slices.Equal(denied, want) {
		t.Errorf("denies %v, want %v: the evicted entry is never written", denied, want)
	}
	if len(rem.reqs) != 1 || !slices.Equal(rem.reqs[0].Targets, []netip.Prefix{pfx("203.0.113.1/32")}) || !slices.Contains(res.Fallbacks, pfx("203.0.113.1/32")) {
		t.Errorf("host commands %+v, fallbacks %v; want 203.0.113.1 on the attacked instances", rem.reqs, res.Fallbacks)
	}
}
