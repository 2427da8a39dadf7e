package policy

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestPrefixIndex compares the index with the obvious quadratic answer.
func TestPrefixIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	randPrefix := func() netip.Prefix {
		if rng.IntN(3) == 0 {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rng.IntN(4)), 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(rng.IntN(8))})
			return netip.PrefixFrom(a, []int{0, 8, 32, 48, 64, 125, 128}[rng.IntN(7)]).Masked()
		}
		a := netip.AddrFrom4([4]byte{198, 51, byte(100 + rng.IntN(2)), byte(rng.IntN(16))})
		return netip.PrefixFrom(a, []int{0, 8, 16, 23, 24, 28, 30, 32}[rng.IntN(8)]).Masked()
	}
	for round := range 50 {
		var ps []netip.Prefix
		for range rng.IntN(40) {
			ps = append(ps, randPrefix())
		}
		if round%5 == 0 {
			ps = append(ps, netip.Prefix{}) // invalid members are left out
		}
		x := newPrefixIndex(ps)
		for range 40 {
			s := randPrefix()
			var gotC, gotI, wantC, wantI []int
			x.containing(s, func(id int) bool { gotC = append(gotC, id); return true })
			x.inside(s, func(id int) bool { gotI = append(gotI, id); return true })
			for id, p := range ps {
				switch {
				case !p.IsValid() || p.Addr().Is4() != s.Addr().Is4():
				case p.Bits() <= s.Bits() && p.Contains(s.Addr()):
					wantC = append(wantC, id)
				case p.Bits() > s.Bits() && s.Contains(p.Addr()):
					wantI = append(wantI, id)
				}
			}
			slices.Sort(gotC)
			slices.Sort(gotI)
			if !slices.Equal(gotC, wantC) || !slices.Equal(gotI, wantI) {
				t.Fatalf("members %v, query %s:\ncontaining got %v want %v\ninside got %v want %v", ps, s, gotC, wantC, gotI, wantI)
			}
		}
	}
}

func TestPKey(t *testing.T) {
	for _, tc := range []struct{ p, last string }{
		{"198.51.100.0/24", "198.51.100.255"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff"},
		{"2001:db8::1/128", "2001:db8::1"},
	} {
		p := netip.MustParsePrefix(tc.p)
		want := keyOf(netip.PrefixFrom(netip.MustParseAddr(tc.last), netip.MustParseAddr(tc.last).BitLen()))
		if got := keyOf(p).last(); compareAddr(got, want) != 0 {
			t.Errorf("last of %s: got %x %x, want %x %x", p, got.hi, got.lo, want.hi, want.lo)
		}
		for _, l := range []int{0, 8, 60, 64, 70, 100, 120} {
			if l > p.Bits() {
				continue
			}
			if got, want := keyOf(p).masked(l+96*b2i(p.Addr().Is4())), keyOf(netip.PrefixFrom(p.Addr(), l).Masked()); got != want && !(l == 0 && p.Addr().Is4()) {
				t.Errorf("masked %s to %d: got %v, want %v", p, l, got, want)
			}
		}
	}
}
