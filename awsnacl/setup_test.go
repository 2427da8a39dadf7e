package awsnacl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

func TestMain(m *testing.M) { os.Exit(mototest.Main(m)) }

// world is one test's VPC in the shared moto_server: a subnet with its
// (default) NACL, a security group and instances.
type world struct {
	t      testing.TB
	srv    *mototest.Server
	raw    *ec2.Client // straight to moto, for setup and checks
	vpcID  string
	subnet string
	nacl   string
	sg     string
	vpcV4  netip.Prefix
	vpcV6  netip.Prefix
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newWorld builds a VPC (IPv4 and IPv6) with one subnet in the shared moto.
func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldOn(t, mototest.Shared(t))
}

// newWorldOn builds a VPC (IPv4 and IPv6) with one subnet in srv: a test
// that reads every NACL of the region uses a server of its own.
func newWorldOn(t testing.TB, srv *mototest.Server) *world {
	t.Helper()
	w := &world{t: t, srv: srv}
	w.raw = ec2.NewFromConfig(mototest.Config(srv.URL))
	ctx := ctxT(t)
	octet := rand.IntN(250) + 1
	v4 := fmt.Sprintf("10.%d.0.0/16", octet)
	vpc, err := w.raw.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(v4), AmazonProvidedIpv6CidrBlock: aws.Bool(true)})
	if err != nil {
		t.Fatalf("creating VPC: %v", err)
	}
	w.vpcID = aws.ToString(vpc.Vpc.VpcId)
	w.vpcV4 = netip.MustParsePrefix(v4)
	dv, err := w.raw.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{w.vpcID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range dv.Vpcs[0].Ipv6CidrBlockAssociationSet {
		w.vpcV6 = netip.MustParsePrefix(aws.ToString(a.Ipv6CidrBlock))
	}
	sub, err := w.raw.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(w.vpcID), CidrBlock: aws.String(fmt.Sprintf("10.%d.1.0/24", octet))})
	if err != nil {
		t.Fatalf("creating subnet: %v", err)
	}
	w.subnet = aws.ToString(sub.Subnet.SubnetId)
	na, err := w.raw.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{w.subnet}}}})
	if err != nil || len(na.NetworkAcls) != 1 {
		t.Fatalf("finding the subnet's NACL: %v %v", err, na)
	}
	w.nacl = aws.ToString(na.NetworkAcls[0].NetworkAclId)
	sg, err := w.raw.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(fmt.Sprintf("sg-%d", rand.Int64())), Description: aws.String("test"), VpcId: aws.String(w.vpcID)})
	if err != nil {
		t.Fatalf("creating security group: %v", err)
	}
	w.sg = aws.ToString(sg.GroupId)
	return w
}

// instance runs one instance in the subnet with the world's group.
func (w *world) instance() string {
	w.t.Helper()
	out, err := w.raw.RunInstances(ctxT(w.t), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(w.subnet), SecurityGroupIds: []string{w.sg}, InstanceType: types.InstanceTypeT3Micro,
	})
	if err != nil {
		w.t.Fatalf("running an instance: %v", err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

// entries returns the NACL's entries as moto has them.
func (w *world) entries() []policy.NACLEntry {
	w.t.Helper()
	st := w.read()
	return st.entries
}

// read returns the NACL as moto has it.
func (w *world) read() *naclState {
	w.t.Helper()
	out, err := w.raw.DescribeNetworkAcls(ctxT(w.t), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.nacl}})
	if err != nil {
		w.t.Fatalf("reading NACL: %v", err)
	}
	st, err := naclFromAWS(out.NetworkAcls[0], time.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

// addEntry adds an entry directly (someone else's).
func (w *world) addEntry(n int, egress, allow bool, cidr string) {
	w.t.Helper()
	act := types.RuleActionDeny
	if allow {
		act = types.RuleActionAllow
	}
	in := &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(n), Egress: aws.Bool(egress), Protocol: aws.String("-1"), RuleAction: act}
	setCIDR(&in.CidrBlock, &in.Ipv6CidrBlock, netip.MustParsePrefix(cidr))
	if _, err := w.raw.CreateNetworkAclEntry(ctxT(w.t), in); err != nil {
		w.t.Fatalf("adding entry %d: %v", n, err)
	}
}

// manager returns a Manager against endpoint with a fast bucket.
func (w *world) manager(endpoint string, cfg policy.NACLConfig, opts ...Option) *Manager {
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = policy.Duration(200 * time.Millisecond)
	}
	opts = append([]Option{WithMutatingLimit(1000, 1000)}, opts...)
	return NewFromConfig(mototest.Config(endpoint), cfg, opts...)
}

func defaultNACL() policy.NACLConfig { return policy.Default().NACL }

// vpcDecision is what the engine would decide for blocking p at the
// world's subnet.
func (w *world) vpcDecision(p string, ttl time.Duration) policy.Decision {
	pp, err := policy.ParseTarget(p)
	if err != nil {
		panic(err)
	}
	return policy.Decision{Target: pp, Scope: policy.ScopeVPC, Action: policy.ActionBlock, TTL: ttl, SubnetID: w.subnet, NACLID: w.nacl}
}
