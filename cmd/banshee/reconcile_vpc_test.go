package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// A deny of banshee's deleted by hand before its expiry: list shows it
// missing, reconcile re-creates it from its tags (same rule number, same
// expiry and reason), and list is clean again.
func TestReconcileRecreatesVanishedDeny(t *testing.T) {
	w := newAWSWorld(t)
	if _, errs, code := runAWS(t, "block", "203.0.113.60", "--scope", "vpc", "--subnet", w.subnet, "--ttl", "2h", "--reason", "scan"); code != 0 {
		t.Fatalf("block: exit %d, %s", code, errs)
	}
	n, ok := w.denies(t)["203.0.113.60/32"]
	if !ok {
		t.Fatal("203.0.113.60 not denied")
	}
	if _, err := w.raw.DeleteNetworkAclEntry(context.Background(), &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: aws.Int32(int32(n)), Egress: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	type listed struct {
		Blocks []struct {
			Target     string `json:"target"`
			Drift      string `json:"drift"`
			Reason     string `json:"reason"`
			RuleNumber int    `json:"rule_number"`
		} `json:"blocks"`
	}
	list := func(step string) listed {
		t.Helper()
		out, errs, code := runAWS(t, "list", "--scope", "vpc", "--subnet", w.subnet, "-o", "json")
		var l listed
		if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 {
			t.Fatalf("%s: list exit %d, %q (%v), %s", step, code, out, err, errs)
		}
		return l
	}
	if l := list("deleted"); len(l.Blocks) != 1 || l.Blocks[0].Target != "203.0.113.60/32" || l.Blocks[0].Drift != "missing" {
		t.Fatalf("list after the deletion: %+v, want 203.0.113.60 missing", l.Blocks)
	}
	out, errs, code := runAWS(t, "reconcile", "--scope", "vpc", "--subnet", w.subnet)
	if code != 0 || !strings.Contains(out, "re-created: 203.0.113.60 in "+w.nacl) {
		t.Fatalf("reconcile: exit %d, %q, %s; want 203.0.113.60 named as re-created", code, out, errs)
	}
	if got, ok := w.denies(t)["203.0.113.60/32"]; !ok || got != n {
		t.Errorf("after reconcile: denies %v, want 203.0.113.60 at rule %d again", w.denies(t), n)
	}
	l := list("reconciled")
	if len(l.Blocks) != 1 || l.Blocks[0].Drift != "" || l.Blocks[0].Reason != "scan" || l.Blocks[0].RuleNumber != n {
		t.Errorf("list after reconcile: %+v, want 203.0.113.60 in force at rule %d, reason scan, no drift", l.Blocks, n)
	}
}
