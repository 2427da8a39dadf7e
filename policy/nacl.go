package policy

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// defaultRuleNumber is the number AWS (and moto) give the '*' default deny
// entry of each direction and family; it counts toward the quota.
const defaultRuleNumber = 32767

func famOf(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

var famName = [2]string{"IPv4", "IPv6"}

// naclPlan is one network ACL as the engine plans it during a Decide: its
// entries in evaluation order, the quota left per family, and the rule
// numbers of the reserved range still free.
type naclPlan struct {
	nacl      NACL
	cfg       NACLConfig
	in        []NACLEntry       // ingress entries, lowest rule number first
	out       map[int]NACLEntry // egress entries by rule number
	used      map[int]bool
	count     [2]int // entries per family of the fuller direction, default deny included
	inRangeN  [2]int // banshee's entries (reserved range) per family
	refreshed map[int]bool
}

func (r *run) naclPlan(n NACL) *naclPlan {
	if np, ok := r.nacls[n.ID]; ok {
		return np
	}
	np := &naclPlan{nacl: n, cfg: r.e.cfg.NACL, used: map[int]bool{}, out: map[int]NACLEntry{}, refreshed: map[int]bool{}}
	var cnt [2][2]int // [egress][family]
	var hasDefault [2][2]bool
	for _, e := range n.Entries {
		if !e.CIDR.IsValid() {
			continue
		}
		dir, f := 0, famOf(Canonical(e.CIDR))
		if e.Egress {
			dir = 1
		}
		cnt[dir][f]++
		if e.RuleNumber == defaultRuleNumber {
			hasDefault[dir][f] = true
		}
		e.CIDR = Canonical(e.CIDR)
		if e.Egress {
			np.out[e.RuleNumber] = e
		} else {
			np.in = append(np.in, e)
			if np.inRange(e.RuleNumber) {
				np.inRangeN[f]++
			}
		}
		if !e.Egress || np.cfg.Egress {
			np.used[e.RuleNumber] = true
		}
	}
	for dir := range 2 {
		for f := range 2 {
			if !hasDefault[dir][f] {
				cnt[dir][f]++ // AWS always keeps the default deny; count it even when the snapshot leaves it out
			}
		}
	}
	for f := range 2 {
		np.count[f] = cnt[0][f]
		if np.cfg.Egress {
			np.count[f] = max(cnt[0][f], cnt[1][f])
		}
	}
	slices.SortStableFunc(np.in, func(a, b NACLEntry) int { return cmp.Compare(a.RuleNumber, b.RuleNumber) })
	r.nacls[n.ID] = np
	r.order = append(r.order, n.ID)
	return np
}

func (np *naclPlan) inRange(n int) bool { return n >= np.cfg.RuleMin && n <= np.cfg.RuleMax }

// verdict evaluates the ingress entries for traffic from src on port as
// AWS does, lowest number first, and returns the entry that decides all of
// it, or nil when entries split it.
func (np *naclPlan) verdict(src netip.Prefix, port Port) *NACLEntry {
	for i := range np.in {
		e := &np.in[i]
		c := e.CIDR
		if !overlaps(c, src) || !e.Port.Overlaps(port) {
			continue
		}
		if c.Bits() <= src.Bits() && e.Port.Covers(port) {
			return e
		}
		return nil
	}
	return nil
}

// covering returns the deny entry that already stops all traffic from
// src on port, and whether it is for exactly src. The NACL's entries are
// the truth: a block record without its entry protects nothing.
func (np *naclPlan) covering(src netip.Prefix, port Port) (*NACLEntry, bool) {
	e := np.verdict(src, port)
	if e == nil || e.Allow {
		return nil, false
	}
	return e, Canonical(e.CIDR) == src
}

// shadow returns an allow entry numbered below n that already admits the
// attack traffic from p, so a deny at n would never match.
func (np *naclPlan) shadow(p netip.Prefix, n int, port Port) *NACLEntry {
	for i := range np.in {
		e := &np.in[i]
		if e.RuleNumber >= n {
			break
		}
		if e.Allow && overlaps(e.CIDR, p) && e.Port.Overlaps(port) {
			return e
		}
	}
	return nil
}

// unit is one new NACL entry to plan: a prefix and the sources it covers.
type unit struct {
	p       netip.Prefix
	members []int // source indexes; members[0] is the source the entry is for
}

// planNACLs places the pending VPC decisions. Per NACL and family the
// whole reserved range is placed again by PlaceRange, existing entries
// and new sources together; then rule numbers are given: an entry that
// merges entries of ours is written in place of the lowest of them, a new
// entry takes a free number under the quota, else one a merge freed, else
// that of an entry evicted for it. Sources that find no room fall back.
func (r *run) planNACLs(ds []Decision) {
	for _, id := range r.order {
		np := r.nacls[id]
		var fam [2][]int
		for _, p := range r.pending {
			if p.nacl == id {
				f := famOf(r.srcs[p.src])
				fam[f] = append(fam[f], p.src)
			}
		}
		if len(fam[0])+len(fam[1]) == 0 {
			continue
		}
		var free []int
		for n := np.cfg.RuleMin; n <= np.cfg.RuleMax; n++ {
			if !np.used[n] {
				free = append(free, n)
			}
		}
		fp := &famPlace{free: free, carrier: -1}
		for f := range 2 {
			if len(fam[f]) > 0 {
				r.placeFamily(ds, np, f, fam[f], fp)
			}
		}
		if fp.carrier >= 0 && len(fp.merges) > 0 {
			ds[fp.carrier].Merges = fp.merges
		}
	}
}

// famPlace is what the families of one NACL share while placed: the free
// rule numbers, and the merges of existing entries the first placed
// decision carries.
type famPlace struct {
	free    []int
	next    int // free[next] is the lowest free number not yet given
	merges  []Block
	carrier int // index of the first placed decision, -1 for none
}

// placeFamily places family f of one NACL: srcs are its pending sources.
func (r *run) placeFamily(ds []Decision, np *naclPlan, f int, srcs []int, fp *famPlace) {
	units := r.units(srcs)
	var existing []*NACLEntry
	for i := range np.in {
		e := &np.in[i]
		if np.inRange(e.RuleNumber) && !e.Allow && famOf(e.CIDR) == f {
			existing = append(existing, e)
		}
	}
	items := make([]RangeItem, 0, len(existing)+len(units))
	for _, e := range existing {
		items = append(items, RangeItem{Prefix: e.CIDR, Rule: e.RuleNumber, Value: r.entryValue(e), Sources: 1,
			Pinned: e.ExpiresAt.IsZero() || e.Port != (Port{}) || !np.pairFree(e) || np.refreshed[e.RuleNumber]})
	}
	for _, u := range units {
		v := 0.0
		for _, m := range u.members {
			v += r.sourceValue(m)
		}
		items = append(items, RangeItem{Prefix: u.p, Value: v, Sources: len(u.members), Forced: r.a.Scope == ScopeVPC})
	}
	quotaLeft := max(np.cfg.Quota-np.count[f], 0)
	room := min(quotaLeft, len(fp.free)-fp.next)
	in := RangeInput{Items: items, Capacity: len(existing) + room, Headroom: r.cfg.NearlyFullFree,
		AggregateBits: r.cfg.AggregateBitsV4, AggregateMin: r.cfg.AggregateMinSources, MaxPrefix: r.cfg.MaxPrefixV4,
		Protected: r.protectedText}
	if f == 1 {
		in.AggregateBits, in.MaxPrefix = r.cfg.AggregateBitsV6, r.cfg.MaxPrefixV6
	}
	plan := PlaceRange(in)
	for i, why := range plan.Unmerged {
		if i >= len(existing) {
			for _, m := range units[i-len(existing)].members {
				ds[m].Reasons = append(ds[m].Reasons, "vpc: not aggregated: "+why)
			}
		}
	}

	ctx := placeCtx{np: np, f: f, used: np.inRangeN[f], total: np.inRangeN[f] + room}
	var evictable []int // dropped existing entries, least worth first
	for _, i := range plan.Dropped {
		if items[i].Rule > 0 {
			evictable = append(evictable, i)
		}
	}
	slices.SortStableFunc(evictable, func(a, b int) int { return cmp.Compare(items[a].Value, items[b].Value) })
	var freed []int // numbers merges free
	var fresh []RangeEntry

	// Entries over entries of ours first: they are written in place.
	for _, ent := range plan.Entries {
		var olds, news []int
		for _, i := range ent.Items {
			if items[i].Rule > 0 {
				olds = append(olds, items[i].Rule)
			} else {
				news = append(news, i-len(existing))
			}
		}
		if len(olds) == 0 {
			fresh = append(fresh, ent)
			continue
		}
		if len(olds) == 1 && len(news) == 0 && Canonical(ent.Prefix) == Canonical(items[ent.Items[0]].Prefix) {
			continue // stays as it is
		}
		slices.Sort(olds)
		n := olds[0]
		if sh := np.shadow(ent.Prefix, n, r.a.Port); sh != nil {
			// The wider deny would be bypassed: the entries stay as they
			// are, the new sources are refused.
			for _, k := range news {
				r.refuseShadowed(ds, np, units[k], sh, n, ent.Prefix)
			}
			continue
		}
		freed = append(freed, olds[1:]...)
		ctx.used -= len(olds) - 1
		note := r.mergeNote(ent, items, len(olds), f)
		if len(news) == 0 {
			var until time.Time
			for _, e := range existing {
				if slices.Contains(olds, e.RuleNumber) && e.ExpiresAt.After(until) {
					until = e.ExpiresAt
				}
			}
			fp.merges = append(fp.merges, Block{Target: ent.Prefix, Scope: ScopeVPC, NACLID: np.nacl.ID, RuleNumber: n, ExpiresAt: until,
				Reason: fmt.Sprintf("%s; rules %s merged in place at %d", note, joinInts(olds), n)})
			continue
		}
		for _, k := range news {
			r.place(ds, &ctx, units[k], ent.Prefix, n, nil, note, fp)
		}
	}

	// New entries: a free number, else one a merge freed, else an
	// evicted entry's.
	for _, ent := range fresh {
		var n int
		var evicts *NACLEntry
		from := ""
		switch {
		case quotaLeft > 0 && fp.next < len(fp.free):
			n, from = fp.free[fp.next], "free"
		case len(freed) > 0:
			n, from = freed[0], "freed"
		case len(evictable) > 0:
			n, from = items[evictable[0]].Rule, "evict"
			evicts = existing[evictable[0]]
		default:
			for _, i := range ent.Items {
				r.fallBack(ds, &ctx, units[i-len(existing)], ctx.total, "no rule number left after the entries that could not be merged")
			}
			continue
		}
		news := make([]int, 0, len(ent.Items))
		for _, i := range ent.Items {
			news = append(news, i-len(existing))
		}
		if sh := np.shadow(ent.Prefix, n, r.a.Port); sh != nil {
			for _, k := range news {
				r.refuseShadowed(ds, np, units[k], sh, n, ent.Prefix)
			}
			continue
		}
		switch from {
		case "free":
			fp.next++
			quotaLeft--
			ctx.used++
		case "freed":
			freed = freed[1:]
			ctx.used++
		case "evict":
			evictable = evictable[1:]
		}
		note := ""
		if len(news) > 1 || (len(news) == 1 && ent.Prefix != units[news[0]].p) {
			note = r.mergeNote(ent, items, 0, f)
		}
		for k, u := range news {
			ev := evicts
			if k > 0 {
				ev = nil
			}
			r.place(ds, &ctx, units[u], ent.Prefix, n, ev, note, fp)
			if ev != nil {
				d := &ds[units[u].members[0]]
				d.Reasons = append(d.Reasons, fmt.Sprintf("vpc: evicts %s rule %d (%s, worth %s: %s) for an entry worth %s",
					np.nacl.ID, ev.RuleNumber, show(Canonical(ev.CIDR)), fmtValue(items[slices.Index(existing, ev)].Value), r.worthText(ev), fmtValue(ent.Value)))
			}
		}
	}

	// What did not fit stays on the hosts.
	lowest := math.Inf(1)
	for _, ent := range plan.Entries {
		if !ent.Pinned {
			lowest = min(lowest, ent.Value)
		}
	}
	for _, i := range plan.Dropped {
		if i < len(existing) {
			continue
		}
		why := "no entry to evict: every entry there has no expiry or is being refreshed"
		if !math.IsInf(lowest, 1) {
			why = fmt.Sprintf("the entries there are worth more (least %s, this source %s)", fmtValue(lowest), fmtValue(items[i].Value))
		}
		r.fallBack(ds, &ctx, units[i-len(existing)], ctx.total, why)
	}
}

// placeCtx counts one family's entries of the range while it is placed.
type placeCtx struct {
	np    *naclPlan
	f     int
	used  int // entries of the family in the range so far
	total int // entries it may hold
}

// protectedText names the first protected network p overlaps, "" for none.
func (r *run) protectedText(p netip.Prefix) string {
	var s string
	r.protIdx.overlapping(p, func(id int) bool {
		s = relation(p, r.prot[id].p) + " " + r.prot[id].describe()
		return false
	})
	return s
}

// mergeNote explains why an entry is wider than its sources.
func (r *run) mergeNote(ent RangeEntry, items []RangeItem, olds, f int) string {
	n := 0
	for _, i := range ent.Items {
		n += max(items[i].Sources, 1)
	}
	if ent.Widened {
		maxKey := "policy.max_prefix_v4"
		aggBits := r.cfg.AggregateBitsV4
		if f == 1 {
			maxKey, aggBits = "policy.max_prefix_v6", r.cfg.AggregateBitsV6
		}
		return fmt.Sprintf("vpc: widened to %s to fit the range: %d entries with attack sources in /%d blocks (policy.nearly_full_free %d, %s %d)",
			ent.Prefix, len(ent.Items), aggBits, r.cfg.NearlyFullFree, maxKey, in2(f == 0, r.cfg.MaxPrefixV4, r.cfg.MaxPrefixV6))
	}
	for _, i := range ent.Items {
		if items[i].Rule > 0 && Canonical(items[i].Prefix) == ent.Prefix {
			return fmt.Sprintf("vpc: rule %d (%s) already denies %d other entries of ours inside it; they go", items[i].Rule, ent.Prefix, olds-1)
		}
	}
	if olds > 0 {
		return fmt.Sprintf("vpc: aggregated %d sources into %s, %d of them already denied (policy.aggregate_min_sources %d)", n, ent.Prefix, olds, r.cfg.AggregateMinSources)
	}
	return fmt.Sprintf("vpc: aggregated %d sources into %s (policy.aggregate_min_sources %d)", n, ent.Prefix, r.cfg.AggregateMinSources)
}

func in2(c bool, a, b int) int {
	if c {
		return a
	}
	return b
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// worthText says what an existing entry's worth is made of.
func (r *run) worthText(e *NACLEntry) string {
	s := fmt.Sprintf("volume %d", max(e.Volume, 1))
	if !e.LastSeen.IsZero() {
		s += ", last seen " + r.fmtTime(e.LastSeen)
	}
	return s + ", " + untilText(e.ExpiresAt)
}

// refuseShadowed refuses the members of u: an allow entry numbered below
// n admits their traffic, so the deny for p at n would never match.
func (r *run) refuseShadowed(ds []Decision, np *naclPlan, u unit, sh *NACLEntry, n int, p netip.Prefix) {
	for _, m := range u.members {
		d := &ds[m]
		d.Scope, d.Action, d.NACLID, d.RuleNumber, d.SubnetID = ScopeNone, ActionRefuse, "", 0, ""
		d.Instances, d.Aggregate = nil, nil
		d.Reasons = append([]string{fmt.Sprintf("refused: %s rule %d allows %s on %s ahead of rule %d; a deny there for %s would never match",
			np.nacl.ID, sh.RuleNumber, show(Canonical(sh.CIDR)), sh.Port, n, show(p))}, d.Reasons...)
	}
}

// units turns the pending sources of one family into entries: a source
// inside another pending source rides on that source's entry.
func (r *run) units(srcs []int) []unit {
	keys := make([]pkey, len(srcs))
	order := make([]int, len(srcs))
	for k, i := range srcs {
		keys[k], order[k] = keyOf(r.srcs[i]), k
	}
	slices.SortFunc(order, func(a, b int) int { return compareKey(keys[a], keys[b]) })
	// Sorted by address then length, a prefix follows all that contain it:
	// a stack of the open prefixes holds exactly the current one's
	// ancestors, its root at the bottom.
	parent := make([]int, len(srcs))
	var stack []int
	for _, k := range order {
		for len(stack) > 0 && !containsKey(keys[stack[len(stack)-1]], keys[k]) {
			stack = stack[:len(stack)-1]
		}
		parent[k] = -1
		if len(stack) > 0 {
			parent[k] = stack[0]
		}
		stack = append(stack, k)
	}
	units := make([]unit, 0, len(srcs))
	unitOf := make([]int, len(srcs))
	for k, i := range srcs {
		if parent[k] < 0 {
			unitOf[k] = len(units)
			units = append(units, unit{p: r.srcs[i], members: []int{i}})
		}
	}
	for k, i := range srcs {
		if parent[k] >= 0 {
			u := &units[unitOf[parent[k]]]
			u.members = append(u.members, i)
		}
	}
	return units
}

// containsKey reports whether prefix a contains prefix b.
func containsKey(a, b pkey) bool { return a.bits <= b.bits && b.masked(int(a.bits)) == a }

// pairFree reports whether rewriting ingress entry e touches nothing else:
// in egress mode the egress entry of the same number must be absent or
// e's own pair.
func (np *naclPlan) pairFree(e *NACLEntry) bool {
	o, ok := np.out[e.RuleNumber]
	return !ok || !np.cfg.Egress || (!o.Allow && Canonical(o.CIDR) == Canonical(e.CIDR))
}

// place records the members of u as denied by entry p at rule number n.
func (r *run) place(ds []Decision, c *placeCtx, u unit, p netip.Prefix, n int, evicts *NACLEntry, note string, fp *famPlace) {
	np := c.np
	for _, m := range u.members {
		d := &ds[m]
		d.RuleNumber = n
		d.Volume = r.volume(m)
		if fp.carrier < 0 {
			fp.carrier = m
		}
		if p != d.Target {
			pp := p
			d.Aggregate = &pp
			if note == "" {
				d.Reasons = append(d.Reasons, fmt.Sprintf("vpc: covered by the entry for %s", show(u.p)))
			}
		}
		if note != "" {
			d.Reasons = append(d.Reasons, note)
		}
		lead := fmt.Sprintf("vpc: deny %s at %s rule %d (%s reserved range %d-%d: %d/%d used%s)", show(p), np.nacl.ID, n, famName[c.f],
			np.cfg.RuleMin, np.cfg.RuleMax, c.used, c.total, roomText(c))
		if evicts != nil {
			lead = fmt.Sprintf("vpc: deny %s at %s rule %d", show(p), np.nacl.ID, n)
		}
		d.Reasons = append(d.Reasons, lead)
		if evicts != nil {
			d.Evicts = &Block{Target: evicts.CIDR, Scope: ScopeVPC, NACLID: np.nacl.ID, RuleNumber: evicts.RuleNumber,
				ExpiresAt: evicts.ExpiresAt, Reason: evicts.Reason, Origin: evicts.Origin, Severity: evicts.Severity}
			evicts = nil // only the first member carries it
		}
	}
}

// fallBack answers the members of a unit that found no room: host scope
// in auto mode, refusal when vpc was forced or no instance can take it.
func (r *run) fallBack(ds []Decision, c *placeCtx, u unit, total int, why string) {
	full := r.fullText(c, total, why)
	for _, m := range u.members {
		r.fallBackOne(ds, m, full)
	}
}

// fullText says that the reserved range has no room for the family (head)
// and why (detail).
func (r *run) fullText(c *placeCtx, total int, why string) [2]string {
	np, f := c.np, c.f
	head := fmt.Sprintf("%s reserved range full (%d/%d)", np.nacl.ID, min(c.used, total), total)
	var detail []string
	if q := np.count[f]; q > np.inRangeN[f] {
		detail = append(detail, fmt.Sprintf("quota %d %s entries per direction, %d of them outside the range incl. the default deny", np.cfg.Quota, famName[f], q-np.inRangeN[f]))
	}
	detail = append(detail, why)
	return [2]string{head, " (" + strings.Join(detail, "; ") + ")"}
}

// roomText says where the usable size of the range comes from when the
// quota, not the range, limits it: "; 18 = quota 20 - 2 entries outside the
// range".
func roomText(c *placeCtx) string {
	np, f := c.np, c.f
	if size := np.cfg.RuleMax - np.cfg.RuleMin + 1; c.total >= size {
		return ""
	}
	return fmt.Sprintf("; %d = quota %d - %d %s entries outside the range", c.total, np.cfg.Quota, np.cfg.Quota-c.total, famName[f])
}

// fallBackOne answers source m when its NACL has no room: host scope in
// auto mode, refusal when vpc was forced or no instance can take it.
func (r *run) fallBackOne(ds []Decision, m int, full [2]string) {
	d := &ds[m]
	d.NACLID, d.RuleNumber, d.Aggregate = "", 0, nil
	switch {
	case r.a.Scope == ScopeVPC:
		d.Scope, d.Action, d.Instances = ScopeNone, ActionRefuse, nil
		d.Reasons = slices.Insert(d.Reasons, 0, "refused: "+full[0]+" and --scope vpc was requested"+full[1])
	case r.hostSkip[m]:
		d.Scope, d.Action, d.Instances = ScopeNone, ActionSkip, nil
		d.Reasons = slices.Insert(d.Reasons, 0, "skip: "+r.hostNotes[m][0]+"; "+full[0]+full[1])
	case r.fallback[m] == nil && len(r.targets) > 0:
		d.Scope, d.Action, d.Instances = ScopeNone, ActionRefuse, nil
		d.Reasons = slices.Insert(d.Reasons, 0, "refused: "+full[0]+" and no instance is named to drop it on instead"+full[1])
	default:
		d.Scope, d.Action = ScopeHost, ActionBlock
		d.Instances = r.fallback[m]
		d.Reasons = slices.Insert(d.Reasons, 0, append([]string{"host: " + full[0] + ", falling back" + full[1]}, r.hostNotes[m]...)...)
	}
}
