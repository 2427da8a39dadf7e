package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
)

// TestDoorsAgree drives one flood on tcp/22 of this instance through two
// doors, the CLI's block and watch's edge (both the engine), against moto,
// and asserts the same decision and the same network ACL entry; a bare
// unblock then lifts either without a scope.
func TestDoorsAgree(t *testing.T) {
	w := newAWSWorld(t)
	host := useFakeHost(t) // never the firewall of the machine running the test
	onEC2 = func() bool { return true }
	localIdentity = func(context.Context, ...func(*imds.Options)) (awsnacl.Identity, error) {
		return awsnacl.Identity{InstanceID: w.ins, Region: mototest.Region}, nil
	}
	atk := func(src string) policy.Attack {
		return policy.Attack{Sources: []netip.Prefix{netip.MustParsePrefix(src + "/32")}, Port: policy.Port{Proto: "tcp", From: 22, To: 22},
			Rate: 500, Kind: policy.KindFlood, Origin: policy.OriginCLI, Reason: "flood", TTL: 2 * time.Hour}
	}

	// The CLI door.
	out, errs, code := runAWS(t, "block", "198.51.100.21", "--port", "22/tcp", "--rate", "500", "--kind", "flood", "--reason", "flood", "--ttl", "2h", "-o", "json")
	if code != 0 {
		t.Fatalf("block: exit %d %s", code, errs)
	}
	var cli engine.Result
	if err := json.Unmarshal([]byte(out), &cli); err != nil || len(cli.Decisions) != 1 {
		t.Fatalf("block output %q: %v", out, err)
	}

	// watch's door: the edge of this instance, host blocks left to watch.
	edge, err := newEC2Edge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := policy.Default()
	cfg.NACL.MaxBackoff = policy.Duration(100 * time.Millisecond)
	ds, err := edge.Enforce(context.Background(), cfg, atk("198.51.100.22"), policy.Snapshot{Now: time.Now().UTC()})
	if err != nil || len(ds) != 1 {
		t.Fatalf("watch's edge: %+v %v", ds, err)
	}
	a, b := cli.Decisions[0], ds[0]
	if a.Scope != policy.ScopeVPC || a.Scope != b.Scope || a.Action != b.Action || a.NACLID != b.NACLID || a.NACLID != w.nacl || a.TTLSeconds != b.TTLSeconds || a.Reasons[0] != b.Reasons[0] {
		t.Errorf("the doors disagree:\n cli   %+v\n watch %+v", a, b)
	}
	denies := w.denies(t)
	if denies["198.51.100.21/32"] != a.RuleNumber || denies["198.51.100.22/32"] != b.RuleNumber || a.RuleNumber == b.RuleNumber {
		t.Errorf("entries %v, decisions rule %d and %d", denies, a.RuleNumber, b.RuleNumber)
	}

	// A bare unblock lifts both, wherever they are.
	if _, errs, code := runAWS(t, "unblock", "198.51.100.21", "198.51.100.22"); code != 0 {
		t.Fatalf("unblock: exit %d %s", code, errs)
	}
	if got := w.denies(t); len(got) != 0 || len(host.Kernel) != 0 {
		t.Errorf("after a bare unblock: %v, host %v", got, host.Kernel)
	}
}
