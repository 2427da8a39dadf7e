package awsnacl

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

func TestVPCTagEncoding(t *testing.T) {
	v := vpcInfo{vpcID: "vpc-0abc", at: time.Unix(1767225600, 0).UTC(), cidrs: []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2600:1f18:1234:5600::/56"),
	}}
	s, ok := encodeVPCTag(v)
	if !ok || s != "at=1767225600;vpc=vpc-0abc;cidrs=10.1.0.0/16,2600:1f18:1234:5600::/56" {
		t.Fatalf("encode = %q, %v", s, ok)
	}
	got, err := decodeVPCTag(s)
	if err != nil || got.vpcID != v.vpcID || !got.at.Equal(v.at) || !slices.Equal(got.cidrs, v.cidrs) || got.fromAPI {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	// Too many blocks for one tag value: no cache rather than a cut list.
	var many vpcInfo
	many.vpcID, many.at = "vpc-0abc", v.at
	for i := range 12 {
		many.cidrs = append(many.cidrs, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x26, 0, 0x1f, 0x18, byte(i), 0xff, 0xff, 0xff}), 56))
	}
	if s, ok := encodeVPCTag(many); ok {
		t.Errorf("encode of 12 IPv6 blocks = %q (%d chars), want no cache", s, len(s))
	}
	for _, bad := range []string{"", "at=1;vpc=vpc-1", "at=x;vpc=vpc-1;cidrs=10.0.0.0/16", "at=1;vpc=vpc-1;cidrs=10.0.0.1/16", "at=1;vpc=vpc-1;cidrs=", "at=1;vpc=vpc-1;cidrs=10.0.0.0/16;junk"} {
		if _, err := decodeVPCTag(bad); err == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
}

// vpcTagOf returns the NACL's banshee:vpc-cidrs tag as moto has it.
func (w *world) vpcTagOf() string {
	w.t.Helper()
	return w.read().vpcTag
}

// setVPCTag writes the cache tag directly (another writer, or a forger).
func (w *world) setVPCTag(v string) {
	w.t.Helper()
	if _, err := w.raw.CreateTags(ctxT(w.t), &ec2.CreateTagsInput{Resources: []string{w.nacl}, Tags: []types.Tag{{Key: aws.String(vpcCIDRsKey), Value: aws.String(v)}}}); err != nil {
		w.t.Fatal(err)
	}
}

// TestVPCCIDRCache: the first block on a NACL reads the VPC with
// DescribeVpcs and caches its CIDRs in the same CreateTags call as the
// metadata; a later invocation trusts a fresh cache (no DescribeVpcs) and
// still refuses the VPC's own addresses; a stale, missing, forged-future,
// disabled or contradicted cache means DescribeVpcs again.
func TestVPCCIDRCache(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	inst := w.instance()
	t0 := time.Now()

	// fill runs one invocation's FillSnapshot through a counting proxy.
	fill := func(cfg policy.NACLConfig, at time.Time, instances []string) (*mototest.Proxy, *Manager, policy.Snapshot) {
		t.Helper()
		p := w.srv.Proxy(t, mototest.Faults{})
		m := w.manager(p.URL, cfg, WithClock(func() time.Time { return at }))
		targets, err := m.Resolve(ctx, instances, w.subnet)
		if err != nil {
			t.Fatal(err)
		}
		snap := policy.Snapshot{Now: at.UTC()}
		if err := m.FillSnapshot(ctx, targets, &snap); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(snap.VPCCIDRs, w.vpcV4) || !slices.Contains(snap.VPCCIDRs, w.vpcV6) {
			t.Fatalf("VPC CIDRs %v, want %s and %s", snap.VPCCIDRs, w.vpcV4, w.vpcV6)
		}
		return p, m, snap
	}
	cfg := defaultNACL()

	// Missing cache: DescribeVpcs; the block writes the cache in its one
	// CreateTags call.
	p, m, _ := fill(cfg, t0, nil)
	if n := p.Counts()["DescribeVpcs"]; n != 1 {
		t.Fatalf("without a cache: %d DescribeVpcs, want 1", n)
	}
	if _, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.10", time.Hour)}, Request{Origin: policy.OriginCLI}); err != nil {
		t.Fatal(err)
	}
	if n := p.Counts()["CreateTags"]; n != 1 {
		t.Errorf("%d CreateTags, want the cache in the metadata's one call", n)
	}
	tag := w.vpcTagOf()
	v, err := decodeVPCTag(tag)
	if err != nil || v.vpcID != w.vpcID || !slices.Contains(v.cidrs, w.vpcV4) || !slices.Contains(v.cidrs, w.vpcV6) || v.at.Unix() != t0.Unix() {
		t.Fatalf("cache tag %q (%+v, %v), want the VPC's CIDRs fetched at %d", tag, v, err, t0.Unix())
	}

	// Fresh cache: no DescribeVpcs, and the cached CIDRs still refuse a
	// VPC address, IPv4 and IPv6.
	p, _, snap := fill(cfg, t0.Add(10*time.Minute), nil)
	if n := p.Counts()["DescribeVpcs"]; n != 0 {
		t.Errorf("with a fresh cache: %d DescribeVpcs, want 0 (%v)", n, p.Counts())
	}
	inside4 := netip.PrefixFrom(w.vpcV4.Addr().Next().Next().Next(), 32)
	inside6 := netip.PrefixFrom(w.vpcV6.Addr().Next(), 128)
	ds := policy.New(policy.Default()).Decide(policy.Attack{
		Sources: []netip.Prefix{inside4, inside6}, Targets: []policy.Target{{SubnetID: w.subnet, VPCID: w.vpcID}}, Scope: policy.ScopeVPC, Kind: policy.KindManual,
	}, snap)
	for _, d := range ds {
		if d.Action != policy.ActionRefuse || !strings.Contains(strings.Join(d.Reasons, " "), "VPC") {
			t.Errorf("decision for VPC address %s from the cache = %s %s %v, want refuse", d.Target, d.Scope, d.Action, d.Reasons)
		}
	}

	// The same fresh cache with an instance target whose private address
	// it covers: still no DescribeVpcs.
	p, _, _ = fill(cfg, t0.Add(10*time.Minute), []string{inst})
	if n := p.Counts()["DescribeVpcs"]; n != 0 {
		t.Errorf("fresh cache, instance target: %d DescribeVpcs, want 0", n)
	}

	// Stale: read again, and the next block refreshes the cache's time.
	later := t0.Add(16 * time.Minute)
	p, m, _ = fill(cfg, later, nil)
	if n := p.Counts()["DescribeVpcs"]; n != 1 {
		t.Errorf("with a stale cache: %d DescribeVpcs, want 1", n)
	}
	if _, err := m.Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.11", time.Hour)}, Request{Origin: policy.OriginCLI}); err != nil {
		t.Fatal(err)
	}
	if v, err := decodeVPCTag(w.vpcTagOf()); err != nil || v.at.Unix() != later.Unix() {
		t.Errorf("cache after a block on a stale one: %+v, %v; want fetched at %d", v, err, later.Unix())
	}

	// Disabled (nacl.vpc_cidr_max_age 0): always DescribeVpcs.
	off := cfg
	off.VPCCIDRMaxAge = 0
	if p, _, _ := fill(off, later.Add(time.Minute), nil); p.Counts()["DescribeVpcs"] != 1 {
		t.Errorf("cache disabled: %d DescribeVpcs, want 1", p.Counts()["DescribeVpcs"])
	}

	// A cache from the future (forged, or a clock far off) is not trusted.
	v.at = later.Add(time.Hour)
	v.cidrs = []netip.Prefix{w.vpcV4}
	forged, _ := encodeVPCTag(v)
	w.setVPCTag(forged)
	if p, _, _ := fill(cfg, later.Add(time.Minute), nil); p.Counts()["DescribeVpcs"] != 1 {
		t.Errorf("cache from the future: %d DescribeVpcs, want 1", p.Counts()["DescribeVpcs"])
	}

	// A fresh cache that does not cover the instance's private address (a
	// secondary block added since): read again.
	v.at = later
	v.cidrs = []netip.Prefix{netip.MustParsePrefix("172.31.0.0/16")}
	wrong, _ := encodeVPCTag(v)
	w.setVPCTag(wrong)
	if p, _, _ := fill(cfg, later.Add(time.Minute), []string{inst}); p.Counts()["DescribeVpcs"] != 1 {
		t.Errorf("cache not covering the instance: %d DescribeVpcs, want 1", p.Counts()["DescribeVpcs"])
	}

	// Unblock and sweep leave the cache alone.
	if _, err := w.manager(w.srv.URL, cfg).Sweep(ctx, later.Add(48*time.Hour), w.subnet); err != nil {
		t.Fatal(err)
	}
	if got := w.vpcTagOf(); got != wrong {
		t.Errorf("cache after sweep = %q, want it untouched", got)
	}
}
