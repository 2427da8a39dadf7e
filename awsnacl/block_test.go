package awsnacl

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/policy"
)

func TestBlockSubnet(t *testing.T) {
	w := newWorld(t)
	m := w.manager(w.srv.URL, defaultNACL())
	ctx := ctxT(t)
	bs, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.7/32", time.Hour), w.vpcDecision("2001:db8::7/128", time.Hour)}, Request{Origin: policy.OriginCLI, Reason: "pop3 bruteforce; see https://x/?a=1"})
	if err != nil {
		t.Fatalf("Block: %v", err)
	}
	if len(bs) != 2 {
		t.Fatalf("Block returned %d blocks, want 2: %+v", len(bs), bs)
	}
	st := w.read()
	for _, b := range bs {
		e, ok := st.entry(b.RuleNumber, false)
		if !ok || e.Allow || e.CIDR != b.Target {
			t.Errorf("rule %d: entry %+v, want a deny for %s", b.RuleNumber, e, b.Target)
		}
		md, ok := st.meta(b.RuleNumber)
		if !ok || md.Reason != "pop3 bruteforce; see https://x/?a=1" || md.Origin != policy.OriginCLI || md.Exp.IsZero() {
			t.Errorf("rule %d: metadata %+v (ok %v)", b.RuleNumber, md, ok)
		}
		if b.RuleNumber < 1 || b.RuleNumber > 19 {
			t.Errorf("rule %d outside the reserved range", b.RuleNumber)
		}
	}
	if bs[0].RuleNumber == bs[1].RuleNumber {
		t.Errorf("both blocks got rule %d", bs[0].RuleNumber)
	}
	// Idempotent: blocking again changes nothing and reports the same rule.
	again, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.7/32", time.Hour)}, Request{Origin: policy.OriginCLI})
	if err != nil || len(again) != 1 || again[0].RuleNumber != bs[0].RuleNumber {
		t.Fatalf("second Block = %+v, %v; want rule %d again", again, err, bs[0].RuleNumber)
	}
	if n := len(w.entries()); n != len(st.entries) {
		t.Errorf("second Block changed the entry count: %d → %d", len(st.entries), n)
	}
}

// A longer block of a source that is already denied extends the entry and
// its tag names the later block (reason, origin), keeping the severity up.
func TestReblockExtendsAndRenamesTheBlock(t *testing.T) {
	w := newWorld(t)
	m := w.manager(w.srv.URL, defaultNACL())
	ctx := ctxT(t)
	first, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.8/32", time.Hour)}, Request{Origin: policy.OriginCLI, Reason: "first", Severity: 7})
	if err != nil || len(first) != 1 {
		t.Fatalf("first Block: %+v %v", first, err)
	}
	again, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.8/32", 2*time.Hour)}, Request{Origin: policy.OriginLambda, Reason: "alarm x, repeat 1", Severity: 3})
	if err != nil || len(again) != 1 || again[0].RuleNumber != first[0].RuleNumber {
		t.Fatalf("second Block: %+v %v; want the same rule %d", again, err, first[0].RuleNumber)
	}
	md, ok := w.read().meta(first[0].RuleNumber)
	if !ok || md.Reason != "alarm x, repeat 1" || md.Origin != policy.OriginLambda || md.Severity != 7 || !md.Exp.After(time.Now().Add(90*time.Minute)) {
		t.Errorf("metadata after the longer block: %+v", md)
	}
}

// Unblock removes banshee's entries only: another operator's egress entry
// with the same rule number (an allow, or a deny while banshee does not
// manage egress) stays.
func TestUnblockLeavesOthersEgressEntries(t *testing.T) {
	for _, allow := range []bool{true, false} {
		w := newWorld(t)
		ctx := ctxT(t)
		cfg := defaultNACL()
		bs, err := w.manager(w.srv.URL, cfg).Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.5", time.Hour)}, Request{})
		if err != nil || len(bs) != 1 {
			t.Fatalf("Block = %+v, %v", bs, err)
		}
		n := bs[0].RuleNumber
		w.addEntry(n, true, allow, "10.99.0.0/16") // someone else's, egress, same number
		gone, err := w.manager(w.srv.URL, cfg).Unblock(ctx, w.nacl, []netip.Prefix{netip.MustParsePrefix("203.0.113.5/32")})
		if err != nil || len(gone) != 1 {
			t.Fatalf("Unblock = %+v, %v", gone, err)
		}
		st := w.read()
		if e, ok := st.entry(n, true); !ok || e.Allow != allow || e.CIDR != netip.MustParsePrefix("10.99.0.0/16") {
			t.Errorf("egress entry %d (allow %v, not banshee's) after Unblock: %+v, %v", n, allow, e, ok)
		}
		if _, ok := st.entry(n, false); ok {
			t.Errorf("ingress deny %d still there", n)
		}
		if _, ok := st.tags[n]; ok {
			t.Errorf("metadata of %d still there: %q", n, st.tags[n])
		}
	}
}

// Two writers that read the same NACL may not together exceed the quota,
// even with entries of the family in the range above the window.
func TestQuotaWindowRace(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL() // 1..19, quota 20; the default NACL has allow 100 + deny 32767
	w.addEntry(18, false, false, "192.0.2.18/32")
	w.addEntry(19, false, false, "192.0.2.19/32")
	for n := 1; n <= 15; n++ {
		w.addEntry(n, false, false, fmt.Sprintf("198.51.100.%d/32", n))
	}
	a, b := w.manager(w.srv.URL, cfg), w.manager(w.srv.URL, cfg)
	for _, m := range []*Manager{a, b} {
		if _, err := m.NACLFor(ctx, w.subnet); err != nil { // both read 19 entries
			t.Fatal(err)
		}
	}
	da := w.vpcDecision("203.0.113.1", time.Hour)
	da.RuleNumber = 16
	db := w.vpcDecision("203.0.113.2", time.Hour)
	db.RuleNumber = 17
	ba, ea := a.Block(ctx, []policy.Decision{da}, Request{})
	bb, eb := b.Block(ctx, []policy.Decision{db}, Request{})
	if n := familyCount(w.entries(), true, false); n > cfg.Quota {
		t.Errorf("%d IPv4 ingress entries, over the quota %d", n, cfg.Quota)
	}
	if len(ba)+len(bb) != 1 || !errors.Is(errors.Join(ea, eb), ErrNoRoom) {
		t.Errorf("blocks %+v / %+v, errors %v / %v: want one block and one ErrNoRoom", ba, bb, ea, eb)
	}
}

func TestWindowEnd(t *testing.T) {
	m := New(nil, policy.NACLConfig{RuleMin: 1, RuleMax: 19, Quota: 20})
	st := &naclState{}
	add := func(n int, cidr string) {
		st.entries = append(st.entries, policy.NACLEntry{RuleNumber: n, CIDR: netip.MustParsePrefix(cidr)})
	}
	add(100, "0.0.0.0/0")
	add(32767, "0.0.0.0/0")
	if got := m.windowEnd(st, true, false, 18); got != 18 {
		t.Errorf("empty range: end %d, want 18", got)
	}
	add(19, "192.0.2.19/32")
	add(18, "192.0.2.18/32")
	add(3, "2001:db8::/64") // another family: not counted
	if got := m.windowEnd(st, true, false, 18); got != 16 {
		t.Errorf("two entries above: end %d, want 16 (16 numbers + 2 above = 18)", got)
	}
	add(17, "192.0.2.17/32")
	if got := m.windowEnd(st, true, false, 18); got != 15 {
		t.Errorf("entries at 17-19: end %d, want 15 (15 numbers + 3 above = 18)", got)
	}
	if got := m.windowEnd(st, true, false, 2); got != 0 {
		t.Errorf("no room: end %d, want 0 (below rule_min)", got)
	}
}

// An existing deny that a lower allow bypasses for the attacked port does
// not count as the block: a new one goes below the allow, or Block says
// it cannot.
func TestCoveringDenyShadowed(t *testing.T) {
	allow443 := func(w *world, n int) {
		t.Helper()
		if _, err := w.raw.CreateNetworkAclEntry(ctxT(t), &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(n), Egress: aws.Bool(false),
			Protocol: aws.String("6"), RuleAction: types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0"), PortRange: &types.PortRange{From: aws.Int32(443), To: aws.Int32(443)}}); err != nil {
			t.Fatal(err)
		}
	}
	tcp := func(p uint16) Request { return Request{Port: policy.Port{Proto: "tcp", From: p, To: p}} }

	// The whole range sits above the allow: ShadowError.
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	cfg.RuleMin, cfg.RuleMax = 10, 19
	allow443(w, 5)
	if _, err := w.manager(w.srv.URL, cfg).Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.5", time.Hour)}, tcp(22)); err != nil {
		t.Fatal(err)
	}
	var se *ShadowError
	_, err := w.manager(w.srv.URL, cfg).Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.5", time.Hour)}, tcp(443))
	if !errors.As(err, &se) || se.Rule.RuleNumber != 5 {
		t.Errorf("block for tcp/443 behind allow 5: %v, want a ShadowError naming rule 5", err)
	}

	// Room below the allow: a new deny there.
	w = newWorld(t)
	cfg = defaultNACL()
	allow443(w, 10)
	w.addEntry(15, false, false, "203.0.113.6/32")
	w.setTag(ruleKey(15), meta{Exp: time.Now().Add(time.Hour).UTC().Truncate(time.Second), CIDR: netip.MustParsePrefix("203.0.113.6/32")}.encode())
	bs, err := w.manager(w.srv.URL, cfg).Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.6", time.Hour)}, tcp(443))
	if err != nil || len(bs) != 1 || bs[0].RuleNumber >= 10 {
		t.Fatalf("block for tcp/443 covered by 15 behind allow 10: %+v, %v; want a new rule below 10", bs, err)
	}
	checkConsistent(t, w, cfg)
}

// A Manager that reads a NACL again while writing (a number taken by
// another writer) keeps one state of it: what it wrote after the re-read
// is what its later calls see.
func TestRereadKeepsCachedState(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	m := w.manager(w.srv.URL, cfg)
	if _, err := m.NACLFor(ctx, w.subnet); err != nil {
		t.Fatal(err)
	}
	w.addEntry(1, false, false, "192.0.2.1/32") // another writer takes 1 after m read
	bs, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.8", time.Hour)}, Request{Origin: policy.OriginCLI, Reason: "r"})
	if err != nil || len(bs) != 1 || bs[0].RuleNumber != 2 {
		t.Fatalf("Block = %+v, %v; want rule 2 after 1 was taken", bs, err)
	}
	list, err := m.List(ctx, w.subnet) // from m's cache
	if err != nil || !slices.ContainsFunc(list, func(b policy.Block) bool { return b.RuleNumber == 2 && b.Reason == "r" && b.Origin == policy.OriginCLI }) {
		t.Errorf("List from the same Manager = %+v, %v; want rule 2 with its metadata", list, err)
	}
	before := len(w.entries())
	again, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.8", time.Hour)}, Request{})
	if err != nil || len(again) != 1 || again[0].RuleNumber != 2 || len(w.entries()) != before {
		t.Errorf("second Block = %+v, %v (%d → %d entries); want rule 2 again, nothing new", again, err, before, len(w.entries()))
	}
}

// Evicting an entry that is about to expire (a sweep may be deleting it)
// takes a free number when there is one and leaves the old entry to the
// sweep; in a full range it rewrites the entry in place.
func TestEvictExpiringVictim(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	cfg.RuleMin, cfg.RuleMax = 1, 3
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *Manager {
		return w.manager(w.srv.URL, cfg, WithClock(func() time.Time { return t0.Add(d) }))
	}
	bs, err := at(0).Block(ctx, []policy.Decision{w.vpcDecision("192.0.2.1", time.Hour), w.vpcDecision("192.0.2.2", 2*time.Hour), w.vpcDecision("192.0.2.3", 3*time.Hour)}, Request{})
	if err != nil || len(bs) != 3 {
		t.Fatalf("filling the range: %+v, %v", bs, err)
	}
	evict := func(m *Manager, victim policy.Block, src string) []policy.Block {
		t.Helper()
		d := w.vpcDecision(src, time.Hour)
		d.Evicts, d.RuleNumber = &victim, victim.RuleNumber
		got, err := m.Block(ctx, []policy.Decision{d}, Request{})
		if err != nil || len(got) != 1 {
			t.Fatalf("evicting %s for %s: %+v, %v", victim.Target, src, got, err)
		}
		return got
	}
	// Full: rule 1 (expired) is rewritten in place.
	if got := evict(at(90*time.Minute), bs[0], "203.0.113.1"); got[0].RuleNumber != bs[0].RuleNumber {
		t.Errorf("full range: new block at %d, want %d in place", got[0].RuleNumber, bs[0].RuleNumber)
	}
	// A free number: rule 2 (expired) stays for the sweep, the new deny
	// goes to the free 3.
	if _, err := at(90*time.Minute).Unblock(ctx, w.nacl, []netip.Prefix{bs[2].Target}); err != nil {
		t.Fatal(err)
	}
	if got := evict(at(150*time.Minute), bs[1], "203.0.113.2"); got[0].RuleNumber != bs[2].RuleNumber {
		t.Errorf("with a free number: new block at %d, want the free %d", got[0].RuleNumber, bs[2].RuleNumber)
	}
	st := checkConsistent(t, w, cfg)
	if e, _ := st.entry(bs[1].RuleNumber, false); e.CIDR != bs[1].Target {
		t.Errorf("expiring victim %d = %+v, want it left for the sweep", bs[1].RuleNumber, e)
	}
}
