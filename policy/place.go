package policy

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
)

// KeepFactor is how much more an entry already in the range counts than
// a new source of the same value when the range is full: a new source
// evicts an entry only when it is worth more than KeepFactor times as
// much, so sources of equal weight never churn the range.
const KeepFactor = 2.0

// RangeItem is one thing PlaceRange places in one address family's share
// of a network ACL's reserved range: an entry already there (Rule > 0) or
// a new source (Rule 0).
type RangeItem struct {
	Prefix  netip.Prefix
	Rule    int     // the existing entry's rule number; 0 for a new source
	Value   float64 // what denying it at the edge is worth (see Decide)
	Sources int     // attack sources it stands for (0 counts as 1)
	Pinned  bool    // an existing entry that must stay as it is (no expiry, refreshed, egress pair not ours)
	Forced  bool    // a new source the caller demanded at the edge (--scope vpc)
}

// RangeInput is the whole reserved range of one family as PlaceRange sees
// it: every entry of ours already there and every new source, and the
// rules for merging them.
type RangeInput struct {
	Items []RangeItem
	// Capacity is how many entries the family may hold in the range: its
	// entries there now plus the free rule numbers the quota leaves.
	Capacity int
	// Headroom: entries are widened beyond AggregateBits while fewer free
	// entries than this would be left (policy.nearly_full_free).
	Headroom      int
	AggregateBits int // 24 (IPv4) or 64 (IPv6); 0 disables merging
	AggregateMin  int // sources of one AggregateBits block that make it one entry; 0 disables merging
	MaxPrefix     int // the broadest prefix a widened entry may have (policy.max_prefix_v4/v6)
	// Protected names the protected network p overlaps ("" for none); no
	// merged entry ever overlaps one.
	Protected func(p netip.Prefix) string
}

// RangeEntry is one entry of a placement: the prefix to deny and the
// items it stands for.
type RangeEntry struct {
	Prefix netip.Prefix
	Items  []int // indexes into RangeInput.Items, ascending
	Value  float64
	Forced bool
	Pinned bool
	// Widened is set when Prefix is broader than AggregateBits: it was
	// widened to fit the range.
	Widened bool
}

// RangePlan is the placement of a family's reserved range: the entries
// that stay or come, highest value first, and the items left out.
type RangePlan struct {
	Entries []RangeEntry
	// Dropped lists the items that did not fit, ascending: an existing
	// entry there is evicted, a new source stays on the host layer.
	Dropped []int
	// Unmerged says, per item, why the block it shares with others was not
	// made one entry although it had enough sources (a protected network).
	Unmerged map[int]string
}

// PlaceRange computes the placement of the whole reserved range of one
// address family: existing entries and new sources together. It never
// returns more entries than in.Capacity unless pinned entries alone
// exceed it, and never merges over a protected network. In order:
//
//  1. An item inside another (neither pinned) rides on the wider one,
//     unless the wider one is already there and the item is new (the
//     caller found the entry does not decide the item's traffic).
//  2. Items of one AggregateBits block (/24, /64) become one entry once
//     they stand for AggregateMin sources or more, whether they are
//     already denied or new.
//  3. While fewer than Headroom free entries would be left, entries are
//     widened one bit at a time down to MaxPrefix: a wider prefix is made
//     one entry when it holds two or more entries and at least
//     AggregateMin of its AggregateBits blocks, and at least half of
//     them, hold attack sources. The merges that save the most entries go
//     first.
//  4. If there are still more entries than Capacity, they are ranked by
//     value (pinned first, then forced, then value, an entry already
//     there counting KeepFactor times its value, so equal values never
//     churn) and the lowest are dropped.
//
// It does no I/O and never changes in.
func PlaceRange(in RangeInput) RangePlan {
	ents := make([]RangeEntry, 0, len(in.Items))
	for i, it := range in.Items {
		ents = append(ents, RangeEntry{Prefix: Canonical(it.Prefix), Items: []int{i}, Value: it.Value, Forced: it.Forced, Pinned: it.Pinned})
	}
	plan := RangePlan{Unmerged: map[int]string{}}
	src := func(e *RangeEntry) int {
		n := 0
		for _, i := range e.Items {
			n += max(in.Items[i].Sources, 1)
		}
		return n
	}
	protected := func(p netip.Prefix) string {
		if in.Protected == nil {
			return ""
		}
		return in.Protected(p)
	}

	// 1. Containment.
	slices.SortFunc(ents, func(a, b RangeEntry) int { return compareKey(keyOf(a.Prefix), keyOf(b.Prefix)) })
	var stack []int // open non-pinned prefixes, outermost first
	keep := make([]bool, len(ents))
	for k := range ents {
		e := &ents[k]
		keep[k] = true
		if e.Pinned {
			continue
		}
		for len(stack) > 0 && !ents[stack[len(stack)-1]].Prefix.Overlaps(e.Prefix) {
			stack = stack[:len(stack)-1]
		}
		// A new source inside an existing entry is not covered by it (the
		// caller found no entry that decides its traffic): it stays apart.
		if len(stack) > 0 && ents[stack[0]].Prefix.Bits() <= e.Prefix.Bits() && sameFamily(ents[stack[0]].Prefix, e.Prefix) &&
			(isNew(in, &ents[stack[0]]) || !isNew(in, e)) {
			merge(&ents[stack[0]], e)
			keep[k] = false
			continue
		}
		stack = append(stack, k)
	}
	ents = compact(ents, keep)

	if in.AggregateBits > 0 && in.AggregateMin > 0 {
		// 2. One entry per AggregateBits block with enough sources.
		ents = mergeLevel(ents, in.AggregateBits, func(p netip.Prefix, g []int) bool {
			n := 0
			for _, k := range g {
				n += src(&ents[k])
			}
			if n < in.AggregateMin {
				return false
			}
			if why := protected(p); why != "" {
				for _, k := range g {
					for _, i := range ents[k].Items {
						plan.Unmerged[i] = why
					}
				}
				return false
			}
			return true
		}, -1)

		// 3. Widen while the range is (nearly) full.
		for bits := in.AggregateBits - 1; bits >= max(in.MaxPrefix, 1) && len(ents) > in.Capacity-in.Headroom; bits-- {
			blocks := in.AggregateBits - bits
			need := in.AggregateMin
			if blocks-1 < 62 {
				need = max(need, (1<<blocks)/2)
			} else {
				need = math.MaxInt
			}
			ents = mergeLevel(ents, bits, func(p netip.Prefix, g []int) bool {
				if len(g) < 2 || occupied(ents, g, in.AggregateBits) < need {
					return false
				}
				return protected(p) == ""
			}, len(ents)-max(in.Capacity-in.Headroom, 0))
		}
	}

	// 4. Rank by value; drop what does not fit. What is there already
	// counts KeepFactor times its value: replacing it costs calls and
	// leaves its sources to be caught again on the hosts.
	rank := func(e *RangeEntry) float64 {
		if hasExisting(in, e) {
			return e.Value * KeepFactor
		}
		return e.Value
	}
	slices.SortStableFunc(ents, func(a, b RangeEntry) int {
		if a.Pinned != b.Pinned {
			return b2c(a.Pinned)
		}
		if a.Forced != b.Forced {
			return b2c(a.Forced)
		}
		if c := cmp.Compare(rank(&b), rank(&a)); c != 0 {
			return c
		}
		if ea, eb := hasExisting(in, &a), hasExisting(in, &b); ea != eb {
			return b2c(ea)
		}
		return compareKey(keyOf(a.Prefix), keyOf(b.Prefix))
	})
	fit := max(in.Capacity, 0)
	for k := range ents {
		if k >= fit && !ents[k].Pinned {
			plan.Dropped = append(plan.Dropped, ents[k].Items...)
			continue
		}
		plan.Entries = append(plan.Entries, ents[k])
	}
	slices.Sort(plan.Dropped)
	return plan
}

func b2c(first bool) int {
	if first {
		return -1
	}
	return 1
}

func sameFamily(a, b netip.Prefix) bool { return a.Addr().Is4() == b.Addr().Is4() }

func hasExisting(in RangeInput, e *RangeEntry) bool {
	return slices.ContainsFunc(e.Items, func(i int) bool { return in.Items[i].Rule > 0 })
}

// isNew reports whether e stands for new sources only.
func isNew(in RangeInput, e *RangeEntry) bool { return !hasExisting(in, e) }

func merge(dst, e *RangeEntry) {
	dst.Items = append(dst.Items, e.Items...)
	slices.Sort(dst.Items)
	dst.Value += e.Value
	dst.Forced = dst.Forced || e.Forced
}

func compact(ents []RangeEntry, keep []bool) []RangeEntry {
	out := ents[:0]
	for k := range ents {
		if keep[k] {
			out = append(out, ents[k])
		}
	}
	return out
}

// occupied counts the AggregateBits blocks of group g that hold attack
// sources (an entry broader than a block counts all of its blocks).
func occupied(ents []RangeEntry, g []int, aggBits int) int {
	seen := map[netip.Prefix]bool{}
	n := 0
	for _, k := range g {
		p := ents[k].Prefix
		if p.Bits() < aggBits {
			n += 1 << min(aggBits-p.Bits(), 62)
			continue
		}
		b := netip.PrefixFrom(p.Addr(), aggBits).Masked()
		if !seen[b] {
			seen[b] = true
			n++
		}
	}
	return n
}

// mergeLevel makes one entry of each group of non-pinned entries narrower
// than bits that share their /bits prefix and that ok accepts. With
// budget >= 0 only the groups saving the most entries are merged, until
// budget entries are saved.
func mergeLevel(ents []RangeEntry, bits int, ok func(netip.Prefix, []int) bool, budget int) []RangeEntry {
	if budget == 0 {
		return ents
	}
	groups := map[netip.Prefix][]int{}
	var keys []netip.Prefix
	for k := range ents {
		p := ents[k].Prefix
		if ents[k].Pinned || p.Bits() <= bits {
			continue
		}
		key := netip.PrefixFrom(p.Addr(), bits).Masked()
		if _, seen := groups[key]; !seen {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], k)
	}
	slices.SortStableFunc(keys, func(a, b netip.Prefix) int {
		if budget >= 0 {
			if c := cmp.Compare(len(groups[b]), len(groups[a])); c != 0 {
				return c
			}
		}
		return compareKey(keyOf(a), keyOf(b))
	})
	keep := make([]bool, len(ents))
	for k := range keep {
		keep[k] = true
	}
	saved := 0
	for _, key := range keys {
		if budget >= 0 && saved >= budget {
			break
		}
		g := groups[key]
		if !ok(key, g) {
			continue
		}
		first := &ents[g[0]]
		for _, k := range g[1:] {
			merge(first, &ents[k])
			keep[k] = false
		}
		first.Prefix = key
		first.Widened = budget >= 0
		saved += len(g) - 1
	}
	return compact(ents, keep)
}

// sourceValue is what denying one new source at the edge is worth: its
// volume (failures or packets seen) weighted by the attack's severity.
func (r *run) sourceValue(i int) float64 {
	return float64(r.volume(i)) * r.sevFactor(r.severity)
}

// volume is source i's share of the attack: Attack.Volume when given,
// else the evidence spread evenly, at least 1.
func (r *run) volume(i int) int64 {
	if len(r.a.Volume) == len(r.srcs) && r.a.Volume[i] > 0 {
		return r.a.Volume[i]
	}
	if r.a.Evidence > 0 && len(r.srcs) > 0 {
		return max(int64(r.a.Evidence/len(r.srcs)), 1)
	}
	return 1
}

func (r *run) sevFactor(sev int) float64 {
	def := max(r.cfg.DefaultSeverity, 1)
	return float64(cmp.Or(sev, def)) / float64(def)
}

// halfLife is the time over which an entry's worth halves without new
// sightings, and below which time left discounts it: policy.default_ttl.
func (r *run) halfLife() float64 {
	h := float64(r.cfg.DefaultTTL)
	if h <= 0 {
		h = float64(60 * 60 * 1e9)
	}
	return h
}

// entryValue is what an existing entry of ours is worth keeping: the
// volume it was blocked for, weighted by severity, halved per half-life
// since it was last seen (estimated from its expiry when unknown), and
// scaled down when it expires within a half-life anyway.
func (r *run) entryValue(e *NACLEntry) float64 {
	h := r.halfLife()
	seen := e.LastSeen
	if seen.IsZero() {
		seen = e.ExpiresAt.Add(-r.baseTTL)
	}
	age := max(float64(r.s.Now.Sub(seen)), 0)
	left := min(max(float64(e.ExpiresAt.Sub(r.s.Now))/h, 0), 1)
	return float64(max(e.Volume, 1)) * r.sevFactor(e.Severity) * math.Exp2(-age/h) * left
}

func fmtValue(v float64) string { return fmt.Sprintf("%.3g", v) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
