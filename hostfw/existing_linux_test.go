package hostfw

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// TestExistingFindsEntriesOfEachFamily: Existing answers the entries the
// kernel holds among the prefixes asked (expiry, reason, origin), of
// either family, and nothing for prefixes it does not hold, whether they
// are tested one by one or the sets are listed.
func TestExistingFindsEntriesOfEachFamily(t *testing.T) {
	n := nstest.New(t, "attacker")
	v4 := netip.MustParsePrefix("203.0.113.7/32")
	v6 := netip.MustParsePrefix("2001:db8::7/128")
	inNS(t, n, BackendAuto, t.TempDir(), func(ctx context.Context, fw *Firewall) error {
		if _, err := fw.Block(ctx, []Entry{{Prefix: v4, TTL: time.Hour, Reason: "four", Origin: "cli"}, {Prefix: v6, TTL: 2 * time.Hour, Reason: "six", Origin: "watch"}}); err != nil {
			return err
		}
		absent4, absent6 := netip.MustParsePrefix("203.0.113.8/32"), netip.MustParsePrefix("2001:db8::8/128")
		many := []netip.Prefix{v4, v6}
		for i := range probeLimit + 1 {
			many = append(many, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 32))
		}
		for _, tc := range []struct {
			ask  []netip.Prefix
			want map[netip.Prefix]string
		}{
			{[]netip.Prefix{v4, absent6}, map[netip.Prefix]string{v4: "four/cli"}},
			{[]netip.Prefix{absent4, v6}, map[netip.Prefix]string{v6: "six/watch"}},
			{[]netip.Prefix{absent4, absent6}, map[netip.Prefix]string{}},
			{many, map[netip.Prefix]string{v4: "four/cli", v6: "six/watch"}},
		} {
			got, err := fw.Existing(ctx, tc.ask)
			if err != nil {
				return err
			}
			if len(got) != len(tc.want) {
				return fmt.Errorf("Existing(%d prefixes) = %v, want %v", len(tc.ask), got, tc.want)
			}
			for p, w := range tc.want {
				e, ok := got[p]
				if !ok || e.Reason+"/"+e.Origin != w || e.ExpiresAt.IsZero() {
					return fmt.Errorf("Existing: %s = %+v, want %s with its expiry", p, e, w)
				}
			}
		}
		return nil
	})
}

// TestNetlinkListingReadsAsIpsetSave: the netlink listing a re-block
// reads (Existing) gives, entry for entry, what parsing "ipset save" of the
// same sets gives: both families, host and network prefixes, timeouts and
// permanent entries, comments with and without an origin, an entry added
// by hand without a comment; and keep leaves out what it does not pick.
func TestNetlinkListingReadsAsIpsetSave(t *testing.T) {
	n := nstest.New(t)
	inNS(t, n, BackendAuto, t.TempDir(), func(ctx context.Context, fw *Firewall) error {
		blocks := []Entry{
			{Prefix: netip.MustParsePrefix("203.0.113.7/32"), TTL: time.Hour, Reason: "ssh bruteforce", Origin: "cli"},
			{Prefix: netip.MustParsePrefix("198.51.100.0/24"), TTL: 90 * time.Minute, Reason: "botnet /24", Origin: "watch"},
			{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Reason: "permanent, by hand", Origin: "cli"},
			{Prefix: netip.MustParsePrefix("2001:db8::7/128"), TTL: 2 * time.Hour, Reason: "six", Origin: "lambda"},
			{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), TTL: 3 * time.Hour, Reason: "six /64"},
		}
		if _, err := fw.Block(ctx, blocks); err != nil {
			return err
		}
		// By hand: no comment at all, and a comment without an origin.
		if _, err := fw.r.run(ctx, nil, fw.t.ipset, "add", fw.setName(V4), "203.0.113.99", "timeout", "600"); err != nil {
			return err
		}
		if _, err := fw.r.run(ctx, nil, fw.t.ipset, "add", fw.setName(V6), "2001:db8::99", "timeout", "0", "comment", "plain words"); err != nil {
			return err
		}
		now := fw.now()
		l := fw.sets.(setLister)
		for _, fam := range []Family{V4, V6} {
			out, err := fw.r.run(ctx, nil, fw.t.ipset, "save", fw.setName(fam))
			if err != nil {
				return err
			}
			saved, err := parseSave(out, now)
			if err != nil {
				return err
			}
			listed, err := l.entries(fw.setName(fam), now, func(netip.Prefix) bool { return true })
			if err != nil {
				return err
			}
			if len(saved) != 4-fam2(fam) || len(listed) != len(saved) {
				return fmt.Errorf("%s: ipset save reads %d entries, netlink %d", fam, len(saved), len(listed))
			}
			bySave := map[netip.Prefix]Entry{}
			for _, e := range saved {
				bySave[e.Prefix] = e
			}
			for _, e := range listed {
				s, ok := bySave[e.Prefix]
				// Both read the same kernel second: the timeouts may differ
				// by the one the dump and the save straddle.
				if !ok || s.Reason != e.Reason || s.Origin != e.Origin || (s.TTL == 0) != (e.TTL == 0) || absDur(s.TTL-e.TTL) > time.Second {
					return fmt.Errorf("%s: netlink reads %+v, ipset save %+v", e.Prefix, e, s)
				}
			}
			one := saved[0].Prefix
			picked, err := l.entries(fw.setName(fam), now, func(p netip.Prefix) bool { return p == one })
			if err != nil || len(picked) != 1 || picked[0].Prefix != one {
				return fmt.Errorf("%s: keep picking %s gave %+v, %v", fam, one, picked, err)
			}
		}
		return nil
	})
}

// fam2 is 1 for IPv6: the IPv4 set holds 4 entries here, the IPv6 set 3.
func fam2(f Family) int {
	if f == V6 {
		return 1
	}
	return 0
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
