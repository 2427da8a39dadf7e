package awsnacl

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
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

// Restore re-creates vanished blocks from their metadata: at the old rule
// number when it is free, else at a free one (the old number's tag
// deleted), within the quota, never a block check refuses (a protected
// network) nor one about to expire; what it did not re-create it says,
// with why. A second run changes nothing.
func TestRestoreVanished(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	m := w.manager(w.srv.URL, defaultNACL(), WithClock(func() time.Time { return t0 }))
	blocks, err := m.Block(ctx, []policy.Decision{
		w.vpcDecision("203.0.113.1", time.Hour),
		w.vpcDecision("203.0.113.2", time.Hour),
		w.vpcDecision("203.0.113.3", 2*time.Minute),
		w.vpcDecision("203.0.113.4", time.Hour),
		w.vpcDecision("203.0.113.5", time.Hour),
	}, Request{Origin: policy.OriginCLI, Reason: "test"})
	if err != nil || len(blocks) != 5 {
		t.Fatalf("Block: %v %v", blocks, err)
	}
	rule := map[string]int{}
	for _, b := range blocks {
		rule[b.Target.Addr().String()] = b.RuleNumber
	}
	// Someone deletes every entry and puts an allow of their own at the
	// second one's number.
	for _, b := range blocks {
		if _, err := w.raw.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(b.RuleNumber), Egress: aws.Bool(false)}); err != nil {
			t.Fatal(err)
		}
	}
	w.addEntry(rule["203.0.113.2"], false, true, "198.18.0.0/24")

	// A quota of 5 IPv4 entries: the allow-all, the default deny and the
	// foreign allow leave room for two.
	cfg := defaultNACL()
	cfg.Quota = 5
	at := t0.Add(time.Minute) // 203.0.113.3 expires within the sweep margin
	r := w.manager(w.srv.URL, cfg, WithClock(func() time.Time { return at }))
	protected := netip.MustParsePrefix("203.0.113.4/32")
	check := func(b policy.Block) error {
		if b.Target == protected {
			return errors.New("203.0.113.4 is on the allowlist")
		}
		return nil
	}
	res, err := r.Restore(ctx, at, check, w.subnet)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range res.Restored {
		got = append(got, fmt.Sprintf("%s@%d", b.Target.Addr(), b.RuleNumber))
	}
	moved := rule["203.0.113.3"] // the lowest free number under the quota
	if want := []string{fmt.Sprintf("203.0.113.1@%d", rule["203.0.113.1"]), fmt.Sprintf("203.0.113.2@%d", moved)}; !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
	why := map[string]string{}
	for _, n := range res.NotRestored {
		why[n.Target.Addr().String()] = n.Why
	}
	for src, want := range map[string]string{"203.0.113.3": "within 5m0s", "203.0.113.4": "on the allowlist", "203.0.113.5": "quota"} {
		if !strings.Contains(why[src], want) {
			t.Errorf("%s not restored because %q, want it to say %q", src, why[src], want)
		}
	}
	if len(why) != 3 {
		t.Errorf("not restored: %+v, want 203.0.113.3, .4 and .5", res.NotRestored)
	}
	// The NACL: the two denies back, the foreign allow untouched, within
	// the quota; the metadata at the numbers the denies hold now.
	var denies []string
	v4 := 0
	for _, e := range w.entries() {
		if e.Egress || !e.CIDR.Addr().Is4() {
			continue
		}
		v4++
		if !e.Allow && e.RuleNumber < 100 {
			denies = append(denies, fmt.Sprintf("%s@%d", e.CIDR.Addr(), e.RuleNumber))
		}
	}
	slices.Sort(denies)
	if !slices.Equal(denies, got) || v4 > cfg.Quota {
		t.Errorf("NACL denies %v (%d IPv4 entries), want %v within the quota %d", denies, v4, got, cfg.Quota)
	}
	tags := w.tagsOf(w.nacl)
	for n, cidr := range map[int]string{rule["203.0.113.1"]: "203.0.113.1/32", moved: "203.0.113.2/32"} {
		md, err := decodeMeta(tags[ruleKey(n)])
		if err != nil || md.CIDR.String() != cidr || md.Reason != "test" || md.Origin != policy.OriginCLI || !md.Exp.Equal(t0.Add(time.Hour)) {
			t.Errorf("metadata of rule %d: %+v %v, want %s's, reason test, expiring %s", n, md, err, cidr, t0.Add(time.Hour))
		}
	}
	if _, left := tags[ruleKey(rule["203.0.113.2"])]; left {
		t.Errorf("the old number's metadata (rule %d) was left", rule["203.0.113.2"])
	}
	// Idempotent: a second run re-creates nothing and changes nothing.
	again, err := r.Restore(ctx, at, check, w.subnet)
	if err != nil || len(again.Restored) != 0 || len(again.NotRestored) != 2 {
		t.Errorf("second Restore: %+v %v, want nothing restored and 203.0.113.4, .5 not restored", again, err)
	}
}
