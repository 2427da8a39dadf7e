package awsnacl

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/banshee-project/banshee/policy"
)

// An entry deleted behind banshee's back (as a Terraform apply of the ACL's
// inline rules does) is reported by Vanished while its metadata has not
// expired, then once by the Sweep that deletes the metadata; an entry
// whose block had expired, or that banshee removed itself, is not.
func TestVanishedEntries(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m := w.manager(w.srv.URL, defaultNACL(), WithClock(func() time.Time { return t0 }))
	blocks, err := m.Block(ctx, []policy.Decision{
		w.vpcDecision("203.0.113.1", time.Hour),
		w.vpcDecision("203.0.113.2", time.Minute),
		w.vpcDecision("203.0.113.3", time.Hour),
		w.vpcDecision("203.0.113.4", time.Hour),
	}, Request{Origin: policy.OriginCLI, Reason: "test"})
	if err != nil || len(blocks) != 4 {
		t.Fatalf("Block: %v %v", blocks, err)
	}
	rule := map[string]int{}
	for _, b := range blocks {
		rule[b.Target.String()] = b.RuleNumber
	}
	if got, err := m.Vanished(ctx, t0, w.subnet); err != nil || len(got) != 0 {
		t.Fatalf("nothing deleted yet: Vanished = %v, %v", got, err)
	}
	// Someone else deletes three entries; banshee unblocks the fourth.
	for _, target := range []string{"203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"} {
		if _, err := w.raw.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(rule[target]), Egress: aws.Bool(false)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Unblock(ctx, w.subnet, []netip.Prefix{netip.MustParsePrefix("203.0.113.4/32")}); err != nil {
		t.Fatal(err)
	}

	at := t0.Add(10 * time.Minute) // 203.0.113.2's block has expired by then
	fresh := w.manager(w.srv.URL, defaultNACL())
	got, err := fresh.Vanished(ctx, at, w.nacl)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"203.0.113.1/32", "203.0.113.3/32"}
	if len(got) != len(want) {
		t.Fatalf("Vanished = %+v, want %v", got, want)
	}
	for i, b := range got {
		if b.Target.String() != want[i] || b.NACLID != w.nacl || b.RuleNumber != rule[want[i]] || b.Reason != "test" || !b.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("Vanished[%d] = %+v, want %s at rule %d of %s, reason test, expiring %s", i, b, want[i], rule[want[i]], w.nacl, t0.Add(time.Hour))
		}
	}
	// Vanished only reads: the metadata is still there for the sweep,
	// which reports the same blocks once and deletes the metadata.
	res, err := fresh.Sweep(ctx, at, w.nacl)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Vanished) != 2 || res.Vanished[0].Target.String() != want[0] || res.Vanished[1].Target.String() != want[1] || res.StaleTags != 3 {
		t.Errorf("Sweep: vanished %+v, stale tags %d; want %v of 3 stale tags", res.Vanished, res.StaleTags, want)
	}
	for k := range w.tagsOf(w.nacl) {
		if strings.HasPrefix(k, tagPrefix) {
			t.Errorf("metadata %s left after the sweep", k)
		}
	}
	if got, err := w.manager(w.srv.URL, defaultNACL()).Vanished(ctx, at, w.nacl); err != nil || len(got) != 0 {
		t.Errorf("after the sweep: Vanished = %v, %v; want none", got, err)
	}
}
