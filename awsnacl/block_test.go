package awsnacl

import (
	"errors"
	"net/netip"
	"testing"
	"time"

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
	_ = netip.Prefix{}
	_ = errors.New
}
