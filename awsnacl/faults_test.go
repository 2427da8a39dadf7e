package awsnacl

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

// faultyConfig is a client that gives up on a stalled answer quickly and
// has attempts enough for a lossy line.
func faultyConfig() policy.NACLConfig {
	cfg := defaultNACL()
	cfg.MaxAttempts = 12
	cfg.MaxBackoff = policy.Duration(50 * time.Millisecond)
	cfg.CallTimeout = policy.Duration(400 * time.Millisecond)
	return cfg
}

func TestRetriesThroughFaults(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := faultyConfig()
	p := w.srv.Proxy(t, mototest.Faults{Throttle: 0.25, Unavailable: 0.1, Stall: 0.08, StallFor: 2 * time.Second, Seed: 7})
	m := w.manager(p.URL, cfg)
	var ds []policy.Decision
	for i := range 10 {
		ds = append(ds, w.vpcDecision(fmt.Sprintf("203.0.113.%d", i+1), time.Hour))
	}
	bs, err := m.Block(ctx, ds, Request{Origin: policy.OriginLambda, Reason: "faults"})
	if err != nil {
		t.Fatalf("Block through faults: %v", err)
	}
	if p.Faulted() == 0 {
		t.Fatal("the proxy injected no fault: the test tests nothing")
	}
	st := checkConsistent(t, w, cfg)
	var cidrs []string
	for _, e := range st.entries {
		if !e.Allow && e.RuleNumber <= cfg.RuleMax {
			cidrs = append(cidrs, e.CIDR.String())
		}
	}
	if len(cidrs) != 10 || len(bs) != 10 {
		t.Errorf("after faults: %d entries %v, %d blocks; want 10 each, no duplicates", len(cidrs), cidrs, len(bs))
	}
	slices.Sort(cidrs)
	if len(slices.Compact(cidrs)) != len(cidrs) {
		t.Errorf("duplicate entries: %v", cidrs)
	}
	// Sweep through the same faults.
	res, err := w.manager(p.URL, cfg).Sweep(ctx, time.Now().Add(2*time.Hour), w.nacl)
	if err != nil || len(res.Removed) != 10 {
		t.Errorf("Sweep through faults: %d removed, %v", len(res.Removed), err)
	}
	checkConsistent(t, w, cfg)
	t.Logf("faults injected: %d of %d requests", p.Faulted(), p.Total())
}

func TestLostAnswerIsAdopted(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := faultyConfig()
	// The first create reaches moto but its answer never comes back; the
	// retry meets NetworkAclEntryAlreadyExists for its own entry.
	p := w.srv.Proxy(t, mototest.Faults{Stall: 1, StallFor: 2 * time.Second, Actions: []string{"CreateNetworkAclEntry"}, Limit: 1})
	m := w.manager(p.URL, cfg)
	bs, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.5", time.Hour)}, Request{Reason: "lost"})
	if err != nil || len(bs) != 1 {
		t.Fatalf("Block: %+v, %v", bs, err)
	}
	st := checkConsistent(t, w, cfg)
	n := 0
	for _, e := range st.entries {
		if !e.Allow && e.RuleNumber <= cfg.RuleMax {
			n++
		}
	}
	if n != 1 || p.Counts()["CreateNetworkAclEntry"] < 2 {
		t.Errorf("%d entries after a lost answer (creates %d), want 1 adopted", n, p.Counts()["CreateNetworkAclEntry"])
	}
}

func TestFailureMidwayRollsBack(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	cfg.MaxAttempts = 3
	// CreateTags is throttled beyond the retry budget.
	p := w.srv.Proxy(t, mototest.Faults{Throttle: 1, Actions: []string{"CreateTags"}})
	m := w.manager(p.URL, cfg)
	_, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.5", time.Hour), w.vpcDecision("203.0.113.6", time.Hour)}, Request{})
	if err == nil || len(Failed(err)) != 2 || errorCode(err) != "RequestLimitExceeded" {
		t.Fatalf("Block with CreateTags throttled: %v; want both failed with RequestLimitExceeded", err)
	}
	if got := p.Counts()["CreateTags"]; got != cfg.MaxAttempts {
		t.Errorf("CreateTags attempts %d, want the budget %d", got, cfg.MaxAttempts)
	}
	st := checkConsistent(t, w, cfg)
	for _, e := range st.entries {
		if e.RuleNumber <= cfg.RuleMax {
			t.Errorf("entry left after rollback: %+v", e)
		}
	}
	// The line recovers: the next call succeeds.
	p.SetFaults(mototest.Faults{})
	if bs, err := w.manager(p.URL, cfg).Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.5", time.Hour)}, Request{}); err != nil || len(bs) != 1 {
		t.Fatalf("Block after recovery: %+v, %v", bs, err)
	}
	checkConsistent(t, w, cfg)
}

func TestUnavailableIsRetried(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := faultyConfig()
	// Every read fails three times in a row (503, then throttling), then passes.
	p := w.srv.Proxy(t, mototest.Faults{Unavailable: 0.5, Throttle: 0.5, Actions: []string{"DescribeNetworkAcls"}, Limit: 3})
	m := w.manager(p.URL, cfg)
	if _, err := m.NACLFor(ctx, w.subnet); err != nil {
		t.Fatalf("NACLFor through 503s: %v", err)
	}
	if got := p.Counts()["DescribeNetworkAcls"]; got != 4 {
		t.Errorf("DescribeNetworkAcls attempts %d, want 4 (3 faults + 1)", got)
	}
}

func TestConcurrentWriters(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	cfg.RuleMin, cfg.RuleMax, cfg.Quota = 1, 100, 40
	// After every write, the proxy checks the quota on moto's state.
	var mu sync.Mutex
	maxV4 := 0
	p := w.srv.Proxy(t, mototest.Faults{Rewrite: func(action string, body []byte) []byte {
		if action == "CreateNetworkAclEntry" {
			n := familyCount(w.read().entries, true, false)
			mu.Lock()
			maxV4 = max(maxV4, n)
			mu.Unlock()
		}
		return body
	}})
	const writers, total = 8, 60
	type result struct {
		blocks []policy.Block
		err    error
	}
	results := make([]result, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := w.manager(p.URL, cfg) // one Manager per writer, as separate processes
			for i := g; i < total; i += writers {
				d := w.vpcDecision(fmt.Sprintf("198.51.%d.%d", 100+i%3, i+1), time.Hour)
				bs, err := m.Block(ctx, []policy.Decision{d}, Request{Origin: policy.OriginWatch, Reason: fmt.Sprintf("writer %d", g)})
				results[g].blocks = append(results[g].blocks, bs...)
				if err != nil {
					results[g].err = errors.Join(results[g].err, err)
				}
			}
		}()
	}
	wg.Wait()
	blocked, noRoom := 0, 0
	var want []string
	for _, r := range results {
		blocked += len(r.blocks)
		for _, b := range r.blocks {
			want = append(want, b.Target.String())
		}
		for _, f := range Failed(r.err) {
			if !errors.Is(f, ErrNoRoom) {
				t.Errorf("writer failure other than no room: %v", f)
			}
			noRoom++
		}
	}
	// 40 - (100 allow, 32767 deny) = 38 fit; the rest is told there is no room.
	if blocked != 38 || noRoom != total-38 {
		t.Errorf("%d blocked, %d no room; want 38 and %d", blocked, noRoom, total-38)
	}
	if maxV4 > cfg.Quota {
		t.Errorf("the NACL held %d IPv4 ingress entries at one point, over the quota %d", maxV4, cfg.Quota)
	}
	st := checkConsistent(t, w, cfg)
	var got []string
	nums := map[int]bool{}
	for _, e := range st.entries {
		if e.Allow || e.RuleNumber > cfg.RuleMax {
			continue
		}
		if nums[e.RuleNumber] {
			t.Errorf("rule number %d twice", e.RuleNumber)
		}
		nums[e.RuleNumber] = true
		got = append(got, e.CIDR.String())
		md, _ := st.meta(e.RuleNumber)
		if md.Origin != policy.OriginWatch || md.CIDR != e.CIDR {
			t.Errorf("rule %d: metadata %+v", e.RuleNumber, md)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("entries %v\nreported blocked %v", got, want)
	}
	t.Logf("%d EC2 calls: %v", p.Total(), p.Counts())
}

var _ = url.Values{}

func TestConcurrentSharedManager(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	m := w.manager(w.srv.URL, cfg) // goroutines of one process share the Manager
	var wg sync.WaitGroup
	var mu sync.Mutex
	blocked, noRoom := 0, 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ds []policy.Decision
			for k := range 3 {
				ds = append(ds, w.vpcDecision(fmt.Sprintf("203.0.%d.%d", 113+g%2, 10*g+k), time.Hour))
			}
			bs, err := m.Block(ctx, ds, Request{Origin: policy.OriginWatch})
			mu.Lock()
			defer mu.Unlock()
			blocked += len(bs)
			for _, f := range Failed(err) {
				if !errors.Is(f, ErrNoRoom) {
					t.Errorf("failure other than no room: %v", f)
				}
				noRoom++
			}
		}()
	}
	wg.Wait()
	// 20 - (100, 32767) = 18 fit; 24 asked.
	if blocked != 18 || noRoom != 6 {
		t.Errorf("%d blocked, %d no room; want 18 and 6", blocked, noRoom)
	}
	st := checkConsistent(t, w, cfg)
	if n := familyCount(st.entries, true, false); n != cfg.Quota {
		t.Errorf("%d IPv4 ingress entries, want the quota %d", n, cfg.Quota)
	}
}
