package awsnacl

import (
	"context"
	"errors"
	"fmt"
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

// familyCount counts a NACL's entries of one family and direction.
func familyCount(es []policy.NACLEntry, v4, egress bool) int {
	n := 0
	for _, e := range es {
		if e.Egress == egress && e.CIDR.Addr().Is4() == v4 {
			n++
		}
	}
	return n
}

// checkConsistent fails t unless every entry of ours has metadata for its
// CIDR and every metadata tag has an entry.
func checkConsistent(t *testing.T, w *world, cfg policy.NACLConfig) *naclState {
	t.Helper()
	st := w.read()
	seen := map[int]bool{}
	for _, e := range st.entries {
		if e.Allow || e.RuleNumber < cfg.RuleMin || e.RuleNumber > cfg.RuleMax {
			continue
		}
		seen[e.RuleNumber] = true
		if _, ok := st.meta(e.RuleNumber); !ok {
			t.Errorf("entry %d (%s) has no metadata (tags %v)", e.RuleNumber, e.CIDR, st.tags)
		}
	}
	for n := range st.tags {
		if !seen[n] {
			t.Errorf("metadata for rule %d has no entry", n)
		}
	}
	return st
}

func TestQuotaAndRange(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL() // 1-19, quota 20; the default NACL holds 100 allow + 32767 deny
	// Someone else's allow inside the range counts too.
	w.addEntry(19, false, true, "192.0.2.0/24")
	m := w.manager(w.srv.URL, cfg)
	var ds []policy.Decision
	for i := range 20 {
		ds = append(ds, w.vpcDecision(fmt.Sprintf("203.0.113.%d", i+1), time.Hour))
	}
	bs, err := m.Block(ctx, ds, Request{Origin: policy.OriginCLI})
	// 20 - (100, 32767, 19) = 17 IPv4 entries fit.
	if len(bs) != 17 {
		t.Errorf("%d blocks, want 17", len(bs))
	}
	failed := Failed(err)
	if len(failed) != 3 {
		t.Fatalf("%d failures, want 3: %v", len(failed), err)
	}
	for _, f := range failed {
		if !errors.Is(f, ErrNoRoom) {
			t.Errorf("failure %v is not ErrNoRoom", f)
		}
	}
	st := checkConsistent(t, w, cfg)
	if n := familyCount(st.entries, true, false); n != cfg.Quota {
		t.Errorf("%d IPv4 ingress entries, want exactly the quota %d", n, cfg.Quota)
	}
	for _, e := range st.entries {
		if !e.Allow && e.RuleNumber > cfg.RuleMax && e.RuleNumber != 32767 {
			t.Errorf("deny outside the range: %+v", e)
		}
	}
	if e, _ := st.entry(19, false); !e.Allow {
		t.Errorf("the foreign allow at 19 was touched: %+v", e)
	}
	// IPv6 counts separately but shares numbers: 18 is the only one left.
	v6, err := m.Block(ctx, []policy.Decision{w.vpcDecision("2001:db8::1", time.Hour), w.vpcDecision("2001:db8::2", time.Hour)}, Request{})
	if len(v6) != 1 || v6[0].RuleNumber != 18 || len(Failed(err)) != 1 || !errors.Is(err, ErrNoRoom) {
		t.Errorf("IPv6 blocks = %+v, %v; want one at 18 and one ErrNoRoom", v6, err)
	}
}

func TestShadowedDeny(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	cfg.RuleMin, cfg.RuleMax = 5, 19
	// An allow below the range for the attacker's network: every deny in
	// the range would come after it.
	in := &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(3), Egress: aws.Bool(false), Protocol: aws.String("6"),
		RuleAction: types.RuleActionAllow, CidrBlock: aws.String("198.51.100.0/24"), PortRange: &types.PortRange{From: aws.Int32(443), To: aws.Int32(443)}}
	if _, err := w.raw.CreateNetworkAclEntry(ctx, in); err != nil {
		t.Fatal(err)
	}
	// An allow inside the range: denies must go below it.
	w.addEntry(8, false, true, "203.0.113.0/24")
	m := w.manager(w.srv.URL, cfg)

	_, err := m.Block(ctx, []policy.Decision{w.vpcDecision("198.51.100.7", time.Hour)}, Request{Port: policy.Port{Proto: "tcp", From: 443, To: 443}})
	var se *ShadowError
	if !errors.As(err, &se) || se.Rule.RuleNumber != 3 || !errors.Is(err, ErrShadowed) || !strings.Contains(err.Error(), "rule 3") {
		t.Fatalf("Block behind allow rule 3: %v, want a ShadowError naming rule 3", err)
	}
	// The allow is for tcp/443 only: an attack on tcp/22 is not shadowed.
	bs, err := m.Block(ctx, []policy.Decision{w.vpcDecision("198.51.100.7", time.Hour)}, Request{Port: policy.Port{Proto: "tcp", From: 22, To: 22}})
	if err != nil || len(bs) != 1 {
		t.Fatalf("Block of tcp/22: %+v, %v", bs, err)
	}
	// 203.0.113.x must land below the allow at 8: 5, 6 or 7.
	var ds []policy.Decision
	for i := range 4 {
		ds = append(ds, w.vpcDecision(fmt.Sprintf("203.0.113.%d", 10+i), time.Hour))
	}
	bs, err = m.Block(ctx, ds, Request{})
	if len(bs) != 2 || !errors.Is(err, ErrShadowed) {
		t.Fatalf("blocks under the allow at 8: %+v, %v; want 2 (6, 7) then shadowed", bs, err)
	}
	for _, b := range bs {
		if b.RuleNumber >= 8 {
			t.Errorf("deny for %s at %d, after the allow at 8", b.Target, b.RuleNumber)
		}
	}
	checkConsistent(t, w, cfg)
}

// record observes every request through the proxy, in order.
type record struct {
	mu  sync.Mutex
	seq []string
}

func (r *record) add(a string) { r.mu.Lock(); r.seq = append(r.seq, a); r.mu.Unlock() }

func TestAggregateWithoutGap(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	m := w.manager(w.srv.URL, cfg)
	var srcs []policy.Decision
	for i := range 5 {
		srcs = append(srcs, w.vpcDecision(fmt.Sprintf("198.51.100.%d", 10*i+1), time.Duration(i+1)*time.Hour))
	}
	if _, err := m.Block(ctx, srcs, Request{Origin: policy.OriginCLI, Reason: "one by one"}); err != nil {
		t.Fatal(err)
	}
	// At every write during the aggregation, every source must still be
	// denied by some entry.
	var rec record
	var gaps []string
	p := w.srv.Proxy(t, mototest.Faults{Respond: func(action string, _ url.Values) (int, string, bool) {
		rec.add(action)
		if strings.HasPrefix(action, "Delete") || strings.HasPrefix(action, "Replace") {
			st := w.read()
			for _, d := range srcs {
				covered := slices.ContainsFunc(st.entries, func(e policy.NACLEntry) bool { return !e.Allow && !e.Egress && e.CIDR.Contains(d.Target.Addr()) })
				if !covered {
					gaps = append(gaps, fmt.Sprintf("%s uncovered before %s", d.Target, action))
				}
			}
		}
		return 0, "", false
	}})
	m2 := w.manager(p.URL, cfg)
	agg := netip.MustParsePrefix("198.51.100.0/24")
	var ds []policy.Decision
	for _, d := range srcs {
		d.Aggregate = &agg
		d.TTL = 30 * time.Minute
		ds = append(ds, d)
	}
	bs, err := m2.Block(ctx, ds, Request{Origin: policy.OriginWatch, Reason: "aggregated"})
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) > 0 {
		t.Errorf("gaps: %v", gaps)
	}
	st := checkConsistent(t, w, cfg)
	var ours []policy.NACLEntry
	for _, e := range st.entries {
		if !e.Allow && e.RuleNumber <= cfg.RuleMax {
			ours = append(ours, e)
		}
	}
	if len(ours) != 1 || ours[0].CIDR != agg || ours[0].RuleNumber != 1 {
		t.Fatalf("entries after aggregation: %+v, want only %s at rule 1", ours, agg)
	}
	md, _ := st.meta(1)
	if md.Reason != "aggregated" || md.Exp.Before(time.Now().Add(4*time.Hour)) {
		t.Errorf("aggregate metadata %+v: want the latest expiry of the members (5h)", md)
	}
	for _, b := range bs {
		if b.RuleNumber != 1 || b.Target != agg {
			t.Errorf("block %+v, want %s at 1", b, agg)
		}
	}
	if i := slices.Index(rec.seq, "ReplaceNetworkAclEntry"); i < 0 || slices.Index(rec.seq, "DeleteNetworkAclEntry") < i {
		t.Errorf("calls %v: want the replace before any delete", rec.seq)
	}
}

func TestEvictInPlace(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	cfg.RuleMin, cfg.RuleMax = 1, 3
	m := w.manager(w.srv.URL, cfg)
	bs, err := m.Block(ctx, []policy.Decision{w.vpcDecision("192.0.2.1", time.Hour), w.vpcDecision("192.0.2.2", 2*time.Hour), w.vpcDecision("192.0.2.3", 3*time.Hour)}, Request{Severity: 2})
	if err != nil || len(bs) != 3 {
		t.Fatalf("filling the range: %+v, %v", bs, err)
	}
	d := w.vpcDecision("203.0.113.66", time.Hour)
	ev := bs[0]
	d.Evicts = &ev
	d.RuleNumber = ev.RuleNumber
	got, err := m.Block(ctx, []policy.Decision{d}, Request{Severity: 9, Reason: "worse"})
	if err != nil || len(got) != 1 || got[0].RuleNumber != ev.RuleNumber {
		t.Fatalf("evicting: %+v, %v", got, err)
	}
	st := checkConsistent(t, w, cfg)
	e, _ := st.entry(ev.RuleNumber, false)
	md, _ := st.meta(ev.RuleNumber)
	if e.CIDR != netip.MustParsePrefix("203.0.113.66/32") || md.Severity != 9 || md.Reason != "worse" {
		t.Errorf("rule %d after eviction: %+v %+v", ev.RuleNumber, e, md)
	}
	if slices.ContainsFunc(st.entries, func(e policy.NACLEntry) bool { return e.CIDR == ev.Target }) {
		t.Errorf("evicted %s still present", ev.Target)
	}
	// A full range without an eviction: ErrNoRoom, nothing changes.
	before := len(st.entries)
	if _, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.67", time.Hour)}, Request{}); !errors.Is(err, ErrNoRoom) {
		t.Errorf("full range: %v, want ErrNoRoom", err)
	}
	if n := len(w.entries()); n != before {
		t.Errorf("entries %d → %d on a refused block", before, n)
	}
}

func TestUnblockAndList(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	cfg.Egress = true
	m := w.manager(w.srv.URL, cfg)
	agg := netip.MustParsePrefix("198.51.100.0/24")
	d3 := w.vpcDecision("198.51.100.9", time.Hour)
	d3.Aggregate = &agg
	bs, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.1", time.Hour), w.vpcDecision("2001:db8::1", time.Hour), d3}, Request{Origin: policy.OriginCLI})
	if err != nil || len(bs) != 3 {
		t.Fatalf("Block: %+v %v", bs, err)
	}
	st := checkConsistent(t, w, cfg)
	for _, b := range bs {
		e, ok := st.entry(b.RuleNumber, true)
		if !ok || e.CIDR != b.Target {
			t.Errorf("no egress deny for %s at %d", b.Target, b.RuleNumber)
		}
	}
	list, err := w.manager(w.srv.URL, cfg).List(ctx, w.subnet)
	if err != nil || len(list) != 3 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	all, err := w.manager(w.srv.URL, cfg).List(ctx)
	if err != nil || len(all) < 3 {
		t.Fatalf("List of the region = %d blocks, %v", len(all), err)
	}

	m2 := w.manager(w.srv.URL, cfg)
	gone, err := m2.Unblock(ctx, w.nacl, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("192.0.2.99/32")})
	if err != nil || len(gone) != 1 || gone[0].Target != netip.MustParsePrefix("203.0.113.1/32") {
		t.Fatalf("Unblock = %+v, %v", gone, err)
	}
	// Covered only by the aggregate: not removed, and the error says by what.
	_, err = m2.Unblock(ctx, w.subnet, []netip.Prefix{netip.MustParsePrefix("198.51.100.9/32")})
	if err == nil || !strings.Contains(err.Error(), "198.51.100.0/24") {
		t.Errorf("Unblock of a covered source: %v", err)
	}
	st = checkConsistent(t, w, cfg)
	if slices.ContainsFunc(st.entries, func(e policy.NACLEntry) bool { return e.CIDR == netip.MustParsePrefix("203.0.113.1/32") }) {
		t.Errorf("203.0.113.1 still has an entry (either direction)")
	}
	if len(st.tags) != 2 {
		t.Errorf("%d metadata tags left, want 2", len(st.tags))
	}
	// Unblocking again is a no-op.
	if again, err := w.manager(w.srv.URL, cfg).Unblock(ctx, w.subnet, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32")}); err != nil || len(again) != 0 {
		t.Errorf("second Unblock = %+v, %v", again, err)
	}
}

func TestSweepReconciles(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m := w.manager(w.srv.URL, cfg, WithClock(func() time.Time { return now }))
	var ds []policy.Decision
	for i := range 4 {
		ds = append(ds, w.vpcDecision(fmt.Sprintf("203.0.113.%d", i+1), time.Duration(i+1)*time.Hour))
	}
	ds = append(ds, w.vpcDecision("203.0.113.99", 0)) // never expires
	if _, err := m.Block(ctx, ds, Request{Origin: policy.OriginCLI}); err != nil {
		t.Fatal(err)
	}
	// An entry without metadata (a writer died between its two calls) and
	// metadata without an entry (one died while removing).
	w.addEntry(15, false, false, "192.0.2.15/32")
	if _, err := w.raw.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{w.nacl}, Tags: []types.Tag{
		{Key: aws.String(ruleKey(16)), Value: aws.String(meta{CIDR: netip.MustParsePrefix("192.0.2.16/32")}.encode())},
		{Key: aws.String("team"), Value: aws.String("net")},
	}}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(150 * time.Minute) // the 1h and 2h blocks are expired
	res, err := w.manager(w.srv.URL, cfg, WithClock(func() time.Time { return later })).Sweep(ctx, later, w.subnet)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if len(res.Removed) != 2 || len(res.Adopted) != 0 || res.Waiting != 1 || res.StaleTags != 1 {
		t.Errorf("Sweep = %+v, want 2 removed, 1 waiting (first sight: not adopted), 1 stale tag", res)
	}
	if s, err := decodeSeen(w.tagValue(seenKey(15))); err != nil || !s.At.Equal(later) || s.CIDR != netip.MustParsePrefix("192.0.2.15/32") {
		t.Errorf("sighting of 15: %+v, %v; want one at %s", s, err, later)
	}
	// Within the grace period: still only seen.
	res, err = w.manager(w.srv.URL, cfg).Sweep(ctx, later.Add(DefaultOrphanGrace-time.Second), w.nacl)
	if err != nil || len(res.Adopted) != 0 || res.Waiting != 1 {
		t.Errorf("Sweep within the grace period = %+v, %v; want 15 waiting", res, err)
	}
	// Seen again after the grace period, unchanged: adopted.
	later = later.Add(DefaultOrphanGrace)
	res, err = w.manager(w.srv.URL, cfg).Sweep(ctx, later, w.subnet)
	if err != nil || len(res.Adopted) != 1 || res.Adopted[0].RuleNumber != 15 || len(res.Removed) != 0 {
		t.Errorf("Sweep after the grace period = %+v, %v; want 15 adopted", res, err)
	}
	if v := w.tagValue(seenKey(15)); v != "" {
		t.Errorf("sighting of 15 left after adoption: %q", v)
	}
	st := checkConsistent(t, w, cfg)
	var left []string
	for _, b := range (&Manager{cfg: cfg}).blocks(st) {
		left = append(left, b.Target.String())
	}
	slices.Sort(left)
	want := []string{"192.0.2.15/32", "203.0.113.3/32", "203.0.113.4/32", "203.0.113.99/32"}
	if !slices.Equal(left, want) {
		t.Errorf("blocks after sweep %v, want %v", left, want)
	}
	md, _ := st.meta(15)
	if !md.Exp.Equal(later.Add(DefaultOrphanTTL)) || !strings.Contains(md.Reason, "adopted") {
		t.Errorf("adopted metadata %+v", md)
	}
	if v := w.tagValue("team"); v != "net" {
		t.Errorf("someone else's tag changed: %q", v)
	}
	// A sweep with nothing expired makes no change.
	res, err = w.manager(w.srv.URL, cfg).Sweep(ctx, later, w.nacl)
	if err != nil || len(res.Removed)+len(res.Adopted)+res.StaleTags != 0 {
		t.Errorf("second Sweep = %+v, %v", res, err)
	}
}

func (w *world) tagValue(key string) string {
	out, err := w.raw.DescribeNetworkAcls(ctxT(w.t), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.nacl}})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, t := range out.NetworkAcls[0].Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func TestMetaEncoding(t *testing.T) {
	long := strings.Repeat("ü; x=y ", 80)
	cases := []meta{
		{Exp: time.Unix(1767225600, 0).UTC(), Origin: policy.OriginCLI, CIDR: netip.MustParsePrefix("203.0.113.7/32"), Reason: "pop3 bruteforce; see https://a/?b=c&d"},
		{CIDR: netip.MustParsePrefix("2001:db8:1234:5678:9abc:def0:1234:5678/128"), Severity: 10, Reason: long},
	}
	for _, c := range cases {
		v := c.encode()
		if len(v) > maxTagValue {
			t.Errorf("value of %d bytes exceeds %d", len(v), maxTagValue)
		}
		got, err := decodeMeta(v)
		if err != nil {
			t.Fatalf("decode(%q): %v", v, err)
		}
		if !got.Exp.Equal(c.Exp) || got.CIDR != c.CIDR || got.Origin != c.Origin || got.Severity != c.Severity || !strings.HasPrefix(c.Reason, got.Reason) || got.Reason == "" {
			t.Errorf("round trip %+v → %q → %+v", c, v, got)
		}
	}
	for _, bad := range []string{"", "exp=1", "cidr=1.2.3.4/32", "exp=x;cidr=1.2.3.4/32", "exp=1;cidr=nope", "exp=1;cidr=1.2.3.4/32;reason=%zz"} {
		if _, err := decodeMeta(bad); err == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
	if _, ok := parseRuleKey("banshee:rule:x"); ok {
		t.Error("parseRuleKey accepted a non-number")
	}
	if n, ok := parseRuleKey(ruleKey(7)); !ok || n != 7 {
		t.Errorf("parseRuleKey(ruleKey(7)) = %d, %v", n, ok)
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(0, 0)
	var slept []time.Duration
	b := newBucket(5, 3, func() time.Time { return now })
	b.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil }
	for range 5 {
		if err := b.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// 3 from the burst, then one every 200ms.
	if len(slept) != 2 || slept[0] != 200*time.Millisecond || slept[1] != 200*time.Millisecond {
		t.Errorf("waits %v, want [200ms 200ms]", slept)
	}
	now = now.Add(10 * time.Second) // refills to the burst, no more
	slept = nil
	for range 4 {
		_ = b.wait(context.Background())
	}
	if len(slept) != 1 {
		t.Errorf("after a long pause: waits %v, want one", slept)
	}
}
