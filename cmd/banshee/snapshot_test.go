package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/banshee-project/banshee/policy"
)

// planOutput is the part of plan -o json these tests read.
type planOutput struct {
	Decisions []policy.Decision `json:"decisions"`
}

// The example snapshot in testdata (the one the README points at) is what
// plan --snapshot reads, and it decides as the world it describes says.
func TestPlanAgainstTheExampleSnapshot(t *testing.T) {
	const ins1, ins2, subnet, acl = "i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60aaa", "acl-0a1b2c3d4e5f60bbb"
	out, stderr, code := runPlan(t, "", "", "plan", "174.132.223.252", "203.0.113.9", "203.0.113.50", "--port", "110/tcp",
		"--instance", ins1, "--instance", ins2, "--subnet", subnet, "--snapshot", "testdata/world.json", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got planOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Decisions) != 3 {
		t.Fatalf("plan output %q: %v", out, err)
	}
	for i, want := range []struct {
		target string
		rule   int
		ttl    int64
		reason string
	}{
		{"174.132.223.252/32", 2, 3600, "vpc: reaches 2 instances in " + subnet},
		{"203.0.113.9/32", 3, 7200, "repeat offender: 1 prior offence(s)"}, // its past offence doubles the TTL
		{"203.0.113.50/32", 4, 3600, "vpc: deny 203.0.113.50 at " + acl + " rule 4"},
	} {
		d := got.Decisions[i]
		if d.Target.String() != want.target || d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock || d.NACLID != acl ||
			d.RuleNumber != want.rule || d.TTLSeconds != want.ttl || !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.HasPrefix(r, want.reason) }) {
			t.Errorf("decision %d: %+v; want %s vpc block at %s rule %d for %ds with a reason %q", i, d, want.target, acl, want.rule, want.ttl, want.reason)
		}
	}
	// The office network a security group whitelists is refused.
	_, stderr, code = runPlan(t, "", "", "plan", "198.51.100.7", "--port", "22/tcp", "--instance", ins1, "--subnet", subnet, "--snapshot", "testdata/world.json")
	if code != exitRefused {
		t.Errorf("whitelisted office address: exit %d, %s", code, stderr)
	}
}

func TestSnapshotBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"snapshot", "--scope", "edge"},
		{"snapshot", "--instance", "web-1", "--scope", "vpc"},
		{"snapshot", "extra"},
	} {
		_, stderr, code := runPlan(t, "", "", args...)
		if code != exitUsage || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line", args, code, stderr)
		}
	}
}

// snapshot exports the live world (moto) in the format plan --snapshot
// reads: planning against the file decides exactly as planning against
// EC2 does.
func TestSnapshotRoundTripsThroughPlan(t *testing.T) {
	w := newAWSWorld(t)
	if _, errs, code := runAWS(t, "block", "203.0.113.7", "--scope", "vpc", "--subnet", w.subnet, "--reason", "pop3 bruteforce", "--ttl", "2h"); code != 0 {
		t.Fatalf("block: exit %d, %s", code, errs)
	}
	out, errs, code := runAWS(t, "snapshot", "--scope", "vpc", "--instance", w.ins)
	if code != 0 {
		t.Fatalf("snapshot: exit %d, %s", code, errs)
	}
	snap, err := policy.ReadSnapshot(strings.NewReader(out))
	if err != nil {
		t.Fatalf("the snapshot does not read back: %v\n%s", err, out)
	}
	if len(snap.SGRules[w.ins]) == 0 || len(snap.VPCCIDRs) == 0 || snap.NACLs[w.subnet].ID != w.nacl || len(snap.Blocks) != 1 ||
		snap.Blocks[0].Target.String() != "203.0.113.7/32" || snap.Blocks[0].Reason != "pop3 bruteforce" || snap.Now.IsZero() {
		t.Fatalf("snapshot lacks part of the world:\n%s", out)
	}
	file := writeFile(t, "world.json", out)
	args := []string{"plan", "203.0.113.7", "198.51.100.9", "10.20.1.5", "--port", "22/tcp", "--rate", "500", "--ttl", "1h", "-o", "json"}
	live, errs, liveCode := runAWS(t, append(args, "--instance", w.ins)...)
	offline, errs2, offCode := runAWS(t, append(args, "--instance", w.ins, "--subnet", w.subnet, "--snapshot", file)...)
	if liveCode != offCode {
		t.Fatalf("exit live %d (%s), offline %d (%s)", liveCode, errs, offCode, errs2)
	}
	var a, b planOutput
	if json.Unmarshal([]byte(live), &a) != nil || json.Unmarshal([]byte(offline), &b) != nil || len(a.Decisions) != 3 || len(b.Decisions) != 3 {
		t.Fatalf("plan outputs:\nlive %s\noffline %s", live, offline)
	}
	for i := range a.Decisions {
		x, y := a.Decisions[i], b.Decisions[i]
		if x.Target != y.Target || x.Scope != y.Scope || x.Action != y.Action || x.NACLID != y.NACLID || x.RuleNumber != y.RuleNumber || !slices.Equal(x.Reasons, y.Reasons) {
			t.Errorf("decision %d differs:\nlive    %+v\noffline %+v", i, x, y)
		}
	}
	if d := a.Decisions[0]; d.Action != policy.ActionSkip || len(d.Reasons) == 0 || !strings.Contains(d.Reasons[0], "already denied by "+w.nacl) {
		t.Errorf("the source already denied: %+v", d)
	}
	if d := a.Decisions[1]; d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock || d.NACLID != w.nacl || d.RuleNumber == 0 {
		t.Errorf("the flood: %+v", d)
	}
	if d := a.Decisions[2]; d.Action != policy.ActionRefuse {
		t.Errorf("an address of the VPC: %+v, want refused", d)
	}
}
