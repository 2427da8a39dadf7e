package engine

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// vpcDecision is a VPC decision as the placement makes it: a rule number,
// an aggregate, an eviction and merges of entries it carries.
func vpcDecision(target string) policy.Decision {
	agg := pfx("45.33.1.0/24")
	return policy.Decision{
		Target: pfx(target + "/32"), Scope: policy.ScopeVPC, Action: policy.ActionBlock, SubnetID: "subnet-1", NACLID: "acl-1", RuleNumber: 4,
		Aggregate: &agg, Evicts: &policy.Block{Target: pfx("203.0.113.9/32"), Scope: policy.ScopeVPC, NACLID: "acl-1", RuleNumber: 7},
		Merges:    []policy.Block{{Target: pfx("198.18.44.0/24"), Scope: policy.ScopeVPC, NACLID: "acl-1", RuleNumber: 2}},
		Instances: []string{"i-00000000000000001"}, Reasons: []string{"vpc: deny 45.33.1.0/24 at acl-1 rule 4"},
	}
}

// noNACL says whether a decision carries nothing of the NACL.
func noNACL(d policy.Decision) bool {
	return d.NACLID == "" && d.RuleNumber == 0 && d.Aggregate == nil && d.Evicts == nil && d.Merges == nil
}

// A VPC decision turned into a host decision keeps nothing of the NACL:
// no rule number, aggregate or eviction, and no merges of entries that
// would otherwise ride on it.
func TestToHostClearsTheNACLFields(t *testing.T) {
	d := vpcDecision("45.33.1.8")
	ToHost(&d, "no room")
	if d.Scope != policy.ScopeHost || d.SubnetID != "" || d.Instances != nil || !noNACL(d) {
		t.Errorf("ToHost = %+v; want a host decision without NACL fields", d)
	}
	if d.Reasons[0] != "host: fallback, no room" || len(d.Reasons) != 2 {
		t.Errorf("reasons %q; want the fallback first, the placement's after", d.Reasons)
	}
}

// fallBack of a decision the NACL had no room for, on this machine (a host
// block here) and elsewhere (not blocked): either way its merges go.
func TestFallBackClearsMerges(t *testing.T) {
	w := newTestWorld()
	ctx := context.Background()
	cause := errors.New("reserved range full")
	for _, tc := range []struct {
		name      string
		instance  string
		scope     policy.Scope
		notBlocks int
	}{
		{"this machine", "i-00000000000000001", policy.ScopeHost, 0},
		{"another instance", "i-00000000000000002", policy.ScopeNone, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &vpcSide{e: w.engine(true), self: "i-00000000000000001"}
			ds := []policy.Decision{vpcDecision("45.33.1.8")}
			atk := policy.Attack{Targets: []policy.Target{{InstanceID: tc.instance, SubnetID: "subnet-1"}}, TTL: time.Hour}
			nb := v.fallBack(ctx, ds, atk, map[netip.Prefix]error{ds[0].Target: cause})
			if len(nb) != tc.notBlocks || ds[0].Scope != tc.scope || !noNACL(ds[0]) {
				t.Errorf("fallBack = %+v, decision %+v; want scope %s, %d not blocked, no NACL fields", nb, ds[0], tc.scope, tc.notBlocks)
			}
		})
	}
}
