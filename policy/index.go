package policy

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// pkey is a prefix as two 64-bit words and a length, IPv4 mapped into the
// IPv6 space (::ffff:a.b.c.d/96+n), so comparisons and hashing are cheap.
type pkey struct {
	hi, lo uint64
	bits   uint8
}

func keyOf(p netip.Prefix) pkey {
	a := p.Addr()
	bits := p.Bits()
	if a.Is4() {
		bits += 96
	}
	b := a.As16()
	return pkey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), uint8(bits)}
}

// masked keeps the first bits bits of k.
func (k pkey) masked(bits int) pkey {
	switch {
	case bits <= 0:
		return pkey{}
	case bits < 64:
		return pkey{k.hi &^ (^uint64(0) >> bits), 0, uint8(bits)}
	case bits < 128:
		return pkey{k.hi, k.lo &^ (^uint64(0) >> (bits - 64)), uint8(bits)}
	}
	return pkey{k.hi, k.lo, 128}
}

// last is the highest address of k, with the length of a single address.
func (k pkey) last() pkey {
	switch {
	case k.bits == 0:
		return pkey{^uint64(0), ^uint64(0), 128}
	case k.bits < 64:
		return pkey{k.hi | ^uint64(0)>>k.bits, ^uint64(0), 128}
	case k.bits < 128:
		return pkey{k.hi, k.lo | ^uint64(0)>>(k.bits-64), 128}
	}
	return pkey{k.hi, k.lo, 128}
}

func compareKey(a, b pkey) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	return cmp.Compare(a.bits, b.bits)
}

// compareAddr compares the addresses of a and b, ignoring lengths.
func compareAddr(a, b pkey) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// prefixIndex answers overlap questions over a fixed set of prefixes:
// which members contain a prefix (one hash lookup per distinct member
// length) and which lie inside it (one binary search). Members are
// canonical (masked, IPv4-mapped addresses unmapped).
type prefixIndex struct {
	items  []indexItem      // sorted by address, then length
	exact4 map[uint64]int32 // IPv4 member (address<<8 | length) → first id
	exact6 map[pkey]int32   // IPv6 member → first id
	next   []int32          // next id of an equal member, or -1
	lens4  []int            // distinct lengths of IPv4 members (in the mapped space), ascending
	lens6  []int
}

type indexItem struct {
	k  pkey
	id int32
	v4 bool
}

// newPrefixIndex indexes prefixes; id i of a member is its position in ps.
// Invalid prefixes are left out.
func newPrefixIndex(ps []netip.Prefix) *prefixIndex {
	x := &prefixIndex{items: make([]indexItem, 0, len(ps)), exact4: make(map[uint64]int32, len(ps)), exact6: map[pkey]int32{}, next: make([]int32, len(ps))}
	var seen4, seen6 [129]bool
	for i, p := range ps {
		if !p.IsValid() {
			continue
		}
		p = Canonical(p)
		k := keyOf(p)
		x.items = append(x.items, indexItem{k: k, id: int32(i), v4: p.Addr().Is4()})
		x.next[i] = x.head(k, p.Addr().Is4())
		if p.Addr().Is4() {
			x.exact4[key4(k)] = int32(i)
		} else {
			x.exact6[k] = int32(i)
		}
		if p.Addr().Is4() {
			seen4[k.bits] = true
		} else {
			seen6[k.bits] = true
		}
	}
	slices.SortFunc(x.items, func(a, b indexItem) int {
		if c := compareKey(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	for l := range 129 {
		if seen4[l] {
			x.lens4 = append(x.lens4, l)
		}
		if seen6[l] {
			x.lens6 = append(x.lens6, l)
		}
	}
	return x
}

// key4 packs a mapped IPv4 key into one word for the fast map path.
func key4(k pkey) uint64 { return k.lo<<8 | uint64(k.bits) }

// head returns the first id of the members equal to k, or -1.
func (x *prefixIndex) head(k pkey, v4 bool) int32 {
	var id int32
	var ok bool
	if v4 {
		id, ok = x.exact4[key4(k)]
	} else {
		id, ok = x.exact6[k]
	}
	if !ok {
		return -1
	}
	return id
}

// each calls fn with every member equal to k.
func (x *prefixIndex) each(k pkey, v4 bool, fn func(id int) bool) bool {
	for id := x.head(k, v4); id >= 0; id = x.next[id] {
		if !fn(int(id)) {
			return false
		}
	}
	return true
}

// containing calls fn with the id of every member that contains s (s
// itself included), broadest first. fn returns false to stop.
func (x *prefixIndex) containing(s netip.Prefix, fn func(id int) bool) bool {
	v4 := s.Addr().Is4()
	lens := x.lens6
	if v4 {
		lens = x.lens4
	}
	k := keyOf(s)
	for _, l := range lens {
		if l > int(k.bits) {
			break
		}
		if !x.each(k.masked(l), v4, fn) {
			return false
		}
	}
	return true
}

// inside calls fn with the id of every member strictly inside s. fn
// returns false to stop.
func (x *prefixIndex) inside(s netip.Prefix, fn func(id int) bool) bool {
	return x.insideKey(keyOf(s), s.Addr().Is4(), fn)
}

// insideKey is inside for a prefix already turned into its key.
func (x *prefixIndex) insideKey(k pkey, v4 bool, fn func(id int) bool) bool {
	if k.bits == 128 || len(x.items) == 0 {
		return true
	}
	start := pkey{k.hi, k.lo, k.bits + 1}
	last := k.last()
	i, _ := slices.BinarySearchFunc(x.items, start, func(it indexItem, t pkey) int { return compareKey(it.k, t) })
	for ; i < len(x.items); i++ {
		it := x.items[i]
		if compareAddr(it.k, last) > 0 {
			break
		}
		if it.v4 != v4 { // an IPv6 prefix such as ::/8 spans the mapped IPv4 space
			continue
		}
		if !fn(int(it.id)) {
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

// overlaps reports whether one of a and b contains the other.
func overlaps(a, b netip.Prefix) bool {
	return a.IsValid() && b.IsValid() && a.Addr().Is4() == b.Addr().Is4() && a.Overlaps(b)
}
