package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
)

// runAWS runs banshee with args and returns stdout, stderr and the exit code.
func runAWS(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runAWSConfig(t, "nacl:\n  max_backoff: 100ms\n", args...)
}

// runAWSConfig is runAWS with the configuration cfg.
func runAWSConfig(t *testing.T, cfg string, args ...string) (string, string, int) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "banshee.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"--config", path, "--state-dir", dir}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String() + fmt.Sprint(err), exitCode(err)
}

// awsWorld is a VPC with one subnet, a group open on tcp/22 and an
// instance, in a moto_server that the SDK's default chain points at.
type awsWorld struct {
	raw                        *ec2.Client
	vpc, subnet, nacl, sg, ins string
}

func newAWSWorld(t *testing.T) *awsWorld {
	t.Helper()
	srv := mototest.Start(t)
	mototest.Env(t, srv.URL)
	notEC2 := func(context.Context, ...func(*imds.Options)) (awsnacl.Identity, error) {
		return awsnacl.Identity{}, awsnacl.ErrNotOnEC2
	}
	old, oldOn := localIdentity, onEC2
	localIdentity, onEC2 = notEC2, func() bool { return false }
	t.Cleanup(func() { localIdentity, onEC2 = old, oldOn })
	ctx := context.Background()
	w := &awsWorld{raw: ec2.NewFromConfig(mototest.Config(srv.URL))}
	v, err := w.raw.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	w.vpc = aws.ToString(v.Vpc.VpcId)
	s, err := w.raw.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String("10.20.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	w.subnet = aws.ToString(s.Subnet.SubnetId)
	n, err := w.raw.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{w.subnet}}}})
	if err != nil || len(n.NetworkAcls) != 1 {
		t.Fatalf("NACL of the subnet: %v", err)
	}
	w.nacl = aws.ToString(n.NetworkAcls[0].NetworkAclId)
	g, err := w.raw.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("ssh"), Description: aws.String("ssh"), VpcId: v.Vpc.VpcId})
	if err != nil {
		t.Fatal(err)
	}
	w.sg = aws.ToString(g.GroupId)
	if _, err := w.raw.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
	}}); err != nil {
		t.Fatal(err)
	}
	r, err := w.raw.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(w.subnet), SecurityGroupIds: []string{w.sg}})
	if err != nil {
		t.Fatal(err)
	}
	w.ins = aws.ToString(r.Instances[0].InstanceId)
	return w
}

// denies returns banshee's entries (rule < 100, deny, ingress) by CIDR.
func (w *awsWorld) denies(t *testing.T) map[string]int {
	t.Helper()
	out, err := w.raw.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.nacl}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, e := range out.NetworkAcls[0].Entries {
		if e.RuleAction == types.RuleActionDeny && !aws.ToBool(e.Egress) && aws.ToInt32(e.RuleNumber) < 100 {
			m[aws.ToString(e.CidrBlock)+aws.ToString(e.Ipv6CidrBlock)] = int(aws.ToInt32(e.RuleNumber))
		}
	}
	return m
}

func TestCLIVPC(t *testing.T) {
	w := newAWSWorld(t)

	// block --scope vpc --subnet
	out, errs, code := runAWS(t, "block", "203.0.113.7", "--scope", "vpc", "--subnet", w.subnet, "--reason", "pop3 bruteforce", "--ttl", "2h", "-o", "json")
	if code != 0 {
		t.Fatalf("block --subnet: exit %d, %s", code, errs)
	}
	var bo struct{ Decisions []policy.Decision }
	if err := json.Unmarshal([]byte(out), &bo); err != nil || len(bo.Decisions) != 1 {
		t.Fatalf("block output %q: %v", out, err)
	}
	d := bo.Decisions[0]
	if d.Scope != policy.ScopeVPC || d.NACLID != w.nacl || d.RuleNumber != w.denies(t)["203.0.113.7/32"] || d.RuleNumber == 0 {
		t.Errorf("decision %+v; entries %v", d, w.denies(t))
	}

	// block --scope auto --instance: a flood on tcp/22 goes to the NACL.
	out, errs, code = runAWS(t, "block", "198.51.100.9", "--instance", w.ins, "--port", "22/tcp", "--rate", "500", "--kind", "flood", "-o", "json")
	if code != 0 {
		t.Fatalf("block --instance: exit %d, %s", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &bo); err != nil || len(bo.Decisions) != 1 || bo.Decisions[0].Scope != policy.ScopeVPC {
		t.Fatalf("block --instance output %q: %v", out, err)
	}
	if _, ok := w.denies(t)["198.51.100.9/32"]; !ok {
		t.Errorf("no entry for 198.51.100.9: %v", w.denies(t))
	}

	// list --scope vpc shows both with their metadata.
	out, errs, code = runAWS(t, "list", "--scope", "vpc", "--subnet", w.subnet, "-o", "json")
	if code != 0 {
		t.Fatalf("list: exit %d, %s", code, errs)
	}
	var lo struct{ Blocks []policy.Block }
	if err := json.Unmarshal([]byte(out), &lo); err != nil || len(lo.Blocks) != 2 {
		t.Fatalf("list output %q: %v", out, err)
	}
	for _, b := range lo.Blocks {
		if b.Scope != policy.ScopeVPC || b.Origin != policy.OriginCLI || b.ExpiresAt.IsZero() || b.NACLID != w.nacl {
			t.Errorf("listed block %+v", b)
		}
	}
	if out, _, _ := runAWS(t, "list", "--scope", "vpc", "--subnet", w.subnet); !strings.Contains(out, "pop3 bruteforce") {
		t.Errorf("text list lacks the reason: %q", out)
	}

	// unblock --scope vpc
	out, errs, code = runAWS(t, "unblock", "203.0.113.7", "192.0.2.1", "--scope", "vpc", "--subnet", w.subnet, "-o", "json")
	if code != 0 || !strings.Contains(out, `"removed":true`) || !strings.Contains(out, `"removed":false`) {
		t.Fatalf("unblock: exit %d, %q, %s", code, out, errs)
	}
	if _, ok := w.denies(t)["203.0.113.7/32"]; ok {
		t.Errorf("203.0.113.7 still denied")
	}

	// sweep: a block that expires in a second is gone after it.
	if _, errs, code = runAWS(t, "block", "203.0.113.99", "--scope", "vpc", "--subnet", w.subnet, "--ttl", "1s"); code != 0 {
		t.Fatalf("block --ttl 1s: exit %d, %s", code, errs)
	}
	time.Sleep(1100 * time.Millisecond)
	out, errs, code = runAWS(t, "sweep", "--subnet", w.subnet, "-o", "json")
	var so awsnacl.SweepResult
	if code != 0 || json.Unmarshal([]byte(out), &so) != nil || len(so.Removed) != 1 || so.Removed[0].Target.String() != "203.0.113.99/32" {
		t.Fatalf("sweep: exit %d, %q, %s", code, out, errs)
	}
	if got := w.denies(t); len(got) != 1 {
		t.Errorf("after sweep: %v, want only 198.51.100.9", got)
	}

	// On the instance itself (IMDS names it), no --instance or --subnet
	// is needed.
	onEC2 = func() bool { return true }
	localIdentity = func(context.Context, ...func(*imds.Options)) (awsnacl.Identity, error) {
		return awsnacl.Identity{InstanceID: w.ins, Region: mototest.Region}, nil
	}
	out, errs, code = runAWS(t, "unblock", "198.51.100.9", "--scope", "vpc", "-o", "json")
	if code != 0 || !strings.Contains(out, `"removed":true`) {
		t.Fatalf("unblock on the instance: exit %d, %q, %s", code, out, errs)
	}
	if got := w.denies(t); len(got) != 0 {
		t.Errorf("after unblock on the instance: %v", got)
	}
}

func TestCLIVPCBadInput(t *testing.T) {
	w := newAWSWorld(t)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown subnet", []string{"block", "203.0.113.7", "--scope", "vpc", "--subnet", "subnet-0123456789abcdef0"}, 2, "subnet-0123456789abcdef0"},
		{"unknown instance", []string{"block", "203.0.113.7", "--scope", "vpc", "--instance", "i-0123456789abcdef0"}, 2, "i-0123456789abcdef0"},
		{"no target off EC2", []string{"block", "203.0.113.7", "--scope", "vpc"}, 2, "--instance or --subnet"},
		{"unblock unknown NACL", []string{"unblock", "203.0.113.7", "--scope", "vpc", "--nacl", "acl-0123456789abcdef0"}, 2, "acl-0123456789abcdef0"},
		{"sweep bad id", []string{"sweep", "--subnet", "nope"}, 2, "nope"},
		{"VPC address refused", []string{"block", "10.20.1.5", "--scope", "vpc", "--subnet", w.subnet}, 3, "10.20"},
	}
	for _, c := range cases {
		_, errs, code := runAWS(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%s: exit %d (%s), want %d naming %q", c.name, code, errs, c.code, c.msg)
		}
	}
	// A deny behind an allow rule is refused (exit 3), naming the rule.
	if _, err := w.raw.CreateNetworkAclEntry(context.Background(), &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: aws.Int32(1), Egress: aws.Bool(false),
		Protocol: aws.String("-1"), RuleAction: types.RuleActionAllow, CidrBlock: aws.String("192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runAWS(t, "block", "192.0.2.7", "--scope", "vpc", "--subnet", w.subnet)
	if code != 3 || !strings.Contains(errs, "rule 1") {
		t.Errorf("shadowed deny: exit %d (%s), want 3 naming rule 1", code, errs)
	}
	if got := w.denies(t); len(got) != 0 {
		t.Errorf("bad input left entries %v", got)
	}
}

// A deny found shadowed at write time is a refusal (exit 3, nothing
// changed) only when nothing else of the call was applied; beside an
// applied block it is a failure (exit 1) naming the refused target.
func TestVPCBlockShadowedAtWrite(t *testing.T) {
	w := newAWSWorld(t)
	ctx := context.Background()
	// allow tcp/443 from 198.51.100.0/24 at 5, below the range 10-19
	if _, err := w.raw.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: aws.Int32(5), Egress: aws.Bool(false),
		Protocol: aws.String("6"), RuleAction: types.RuleActionAllow, CidrBlock: aws.String("198.51.100.0/24"), PortRange: &types.PortRange{From: aws.Int32(443), To: aws.Int32(443)}}); err != nil {
		t.Fatal(err)
	}
	cfg := policy.Default().NACL
	cfg.RuleMin, cfg.RuleMax = 10, 19
	m := awsnacl.NewFromConfig(mototest.Config(os.Getenv("AWS_ENDPOINT_URL")), cfg)
	atk := policy.Attack{Origin: policy.OriginCLI, Reason: "test", Port: policy.Port{Proto: "tcp", From: 443, To: 443}}
	decide := func(addr string) policy.Decision {
		return policy.Decision{Target: netip.MustParsePrefix(addr + "/32"), Scope: policy.ScopeVPC, Action: policy.ActionBlock,
			SubnetID: w.subnet, NACLID: w.nacl, TTL: time.Hour}
	}

	bs, _, err := engine.EnforceVPC(ctx, m, []policy.Decision{decide("203.0.113.1"), decide("198.51.100.7")}, atk)
	if len(bs) != 1 || bs[0].Target != netip.MustParsePrefix("203.0.113.1/32") {
		t.Fatalf("blocks %+v: want 203.0.113.1 applied", bs)
	}
	if code := exitCode(err); code != 1 || !strings.Contains(err.Error(), "198.51.100.7") || errors.Is(err, errRefused) {
		t.Errorf("one applied, one shadowed: exit %d (%v), want 1 naming 198.51.100.7", code, err)
	}

	bs, _, err = engine.EnforceVPC(ctx, m, []policy.Decision{decide("198.51.100.8")}, atk)
	if code := exitCode(err); len(bs) != 0 || code != 3 || !strings.Contains(err.Error(), "rule 5") {
		t.Errorf("only shadowed: blocks %+v, exit %d (%v), want 3 naming rule 5", bs, code, err)
	}
	if got := w.denies(t); len(got) != 1 || got["203.0.113.1/32"] == 0 {
		t.Errorf("entries %v: want only 203.0.113.1", got)
	}
}

// TestUntaggedDenyIsDriftUntilAdopted: a deny someone added by hand in
// banshee's reserved range, without its metadata, is listed as drift
// (no-metadata) and status says so; reconcile repairs it by adopting it
// (expiry nacl.orphan_ttl) once it has been seen unchanged for
// nacl.orphan_grace, never on first sight.
func TestUntaggedDenyIsDriftUntilAdopted(t *testing.T) {
	w := newAWSWorld(t)
	const cfg = "nacl:\n  max_backoff: 100ms\n  orphan_grace: 1s\n"
	if _, errs, code := runAWSConfig(t, cfg, "block", "203.0.113.7", "--scope", "vpc", "--subnet", w.subnet, "--ttl", "2h"); code != 0 {
		t.Fatalf("block: exit %d %s", code, errs)
	}
	if _, err := w.raw.CreateNetworkAclEntry(context.Background(), &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: aws.Int32(9),
		Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny, Egress: aws.Bool(false), CidrBlock: aws.String("192.0.2.99/32")}); err != nil {
		t.Fatal(err)
	}
	drift := func() string {
		t.Helper()
		out, errs, code := runAWSConfig(t, cfg, "list", "-o", "json")
		if code != 0 {
			t.Fatalf("list: exit %d %s", code, errs)
		}
		var l listedJSON
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("list -o json: %v: %q", err, out)
		}
		for _, b := range l.Blocks {
			if strings.TrimSuffix(b.Target, "/32") == "192.0.2.99" {
				return b.Drift + "|" + b.Reason
			}
		}
		return "absent"
	}
	if got := drift(); !strings.HasPrefix(got, "no-metadata|") {
		t.Fatalf("the hand-made deny is listed as %q, want drift no-metadata", got)
	}
	if _, _, code := runAWSConfig(t, cfg, "status"); code != 1 {
		t.Errorf("status with an untagged deny: exit %d, want 1", code)
	}
	// First sight: recorded, not adopted. Then adopted once seen
	// unchanged for the grace (bounded tries).
	if _, errs, code := runAWSConfig(t, cfg, "reconcile"); code != 0 {
		t.Fatalf("reconcile: exit %d %s", code, errs)
	}
	got := drift()
	if !strings.HasPrefix(got, "no-metadata|") {
		t.Errorf("adopted on first sight (%q): a writer tags its entry right after creating it", got)
	}
	for i := 0; i < 20 && !strings.HasPrefix(got, "|"); i++ {
		time.Sleep(500 * time.Millisecond)
		if _, errs, code := runAWSConfig(t, cfg, "reconcile"); code != 0 {
			t.Fatalf("reconcile: exit %d %s", code, errs)
		}
		got = drift()
	}
	if !strings.HasPrefix(got, "|") || w.denies(t)["192.0.2.99/32"] != 9 {
		t.Errorf("after reconcile the deny is %q (entries %v), want it adopted in place, no drift", got, w.denies(t))
	}
}
