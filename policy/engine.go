package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Engine applies the default policy of DESIGN.md with the thresholds of a
// Config. It is safe for concurrent use: Decide only reads it.
type Engine struct {
	cfg     Config
	special []protection // loopback, link-local, metadata, unspecified
}

// New returns an engine for cfg. Zero thresholds are taken as they are;
// configs from ParseConfig are validated.
func New(cfg Config) *Engine {
	e := &Engine{cfg: cfg}
	for _, sp := range []struct{ cidr, what string }{
		{"127.0.0.0/8", "loopback"},
		{"::1/128", "loopback"},
		{"169.254.169.254/32", "the instance metadata address"},
		{"fd00:ec2::254/128", "the instance metadata address"},
		{"169.254.0.0/16", "link-local"},
		{"fe80::/10", "link-local"},
		{"0.0.0.0/32", "the unspecified address"},
		{"::/128", "the unspecified address"},
	} {
		e.special = append(e.special, protection{p: netip.MustParsePrefix(sp.cidr), kind: protSpecial, what: sp.what})
	}
	for _, p := range cfg.Allowlist {
		e.special = append(e.special, protection{p: Canonical(p), kind: protAllowlist, what: "on the allowlist of the config"})
	}
	return e
}

// Protected names what a recorded block p overlaps among the networks no
// block may ever cover, most specific first: loopback, link-local, the
// metadata and unspecified addresses, the allowlist of the config, and the
// callers' own addresses. It is the check a block that comes back without a
// decision (restore at boot) must pass again; nil means none.
func (e *Engine) Protected(p netip.Prefix, callers []netip.Addr, host ...Protected) []string {
	src := Canonical(p)
	if !src.IsValid() || src.Bits() == 0 {
		return []string{fmt.Sprintf("%s covers every address", p)}
	}
	var hits []protection
	for _, pr := range e.special {
		if pr.p.Overlaps(src) {
			hits = append(hits, pr)
		}
	}
	for _, c := range callers {
		if c = c.WithZone("").Unmap(); c.IsValid() {
			if pr := (protection{p: netip.PrefixFrom(c, c.BitLen()), kind: protCaller, what: "the caller's own address"}); pr.p.Overlaps(src) {
				hits = append(hits, pr)
			}
		}
	}
	for _, h := range host {
		if h.Prefix.IsValid() && Canonical(h.Prefix).Overlaps(src) {
			hits = append(hits, protection{p: Canonical(h.Prefix), kind: protCaller, what: h.What})
		}
	}
	slices.SortStableFunc(hits, func(x, y protection) int { return y.p.Bits() - x.p.Bits() })
	var out []string
	for _, pr := range hits {
		out = append(out, relation(src, pr.p)+" "+pr.describe())
	}
	return out
}

// Config returns the configuration the engine decides with.
func (e *Engine) Config() Config { return e.cfg }

// AnyRefused reports whether a decision refuses its target: the command
// must then exit 3.
func AnyRefused(ds []Decision) bool {
	return slices.ContainsFunc(ds, func(d Decision) bool { return d.Action == ActionRefuse })
}

// protKind classifies protected networks. Hard kinds are never overridden,
// not even with --force.
type protKind int

const (
	protCaller protKind = iota
	protSpecial
	protAllowlist
	protSG
	protVPC
)

func (k protKind) hard() bool { return k == protCaller || k == protSpecial }

// protection is a network the policy never blocks, with what makes it so.
type protection struct {
	p        netip.Prefix
	kind     protKind
	what     string
	rule     *SGRule
	instance string
}

func (pr protection) describe() string {
	if pr.kind != protSG {
		return pr.what
	}
	r := pr.rule
	s := fmt.Sprintf("allowed on %s by %s", r.Port, r.GroupID)
	switch {
	case r.Description != "":
		s += fmt.Sprintf(" (rule '%s')", r.Description)
	case r.RuleID != "":
		s += fmt.Sprintf(" (rule %s)", r.RuleID)
	}
	if r.PrefixListID != "" {
		s += " via " + r.PrefixListID
	}
	if pr.instance != "" {
		s += " of " + pr.instance
	}
	return s
}

// show writes a single-address prefix as its address, anything else as a CIDR.
func show(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// relation says how source s meets protected network p.
func relation(s, p netip.Prefix) string {
	switch {
	case s == p:
		return fmt.Sprintf("%s is", show(s))
	case p.Bits() <= s.Bits():
		return fmt.Sprintf("%s is inside %s,", show(s), show(p))
	}
	return fmt.Sprintf("%s contains %s,", show(s), show(p))
}

// fmtDur writes a duration without trailing zero units: 1h, 1h30m, 90s.
// fmtDur writes a duration as people read it, days included ("7d",
// "1d12h"): FormatDuration.
func fmtDur(d time.Duration) string { return FormatDuration(d) }

// fmtHMS writes a duration below a day without zero units: 45s, 1h30m.
func fmtHMS(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// forever is the TTL a permanent block is decided with: longer than any
// block that expires (max_ttl is at most MaxTTLLimit), so every comparison
// of expiries treats the permanent block as the longest. Decide reports it
// as TTL 0 and a zero ExpiresAt, the form every layer reads as "never".
const forever = 4 * MaxTTLLimit

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// fmtTime formats t once per Decide: many decisions share an expiry.
func (r *run) fmtTime(t time.Time) string {
	if r.a.Permanent && !t.Before(r.s.Now.Add(forever)) {
		return "no expiry (permanent)"
	}
	k := t.UnixNano()
	if s, ok := r.times[k]; ok {
		return s
	}
	s := fmtTime(t)
	r.times[k] = s
	return s
}

// target is an attacked instance (or bare subnet) with the security-group
// rules that admit the attacked port, prepared once per Decide.
type target struct {
	Target
	known      bool // the snapshot lists its rules (maybe none)
	any4, any6 bool // a 0.0.0.0/0 or ::/0 rule admits the port
	narrow     *prefixIndex
}

func (t *target) admits(s netip.Prefix) bool {
	if !t.known {
		return true
	}
	if (s.Addr().Is4() && t.any4) || (s.Addr().Is6() && t.any6) {
		return true
	}
	found := false
	t.narrow.overlapping(s, func(int) bool { found = true; return false })
	return found
}

// run is the state of one Decide call.
type run struct {
	e           *Engine
	cfg         PolicyConfig
	a           Attack
	s           Snapshot
	srcs        []netip.Prefix
	prot        []protection
	protIdx     *prefixIndex
	targets     []target
	blkStart    []int32 // blkList[blkStart[i]:blkStart[i+1]]: active blocks containing source i
	blkList     []int32
	repeats     []int // per source: offences within the repeat window
	dupOf       []int // per source: index of its first occurrence, or -1
	severity    int
	baseTTL     time.Duration
	nacls       map[string]*naclPlan // by NACL id
	order       []string             // NACL ids in order of first use
	pending     []pendingVPC
	fallback    [][]string // per source: host instances if the NACL has no room
	times       map[int64]string
	views       map[uint64]*view
	repeatTexts map[int]string
	hostNotes   [][]string // per source pending VPC: what a host fallback notes
	hostSkip    []bool     // per source pending VPC: a host fallback is already in place
}

type pendingVPC struct {
	src    int
	nacl   string
	subnet string
}

// Decide answers an attack: one decision per source of a, in the order of
// a.Sources. It reads s and never changes it; it does no I/O and takes the
// time from s.Now.
//
// Every decision has at least one reason, the first naming the outcome
// ("refused: ...", "skip: ...", "vpc: ...", "host: ..."), and carries the
// TTL a block would get (escalated for repeat offenders) with ExpiresAt =
// s.Now + TTL, skip and refuse included. Host decisions list the instances
// to drop the source on; none means this host (no target named). VPC
// decisions carry the NACL and a rule number of the reserved range;
// decisions sharing a NACL and rule number describe one entry (Aggregate
// names it when it is not the source itself), which lasts until the latest
// of their ExpiresAt; only the first of them carries Evicts. A VPC
// decision may also list instances outside the NACL's subnets that need a
// host drop.
func (e *Engine) Decide(a Attack, s Snapshot) []Decision {
	r := e.prepare(a, s)
	ds := make([]Decision, len(r.srcs))
	for i := range r.srcs {
		ds[i] = r.decide(i)
	}
	r.planNACLs(ds)
	for i := range ds {
		d := &ds[i]
		if a.Permanent {
			d.TTL, d.TTLSeconds, d.ExpiresAt = 0, 0, time.Time{}
		} else {
			d.TTLSeconds = int64(d.TTL / time.Second)
			d.ExpiresAt = s.Now.Add(d.TTL)
		}
		if len(d.Reasons) == 0 { // every path sets one; keep the promise anyway
			d.Reasons = []string{fmt.Sprintf("%s: %s", d.Action, show(d.Target))}
		}
	}
	return ds
}

func (e *Engine) prepare(a Attack, s Snapshot) *run {
	r := &run{e: e, cfg: e.cfg.Policy, a: a, s: s, nacls: map[string]*naclPlan{}, times: map[int64]string{},
		views: map[uint64]*view{}, repeatTexts: map[int]string{}}
	r.srcs = make([]netip.Prefix, len(a.Sources))
	for i, p := range a.Sources {
		if p.IsValid() {
			p = Canonical(p)
		}
		r.srcs[i] = p
	}
	r.severity = a.Severity
	if r.severity <= 0 {
		r.severity = r.cfg.DefaultSeverity
	}
	r.baseTTL = a.TTL
	if r.baseTTL <= 0 {
		r.baseTTL = time.Duration(r.cfg.DefaultTTL)
	}

	// Protected networks.
	n := len(e.special) + len(s.Callers) + len(s.Protected) + len(s.Allowlist) + len(s.VPCCIDRs)
	for _, rules := range s.SGRules {
		n += len(rules)
	}
	r.prot = make([]protection, 0, n)
	r.prot = append(r.prot, e.special...)
	for _, c := range s.Callers {
		if c.IsValid() {
			c = c.WithZone("").Unmap()
			r.prot = append(r.prot, protection{p: netip.PrefixFrom(c, c.BitLen()), kind: protCaller, what: "your own SSH session's address"})
		}
	}
	for _, pr := range s.Protected {
		if pr.Prefix.IsValid() {
			what := pr.What
			if what == "" {
				what = "protected on this host"
			}
			r.prot = append(r.prot, protection{p: pr.Prefix, kind: protCaller, what: what})
		}
	}
	for _, p := range s.Allowlist {
		r.prot = append(r.prot, protection{p: p, kind: protAllowlist, what: "on the allowlist"})
	}
	for _, p := range s.VPCCIDRs {
		r.prot = append(r.prot, protection{p: p, kind: protVPC, what: "a CIDR of the VPC"})
	}
	addSG := func(inst string, rules []SGRule) {
		for i := range rules {
			rl := &rules[i]
			if rl.Source.IsValid() && Canonical(rl.Source).Bits() > 0 {
				r.prot = append(r.prot, protection{p: rl.Source, kind: protSG, rule: rl, instance: inst})
			}
		}
	}
	if len(a.Targets) == 0 {
		// No target named: every security group the snapshot knows protects.
		ids := make([]string, 0, len(s.SGRules))
		for id := range s.SGRules {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			addSG(id, s.SGRules[id])
		}
	}
	seenInst := map[string]bool{}
	for _, t := range a.Targets {
		tg := target{Target: t}
		if t.InstanceID != "" {
			rules, ok := s.SGRules[t.InstanceID]
			tg.known = ok
			if !seenInst[t.InstanceID] {
				seenInst[t.InstanceID] = true
				addSG(t.InstanceID, rules)
			}
			var narrow []netip.Prefix
			for _, rl := range rules {
				if !rl.Source.IsValid() || !rl.Port.Overlaps(a.Port) {
					continue
				}
				src := Canonical(rl.Source)
				switch {
				case src.Bits() == 0 && src.Addr().Is4():
					tg.any4 = true
				case src.Bits() == 0:
					tg.any6 = true
				default:
					narrow = append(narrow, src)
				}
			}
			tg.narrow = newPrefixIndex(narrow)
		}
		r.targets = append(r.targets, tg)
	}
	for i := range r.prot {
		r.prot[i].p = Canonical(r.prot[i].p)
	}
	ps := make([]netip.Prefix, len(r.prot))
	for i, pr := range r.prot {
		ps[i] = pr.p
	}
	r.protIdx = newPrefixIndex(ps)

	// Sources: duplicates, active blocks containing them, past offences.
	srcIdx := newPrefixIndex(r.srcs)
	r.dupOf = make([]int, len(r.srcs))
	for i := range r.dupOf {
		r.dupOf[i] = -1
	}
	for i := 1; i < len(srcIdx.items); i++ {
		if prev := srcIdx.items[i-1]; prev.k == srcIdx.items[i].k {
			first := int(prev.id)
			if r.dupOf[first] >= 0 {
				first = r.dupOf[first]
			}
			r.dupOf[int(srcIdx.items[i].id)] = first
		}
	}
	var pairs [][2]int32 // (source, block)
	cur := int32(0)
	add := func(id int) bool { pairs = append(pairs, [2]int32{int32(id), cur}); return true }
	var lowest, highest pkey // address span of the sources
	if n := len(srcIdx.items); n > 0 {
		lowest, highest = srcIdx.items[0].k, srcIdx.items[n-1].k.last()
	}
	for bi := range s.Blocks {
		b := &s.Blocks[bi]
		if !b.Target.IsValid() || (!b.ExpiresAt.IsZero() && !b.ExpiresAt.After(s.Now)) {
			continue
		}
		cur = int32(bi)
		bp := Canonical(b.Target)
		k, v4 := keyOf(bp), bp.Addr().Is4()
		if len(srcIdx.items) == 0 || compareAddr(k, highest) > 0 || compareAddr(k.last(), lowest) < 0 {
			continue // outside every source
		}
		srcIdx.each(k, v4, add)
		srcIdx.insideKey(k, v4, add)
	}
	// Counting sort of the pairs by source.
	r.blkStart = make([]int32, len(r.srcs)+1)
	for _, pr := range pairs {
		r.blkStart[pr[0]+1]++
	}
	for i := range r.srcs {
		r.blkStart[i+1] += r.blkStart[i]
	}
	r.blkList = make([]int32, len(pairs))
	fillAt := slices.Clone(r.blkStart[:len(r.srcs)])
	for _, pr := range pairs {
		r.blkList[fillAt[pr[0]]] = pr[1]
		fillAt[pr[0]]++
	}
	r.repeats = make([]int, len(r.srcs))
	since := s.Now.Add(-time.Duration(r.cfg.RepeatWindow))
	for _, o := range s.Offences {
		if !o.Source.IsValid() || o.At.Before(since) || o.At.After(s.Now) {
			continue
		}
		srcIdx.overlapping(Canonical(o.Source), func(id int) bool { r.repeats[id]++; return true })
	}
	r.fallback = make([][]string, len(r.srcs))
	r.hostNotes = make([][]string, len(r.srcs))
	r.hostSkip = make([]bool, len(r.srcs))
	return r
}

// blocksOf returns the indexes of the active blocks containing source i.
func (r *run) blocksOf(i int) []int32 { return r.blkList[r.blkStart[i]:r.blkStart[i+1]] }

// view is what a decision derives from which targets admit its source;
// sources admitted by the same targets share one.
type view struct {
	admitted      []*target // instance targets whose groups admit the source (or are unknown)
	bare          []*target // subnets named without an instance
	dropped       []string  // instances whose groups drop the source
	droppedNote   string
	subnets       []string            // in order of first appearance
	reach         map[string][]string // subnet → admitted instances
	reachTriggers []string
	hostIDs       []string // admitted instance ids
}

func (r *run) viewFor(src netip.Prefix) *view {
	var mask uint64
	memo := len(r.targets) <= 64
	admits := make([]bool, len(r.targets))
	for ti := range r.targets {
		t := &r.targets[ti]
		if t.InstanceID != "" && t.admits(src) {
			admits[ti] = true
			mask |= 1 << ti
		}
	}
	if v, ok := r.views[mask]; ok && memo {
		return v
	}
	v := &view{reach: map[string][]string{}}
	for ti := range r.targets {
		t := &r.targets[ti]
		switch {
		case t.InstanceID == "":
			v.bare = append(v.bare, t)
		case admits[ti]:
			v.admitted = append(v.admitted, t)
			v.hostIDs = append(v.hostIDs, t.InstanceID)
		default:
			v.dropped = append(v.dropped, t.InstanceID)
		}
	}
	if len(v.dropped) > 0 && len(v.admitted)+len(v.bare) > 0 {
		v.droppedNote = fmt.Sprintf("not on %s: no security group there admits %s from this source", strings.Join(v.dropped, ", "), r.a.Port)
	}
	addSubnet := func(sn string) {
		if _, ok := v.reach[sn]; !ok {
			v.reach[sn] = nil
			v.subnets = append(v.subnets, sn)
		}
	}
	for _, t := range v.admitted {
		if t.SubnetID != "" {
			addSubnet(t.SubnetID)
			v.reach[t.SubnetID] = append(v.reach[t.SubnetID], t.InstanceID)
		}
	}
	for _, t := range v.bare {
		addSubnet(t.SubnetID)
	}
	for _, sn := range v.subnets {
		if n := len(v.reach[sn]); r.cfg.VPCMinInstances > 0 && n >= r.cfg.VPCMinInstances {
			v.reachTriggers = append(v.reachTriggers, fmt.Sprintf("vpc: reaches %d instances in %s (threshold %d)", n, sn, r.cfg.VPCMinInstances))
		}
	}
	v.hostIDs = slices.Clip(v.hostIDs)
	if memo {
		r.views[mask] = v
	}
	return v
}

// repeatText explains an escalated TTL; it depends on the count only.
func (r *run) repeatText(repeat int, ttl time.Duration, capped bool) string {
	if s, ok := r.repeatTexts[repeat]; ok {
		return s
	}
	s := fmt.Sprintf("repeat offender: %d prior offence(s) within %s; ttl %s doubled to %s", repeat, fmtDur(time.Duration(r.cfg.RepeatWindow)), fmtDur(r.baseTTL), fmtDur(ttl))
	if capped {
		s += " (capped by policy.max_ttl)"
	}
	r.repeatTexts[repeat] = s
	return s
}

// ttl is the base TTL doubled per prior offence, capped at max_ttl (or at
// the requested TTL when that is longer).
func (r *run) ttl(repeat int) (ttl time.Duration, capped bool) {
	if r.a.Permanent {
		return forever, false // never doubled: it cannot get longer
	}
	ttl = r.baseTTL
	limit := max(time.Duration(r.cfg.MaxTTL), r.baseTTL)
	for k := 0; k < repeat && ttl < limit; k++ {
		if ttl > limit/2 {
			ttl = limit // doubling would pass the cap (or overflow): saturate
			break
		}
		ttl *= 2
	}
	if ttl > limit {
		return limit, true
	}
	return ttl, false
}

// deciding is one source's decision in the making: the decision and what
// the steps of decide learn about the source on the way.
type deciding struct {
	r   *run
	i   int
	src netip.Prefix
	d   Decision
	v   *view
	// expires is when a block made now would end.
	expires time.Time
	// hostInst are the instances to drop the source on (those already
	// dropping it long enough left out, with hostNotes saying so);
	// allCovered when every one is.
	hostInst   []string
	hostNotes  []string
	allCovered bool
}

func (x *deciding) refuse(format string, args ...any) Decision {
	return x.end(ActionRefuse, "refused: ", format, args...)
}

func (x *deciding) skip(format string, args ...any) Decision {
	return x.end(ActionSkip, "skip: ", format, args...)
}

// end makes the decision a refusal or a skip: no scope, no NACL or
// instance, the first reason naming the outcome.
func (x *deciding) end(action Action, lead, format string, args ...any) Decision {
	d := &x.d
	d.Scope, d.Action = ScopeNone, action
	d.NACLID, d.SubnetID, d.RuleNumber, d.Instances = "", "", 0, nil
	d.Reasons = slices.Insert(d.Reasons, 0, lead+fmt.Sprintf(format, args...))
	return *d
}

// host makes the decision a host block led by lead (or a skip when every
// instance already drops the source, a refusal when there is no instance).
func (x *deciding) host(lead string) Decision {
	if len(x.v.admitted) == 0 && len(x.v.bare) > 0 {
		return x.refuse("%s; no instance named to drop it on instead", strings.TrimPrefix(lead, "host: "))
	}
	if x.allCovered {
		return x.skip("%s", x.hostNotes[0])
	}
	d := &x.d
	d.Scope, d.Action = ScopeHost, ActionBlock
	d.Instances = x.hostInst
	d.Reasons = slices.Insert(d.Reasons, 0, append([]string{lead}, x.hostNotes...)...)
	return *d
}

// decide applies the rules to source i: what may never be blocked
// (screen), whether any security group admits it at all (admit), whether
// anything calls for the subnet edge (triggers), then host or VPC scope.
func (r *run) decide(i int) Decision {
	x := &deciding{r: r, i: i, src: r.srcs[i]}
	x.d = Decision{Target: x.src, Scope: ScopeNone, Action: ActionRefuse, Reasons: make([]string, 0, 2)}
	x.d.Repeat = r.repeats[i]
	var capped bool
	x.d.TTL, capped = r.ttl(x.d.Repeat)
	if d, done := x.screen(); done {
		return d
	}
	if d, done := x.admit(capped); done {
		return d
	}
	triggers := x.triggers()
	wantVPC := false
	switch r.a.Scope {
	case ScopeVPC:
		wantVPC = true
		x.d.Reasons = slices.Insert(x.d.Reasons, 0, "vpc: --scope vpc requested")
	case ScopeHost:
	default:
		wantVPC = len(triggers) > 0
		if wantVPC {
			x.d.Reasons = append(triggers, x.d.Reasons...)
		}
	}
	if !wantVPC {
		return x.hostScope()
	}
	return x.vpcScope()
}

// screen refuses what is never blocked (rule 1, protected networks; rule
// 2, prefixes broader than max_prefix_v4/v6 without --force) and skips
// duplicates.
func (x *deciding) screen() (Decision, bool) {
	r, src, d := x.r, x.src, &x.d
	switch {
	case !src.IsValid():
		return x.refuse("%q is not an address or a CIDR", a2s(r.a.Sources[x.i])), true
	case src.Bits() == 0:
		return x.refuse("%s covers every address; never blocked, not even with --force", src), true
	case r.dupOf[x.i] >= 0:
		return x.skip("%s is listed more than once; decided at position %d", show(src), r.dupOf[x.i]+1), true
	}

	// Rule 1: protected networks.
	var hits []int
	r.protIdx.overlapping(src, func(id int) bool {
		hits = append(hits, id)
		return len(hits) < 64
	})
	// Name the most specific protection first.
	slices.SortStableFunc(hits, func(a, b int) int { return r.prot[b].p.Bits() - r.prot[a].p.Bits() })
	var hard, soft []string
	for _, id := range hits {
		pr := r.prot[id]
		msg := relation(src, pr.p) + " " + pr.describe()
		if pr.kind.hard() {
			hard = append(hard, msg)
		} else {
			soft = append(soft, msg)
		}
	}
	if len(hard) > 0 {
		return x.refuse("%s (--force does not override this)", strings.Join(slices.Concat(hard, soft), "; ")), true
	}
	if len(soft) > 0 {
		if !r.a.Force {
			return x.refuse("%s (--force overrides this)", strings.Join(soft, "; ")), true
		}
		for _, m := range soft {
			d.Reasons = append(d.Reasons, "forced: "+m)
		}
	}

	// Rule 2: prefixes broader than /16 (IPv4) or /32 (IPv6).
	limit := r.cfg.MaxPrefixV4
	if src.Addr().Is6() {
		limit = r.cfg.MaxPrefixV6
	}
	if src.Bits() < limit {
		if !r.a.Force {
			return x.refuse("%s is broader than /%d (--force overrides this)", src, limit), true
		}
		d.Reasons = append(d.Reasons, fmt.Sprintf("forced: %s is broader than /%d", src, limit))
	}
	return Decision{}, false
}

// admit skips a source no security group admits (rule 3: already
// dropped), notes the repeat-offender escalation, and finds the instances
// to drop it on.
func (x *deciding) admit(capped bool) (Decision, bool) {
	r, d := x.r, &x.d
	x.v = r.viewFor(x.src)
	v := x.v
	if len(r.targets) > 0 && len(v.admitted) == 0 && len(v.bare) == 0 {
		return x.skip("no security group of %s admits %s from %s; already dropped", strings.Join(v.dropped, ", "), r.a.Port, show(x.src)), true
	}
	if v.droppedNote != "" {
		d.Reasons = append(d.Reasons, v.droppedNote)
	}
	if d.Repeat > 0 && !r.a.Permanent {
		d.Reasons = append(d.Reasons, r.repeatText(d.Repeat, d.TTL, capped))
	}
	x.expires = r.s.Now.Add(d.TTL)
	// Host instances, minus those already dropping src for long enough.
	x.hostInst, x.hostNotes, x.allCovered = r.hostInstances(x.i, v, x.expires)
	return Decision{}, false
}

// triggers lists what calls for the subnet edge (rule 4); most decisions
// have none, and then nothing is allocated.
func (x *deciding) triggers() []string {
	r, src, v := x.r, x.src, x.v
	var triggers []string
	triggers = append(triggers, v.reachTriggers...)
	if r.cfg.FloodRate > 0 && r.a.Rate >= r.cfg.FloodRate {
		triggers = append(triggers, fmt.Sprintf("vpc: rate %g/s at or above the flood threshold %g/s", r.a.Rate, r.cfg.FloodRate))
	}
	if !src.IsSingleIP() {
		triggers = append(triggers, fmt.Sprintf("vpc: %s is wider than one address", src))
	}
	if esc := r.hostBlockedElsewhere(x.i); r.cfg.EscalateHosts > 0 && len(esc) >= r.cfg.EscalateHosts {
		triggers = append(triggers, fmt.Sprintf("vpc: already dropped on hosts of %d instances (%s; threshold %d)", len(esc), strings.Join(esc, ", "), r.cfg.EscalateHosts))
	}
	if len(v.admitted) == 0 && len(v.bare) > 0 {
		triggers = append(triggers, fmt.Sprintf("vpc: target is %s with no instance named", v.bare[0].SubnetID))
	}
	return triggers
}

// hostScope is rule 5: host scope, unless the subnet edge already denies
// the source.
func (x *deciding) hostScope() Decision {
	r := x.r
	if nid, rule := r.edgeDenies(x.src, x.v.admitted, x.expires); nid != "" {
		return x.skip("already denied at the subnet edge by %s rule %d (%s)", nid, rule.RuleNumber, untilText(rule.ExpiresAt))
	}
	var lead string
	switch {
	case r.a.Scope == ScopeHost:
		lead = "host: --scope host requested"
	case len(r.targets) == 0:
		lead = "host: no instance named; dropped on this host"
	default:
		lead = "host: " + r.noTriggerText(x.v.subnets, x.v.reach)
	}
	return x.host(lead)
}

// vpcScope picks the subnet edge: the subnet reaching most instances
// (first named on a tie) among those whose network ACL is known and may
// be changed, falling back to the hosts (or refusing --scope vpc) when
// there is none; then a refresh of an entry already there, or a pending
// placement that planNACLs completes.
func (x *deciding) vpcScope() Decision {
	r, src, d := x.r, x.src, &x.d
	subnets, reach := x.v.subnets, x.v.reach
	best, bestN := "", -1
	for _, sn := range subnets {
		if _, ok := r.s.NACLs[sn]; ok && len(reach[sn]) > bestN {
			best, bestN = sn, len(reach[sn])
		}
	}
	if best == "" {
		why := "no subnet is known for the targets"
		if len(subnets) > 0 {
			why = "no network ACL is known for " + strings.Join(subnets, ", ")
		} else if len(r.targets) == 0 {
			why = "no instance or subnet named"
		}
		if r.a.Scope == ScopeVPC {
			return x.refuse("--scope vpc requested but %s (name --subnet, or give a snapshot with its nacls)", why)
		}
		return x.host(fmt.Sprintf("host: vpc wanted but %s; falling back", why))
	}
	nacl := r.s.NACLs[best]
	if nacl.Unmanaged != "" {
		// Managed-NACL confinement (the Lambda's BANSHEE_NACL_IDS):
		// banshee may not change this ACL.
		if r.a.Scope == ScopeVPC {
			return x.refuse("--scope vpc requested but %s", nacl.Unmanaged)
		}
		return x.host(fmt.Sprintf("host: vpc wanted but %s; falling back", nacl.Unmanaged))
	}
	d.SubnetID = best
	d.NACLID = nacl.ID
	np := r.naclPlan(nacl)

	// Instances outside the NACL's subnets still need host blocks.
	var outside []string
	for _, t := range x.v.admitted {
		if !slices.Contains(nacl.SubnetIDs, t.SubnetID) && t.SubnetID != best && slices.Contains(x.hostInst, t.InstanceID) {
			outside = append(outside, t.InstanceID)
		}
	}

	// Already denied by this NACL, or a refresh of banshee's own entry.
	if e, exact := np.covering(src, r.a.Port); e != nil {
		if e.ExpiresAt.IsZero() || !e.ExpiresAt.Before(x.expires) || !exact || !np.inRange(e.RuleNumber) || !np.pairFree(e) {
			denied := fmt.Sprintf("already denied by %s rule %d (%s, %s)", nacl.ID, e.RuleNumber, show(e.CIDR), untilText(e.ExpiresAt))
			if len(outside) == 0 {
				return x.skip("%s", denied)
			}
			// The edge holds for its subnets; the instances outside
			// them are dropped on their hosts.
			d.SubnetID, d.NACLID = "", ""
			x.hostInst = outside
			return x.host(fmt.Sprintf("host: on %s, outside %s; %s", strings.Join(outside, ", "), nacl.ID, denied))
		}
		d.Scope, d.Action = ScopeVPC, ActionBlock
		d.RuleNumber = e.RuleNumber
		d.Volume = r.volume(x.i)
		d.Reasons = slices.Insert(d.Reasons, 0, fmt.Sprintf("refresh: %s rule %d already denies %s until %s; extending to %s", nacl.ID, e.RuleNumber, show(src), r.fmtTime(e.ExpiresAt), r.fmtTime(x.expires)))
		np.refreshed[e.RuleNumber] = true
		return *d
	}

	if len(outside) > 0 {
		d.Instances = outside
		d.Reasons = append(d.Reasons, fmt.Sprintf("host: also dropped on %s (outside %s)", strings.Join(outside, ", "), nacl.ID))
	}
	d.Scope, d.Action = ScopeVPC, ActionBlock
	if len(x.v.admitted) > 0 || len(r.targets) == 0 {
		r.fallback[x.i] = x.hostInst
	}
	r.pending = append(r.pending, pendingVPC{src: x.i, nacl: nacl.ID, subnet: best})
	// A host decision is what a full NACL falls back to; remember its notes.
	if x.allCovered {
		r.fallback[x.i] = nil
	}
	r.hostNotes[x.i] = x.hostNotes
	r.hostSkip[x.i] = x.allCovered
	return *d
}

func a2s(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func untilText(t time.Time) string {
	if t.IsZero() {
		return "no expiry"
	}
	return "until " + fmtTime(t)
}

// noTriggerText explains why the attack stays on the host.
func (r *run) noTriggerText(subnets []string, reach map[string][]string) string {
	most, where := 0, ""
	for _, sn := range subnets {
		if n := len(reach[sn]); n > most {
			most, where = n, sn
		}
	}
	s := fmt.Sprintf("reaches %d instance(s)", most)
	if where != "" {
		s += " in " + where
	}
	s += fmt.Sprintf(" (vpc threshold %d)", r.cfg.VPCMinInstances)
	if r.cfg.FloodRate > 0 {
		s += fmt.Sprintf(", rate %g/s below %g/s", r.a.Rate, r.cfg.FloodRate)
	}
	return s + ", one address: a host DROP is enough"
}

// hostInstances returns the instances that still need a host block for
// source i (nil with no targets: this host), notes on those that already
// drop it, and whether every one of them already does for long enough.
func (r *run) hostInstances(i int, v *view, expires time.Time) (inst, notes []string, allCovered bool) {
	src := r.srcs[i]
	admitted := v.admitted
	if len(r.targets) > 0 && !slices.ContainsFunc(r.blocksOf(i), func(bi int32) bool { return r.s.Blocks[bi].Scope == ScopeHost }) {
		return v.hostIDs, nil, len(admitted) > 0 && len(v.hostIDs) == 0
	}
	coveredOn := func(id string) (covered bool, refresh bool, until time.Time) {
		for _, bi := range r.blocksOf(i) {
			b := &r.s.Blocks[bi]
			if b.Scope != ScopeHost || b.InstanceID != id {
				continue
			}
			if b.ExpiresAt.IsZero() || !b.ExpiresAt.Before(expires) {
				return true, false, b.ExpiresAt
			}
			if Canonical(b.Target) == src {
				refresh, until = true, b.ExpiresAt
			}
		}
		return false, refresh, until
	}
	if len(r.targets) == 0 {
		covered, refresh, until := coveredOn("")
		switch {
		case covered:
			return nil, []string{fmt.Sprintf("already dropped on this host (%s)", untilText(until))}, true
		case refresh:
			notes = append(notes, fmt.Sprintf("refresh: already dropped on this host until %s; extending to %s", r.fmtTime(until), r.fmtTime(expires)))
		}
		return nil, notes, false
	}
	var done, refreshed []string
	var doneUntil time.Time
	for _, t := range admitted {
		covered, refresh, until := coveredOn(t.InstanceID)
		if covered {
			done = append(done, t.InstanceID)
			if doneUntil.IsZero() || (!until.IsZero() && until.Before(doneUntil)) {
				doneUntil = until
			}
			continue
		}
		if refresh {
			refreshed = append(refreshed, t.InstanceID)
		}
		inst = append(inst, t.InstanceID)
	}
	if len(done) > 0 {
		notes = append(notes, fmt.Sprintf("already dropped on %s (%s)", strings.Join(done, ", "), untilText(doneUntil)))
	}
	if len(refreshed) > 0 {
		notes = append(notes, fmt.Sprintf("refresh: extending the drop on %s to %s", strings.Join(refreshed, ", "), r.fmtTime(expires)))
	}
	return inst, notes, len(admitted) > 0 && len(inst) == 0
}

// hostBlockedElsewhere lists the instances already dropping source i on
// their host firewall (escalation).
func (r *run) hostBlockedElsewhere(i int) []string {
	var ids []string
	for _, bi := range r.blocksOf(i) {
		b := &r.s.Blocks[bi]
		if b.Scope == ScopeHost && b.InstanceID != "" && !slices.Contains(ids, b.InstanceID) {
			ids = append(ids, b.InstanceID)
		}
	}
	return ids
}

// edgeDenies reports a NACL entry that already denies src for every
// admitted target's subnet, long enough.
func (r *run) edgeDenies(src netip.Prefix, admitted []*target, expires time.Time) (string, *NACLEntry) {
	if len(admitted) == 0 {
		return "", nil
	}
	var id string
	var first *NACLEntry
	for _, t := range admitted {
		nacl, ok := r.s.NACLs[t.SubnetID]
		if !ok {
			return "", nil
		}
		e := r.naclPlan(nacl).verdict(src, r.a.Port)
		if e == nil || e.Allow || (!e.ExpiresAt.IsZero() && e.ExpiresAt.Before(expires)) {
			return "", nil
		}
		if first == nil {
			id, first = nacl.ID, e
		}
	}
	return id, first
}
