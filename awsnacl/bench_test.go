package awsnacl

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

// These benchmarks count EC2 API calls (the proxy sees every request,
// retries included) for the paths the CLI takes, against moto_server.

// blockPath is what `banshee block` does for VPC scope: resolve the
// targets, fill the snapshot, let the policy decide, enforce.
func blockPath(b *testing.B, m *Manager, instances []string, subnet string, atk policy.Attack) []policy.Block {
	ctx := ctxT(b)
	targets, err := m.Resolve(ctx, instances, subnet)
	if err != nil {
		b.Fatal(err)
	}
	cfg := policy.Default()
	snap := policy.Snapshot{Now: time.Now().UTC()}
	if err := m.FillSnapshot(ctx, targets, &snap); err != nil {
		b.Fatal(err)
	}
	atk.Targets = targets
	ds := policy.New(cfg).Decide(atk, snap)
	for _, d := range ds {
		if d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock {
			b.Fatalf("decision %+v, want a VPC block", d)
		}
	}
	bs, err := m.Block(ctx, ds, Request{Origin: policy.OriginCLI, Reason: atk.Reason, Port: atk.Port})
	if err != nil || len(bs) != len(ds) {
		b.Fatalf("Block = %+v, %v", bs, err)
	}
	return bs
}

// The first block on a NACL reads the VPC's CIDRs with DescribeVpcs and
// caches them in a tag on the NACL (vpccache.go); later invocations within
// nacl.vpc_cidr_max_age do not. Both are measured, each with a Manager of
// its own (one CLI invocation each): first-ec2-calls/op is the first block
// on a fresh NACL, ec2-calls/op the steady state (a second block).

func BenchmarkBlockVPCSubnet(b *testing.B) {
	first, calls := 0, 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := newWorld(b)
		p := w.srv.Proxy(b, mototest.Faults{})
		blockPath(b, w.manager(p.URL, defaultNACL()), nil, w.subnet, policy.Attack{
			Sources: []netip.Prefix{netip.MustParsePrefix("203.0.113.6/32")}, Scope: policy.ScopeVPC, Kind: policy.KindManual, Reason: "bench",
		})
		first += p.Total()
		if i == 0 {
			b.Logf("first block --scope vpc --subnet: %v", p.Counts())
		}
		p = w.srv.Proxy(b, mototest.Faults{})
		m := w.manager(p.URL, defaultNACL())
		b.StartTimer()
		blockPath(b, m, nil, w.subnet, policy.Attack{
			Sources: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}, Scope: policy.ScopeVPC, Kind: policy.KindManual, Reason: "bench",
		})
		calls += p.Total()
		if i == 0 {
			b.Logf("block --scope vpc --subnet: %v", p.Counts())
		}
	}
	b.ReportMetric(float64(first)/float64(b.N), "first-ec2-calls/op")
	b.ReportMetric(float64(calls)/float64(b.N), "ec2-calls/op")
}

func BenchmarkBlockAutoInstance(b *testing.B) {
	first, calls := 0, 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := newWorld(b)
		if _, err := w.raw.AuthorizeSecurityGroupIngress(ctxT(b), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(w.sg), IpPermissions: []types.IpPermission{
			{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		}}); err != nil {
			b.Fatal(err)
		}
		inst := w.instance()
		atk := func(src string) policy.Attack {
			return policy.Attack{
				Sources: []netip.Prefix{netip.MustParsePrefix(src)}, Scope: policy.ScopeAuto, Kind: policy.KindFlood,
				Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Rate: 500, Reason: "bench",
			}
		}
		p := w.srv.Proxy(b, mototest.Faults{})
		blockPath(b, w.manager(p.URL, defaultNACL()), []string{inst}, "", atk("203.0.113.9/32"))
		first += p.Total()
		if i == 0 {
			b.Logf("first block --scope auto --instance: %v", p.Counts())
		}
		p = w.srv.Proxy(b, mototest.Faults{})
		m := w.manager(p.URL, defaultNACL())
		b.StartTimer()
		blockPath(b, m, []string{inst}, "", atk("203.0.113.8/32"))
		calls += p.Total()
		if i == 0 {
			b.Logf("block --scope auto --instance: %v", p.Counts())
		}
	}
	b.ReportMetric(float64(first)/float64(b.N), "first-ec2-calls/op")
	b.ReportMetric(float64(calls)/float64(b.N), "ec2-calls/op")
}

// BenchmarkSweep10 sweeps the way the Lambda and `banshee sweep` do by
// default: no NACL named, so every NACL of the region banshee manages (a
// region of its own here, so other benchmarks' NACLs are not in it).
func BenchmarkSweep10(b *testing.B) {
	calls := 0
	srv := mototest.Start(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := newWorldOn(b, srv)
		var ds []policy.Decision
		for k := range 10 {
			ds = append(ds, w.vpcDecision(fmt.Sprintf("203.0.113.%d", k+1), time.Minute))
		}
		if _, err := w.manager(w.srv.URL, defaultNACL()).Block(ctxT(b), ds, Request{Origin: policy.OriginCLI}); err != nil {
			b.Fatal(err)
		}
		p := w.srv.Proxy(b, mototest.Faults{})
		m := w.manager(p.URL, defaultNACL())
		b.StartTimer()
		res, err := m.Sweep(ctxT(b), time.Now().Add(time.Hour))
		if err != nil || len(res.Removed) != 10 {
			b.Fatalf("Sweep = %d removed, %v", len(res.Removed), err)
		}
		calls += p.Total()
		if i == 0 {
			b.Logf("sweep of 10: %v", p.Counts())
		}
	}
	b.ReportMetric(float64(calls)/float64(b.N), "ec2-calls/op")
}
