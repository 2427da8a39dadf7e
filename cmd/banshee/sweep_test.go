package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/banshee-project/banshee/awsnacl"
)

// A deny of banshee's deleted by someone else (a Terraform apply of an
// aws_default_network_acl does this) is named by sweep as vanished, in
// text as in JSON, before its metadata goes.
func TestSweepNamesVanishedBlocks(t *testing.T) {
	w := newAWSWorld(t)
	for _, tc := range []struct {
		target string
		json   bool
	}{{"203.0.113.50", false}, {"203.0.113.51", true}} {
		if _, errs, code := runAWS(t, "block", tc.target, "--scope", "vpc", "--subnet", w.subnet, "--ttl", "2h", "--reason", "scan"); code != 0 {
			t.Fatalf("block %s: exit %d, %s", tc.target, code, errs)
		}
		n, ok := w.denies(t)[tc.target+"/32"]
		if !ok {
			t.Fatalf("%s not denied", tc.target)
		}
		if _, err := w.raw.DeleteNetworkAclEntry(context.Background(), &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: aws.Int32(int32(n)), Egress: aws.Bool(false)}); err != nil {
			t.Fatal(err)
		}
		args := []string{"sweep", "--subnet", w.subnet}
		if tc.json {
			args = append(args, "-o", "json")
		}
		out, errs, code := runAWS(t, args...)
		if code != 0 {
			t.Fatalf("sweep: exit %d, %q, %s", code, out, errs)
		}
		if tc.json {
			var so awsnacl.SweepResult
			if err := json.Unmarshal([]byte(out), &so); err != nil || len(so.Vanished) != 1 || so.Vanished[0].Target.String() != tc.target+"/32" {
				t.Errorf("sweep -o json = %q (%v); want %s vanished", out, err, tc.target)
			}
			continue
		}
		if !strings.Contains(out, "1 block(s) vanished") || !strings.Contains(out, tc.target) || !strings.Contains(out, w.nacl+" #") || !strings.Contains(out, "scan") {
			t.Errorf("sweep text output %q: want %s named as vanished with its ACL, rule and reason", out, tc.target)
		}
	}
}
