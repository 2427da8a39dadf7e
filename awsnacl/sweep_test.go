package awsnacl

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

// tagsOf returns every tag of a NACL.
func (w *world) tagsOf(id string) map[string]string {
	w.t.Helper()
	out, err := w.raw.DescribeNetworkAcls(ctxT(w.t), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{id}})
	if err != nil {
		w.t.Fatal(err)
	}
	m := map[string]string{}
	for _, t := range out.NetworkAcls[0].Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func (w *world) setTag(key, value string) {
	w.t.Helper()
	if _, err := w.raw.CreateTags(ctxT(w.t), &ec2.CreateTagsInput{Resources: []string{w.nacl}, Tags: []types.Tag{{Key: aws.String(key), Value: aws.String(value)}}}); err != nil {
		w.t.Fatal(err)
	}
}

// A sweep that names no NACL works on the NACLs banshee manages only:
// another team's NACL, with a hand-made deny in the reserved range and no
// banshee tag, is neither read for adoption nor changed, however often it
// runs. Named explicitly, an unmanaged NACL is swept but nothing in it is
// adopted either.
func TestSweepLeavesUnmanagedNACLs(t *testing.T) {
	srv := mototest.Start(t) // a region of its own: the sweep reads all of it
	other := newWorldOn(t, srv)
	other.addEntry(5, false, false, "192.0.2.0/24")
	w := newWorldOn(t, srv)
	ctx := ctxT(t)
	cfg := defaultNACL()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := w.manager(srv.URL, cfg, WithClock(func() time.Time { return t0 })).Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.1", time.Hour)}, Request{Origin: policy.OriginCLI}); err != nil {
		t.Fatal(err)
	}
	w.addEntry(9, false, false, "198.51.100.9/32") // untagged, in the managed NACL

	for i, at := range []time.Time{t0.Add(2 * time.Hour), t0.Add(2*time.Hour + 2*DefaultOrphanGrace)} {
		res, err := w.manager(srv.URL, cfg).Sweep(ctx, at)
		if err != nil {
			t.Fatalf("sweep %d: %v", i, err)
		}
		if i == 0 && (len(res.Removed) != 1 || res.Removed[0].Target != netip.MustParsePrefix("203.0.113.1/32") || res.Waiting != 1 || len(res.Adopted) != 0) {
			t.Errorf("first sweep = %+v, want the expired block removed and 9 only seen", res)
		}
		if i == 1 && (len(res.Adopted) != 1 || res.Adopted[0].NACLID != w.nacl || res.Adopted[0].RuleNumber != 9) {
			t.Errorf("second sweep = %+v, want 9 of %s adopted, nothing of %s", res, w.nacl, other.nacl)
		}
	}
	if !slices.ContainsFunc(other.entries(), func(e policy.NACLEntry) bool { return e.RuleNumber == 5 && !e.Allow }) {
		t.Errorf("the unmanaged NACL's deny 5 was deleted by a region-wide sweep")
	}
	if tags := other.tagsOf(other.nacl); len(tags) != 0 {
		t.Errorf("the unmanaged NACL got tags %v", tags)
	}
	if bs, err := w.manager(srv.URL, cfg).List(ctx); err != nil || slices.ContainsFunc(bs, func(b policy.Block) bool { return b.NACLID == other.nacl }) {
		t.Errorf("List of the region = %+v, %v: lists the unmanaged NACL", bs, err)
	}

	// Named explicitly: still no sighting, no adoption in a NACL banshee
	// does not manage.
	for _, at := range []time.Time{t0, t0.Add(2 * DefaultOrphanGrace)} {
		res, err := w.manager(srv.URL, cfg).Sweep(ctx, at, other.nacl)
		if err != nil || len(res.Adopted)+res.Waiting+len(res.Removed) != 0 {
			t.Errorf("sweep of the unmanaged NACL by id = %+v, %v; want nothing done", res, err)
		}
	}
	if tags := other.tagsOf(other.nacl); len(tags) != 0 {
		t.Errorf("the unmanaged NACL got tags %v", tags)
	}
}

// An entry without metadata is adopted only when seen unchanged by two
// sweeps the grace period apart; a changed entry starts over, and a tag
// that does not match its entry is replaced only once it has not changed
// for the grace period.
func TestSweepAdoptsAfterGrace(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	w.setTag(vpcCIDRsKey, "at=1;vpc="+w.vpcID+";cidrs="+w.vpcV4.String()) // managed
	w.addEntry(4, false, false, "192.0.2.4/32")
	w.addEntry(6, false, false, "192.0.2.6/32")
	// 6 carries metadata for another CIDR (an aggregate's writer died
	// between its replace and its CreateTags).
	w.setTag(ruleKey(6), meta{CIDR: netip.MustParsePrefix("192.0.2.7/32"), Reason: "old"}.encode())
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	sweep := func(at time.Time) SweepResult {
		t.Helper()
		res, err := w.manager(w.srv.URL, cfg).Sweep(ctx, at, w.nacl)
		if err != nil {
			t.Fatalf("sweep at %s: %v", at, err)
		}
		return res
	}
	if res := sweep(t0); len(res.Adopted) != 0 || res.Waiting != 2 {
		t.Fatalf("first sight = %+v, want 2 waiting, none adopted", res)
	}
	// The entry at 4 changes: it is a new sighting.
	if _, err := w.raw.ReplaceNetworkAclEntry(ctx, &ec2.ReplaceNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(4), Egress: aws.Bool(false),
		Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny, CidrBlock: aws.String("192.0.2.44/32")}); err != nil {
		t.Fatal(err)
	}
	res := sweep(t0.Add(DefaultOrphanGrace))
	if len(res.Adopted) != 1 || res.Adopted[0].RuleNumber != 6 || res.Adopted[0].Target != netip.MustParsePrefix("192.0.2.6/32") {
		t.Errorf("after the grace period = %+v, want only 6 adopted (4 changed)", res)
	}
	if md, _ := w.read().meta(6); md.Reason == "old" || md.CIDR != netip.MustParsePrefix("192.0.2.6/32") {
		t.Errorf("metadata of 6 = %+v, want the adoption's", md)
	}
	if res := sweep(t0.Add(2 * DefaultOrphanGrace)); len(res.Adopted) != 1 || res.Adopted[0].Target != netip.MustParsePrefix("192.0.2.44/32") {
		t.Errorf("a grace period after the change = %+v, want 4 adopted", res)
	}
	st := w.read()
	if len(st.seen) != 0 {
		t.Errorf("sightings left: %v", st.seen)
	}
	for _, n := range []int{4, 6} {
		if _, ok := st.meta(n); !ok {
			t.Errorf("entry %d has no metadata", n)
		}
	}
}

// A writer that tags its entry between the sweep's read and its adoption
// keeps its metadata: the sweep reads again before adopting and never
// replaces metadata that matches its entry.
func TestSweepKeepsConcurrentWriterMetadata(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	w.setTag(vpcCIDRsKey, "at=1;vpc="+w.vpcID+";cidrs="+w.vpcV4.String()) // managed
	w.addEntry(3, false, false, "203.0.113.9/32")                         // the writer's entry, metadata not written yet
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if res, err := w.manager(w.srv.URL, cfg).Sweep(ctx, t0, w.nacl); err != nil || res.Waiting != 1 {
		t.Fatalf("first sweep = %+v, %v", res, err)
	}
	good := meta{Exp: t0.Add(24 * time.Hour), Origin: policy.OriginCLI, CIDR: netip.MustParsePrefix("203.0.113.9/32"), Reason: "real"}
	first := true
	p := w.srv.Proxy(t, mototest.Faults{Rewrite: func(action string, body []byte) []byte {
		if action == "DescribeNetworkAcls" && first {
			// The sweep has this read, without the tag; the writer tags now.
			first = false
			if _, err := w.raw.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{w.nacl}, Tags: []types.Tag{{Key: aws.String(ruleKey(3)), Value: aws.String(good.encode())}}}); err != nil {
				t.Error(err)
			}
		}
		return body
	}})
	res, err := w.manager(p.URL, cfg).Sweep(ctx, t0.Add(DefaultOrphanGrace), w.nacl)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Adopted) != 0 {
		t.Errorf("sweep adopted %+v, which its writer had tagged meanwhile", res.Adopted)
	}
	st := w.read()
	if md, ok := st.meta(3); !ok || md.Reason != "real" || !md.Exp.Equal(good.Exp) {
		t.Errorf("writer's metadata after the sweep: %q", st.tags[3])
	}
	if len(st.seen) != 0 {
		t.Errorf("sighting left for a tagged entry: %v", st.seen)
	}
}

// A block of a source whose entry has expired, made between a sweep's
// read and its deletes, must survive the sweep: Block does not extend an
// entry that a sweep may be deleting, it creates a fresh one.
func TestSweepRacingReblockKeepsBlock(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(2 * time.Hour)
	src := netip.MustParsePrefix("203.0.113.77/32")
	old, err := w.manager(w.srv.URL, cfg, WithClock(func() time.Time { return t0 })).Block(ctx, []policy.Decision{w.vpcDecision(src.String(), time.Hour)}, Request{Origin: policy.OriginCLI})
	if err != nil {
		t.Fatal(err)
	}
	var reblocked []policy.Block
	first := true
	p := w.srv.Proxy(t, mototest.Faults{Rewrite: func(action string, body []byte) []byte {
		if action == "DescribeNetworkAcls" && first {
			// The sweep read the expired entry; another process blocks the
			// same source again before the sweep deletes it.
			first = false
			m := w.manager(w.srv.URL, cfg, WithClock(func() time.Time { return t1 }))
			bs, err := m.Block(context.Background(), []policy.Decision{w.vpcDecision(src.String(), time.Hour)}, Request{Origin: policy.OriginWatch, Reason: "again"})
			if err != nil {
				t.Errorf("re-block: %v", err)
			}
			reblocked = bs
		}
		return body
	}})
	res, err := w.manager(p.URL, cfg).Sweep(ctx, t1, w.subnet)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0].RuleNumber != old[0].RuleNumber {
		t.Errorf("sweep removed %+v, want the expired rule %d", res.Removed, old[0].RuleNumber)
	}
	if len(reblocked) != 1 || reblocked[0].RuleNumber == old[0].RuleNumber {
		t.Fatalf("re-block = %+v, want a new rule beside the expired %d", reblocked, old[0].RuleNumber)
	}
	st := checkConsistent(t, w, cfg)
	e, ok := st.entry(reblocked[0].RuleNumber, false)
	md, hasMeta := st.meta(reblocked[0].RuleNumber)
	if !ok || e.Allow || e.CIDR != src || !hasMeta || md.expired(t1) || md.Reason != "again" {
		t.Errorf("after the sweep: entry %+v (%v), metadata %+v (%v); want %s denied until %s", e, ok, md, hasMeta, src, t1.Add(time.Hour))
	}
}

// A NACL at AWS's tag limit still gets its expired blocks swept; the
// sightings that do not fit wait for a later sweep.
func TestSweepAtTagLimit(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	cfg := defaultNACL()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := w.manager(w.srv.URL, cfg, WithClock(func() time.Time { return t0 })).Block(ctx, []policy.Decision{w.vpcDecision("203.0.113.1", time.Hour)}, Request{}); err != nil {
		t.Fatal(err)
	}
	var tags []types.Tag
	for i := len(w.tagsOf(w.nacl)); i < maxTags; i++ {
		tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("team%d", i)), Value: aws.String("x")})
	}
	if _, err := w.raw.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{w.nacl}, Tags: tags}); err != nil {
		t.Fatal(err)
	}
	w.addEntry(9, false, false, "198.51.100.9/32")
	res, err := w.manager(w.srv.URL, cfg).Sweep(ctx, t0.Add(2*time.Hour), w.nacl)
	if err != nil || len(res.Removed) != 1 || res.Waiting != 1 {
		t.Errorf("sweep at the tag limit = %+v, %v; want the expired block removed, 9 waiting", res, err)
	}
	if n := len(w.tagsOf(w.nacl)); n > maxTags {
		t.Errorf("%d tags, over %d", n, maxTags)
	}
}
