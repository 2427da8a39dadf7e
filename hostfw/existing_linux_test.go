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
