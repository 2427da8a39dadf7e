package policy

import (
	"net/netip"
	"slices"
)

// prefixIndex answers overlap questions over a fixed set of prefixes in
// O(lengths · log n): which members contain a prefix, which lie inside it.
// Members are canonical (masked, IPv4-mapped addresses unmapped).
type prefixIndex struct {
	items []indexItem // sorted by address, then bits
	lens4 []int       // distinct prefix lengths of IPv4 members, ascending
	lens6 []int
}

type indexItem struct {
	p  netip.Prefix
	id int
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// newPrefixIndex indexes prefixes; id i of a member is its position in ps.
// Invalid prefixes are left out.
func newPrefixIndex(ps []netip.Prefix) *prefixIndex {
	x := &prefixIndex{items: make([]indexItem, 0, len(ps))}
	var seen4 [33]bool
	var seen6 [129]bool
	for i, p := range ps {
		if !p.IsValid() {
			continue
		}
		p = Canonical(p)
		x.items = append(x.items, indexItem{p: p, id: i})
		if p.Addr().Is4() {
			seen4[p.Bits()] = true
		} else {
			seen6[p.Bits()] = true
		}
	}
	slices.SortFunc(x.items, func(a, b indexItem) int {
		if c := comparePrefix(a.p, b.p); c != 0 {
			return c
		}
		return a.id - b.id
	})
	for l, ok := range seen4 {
		if ok {
			x.lens4 = append(x.lens4, l)
		}
	}
	for l, ok := range seen6 {
		if ok {
			x.lens6 = append(x.lens6, l)
		}
	}
	return x
}

// lowerBound is the first position whose member sorts at or after p.
func (x *prefixIndex) lowerBound(p netip.Prefix) int {
	i, _ := slices.BinarySearchFunc(x.items, p, func(it indexItem, t netip.Prefix) int { return comparePrefix(it.p, t) })
	return i
}

// containing calls fn with the id of every member that contains s (s
// itself included), broadest first. fn returns false to stop.
func (x *prefixIndex) containing(s netip.Prefix, fn func(id int) bool) bool {
	lens := x.lens6
	if s.Addr().Is4() {
		lens = x.lens4
	}
	for _, l := range lens {
		if l > s.Bits() {
			break
		}
		key := netip.PrefixFrom(s.Addr(), l).Masked()
		for i := x.lowerBound(key); i < len(x.items) && x.items[i].p == key; i++ {
			if !fn(x.items[i].id) {
				return false
			}
		}
	}
	return true
}

// equal calls fn with the id of every member equal to s.
func (x *prefixIndex) equal(s netip.Prefix, fn func(id int) bool) bool {
	for i := x.lowerBound(s); i < len(x.items) && x.items[i].p == s; i++ {
		if !fn(x.items[i].id) {
			return false
		}
	}
	return true
}

// inside calls fn with the id of every member strictly inside s. fn
// returns false to stop.
func (x *prefixIndex) inside(s netip.Prefix, fn func(id int) bool) bool {
	if s.Bits() == s.Addr().BitLen() {
		return true
	}
	last := lastAddr(s)
	for i := x.lowerBound(netip.PrefixFrom(s.Addr(), s.Bits()+1)); i < len(x.items); i++ {
		it := x.items[i]
		if it.p.Addr().Compare(last) > 0 {
			break
		}
		if !fn(it.id) {
			return false
		}
	}
	return true
}

// overlapping calls fn with every member that contains s or lies inside it.
func (x *prefixIndex) overlapping(s netip.Prefix, fn func(id int) bool) {
	if x.containing(s, fn) {
		x.inside(s, fn)
	}
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if a.Is4() {
		b := a.As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

func setHostBits(b []byte, bits int) {
	for i := range b {
		switch {
		case bits >= (i+1)*8:
		case bits <= i*8:
			b[i] = 0xff
		default:
			b[i] |= 0xff >> (bits - i*8)
		}
	}
}

// overlaps reports whether one of a and b contains the other.
func overlaps(a, b netip.Prefix) bool {
	return a.IsValid() && b.IsValid() && a.Addr().Is4() == b.Addr().Is4() && a.Overlaps(b)
}
