package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// placed writes a plan as "prefix[items] ..." and "drop items".
func placed(p RangePlan) string {
	var s []string
	for _, e := range p.Entries {
		s = append(s, fmt.Sprintf("%s%v", e.Prefix, e.Items))
	}
	if len(p.Dropped) > 0 {
		s = append(s, fmt.Sprintf("drop%v", p.Dropped))
	}
	return strings.Join(s, " ")
}

func TestPlaceRange(t *testing.T) {
	old := func(p string, rule int, v float64) RangeItem {
		return RangeItem{Prefix: P(p), Rule: rule, Value: v, Sources: 1}
	}
	src := func(p string, v float64) RangeItem { return RangeItem{Prefix: P(p), Value: v, Sources: 1} }
	base := RangeInput{AggregateBits: 24, AggregateMin: 3, MaxPrefix: 16}
	for _, tc := range []struct {
		name  string
		items []RangeItem
		setup func(*RangeInput)
		want  string
	}{
		{"two denied and one new of a /24 become one entry", []RangeItem{old("45.33.1.1", 1, 1), old("45.33.1.8", 2, 1), src("45.33.1.9", 1)}, nil,
			"45.33.1.0/24[0 1 2]"},
		{"two of a /24 stay apart", []RangeItem{old("45.33.1.1", 1, 1), src("45.33.1.9", 1)}, nil,
			"45.33.1.1/32[0] 45.33.1.9/32[1]"},
		{"a new prefix swallows the entries inside it", []RangeItem{old("45.33.1.1", 1, 1), src("45.33.1.0/25", 1)}, nil,
			"45.33.1.0/25[0 1]"},
		{"a new source inside an existing entry stays apart", []RangeItem{old("45.33.1.0/25", 1, 1), src("45.33.1.9", 1)}, nil,
			"45.33.1.0/25[0] 45.33.1.9/32[1]"},
		{"never over a protected network", []RangeItem{old("45.33.1.1", 1, 1), old("45.33.1.8", 2, 1), src("45.33.1.9", 1)},
			func(in *RangeInput) {
				in.Protected = func(p netip.Prefix) string {
					if p.Overlaps(P("45.33.1.200")) {
						return "45.33.1.200 is allowlisted"
					}
					return ""
				}
			},
			"45.33.1.1/32[0] 45.33.1.8/32[1] 45.33.1.9/32[2]"},
		{"full: the heaviest stay, ties keep what is there", []RangeItem{old("10.1.0.1", 1, 5), old("10.2.0.1", 2, 1), src("10.3.0.1", 9), src("10.4.0.1", 1)},
			func(in *RangeInput) { in.Capacity = 2 },
			"10.1.0.1/32[0] 10.3.0.1/32[2] drop[1 3]"},
		{"full: a new source evicts only when worth more than KeepFactor times", []RangeItem{old("10.1.0.1", 1, 5), src("10.3.0.1", 9.9), src("10.4.0.1", 10.1)},
			func(in *RangeInput) { in.Capacity = 1 },
			"10.4.0.1/32[2] drop[0 1]"},
		{"pinned entries stay whatever their worth", []RangeItem{{Prefix: P("10.1.0.1"), Rule: 1, Pinned: true}, src("10.3.0.1", 9)},
			func(in *RangeInput) { in.Capacity = 1 },
			"10.1.0.1/32[0] drop[1]"},
		{"forced sources go first", []RangeItem{old("10.1.0.1", 1, 50), {Prefix: P("10.3.0.1"), Value: 1, Forced: true}},
			func(in *RangeInput) { in.Capacity = 1 },
			"10.3.0.1/32[1] drop[0]"},
		{"widen when full: 3 of the 4 /24s of a /22", []RangeItem{src("45.33.0.0/24", 1), src("45.33.1.0/24", 1), src("45.33.3.0/24", 1), src("9.9.9.9", 1)},
			func(in *RangeInput) { in.Capacity = 2 },
			"45.33.0.0/22[0 1 2] 9.9.9.9/32[3]"},
		{"no widening with room left", []RangeItem{src("45.33.0.0/24", 1), src("45.33.1.0/24", 1), src("45.33.3.0/24", 1)},
			func(in *RangeInput) { in.Capacity = 5 },
			"45.33.0.0/24[0] 45.33.1.0/24[1] 45.33.3.0/24[2]"},
		{"no widening beyond max_prefix", []RangeItem{src("45.33.0.0/24", 1), src("45.33.1.0/24", 1), src("45.33.3.0/24", 1)},
			func(in *RangeInput) { in.Capacity = 1; in.MaxPrefix = 23 },
			"45.33.0.0/24[0] drop[1 2]"},
		{"IPv6 /64", []RangeItem{src("2001:db8:0:1::7", 1), src("2001:db8:0:1::8", 1), old("2001:db8:0:1:ffff::9", 3, 1)},
			func(in *RangeInput) { in.AggregateBits = 64; in.MaxPrefix = 32 },
			"2001:db8:0:1::/64[0 1 2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			in.Capacity = 18
			in.Items = tc.items
			if tc.setup != nil {
				tc.setup(&in)
			}
			got := PlaceRange(in)
			if s := placed(got); s != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
			}
			n := 0
			for _, e := range got.Entries {
				if !e.Pinned {
					n++
				}
			}
			if n > in.Capacity {
				t.Errorf("%d entries for a capacity of %d", n, in.Capacity)
			}
		})
	}
}

// One alarm's distributed attack on a range of 18: ten /24 botnets of 12
// sources each plus 80 scattered single addresses, the botnets heavier.
// Every botnet becomes one entry and the heaviest singles take the rest.
func TestPlaceRangeDistributed(t *testing.T) {
	var items []RangeItem
	for b := range 10 {
		for h := range 12 {
			items = append(items, RangeItem{Prefix: P(fmt.Sprintf("45.%d.%d.%d", 33+b*7, b, h*5+1)), Value: 20, Sources: 1})
		}
	}
	for k := range 80 {
		items = append(items, RangeItem{Prefix: P(fmt.Sprintf("%d.%d.7.9", 100+k, k)), Value: float64(80 - k), Sources: 1})
	}
	plan := PlaceRange(RangeInput{Items: items, Capacity: 18, Headroom: 2, AggregateBits: 24, AggregateMin: 3, MaxPrefix: 16})
	if len(plan.Entries) != 18 || len(plan.Dropped) != 80-8 {
		t.Fatalf("%d entries, %d dropped; want 18 entries and 72 singles dropped", len(plan.Entries), len(plan.Dropped))
	}
	for k, e := range plan.Entries {
		switch {
		case k < 10 && (e.Prefix.Bits() != 24 || len(e.Items) != 12):
			t.Errorf("entry %d = %s with %d sources, want a botnet /24 with 12", k, e.Prefix, len(e.Items))
		case k >= 10 && e.Items[0] != 120+k-10:
			t.Errorf("entry %d = %s (item %d), want the single of rank %d", k, e.Prefix, e.Items[0], k-10)
		}
	}
}
