package awsnacl

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

func TestResolveAndFillSnapshot(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	// Inbound rules: a whitelist CIDR, an IPv6 range, a managed prefix
	// list, a reference to another group (left out).
	pl, err := w.raw.CreateManagedPrefixList(ctx, &ec2.CreateManagedPrefixListInput{
		PrefixListName: aws.String("office-" + w.vpcID), AddressFamily: aws.String("IPv4"), MaxEntries: aws.Int32(5),
		Entries: []types.AddPrefixListEntry{{Cidr: aws.String("192.0.2.0/28")}, {Cidr: aws.String("192.0.2.64/26")}},
	})
	if err != nil {
		t.Fatalf("creating prefix list: %v", err)
	}
	plID := aws.ToString(pl.PrefixList.PrefixListId)
	other, err := w.raw.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("other-" + w.vpcID), Description: aws.String("x"), VpcId: aws.String(w.vpcID)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.raw.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(w.sg), IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("198.51.100.0/24"), Description: aws.String("admins")}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}},
		{IpProtocol: aws.String("-1"), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String(plID)}}},
		{IpProtocol: aws.String("udp"), FromPort: aws.Int32(53), ToPort: aws.Int32(53), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: other.GroupId}}},
	}})
	if err != nil {
		t.Fatalf("authorizing ingress: %v", err)
	}
	inst := w.instance()
	m := w.manager(w.srv.URL, defaultNACL())

	targets, err := m.Resolve(ctx, []string{inst}, "")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(targets) != 1 || targets[0].InstanceID != inst || targets[0].SubnetID != w.subnet || targets[0].VPCID != w.vpcID || len(targets[0].Addresses) == 0 {
		t.Fatalf("Resolve = %+v", targets)
	}
	if a := targets[0].Addresses[0]; !w.vpcV4.Contains(a) {
		t.Errorf("first address %s not in the VPC %s", a, w.vpcV4)
	}

	var snap policy.Snapshot
	if err := m.FillSnapshot(ctx, targets, &snap); err != nil {
		t.Fatalf("FillSnapshot: %v", err)
	}
	rules := snap.SGRules[inst]
	want := map[string]policy.Port{
		"198.51.100.0/24": {Proto: "tcp", From: 22, To: 22},
		"0.0.0.0/0":       {Proto: "tcp", From: 443, To: 443},
		"::/0":            {Proto: "tcp", From: 443, To: 443},
		"192.0.2.0/28":    {},
		"192.0.2.64/26":   {},
	}
	if len(rules) != len(want) {
		t.Errorf("SG rules = %+v, want %d (group reference left out)", rules, len(want))
	}
	for _, r := range rules {
		p, ok := want[r.Source.String()]
		if !ok || p != r.Port || r.GroupID != w.sg {
			t.Errorf("unexpected rule %+v", r)
		}
		if strings.HasPrefix(r.Source.String(), "192.0.2.") && r.PrefixListID != plID {
			t.Errorf("rule %+v: want prefix list %s", r, plID)
		}
	}
	if !slices.Contains(snap.VPCCIDRs, w.vpcV4) || !w.vpcV6.IsValid() || !slices.Contains(snap.VPCCIDRs, w.vpcV6) {
		t.Errorf("VPC CIDRs = %v, want %s and %s", snap.VPCCIDRs, w.vpcV4, w.vpcV6)
	}
	n, ok := snap.NACLs[w.subnet]
	if !ok || n.ID != w.nacl || !slices.Contains(n.SubnetIDs, w.subnet) {
		t.Fatalf("NACL of the subnet = %+v", n)
	}
	if !slices.ContainsFunc(n.Entries, func(e policy.NACLEntry) bool { return e.RuleNumber == 32767 && !e.Allow && !e.Egress }) {
		t.Errorf("NACL entries lack the default deny: %+v", n.Entries)
	}

	// A block shows up, with its metadata, in the next invocation's snapshot.
	if _, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.9", 2*time.Hour)}, Request{Origin: policy.OriginLambda, Reason: "flood", Severity: 7}); err != nil {
		t.Fatal(err)
	}
	m2 := w.manager(w.srv.URL, defaultNACL())
	var snap2 policy.Snapshot
	if err := m2.FillSnapshot(ctx, []policy.Target{{SubnetID: w.subnet}}, &snap2); err != nil {
		t.Fatal(err)
	}
	if len(snap2.Blocks) != 1 || snap2.Blocks[0].Target != netip.MustParsePrefix("203.0.113.9/32") || snap2.Blocks[0].Origin != policy.OriginLambda || snap2.Blocks[0].Severity != 7 {
		t.Errorf("blocks = %+v", snap2.Blocks)
	}
	got, err := m2.NACLFor(ctx, w.subnet)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(got.Entries, func(e policy.NACLEntry) bool { return e.CIDR == netip.MustParsePrefix("203.0.113.9/32") })
	if i < 0 || got.Entries[i].Reason != "flood" || got.Entries[i].ExpiresAt.IsZero() {
		t.Errorf("NACLFor entries lack merged metadata: %+v", got.Entries)
	}
	if len(snap2.VPCCIDRs) == 0 {
		t.Errorf("a bare subnet target got no VPC CIDRs")
	}
}

func TestBadInput(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	m := w.manager(w.srv.URL, defaultNACL())
	inst := w.instance()

	check := func(name string, err error, id string) {
		t.Helper()
		var ie *policy.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), id) {
			t.Errorf("%s: error %v, want an *InputError naming %s", name, err, id)
		}
	}
	_, err := m.Resolve(ctx, []string{"i-0123456789abcdef0"}, "")
	check("unknown instance", err, "i-0123456789abcdef0")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown instance: %v is not ErrNotFound", err)
	}
	_, err = m.Resolve(ctx, nil, "subnet-0123456789abcdef0")
	check("unknown subnet", err, "subnet-0123456789abcdef0")
	_, err = m.NACLFor(ctx, "subnet-0123456789abcdef0")
	check("NACLFor unknown subnet", err, "subnet-0123456789abcdef0")
	_, err = m.Resolve(ctx, []string{inst}, "subnet-0123456789abcdef0")
	check("instance in another subnet", err, inst)
	_, err = m.Unblock(ctx, "acl-0123456789abcdef0", []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")})
	check("unknown NACL", err, "acl-0123456789abcdef0")

	// An instance without a subnet: the proxy drops subnetId from moto's
	// answer, as EC2 does for a terminated instance.
	p := w.srv.Proxy(t, mototest.Faults{Rewrite: func(action string, body []byte) []byte {
		if action != "DescribeInstances" {
			return body
		}
		return regexp.MustCompile(`<subnetId>[^<]*</subnetId>`).ReplaceAll(body, nil)
	}})
	mp := w.manager(p.URL, defaultNACL())
	_, err = mp.Resolve(ctx, []string{inst}, "")
	check("instance without subnet", err, inst)

	// Nothing was written by any of it.
	for _, e := range w.entries() {
		if e.RuleNumber < 100 {
			t.Errorf("bad input left entry %+v", e)
		}
	}
}

func TestNACLVanished(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	def := w.nacl
	// The subnet sits in a custom NACL A when banshee reads it...
	a := w.newNACL()
	w.associate(a)
	m := w.manager(w.srv.URL, defaultNACL())
	var snap policy.Snapshot
	if err := m.FillSnapshot(ctx, []policy.Target{{SubnetID: w.subnet}}, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.NACLs[w.subnet].ID != a {
		t.Fatalf("snapshot NACL %s, want %s", snap.NACLs[w.subnet].ID, a)
	}
	// ...then moves back to the default NACL and A is deleted.
	w.associate(def)
	if _, err := w.raw.DeleteNetworkAcl(ctx, &ec2.DeleteNetworkAclInput{NetworkAclId: aws.String(a)}); err != nil {
		t.Fatal(err)
	}
	d := w.vpcDecision("203.0.113.50", time.Hour)
	d.NACLID = a
	bs, err := m.Block(ctx, []policy.Decision{d}, Request{Origin: policy.OriginCLI, Reason: "moved"})
	if err != nil {
		t.Fatalf("Block after the NACL vanished: %v", err)
	}
	if len(bs) != 1 || bs[0].NACLID != def {
		t.Fatalf("blocks = %+v, want one in the subnet's current NACL %s", bs, def)
	}
	w.nacl = def
	if md, ok := w.read().meta(bs[0].RuleNumber); !ok || md.Reason != "moved" {
		t.Errorf("current NACL lacks metadata for rule %d", bs[0].RuleNumber)
	}

	// Only a NACL id, and it no longer exists: not found naming it, nothing written.
	m2 := w.manager(w.srv.URL, defaultNACL())
	_, err = m2.Block(ctx, []policy.Decision{{Target: netip.MustParsePrefix("203.0.113.51/32"), Scope: policy.ScopeVPC, Action: policy.ActionBlock, NACLID: a}}, Request{})
	var ie *policy.InputError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &ie) || !strings.Contains(err.Error(), a) {
		t.Errorf("Block on a deleted NACL: %v, want not found naming %s", err, a)
	}
	// Read by this Manager, then deleted before the write: the write fails
	// cleanly as not found.
	b := w.newNACL()
	m3 := w.manager(w.srv.URL, defaultNACL())
	if _, err := m3.List(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := w.raw.DeleteNetworkAcl(ctx, &ec2.DeleteNetworkAclInput{NetworkAclId: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	_, err = m3.Block(ctx, []policy.Decision{{Target: netip.MustParsePrefix("203.0.113.52/32"), Scope: policy.ScopeVPC, Action: policy.ActionBlock, NACLID: b}}, Request{})
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &ie) || !strings.Contains(err.Error(), b) {
		t.Errorf("Block on a NACL deleted after the read: %v, want not found naming %s", err, b)
	}
	if n := len(w.read().tags); n != 1 {
		t.Errorf("the current NACL has %d metadata tags, want 1", n)
	}
}

// newNACL creates a custom NACL in the world's VPC.
func (w *world) newNACL() string {
	w.t.Helper()
	out, err := w.raw.CreateNetworkAcl(ctxT(w.t), &ec2.CreateNetworkAclInput{VpcId: aws.String(w.vpcID)})
	if err != nil {
		w.t.Fatal(err)
	}
	return aws.ToString(out.NetworkAcl.NetworkAclId)
}

// associate moves the world's subnet to NACL id.
func (w *world) associate(id string) {
	w.t.Helper()
	ctx := ctxT(w.t)
	out, err := w.raw.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{w.subnet}}}})
	if err != nil || len(out.NetworkAcls) != 1 {
		w.t.Fatalf("finding the association: %v", err)
	}
	for _, as := range out.NetworkAcls[0].Associations {
		if aws.ToString(as.SubnetId) == w.subnet {
			if _, err := w.raw.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{AssociationId: as.NetworkAclAssociationId, NetworkAclId: aws.String(id)}); err != nil {
				w.t.Fatal(err)
			}
			return
		}
	}
	w.t.Fatalf("no association for %s", w.subnet)
}

// imdsServer is an IMDSv2 endpoint: a token first, then the document for
// requests that carry it.
func imdsServer(t *testing.T) *httptest.Server {
	const token = "tok-123"
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
		_, _ = w.Write([]byte(token))
	})
	mux.HandleFunc("GET /latest/dynamic/instance-identity/document", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"instanceId": "i-0abc", "region": "eu-west-1", "availabilityZone": "eu-west-1a", "accountId": "123456789012", "privateIp": "10.1.2.3"})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestLocalIdentity(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	s := imdsServer(t)
	id, err := LocalIdentity(context.Background(), func(o *imds.Options) { o.Endpoint = s.URL })
	if err != nil {
		t.Fatalf("LocalIdentity: %v", err)
	}
	if id.InstanceID != "i-0abc" || id.Region != "eu-west-1" || id.PrivateIP != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("identity = %+v", id)
	}
	// Off EC2: nothing answers; a clear error, quickly.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, err = LocalIdentity(context.Background(), func(o *imds.Options) { o.Endpoint = dead.URL })
	if !errors.Is(err, ErrNotOnEC2) {
		t.Errorf("off EC2: %v, want ErrNotOnEC2", err)
	}
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if _, err := LocalIdentity(context.Background(), func(o *imds.Options) { o.Endpoint = s.URL }); !errors.Is(err, ErrNotOnEC2) {
		t.Errorf("disabled: %v, want ErrNotOnEC2", err)
	}
}

func TestOnEC2(t *testing.T) {
	dir := t.TempDir()
	vendor := dir + "/sys_vendor"
	old := dmiFiles
	t.Cleanup(func() { dmiFiles = old })
	dmiFiles = []string{dir + "/missing", vendor}
	if OnEC2() {
		t.Error("OnEC2 without any DMI file")
	}
	for _, c := range []struct {
		text string
		want bool
	}{{"Amazon EC2\n", true}, {"QEMU\n", false}, {"ec2e1916-9099-7caf-fd21-012345abcdef", true}} {
		if err := os.WriteFile(vendor, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := OnEC2(); got != c.want {
			t.Errorf("OnEC2 with %q = %v, want %v", c.text, got, c.want)
		}
	}
}
