package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
	fullText  [2][2]string // cached reason of a full range, per family
	fullAt    [2]int       // entries placed when fullText was written
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

// unit is one NACL entry to plan: a prefix and the sources it covers.
type unit struct {
	p          netip.Prefix
	members    []int // source indexes; members[0] is the source the entry is for
	aggregated bool
}

// planNACLs places the pending VPC decisions into their NACLs' reserved
// ranges: aggregation when nearly full, eviction when full and the attack
// is more severe, host fallback (or refusal) when nothing fits.
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
		next := 0 // free[next] is the lowest free number not yet planned
		for f := range 2 {
			if len(fam[f]) == 0 {
				continue
			}
			quotaLeft := max(np.cfg.Quota-np.count[f], 0)
			capacity := min(quotaLeft, len(free)-next)
			units := r.units(fam[f])
			if capacity-len(units) <= r.cfg.NearlyFullFree {
				units = r.aggregate(units, ds, capacity)
			}
			evictable := np.evictable(f, r.e.cfg.Policy.DefaultSeverity)
			placed := 0
			for _, u := range units {
				var n int
				var evicts *NACLEntry
				switch {
				case quotaLeft > 0 && next < len(free):
					n = free[next]
				default:
					for len(evictable) > 0 && evicts == nil {
						cand := evictable[0]
						if sev := cmp.Or(cand.Severity, r.e.cfg.Policy.DefaultSeverity); sev >= r.severity {
							evictable = nil
							break
						}
						evictable = evictable[1:]
						if !np.refreshed[cand.RuleNumber] {
							evicts = cand
						}
					}
					if evicts == nil {
						r.fallBack(ds, np, u, f, placed, capacity)
						continue
					}
					n = evicts.RuleNumber
				}
				if sh := np.shadow(u.p, n, r.a.Port); sh != nil {
					for _, m := range u.members {
						d := &ds[m]
						d.Scope, d.Action, d.NACLID, d.RuleNumber, d.SubnetID = ScopeNone, ActionRefuse, "", 0, ""
						d.Instances = nil
						d.Reasons = append([]string{fmt.Sprintf("refused: %s rule %d allows %s on %s ahead of rule %d; a deny there for %s would never match",
							np.nacl.ID, sh.RuleNumber, show(Canonical(sh.CIDR)), sh.Port, n, show(u.p))}, d.Reasons...)
					}
					if evicts != nil {
						evictable = append([]*NACLEntry{evicts}, evictable...)
					}
					continue
				}
				if evicts == nil {
					next++
					quotaLeft--
				}
				placed++
				r.place(ds, np, u, n, evicts, f, capacity, placed)
			}
		}
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

// aggregate merges the units of one /24 (IPv4) or /64 (IPv6) into one
// entry when at least aggregate_min_sources sources fall in it and the
// aggregate overlaps no protected network.
func (r *run) aggregate(units []unit, ds []Decision, capacity int) []unit {
	if r.cfg.AggregateMinSources <= 0 {
		return units
	}
	// Group the units by their /24 or /64: sort by aggregate, scan runs.
	type member struct {
		k    pkey
		u    int
		bits int
	}
	var ms []member
	for k, u := range units {
		bits := r.cfg.AggregateBitsV4
		if u.p.Addr().Is6() {
			bits = r.cfg.AggregateBitsV6
		}
		if bits <= 0 || u.p.Bits() <= bits {
			continue
		}
		ms = append(ms, member{keyOf(u.p).masked(bits + 96*b2i(u.p.Addr().Is4())), k, bits})
	}
	slices.SortFunc(ms, func(a, b member) int {
		if c := compareKey(a.k, b.k); c != 0 {
			return c
		}
		return a.u - b.u
	})
	groups := map[pkey][]int{} // aggregate → unit indexes, for runs that qualify
	var keys []netip.Prefix
	for lo := 0; lo < len(ms); {
		hi := lo + 1
		for hi < len(ms) && ms[hi].k == ms[lo].k {
			hi++
		}
		n := 0
		for _, m := range ms[lo:hi] {
			n += len(units[m.u].members)
		}
		if n >= r.cfg.AggregateMinSources {
			keys = append(keys, netip.PrefixFrom(units[ms[lo].u].p.Addr(), ms[lo].bits).Masked())
			for _, m := range ms[lo:hi] {
				groups[ms[lo].k] = append(groups[ms[lo].k], m.u)
			}
		}
		lo = hi
	}
	dropped := map[int]bool{}
	for _, key := range keys {
		g := groups[keyOf(key)]
		n := 0
		for _, k := range g {
			n += len(units[k].members)
		}
		if n < r.cfg.AggregateMinSources {
			continue
		}
		var blocked string
		r.protIdx.overlapping(key, func(id int) bool {
			blocked = relation(key, r.prot[id].p) + " " + r.prot[id].describe()
			return false
		})
		if blocked != "" {
			for _, k := range g {
				for _, m := range units[k].members {
					ds[m].Reasons = append(ds[m].Reasons, fmt.Sprintf("vpc: not aggregated: %s", blocked))
				}
			}
			continue
		}
		u := unit{p: key, aggregated: true}
		for _, k := range g {
			u.members = append(u.members, units[k].members...)
			dropped[k] = true
		}
		for _, m := range u.members {
			ds[m].Reasons = append(ds[m].Reasons, fmt.Sprintf("vpc: aggregated %d sources into %s (nearly full: %d free entries for %d; policy.aggregate_min_sources %d)",
				len(u.members), key, capacity, len(units), r.cfg.AggregateMinSources))
		}
		units[g[0]] = u
		dropped[g[0]] = false
	}
	out := units[:0:0]
	for k, u := range units {
		if !dropped[k] {
			out = append(out, u)
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pairFree reports whether rewriting ingress entry e touches nothing else:
// in egress mode the egress entry of the same number must be absent or
// e's own pair.
func (np *naclPlan) pairFree(e *NACLEntry) bool {
	o, ok := np.out[e.RuleNumber]
	return !ok || !np.cfg.Egress || (!o.Allow && Canonical(o.CIDR) == Canonical(e.CIDR))
}

// evictable lists banshee's entries of family f that expire, soonest first.
func (np *naclPlan) evictable(f, defSeverity int) []*NACLEntry {
	var out []*NACLEntry
	for i := range np.in {
		e := &np.in[i]
		if !np.inRange(e.RuleNumber) || e.Allow || e.ExpiresAt.IsZero() || famOf(Canonical(e.CIDR)) != f {
			continue
		}
		if !np.pairFree(e) {
			continue // in egress mode the number must come free in both directions
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b *NACLEntry) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return cmp.Compare(a.RuleNumber, b.RuleNumber)
	})
	return out
}

// place records unit u at rule number n in its members' decisions.
func (r *run) place(ds []Decision, np *naclPlan, u unit, n int, evicts *NACLEntry, f, capacity, placed int) {
	for k, m := range u.members {
		d := &ds[m]
		d.RuleNumber = n
		if u.p != d.Target {
			p := u.p
			d.Aggregate = &p
			if !u.aggregated {
				d.Reasons = append(d.Reasons, fmt.Sprintf("vpc: covered by the entry for %s", show(u.p)))
			}
		}
		lead := fmt.Sprintf("vpc: deny %s at %s rule %d (%s reserved range %d-%d: %d/%d used)", show(u.p), np.nacl.ID, n, famName[f],
			np.cfg.RuleMin, np.cfg.RuleMax, np.inRangeN[f]+placed, np.inRangeN[f]+capacity)
		if evicts != nil {
			lead = fmt.Sprintf("vpc: deny %s at %s rule %d", show(u.p), np.nacl.ID, n)
		}
		d.Reasons = append(d.Reasons, lead)
		if evicts != nil && k == 0 {
			sev := cmp.Or(evicts.Severity, r.e.cfg.Policy.DefaultSeverity)
			d.Evicts = &Block{Target: evicts.CIDR, Scope: ScopeVPC, NACLID: np.nacl.ID, RuleNumber: evicts.RuleNumber,
				ExpiresAt: evicts.ExpiresAt, Reason: evicts.Reason, Origin: evicts.Origin, Severity: evicts.Severity}
			d.Reasons = append(d.Reasons, fmt.Sprintf("vpc: evicts %s rule %d (%s, expires %s first, severity %d) for this attack of severity %d",
				np.nacl.ID, evicts.RuleNumber, show(Canonical(evicts.CIDR)), fmtTime(evicts.ExpiresAt), sev, r.severity))
		}
	}
}

// fallBack answers the members of a unit that found no room: host scope
// in auto mode, refusal when vpc was forced or no instance can take it.
func (r *run) fallBack(ds []Decision, np *naclPlan, u unit, f, placed, capacity int) {
	if np.fullText[f][0] == "" || np.fullAt[f] != placed {
		np.fullText[f], np.fullAt[f] = r.fullText(np, f, placed, capacity), placed
	}
	for _, m := range u.members {
		r.fallBackOne(ds, m, np.fullText[f])
	}
}

// fullText says that the reserved range has no room for family f (head)
// and why (detail).
func (r *run) fullText(np *naclPlan, f, placed, capacity int) [2]string {
	head := fmt.Sprintf("%s reserved range full (%d/%d)", np.nacl.ID, np.inRangeN[f]+placed, np.inRangeN[f]+capacity)
	var detail []string
	if q := np.count[f]; q > np.inRangeN[f] {
		detail = append(detail, fmt.Sprintf("quota %d %s entries per direction, %d of them outside the range incl. the default deny", np.cfg.Quota, famName[f], q-np.inRangeN[f]))
	}
	detail = append(detail, fmt.Sprintf("no entry of severity below %d to evict", r.severity))
	return [2]string{head, " (" + strings.Join(detail, "; ") + ")"}
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
