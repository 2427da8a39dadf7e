package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
)

// TestPlanReadsEC2: without --snapshot, plan decides against the world
// block would see (targets, security groups, VPC CIDRs, the NACL), and
// changes nothing.
func TestPlanReadsEC2(t *testing.T) {
	w := newAWSWorld(t)
	nacl := func() (entries, tags int) {
		out, err := w.raw.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.nacl}})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.NetworkAcls[0].Entries), len(out.NetworkAcls[0].Tags)
	}
	e0, t0 := nacl()

	// A flood on the instance: the NACL, with the rule number block would take.
	out, errs, code := runAWS(t, "plan", "198.51.100.9", "--instance", w.ins, "--port", "22/tcp", "--rate", "500", "--kind", "flood", "-o", "json")
	if code != 0 {
		t.Fatalf("plan --instance: exit %d, %s", code, errs)
	}
	var po engine.Result
	if err := json.Unmarshal([]byte(out), &po); err != nil || len(po.Decisions) != 1 {
		t.Fatalf("plan output %q: %v", out, err)
	}
	if d := po.Decisions[0]; d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock || d.NACLID != w.nacl || d.SubnetID != w.subnet || d.RuleNumber != 1 {
		t.Errorf("plan decision %+v, want a VPC block at %s rule 1", d, w.nacl)
	}

	// The same on a port no security group admits: skipped, naming the group.
	out, errs, code = runAWS(t, "plan", "198.51.100.9", "--instance", w.ins, "--port", "110/tcp", "-o", "json")
	if err := json.Unmarshal([]byte(out), &po); code != 0 || err != nil || len(po.Decisions) != 1 || po.Decisions[0].Action != policy.ActionSkip ||
		!strings.Contains(strings.Join(po.Decisions[0].Reasons, " "), w.ins) {
		t.Errorf("plan on an unadmitted port: exit %d (%s) %+v, want skip naming %s", code, errs, po.Decisions, w.ins)
	}

	// A VPC address named by subnet: refused (exit 3), as block would.
	_, errs, code = runAWS(t, "plan", "10.20.1.5", "--scope", "vpc", "--subnet", w.subnet)
	if code != 3 || !strings.Contains(errs, "refused") {
		t.Errorf("plan of a VPC address: exit %d (%s), want 3", code, errs)
	}
	// --scope vpc off EC2 with no target: exit 2, as block.
	if _, errs, code = runAWS(t, "plan", "203.0.113.7", "--scope", "vpc"); code != 2 || !strings.Contains(errs, "--instance or --subnet") {
		t.Errorf("plan --scope vpc without a target off EC2: exit %d (%s), want 2", code, errs)
	}
	// An unknown instance: exit 2 naming it.
	if _, errs, code = runAWS(t, "plan", "203.0.113.7", "--instance", "i-0123456789abcdef0"); code != 2 || !strings.Contains(errs, "i-0123456789abcdef0") {
		t.Errorf("plan --instance unknown: exit %d (%s), want 2", code, errs)
	}

	if e, tg := nacl(); e != e0 || tg != t0 {
		t.Errorf("plan changed the NACL: %d entries %d tags, was %d and %d", e, tg, e0, t0)
	}
	// What plan saw is what block does.
	out, errs, code = runAWS(t, "block", "198.51.100.9", "--instance", w.ins, "--port", "22/tcp", "--rate", "500", "--kind", "flood", "-o", "json")
	var bo engine.Result
	if err := json.Unmarshal([]byte(out), &bo); code != 0 || err != nil || len(bo.Decisions) != 1 || bo.Decisions[0].RuleNumber != 1 || bo.Decisions[0].NACLID != w.nacl {
		t.Errorf("block after plan: exit %d (%s) %+v", code, errs, bo.Decisions)
	}
}
