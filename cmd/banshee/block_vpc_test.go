package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/cmd/internal/engine/enginetest"
	"github.com/banshee-project/banshee/policy"
)

// useFakeHost stands in for this machine's firewall: a test never changes
// the firewall of the machine running it.
func useFakeHost(t *testing.T) *enginetest.Host {
	f := enginetest.NewHost(time.Now)
	old := openHost
	openHost = func(context.Context) (engine.Host, error) { return f, nil }
	t.Cleanup(func() { openHost = old })
	return f
}

// raceFill puts a proxy in front of the world's moto whose next
// CreateNetworkAclEntry after arm is preceded by another writer filling
// every rule number of the reserved range: the NACL had room when banshee
// decided and has none when it writes. arm first empties the range again.
func raceFill(t *testing.T, w *awsWorld) (arm func()) {
	t.Helper()
	srv := &mototest.Server{URL: os.Getenv("AWS_ENDPOINT_URL")}
	var mu sync.Mutex
	armed, filled := false, false
	p := srv.Proxy(t, mototest.Faults{Respond: func(action string, _ url.Values) (int, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if action != "CreateNetworkAclEntry" || !armed {
			return 0, "", false
		}
		armed, filled = false, true
		for n := 1; n <= 19; n++ {
			if _, err := w.raw.CreateNetworkAclEntry(context.Background(), &ec2.CreateNetworkAclEntryInput{
				NetworkAclId: aws.String(w.nacl), RuleNumber: aws.Int32(int32(n)), Egress: aws.Bool(false), Protocol: aws.String("-1"),
				RuleAction: types.RuleActionDeny, CidrBlock: aws.String(fmt.Sprintf("192.0.2.%d/32", n)),
			}); err != nil {
				t.Errorf("filling rule %d: %v", n, err)
			}
		}
		return 0, "", false
	}})
	mototest.Env(t, p.URL)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for n := 1; n <= 19 && filled; n++ {
			if _, err := w.raw.DeleteNetworkAclEntry(context.Background(), &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: aws.Int32(int32(n)), Egress: aws.Bool(false)}); err != nil {
				t.Errorf("emptying rule %d: %v", n, err)
			}
		}
		armed, filled = true, false
	}
}

// TestBlockNoRoomAtWrite: a NACL that fills up between the decision and
// the write never drops a target silently. Named by subnet only, or for
// another instance, the target is reported not blocked (exit 1, JSON
// not_blocked); on the instance itself, it falls back to a host block here.
func TestBlockNoRoomAtWrite(t *testing.T) {
	w := newAWSWorld(t)
	arm := raceFill(t, w)
	host := useFakeHost(t)

	arm()
	out, errs, code := runAWS(t, "block", "203.0.113.50", "--scope", "vpc", "--subnet", w.subnet, "--reason", "race", "-o", "json")
	if code != 1 || !strings.Contains(errs, "not blocked") || !strings.Contains(errs, "203.0.113.50") || !strings.Contains(errs, "no room") {
		t.Fatalf("block --subnet into a NACL filled meanwhile: exit %d (%s), want 1 naming the target and the lack of room", code, errs)
	}
	var bo engine.Result
	if err := json.Unmarshal([]byte(out), &bo); err != nil || len(bo.NotBlocked) != 1 || bo.NotBlocked[0].Target.String() != "203.0.113.50/32" {
		t.Fatalf("output %q (%v): want not_blocked naming 203.0.113.50", out, err)
	}
	if d := bo.Decisions[0]; d.NACLID != "" || d.RuleNumber != 0 || !strings.HasPrefix(d.Reasons[0], "not blocked: ") {
		t.Errorf("decision %+v: want no rule and the reason first", d)
	}
	if _, ok := w.denies(t)["203.0.113.50/32"]; ok || len(host.Kernel) != 0 {
		t.Errorf("entries %v, host %v: want nothing for 203.0.113.50", w.denies(t), host.Kernel)
	}

	// On the instance itself: the same race falls back to this host.
	other, err := w.raw.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(w.subnet), SecurityGroupIds: []string{w.sg}})
	if err != nil {
		t.Fatal(err)
	}
	oid := aws.ToString(other.Instances[0].InstanceId)
	onEC2 = func() bool { return true }
	localIdentity = func(context.Context, ...func(*imds.Options)) (awsnacl.Identity, error) {
		return awsnacl.Identity{InstanceID: w.ins, Region: mototest.Region}, nil
	}
	arm()
	out, errs, code = runAWS(t, "block", "203.0.113.51", "--scope", "vpc", "--reason", "race", "-o", "json")
	if code != 0 {
		t.Fatalf("block on the instance into a NACL filled meanwhile: exit %d (%s)", code, errs)
	}
	bo = engine.Result{}
	if err := json.Unmarshal([]byte(out), &bo); err != nil || len(bo.Decisions) != 1 || len(bo.NotBlocked) != 0 || bo.Added != 1 {
		t.Fatalf("output %q (%v)", out, err)
	}
	if d := bo.Decisions[0]; d.Scope != policy.ScopeHost || d.Action != policy.ActionBlock || d.NACLID != "" || !strings.Contains(d.Reasons[0], "fallback") {
		t.Errorf("decision %+v: want a host block saying it is the fallback", d)
	}
	if e, ok := host.Kernel[netip.MustParsePrefix("203.0.113.51/32")]; !ok || e.Origin != string(policy.OriginCLI) || e.Reason != "race" {
		t.Errorf("host entries %v: want 203.0.113.51 from the CLI", host.Kernel)
	}
	if _, ok := w.denies(t)["203.0.113.51/32"]; ok {
		t.Errorf("203.0.113.51 in the NACL too: %v", w.denies(t))
	}

	// A plain host decision on the instance itself lands on this host.
	out, errs, code = runAWS(t, "block", "203.0.113.53", "-o", "json")
	bo = engine.Result{}
	if err := json.Unmarshal([]byte(out), &bo); code != 0 || err != nil || len(bo.Decisions) != 1 || bo.Decisions[0].Scope != policy.ScopeHost {
		t.Errorf("block on the instance: exit %d (%s) %q", code, errs, out)
	}
	if _, ok := host.Kernel[netip.MustParsePrefix("203.0.113.53/32")]; !ok {
		t.Errorf("host entries %v: want 203.0.113.53", host.Kernel)
	}

	// Another instance than this one: not blocked, exit 1.
	arm()
	_, errs, code = runAWS(t, "block", "203.0.113.52", "--scope", "vpc", "--instance", oid)
	if code != 1 || !strings.Contains(errs, "203.0.113.52") || !strings.Contains(errs, oid) {
		t.Errorf("block --instance other into a full NACL: exit %d (%s), want 1 naming the target and %s", code, errs, oid)
	}
	if _, ok := host.Kernel[netip.MustParsePrefix("203.0.113.52/32")]; ok {
		t.Errorf("203.0.113.52 blocked on this host for another instance")
	}
}
