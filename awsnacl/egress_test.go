package awsnacl

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/banshee-project/banshee/policy"
)

// With nacl.egress, a deny also blocks the replies, which leave to the
// attacker's ephemeral port: an egress allow of the ephemeral range below
// the reserved range shadows the egress deny even though it does not
// include the attacked port, and an egress allow of a low port does not.
func TestEgressShadowIsCheckedOnEphemeralPorts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int32
		shadowed bool
	}{
		{"the ephemeral range", 1024, 65535, true},
		{"part of it", 32768, 60999, true},
		{"https only", 443, 443, false},
		{"the attacked port only", 22, 22, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := ctxT(t)
			cfg := defaultNACL()
			cfg.RuleMin, cfg.RuleMax, cfg.Egress = 5, 19, true
			in := &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(3), Egress: aws.Bool(true), Protocol: aws.String("6"),
				RuleAction: types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0"), PortRange: &types.PortRange{From: aws.Int32(tc.from), To: aws.Int32(tc.to)}}
			if _, err := w.raw.CreateNetworkAclEntry(ctx, in); err != nil {
				t.Fatal(err)
			}
			bs, err := w.manager(w.srv.URL, cfg).Block(ctx, []policy.Decision{w.vpcDecision("198.51.100.7", time.Hour)}, Request{Port: policy.Port{Proto: "tcp", From: 22, To: 22}})
			var se *ShadowError
			switch {
			case tc.shadowed && (!errors.As(err, &se) || se.Rule.RuleNumber != 3 || !se.Rule.Egress):
				t.Errorf("egress allow tcp %d-%d at 3: Block = %+v, %v; want a ShadowError naming egress rule 3", tc.from, tc.to, bs, err)
			case !tc.shadowed && (err != nil || len(bs) != 1):
				t.Errorf("egress allow tcp %d-%d at 3: Block = %+v, %v; want the block", tc.from, tc.to, bs, err)
			}
		})
	}
}

// egressDenies returns banshee's egress deny entries (reserved range).
func egressDenies(st *naclState, cfg policy.NACLConfig) []policy.NACLEntry {
	var out []policy.NACLEntry
	for _, e := range st.entries {
		if e.Egress && !e.Allow && e.RuleNumber >= cfg.RuleMin && e.RuleNumber <= cfg.RuleMax {
			out = append(out, e)
		}
	}
	return out
}

// checkPairs fails unless every ingress deny of the range has its egress
// twin (same number, same CIDR) and nothing else is there, and returns
// the ingress entries by CIDR.
func checkPairs(t *testing.T, st *naclState, cfg policy.NACLConfig) map[string]int {
	t.Helper()
	in, out := denies(st, cfg), egressDenies(st, cfg)
	got := map[string]int{}
	for _, e := range in {
		got[e.CIDR.String()] = e.RuleNumber
	}
	if len(in) != len(out) {
		t.Errorf("%d ingress denies, %d egress denies: %+v / %+v", len(in), len(out), in, out)
	}
	for _, e := range out {
		if n, ok := got[e.CIDR.String()]; !ok || n != e.RuleNumber {
			t.Errorf("egress deny %s at %d has no ingress twin (ingress %v)", e.CIDR, e.RuleNumber, got)
		}
	}
	return got
}

// With nacl.egress every deny is a pair, and merges keep it one: singles
// aggregated into their /24 (written in place of the lowest, the others
// deleted) and /24s widened into their /22 when the range is nearly full
// (merges carried by a decision for another source) rewrite and delete
// both directions, never leaving an egress deny without its ingress twin.
func TestEgressMergesKeepPairs(t *testing.T) {
	w := newWorld(t)
	cfg := policy.Default()
	cfg.NACL.Egress = true
	vpc := func(srcs ...string) []policy.Decision {
		t.Helper()
		atk := policy.Attack{Scope: policy.ScopeVPC, Kind: policy.KindManual, Reason: "botnet", Port: policy.Port{Proto: "tcp", From: 22, To: 22}}
		for _, s := range srcs {
			atk.Sources = append(atk.Sources, addr(s))
		}
		ds, _, err := decideAndBlock(t, w, cfg, nil, atk)
		if err != nil || policy.AnyRefused(ds) {
			t.Fatalf("block %v: %v; decisions %+v", srcs, err, ds)
		}
		return ds
	}
	// Singles one by one: the third makes the /24 one pair.
	for _, s := range []string{"45.33.1.1", "45.33.1.8", "45.33.1.9"} {
		vpc(s)
	}
	got := checkPairs(t, checkConsistent(t, w, cfg.NACL), cfg.NACL)
	if len(got) != 1 || got["45.33.1.0/24"] == 0 {
		t.Fatalf("after three singles of 45.33.1.0/24: %v, want that /24 alone", got)
	}
	// Two more /24s of the same /22, then singles of other networks until
	// the range is nearly full: the /24s are widened into their /22 by
	// merges that a decision for another source carries.
	vpc("45.33.0.3", "45.33.0.4", "45.33.0.5", "45.33.2.3", "45.33.2.4", "45.33.2.5")
	if got := checkPairs(t, checkConsistent(t, w, cfg.NACL), cfg.NACL); len(got) != 3 {
		t.Fatalf("three /24s: %v", got)
	}
	var fill []string
	for i := range 14 {
		fill = append(fill, fmt.Sprintf("198.%d.3.7", 100+3*i)) // one a /16: nothing to widen
	}
	if !slices.ContainsFunc(vpc(fill...), func(d policy.Decision) bool { return len(d.Merges) > 0 }) {
		t.Errorf("no decision of the fill carries merges: the widening was not exercised")
	}
	got = checkPairs(t, checkConsistent(t, w, cfg.NACL), cfg.NACL)
	if got["45.33.0.0/22"] == 0 || len(got) != 15 {
		t.Errorf("after the fill: %v, want 45.33.0.0/22 and the 14 singles", got)
	}
	for _, c := range []string{"45.33.0.0/24", "45.33.1.0/24", "45.33.2.0/24"} {
		if _, ok := got[c]; ok {
			t.Errorf("%s still there beside its /22", c)
		}
	}
}
