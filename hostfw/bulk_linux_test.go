package hostfw

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// bulkPrefixes returns n distinct prefixes of family fam from base on:
// single addresses, and every fifth one a network.
func bulkPrefixes(fam Family, base, n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		v := base + i
		if fam == V4 {
			a := netip.AddrFrom4([4]byte{100, 64 + byte(v>>16), byte(v >> 8), byte(v)})
			out[i] = netip.PrefixFrom(a, 32)
			if i%5 == 4 {
				out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 127, byte(v >> 4), byte(v << 4)}), 28)
			}
			continue
		}
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(v >> 16), byte(v >> 8), byte(v)})
		out[i] = netip.PrefixFrom(a, 128)
		if i%5 == 4 {
			out[i] = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, byte(v >> 8), byte(v), 0}), 64).Masked()
		}
	}
	return out
}

func bulkEntries(ps []netip.Prefix, ttl time.Duration, reason string) []Entry {
	es := make([]Entry, len(ps))
	for i, p := range ps {
		es[i] = Entry{Prefix: p, TTL: ttl, Reason: reason, Origin: "feed"}
	}
	return es
}

// TestBulkBlock: a bulk block goes to the kernel in batches, v4 and v6 and
// networks alike; a repeat tells new entries from refreshed ones and
// refreshes TTL and comment; a set too large to list first makes the
// result say "added or refreshed"; the journal holds every entry; and the
// entries drop real packets.
func TestBulkBlock(t *testing.T) {
	n := nstest.New(t, "attacker", "good")
	n.Victim.Listen(t, testPort)
	att, good := n.Peers["attacker"], n.Peers["good"]
	state := t.TempDir()
	v4, v6 := bulkPrefixes(V4, 0, 2000), bulkPrefixes(V6, 0, 500)
	attacker := netip.PrefixFrom(att.Addr4, 32)
	first := append(append([]netip.Prefix{attacker}, v4[:1000]...), v6[:200]...)
	reach(t, att, att.VictimAddr4, true)
	inNS(t, n, BackendAuto, state, func(ctx context.Context, fw *Firewall) error {
		es := bulkEntries(first, time.Hour, "list one")
		es[1].TTL = 0 // permanent
		res, err := fw.Block(ctx, es)
		if err != nil {
			return err
		}
		if res.Added != len(first) || len(res.Refreshed) != 0 || res.AddedOrRefreshed != 0 {
			return fmt.Errorf("first bulk block: added %d, refreshed %d, added or refreshed %d; want %d added", res.Added, len(res.Refreshed), res.AddedOrRefreshed, len(first))
		}
		got, err := fw.List(ctx)
		if err != nil {
			return err
		}
		if err := sameEntries(got, first, time.Hour, "list one"); err != nil {
			return fmt.Errorf("after the first bulk block: %w", err)
		}
		for _, e := range got {
			if e.Prefix == first[1] && !e.Permanent() {
				return fmt.Errorf("permanent entry has TTL %s in the kernel", e.TTL)
			}
		}

		// Again, with more: the old ones are refreshed, the rest added.
		second := append(slices.Clone(first), append(v4[1000:1500:1500], v6[200:300]...)...)
		reason := `two "quoted" \ ü`
		res, err = fw.Block(ctx, bulkEntries(second, 2*time.Hour, reason))
		if err != nil {
			return err
		}
		slices.SortFunc(res.Refreshed, netip.Prefix.Compare)
		want := slices.SortedFunc(slices.Values(first), netip.Prefix.Compare)
		if res.Added != len(second)-len(first) || !slices.Equal(res.Refreshed, want) {
			return fmt.Errorf("second bulk block: added %d, refreshed %d; want %d added and the %d of the first refreshed", res.Added, len(res.Refreshed), len(second)-len(first), len(first))
		}
		if got, err = fw.List(ctx); err != nil {
			return err
		}
		if err := sameEntries(got, second, 2*time.Hour, `two 'quoted' \ ü`); err != nil {
			return fmt.Errorf("after the second bulk block: %w", err)
		}

		// A few more into a set much larger than they are: not listed.
		third := append(v4[1500:1510:1510], first[2:12]...)
		res, err = fw.Block(ctx, bulkEntries(third, 3*time.Hour, "three"))
		if err != nil {
			return err
		}
		if res.AddedOrRefreshed != len(third) || res.Added != 0 || len(res.Refreshed) != 0 {
			return fmt.Errorf("third bulk block: %+v, want all %d added or refreshed", res, len(third))
		}
		if got, err = fw.List(ctx); err != nil {
			return err
		}
		if len(got) != len(second)+10 {
			return fmt.Errorf("after the third bulk block: %d entries, want %d", len(got), len(second)+10)
		}
		journaled, err := fw.state.load()
		if err != nil {
			return err
		}
		if len(journaled.entries) != len(got) || len(journaled.damaged) != 0 {
			return fmt.Errorf("journal holds %d blocks (%d damaged records), the kernel %d", len(journaled.entries), len(journaled.damaged), len(got))
		}
		return nil
	})
	reach(t, att, att.VictimAddr4, false)
	reach(t, good, good.VictimAddr4, true)
}

// sameEntries checks that the kernel holds exactly want, each with about ttl
// left and the comment of origin "feed" and reason.
func sameEntries(got []Entry, want []netip.Prefix, ttl time.Duration, reason string) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d entries in the kernel, want %d", len(got), len(want))
	}
	in := map[netip.Prefix]bool{}
	for _, p := range want {
		in[p] = true
	}
	for _, e := range got {
		if !in[e.Prefix] {
			return fmt.Errorf("unexpected entry %s", e.Prefix)
		}
		if e.Origin != "feed" || e.Reason != reason {
			return fmt.Errorf("entry %s has origin %q reason %q, want feed and %q", e.Prefix, e.Origin, e.Reason, reason)
		}
		if !e.Permanent() && (e.TTL > ttl || e.TTL < ttl-10*time.Minute) {
			return fmt.Errorf("entry %s has TTL %s, want about %s", e.Prefix, e.TTL, ttl)
		}
	}
	return nil
}
