package awsnacl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

// These tests drive the whole VPC path as one CLI invocation does, one
// Manager per invocation: resolve the targets, fill the snapshot from
// moto, let the policy place the range, enforce on the fresh read.

// decideAndBlock is one `banshee block` of atk against the world's subnet
// (or instances, when given).
func decideAndBlock(t testing.TB, w *world, cfg policy.Config, instances []string, atk policy.Attack) ([]policy.Decision, []policy.Block, error) {
	return decideAndBlockAt(t, w, w.srv.URL, cfg, instances, atk)
}

func decideAndBlockAt(t testing.TB, w *world, endpoint string, cfg policy.Config, instances []string, atk policy.Attack) ([]policy.Decision, []policy.Block, error) {
	t.Helper()
	ctx := ctxT(t)
	m := w.manager(endpoint, cfg.NACL)
	subnet := w.subnet
	if len(instances) > 0 {
		subnet = ""
	}
	targets, err := m.Resolve(ctx, instances, subnet)
	if err != nil {
		return nil, nil, err
	}
	snap := policy.Snapshot{Now: time.Now().UTC()}
	if err := m.FillSnapshot(ctx, targets, &snap); err != nil {
		return nil, nil, err
	}
	atk.Targets = targets
	ds := policy.New(cfg).Decide(atk, snap)
	bs, err := m.Block(ctx, ds, Request{Origin: policy.OriginCLI, Reason: atk.Reason, Port: atk.Port, Severity: atk.Severity})
	return ds, bs, err
}

func addr(s string) netip.Prefix { a := netip.MustParseAddr(s); return netip.PrefixFrom(a, a.BitLen()) }

// denies returns banshee's deny entries (ingress, reserved range).
func denies(st *naclState, cfg policy.NACLConfig) []policy.NACLEntry {
	var out []policy.NACLEntry
	for _, e := range st.entries {
		if !e.Egress && !e.Allow && e.RuleNumber >= cfg.RuleMin && e.RuleNumber <= cfg.RuleMax {
			out = append(out, e)
		}
	}
	return out
}

func deniedBy(es []policy.NACLEntry, a netip.Addr) bool {
	return slices.ContainsFunc(es, func(e policy.NACLEntry) bool { return e.CIDR.Contains(a) })
}

// An operator blocks a botnet by hand, one address per command, at VPC
// scope: 60 addresses of three /24s. The range never fills: every /24
// becomes one entry once it has aggregate_min_sources addresses, and
// every address ends denied.
func TestSequentialSinglesEndCovered(t *testing.T) {
	w := newWorld(t)
	cfg := policy.Default()
	var srcs []string
	for h := range 20 {
		for _, net := range []string{"45.33.1", "45.33.7", "198.18.44"} {
			srcs = append(srcs, fmt.Sprintf("%s.%d", net, 3*h+1))
		}
	}
	for i, s := range srcs {
		ds, bs, err := decideAndBlock(t, w, cfg, nil, policy.Attack{Sources: []netip.Prefix{addr(s)}, Scope: policy.ScopeVPC, Kind: policy.KindManual, Reason: "botnet"})
		if err != nil || policy.AnyRefused(ds) {
			t.Fatalf("block %d (%s): %v; decisions %+v", i, s, err, ds)
		}
		if ds[0].Action == policy.ActionBlock && len(bs) != 1 {
			t.Fatalf("block %d (%s): %d blocks for a VPC decision", i, s, len(bs))
		}
	}
	st := checkConsistent(t, w, cfg.NACL)
	es := denies(st, cfg.NACL)
	for _, s := range srcs {
		if !deniedBy(es, netip.MustParseAddr(s)) {
			t.Errorf("%s is not denied", s)
		}
	}
	var got []string
	for _, e := range es {
		got = append(got, e.CIDR.String())
	}
	slices.Sort(got)
	if want := []string{"198.18.44.0/24", "45.33.1.0/24", "45.33.7.0/24"}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
}

// A mixed attack on two instances of the subnet, with protected networks
// (the allowlist, a security-group whitelist) interleaved with the
// attackers: no deny ever contains a protected address, the quota holds,
// and every attacker outside them is denied at the edge or on the hosts.
func TestMixedAttackNeverDeniesProtected(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	if _, err := w.raw.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(w.sg), IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}, {CidrIp: aws.String("45.33.3.64/26")}}},
	}}); err != nil {
		t.Fatal(err)
	}
	insts := []string{w.instance(), w.instance()}
	cfg := policy.Default()
	cfg.Allowlist = []netip.Prefix{netip.MustParsePrefix("45.33.1.77/32"), netip.MustParsePrefix("45.33.2.0/25"), netip.MustParsePrefix("45.33.5.0/23")}
	protected := append(slices.Clone(cfg.Allowlist), netip.MustParsePrefix("45.33.3.64/26"), w.vpcV4)

	rng := rand.New(rand.NewPCG(7, 15))
	var all []netip.Prefix
	for b := range 8 { // 45.33.0-7.x: some /24s hold protected addresses, 45.33.5-6 are protected whole
		for range 6 {
			all = append(all, addr(fmt.Sprintf("45.33.%d.%d", b, 1+rng.IntN(250))))
		}
	}
	for k := range 30 {
		all = append(all, addr(fmt.Sprintf("%d.%d.9.%d", 150+k, k, 1+rng.IntN(250))))
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	isProtected := func(p netip.Prefix) bool {
		return slices.ContainsFunc(protected, func(q netip.Prefix) bool { return q.Overlaps(p) })
	}
	// Three alarms' worth, then single stragglers.
	batches := [][]netip.Prefix{all[:30], all[30:60], all[60:]}
	hostBlocked := map[netip.Prefix]bool{}
	for bi, batch := range batches {
		atk := policy.Attack{Sources: batch, Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Kind: policy.KindBruteforce, Reason: "sshd"}
		ds, _, err := decideAndBlock(t, w, cfg, insts, atk)
		if err != nil {
			t.Fatalf("batch %d: %v", bi, err)
		}
		for i, d := range ds {
			prot := isProtected(batch[i])
			switch {
			case prot && d.Action != policy.ActionRefuse:
				t.Errorf("batch %d: protected %s decided %s %s: %q", bi, batch[i], d.Scope, d.Action, d.Reasons)
			case !prot && d.Action == policy.ActionRefuse:
				t.Errorf("batch %d: %s refused: %q", bi, batch[i], d.Reasons)
			case d.Scope == policy.ScopeHost:
				hostBlocked[batch[i]] = true
			}
		}
	}
	st := checkConsistent(t, w, cfg.NACL)
	es := denies(st, cfg.NACL)
	for _, e := range es {
		for _, q := range protected {
			if e.CIDR.Overlaps(q) {
				t.Errorf("rule %d denies %s, which overlaps protected %s", e.RuleNumber, e.CIDR, q)
			}
		}
	}
	if n := familyCount(st.entries, true, false); n > cfg.NACL.Quota {
		t.Errorf("%d IPv4 ingress entries, over the quota %d", n, cfg.NACL.Quota)
	}
	edge := 0
	for _, p := range all {
		switch {
		case isProtected(p):
		case deniedBy(es, p.Addr()):
			edge++
		case !hostBlocked[p]:
			t.Errorf("%s is neither denied at the edge nor blocked on the hosts", p)
		}
	}
	if edge == 0 || len(es) < cfg.NACL.Quota-2-2 {
		t.Errorf("%d attackers at the edge in %d entries: want the range used", edge, len(es))
	}
}

// Four writers block sources of the same /24s and scattered singles at
// the same time, each one address per invocation (scope auto on a bare
// subnet, so the range is placed by value): the quota holds at every
// moment checked, every block a writer reported is denied at the end
// unless a placement evicted it on purpose, and each /24 is aggregated.
func TestConcurrentWritersAggregate(t *testing.T) {
	w := newWorld(t)
	cfg := policy.Default()
	cfg.NACL.RuleMin, cfg.NACL.RuleMax, cfg.NACL.Quota = 1, 12, 12 // 10 usable: the default allow and deny take 2
	var mu sync.Mutex
	reported := map[netip.Prefix]bool{}
	var evicted []netip.Prefix // lifted on purpose, for a source worth more
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	stop := make(chan struct{})
	var maxSeen int
	var calls []string // every write, for the failure message
	p := w.srv.Proxy(t, mototest.Faults{Respond: func(action string, form url.Values) (int, string, bool) {
		if strings.HasPrefix(action, "Create") || strings.HasPrefix(action, "Delete") || strings.HasPrefix(action, "Replace") {
			mu.Lock()
			calls = append(calls, fmt.Sprintf("%s %s %s %s", action, form.Get("RuleNumber"), form.Get("CidrBlock"), form.Get("Egress")))
			mu.Unlock()
		}
		return 0, "", false
	}})
	go func() { // watch the quota while they write
		for k := 0; k < 2000; k++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			out, err := w.raw.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.nacl}})
			if err != nil || len(out.NetworkAcls) != 1 {
				continue
			}
			st, err := naclFromAWS(out.NetworkAcls[0], time.Now())
			if err != nil {
				continue
			}
			mu.Lock()
			maxSeen = max(maxSeen, familyCount(st.entries, true, false))
			mu.Unlock()
		}
	}()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			for k := range 8 {
				var s string
				if k%4 == 3 {
					s = fmt.Sprintf("%d.%d.77.%d", 150+g, k, 1+rng.IntN(250))
				} else {
					s = fmt.Sprintf("45.33.%d.%d", 10+rng.IntN(3), 1+rng.IntN(250))
				}
				pfx := addr(s)
				ds, bs, err := decideAndBlockAt(t, w, p.URL, cfg, nil, policy.Attack{Sources: []netip.Prefix{pfx}, Kind: policy.KindManual, Reason: fmt.Sprintf("writer %d", g)})
				if err != nil && !errors.Is(err, ErrNoRoom) {
					errc <- fmt.Errorf("writer %d block %s: %w", g, s, err)
					return
				}
				mu.Lock()
				for _, b := range bs {
					reported[pfx] = reported[pfx] || b.Target.Contains(pfx.Addr())
				}
				if len(ds) == 1 && ds[0].Action == policy.ActionSkip {
					reported[pfx] = true // already denied: it must stay so
				}
				if len(ds) == 1 && ds[0].Evicts != nil {
					evicted = append(evicted, ds[0].Evicts.Target)
				}
				calls = append(calls, fmt.Sprintf("writer %d: %s → %+v (decisions %+v)", g, pfx, bs, ds))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	st := w.read()
	es := denies(st, cfg.NACL)
	if n := familyCount(st.entries, true, false); n > cfg.NACL.Quota || maxSeen > cfg.NACL.Quota {
		t.Errorf("IPv4 ingress entries: %d at the end, %d at most while writing; quota %d", n, maxSeen, cfg.NACL.Quota)
	}
	for p, ok := range reported {
		if ok && !deniedBy(es, p.Addr()) && !slices.ContainsFunc(evicted, func(e netip.Prefix) bool { return e.Contains(p.Addr()) }) {
			t.Errorf("%s was reported blocked but no entry denies it", p)
		}
	}
	if t.Failed() {
		t.Logf("entries %v\nwrites:\n%s", es, strings.Join(calls, "\n"))
	}
	for _, n := range []int{10, 11, 12} {
		if !slices.ContainsFunc(es, func(e policy.NACLEntry) bool { return e.CIDR == netip.MustParsePrefix(fmt.Sprintf("45.33.%d.0/24", n)) }) {
			t.Errorf("45.33.%d.0/24 not aggregated: %v", n, es)
		}
	}
}

// Unblocking one address inside an aggregate lifts nothing and says which
// entry still covers it and how to lift that; unblocking the aggregate
// itself lifts it.
func TestUnblockInsideAggregate(t *testing.T) {
	w := newWorld(t)
	cfg := policy.Default()
	for _, s := range []string{"45.33.1.1", "45.33.1.8", "45.33.1.9"} {
		if _, _, err := decideAndBlock(t, w, cfg, nil, policy.Attack{Sources: []netip.Prefix{addr(s)}, Scope: policy.ScopeVPC, Kind: policy.KindManual}); err != nil {
			t.Fatal(err)
		}
	}
	agg := netip.MustParsePrefix("45.33.1.0/24")
	ctx := ctxT(t)
	m := w.manager(w.srv.URL, cfg.NACL)
	gone, err := m.Unblock(ctx, w.subnet, []netip.Prefix{addr("45.33.1.8")})
	var te *TargetError
	if len(gone) != 0 || !errors.As(err, &te) || !strings.Contains(err.Error(), "covered by "+w.nacl+" rule 1 for 45.33.1.0/24; unblock 45.33.1.0/24 to lift it") {
		t.Errorf("unblock inside the aggregate = %+v, %v; want it to name the covering entry", gone, err)
	}
	if es := denies(w.read(), cfg.NACL); len(es) != 1 || es[0].CIDR != agg {
		t.Fatalf("entries after the refused unblock: %+v, want %s alone", es, agg)
	}
	gone, err = w.manager(w.srv.URL, cfg.NACL).Unblock(ctx, w.subnet, []netip.Prefix{agg})
	if err != nil || len(gone) != 1 || gone[0].Target != agg {
		t.Errorf("unblock of the aggregate = %+v, %v", gone, err)
	}
	if es := denies(checkConsistent(t, w, cfg.NACL), cfg.NACL); len(es) != 0 {
		t.Errorf("entries left: %+v", es)
	}
}

// Metadata keeps the volume and the time of the last sighting, so the
// next placement can weigh the entry; a re-block with a volume adds to it.
func TestVolumeRecorded(t *testing.T) {
	w := newWorld(t)
	cfg := policy.Default()
	atk := policy.Attack{Sources: []netip.Prefix{addr("203.0.113.40")}, Volume: []int64{40}, Scope: policy.ScopeVPC, Kind: policy.KindManual}
	if _, _, err := decideAndBlock(t, w, cfg, nil, atk); err != nil {
		t.Fatal(err)
	}
	atk.TTL = 3 * time.Hour
	atk.Volume = []int64{2}
	if _, _, err := decideAndBlock(t, w, cfg, nil, atk); err != nil {
		t.Fatal(err)
	}
	st := checkConsistent(t, w, cfg.NACL)
	md, ok := st.meta(1)
	if !ok || md.Volume != 42 || md.At.IsZero() || md.At.After(time.Now().Add(time.Minute)) {
		t.Errorf("metadata %+v (%v), want volume 42 and a sighting time", md, ok)
	}
	snap := policy.Snapshot{}
	m := w.manager(w.srv.URL, cfg.NACL)
	if err := m.FillSnapshot(ctxT(t), []policy.Target{{SubnetID: w.subnet}}, &snap); err != nil {
		t.Fatal(err)
	}
	n := snap.NACLs[w.subnet]
	if k := slices.IndexFunc(n.Entries, func(e policy.NACLEntry) bool { return e.RuleNumber == 1 }); k < 0 || n.Entries[k].Volume != 42 || n.Entries[k].LastSeen.IsZero() {
		t.Errorf("snapshot entries %+v: want rule 1 with volume 42 and last seen", n.Entries)
	}
}
