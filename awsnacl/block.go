package awsnacl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/policy"
)

// Request says who asks for blocks, why, and against which traffic; it
// becomes the blocks' metadata and bounds the order check.
type Request struct {
	Origin   policy.Origin
	Reason   string      // empty: the decision's reasons
	Severity int         // of the attack, kept for later eviction choices
	Port     policy.Port // the attacked port; zero means all traffic
}

// Block enforces the decisions of scope vpc and action block (others are
// ignored) and returns the blocks now in force, one per enforced decision.
// The planned rule number of a decision is a hint: the NACL is read again
// (or taken from this Manager's read of the same invocation) and every
// guarantee is re-checked here. Decisions that cannot be enforced come back
// as *TargetError values joined in the error (see Failed): ErrNoRoom for a
// full NACL (the caller falls back to host scope), ErrShadowed for a deny
// that a lower-numbered allow rule would bypass, ErrNotFound for a subnet
// or NACL that does not exist.
func (m *Manager) Block(ctx context.Context, decisions []policy.Decision, req Request) ([]policy.Block, error) {
	var errs []error
	groups := map[string][]policy.Decision{}
	var order []string
	for _, d := range decisions {
		if d.Scope != policy.ScopeVPC || d.Action != policy.ActionBlock {
			continue
		}
		key := d.SubnetID // the subnet's current association wins over a planned NACL id
		if key == "" {
			key = d.NACLID
		}
		if key == "" {
			errs = append(errs, &TargetError{Target: d.Target, Err: errors.New("the decision names neither a subnet nor a network ACL")})
			continue
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], d)
	}
	var out []policy.Block
	for _, key := range order {
		bs, err := m.blockOn(ctx, key, groups[key], req)
		out = append(out, bs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// blockOn enforces decisions on the NACL of one subnet or NACL id. When the
// NACL read earlier vanished (deleted, or the subnet re-associated), it
// reads the subnet's association again once.
func (m *Manager) blockOn(ctx context.Context, key string, ds []policy.Decision, req Request) ([]policy.Block, error) {
	for attempt := 0; ; attempt++ {
		st, err := m.state(ctx, key, attempt > 0)
		if err != nil {
			return nil, targetErrs(ds, err)
		}
		bs, err := m.locked(st.id, func(st *naclState) ([]policy.Block, error) {
			return m.apply(ctx, st, ds, req)
		})
		if attempt == 0 && !isNACLID(key) && errors.Is(err, ErrNotFound) && len(bs) == 0 {
			m.forget(st.id)
			continue
		}
		return bs, err
	}
}

// locked runs f on the newest read of NACL id under its write lock.
func (m *Manager) locked(id string, f func(*naclState) ([]policy.Block, error)) ([]policy.Block, error) {
	l := m.naclLock(id)
	l.Lock()
	defer l.Unlock()
	m.mu.Lock()
	st := m.nacls[id]
	m.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("network ACL %s: %w", id, &NotFoundError{Kind: "network ACL", ID: id})
	}
	return f(st)
}

func targetErrs(ds []policy.Decision, err error) error {
	var errs []error
	for _, d := range ds {
		errs = append(errs, &TargetError{Target: d.Target, Err: err})
	}
	return errors.Join(errs...)
}

// expiry returns when a decision's block ends (zero: never).
func expiry(d policy.Decision, now time.Time) time.Time {
	switch {
	case !d.ExpiresAt.IsZero():
		return d.ExpiresAt.UTC().Truncate(time.Second)
	case d.TTL > 0:
		return now.Add(d.TTL).UTC().Truncate(time.Second)
	case d.TTLSeconds > 0:
		return now.Add(time.Duration(d.TTLSeconds) * time.Second).UTC().Truncate(time.Second)
	}
	return time.Time{}
}

// later returns the later expiry, zero (never) winning.
func later(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if a.After(b) {
		return a
	}
	return b
}

// apply is Block on one NACL, under its lock. Order of writes: entries
// first, then one CreateTags for all their metadata, then deletions of
// entries an aggregate made redundant, then one DeleteTags. A failure of
// CreateTags rolls the new entries back.
func (m *Manager) apply(ctx context.Context, st *naclState, ds []policy.Decision, req Request) ([]policy.Block, error) {
	now := m.now()
	pending := map[int]meta{} // metadata to write
	var created []int         // rule numbers created by this call
	var redundant []int       // entries an aggregate now covers
	var wrote []netip.Prefix  // wider denies written in place: what redundant entries lie inside
	type done struct {
		d   policy.Decision
		n   int
		idx int
	}
	var ok []done
	var errs []error
	fail := func(d policy.Decision, err error) { errs = append(errs, &TargetError{Target: d.Target, Err: err}) }
	// usable: an entry of ours that can stand for a new block of its
	// CIDR's traffic on req.Port.
	var cidr netip.Prefix
	unshadowed := func(e policy.NACLEntry) bool { return m.shadow(st, cidr, e.RuleNumber, req.Port) == nil }
	usable := func(e policy.NACLEntry) bool { return !m.expiring(st, e.RuleNumber, now) && unshadowed(e) }

	// Adopting an entry without metadata (a racing writer's, blocking the
	// same source) must not overwrite the metadata that writer may have
	// written since this Manager read the NACL: read again first.
	for _, d := range ds {
		cidr = decisionCIDR(d)
		if n, found := m.covering(st, cidr, usable); found {
			if _, has := st.meta(n); !has {
				if err := m.reread(ctx, st); err != nil {
					return nil, targetErrs(ds, err)
				}
				break
			}
		}
	}

	// The placement's merges of entries of ours, before any new entry:
	// each is written in place of the lowest entry inside it, and the
	// numbers of the others are free for new entries once it is.
	var mergeErrs []error
	for _, d := range ds {
		for _, mg := range d.Merges {
			if mg.NACLID != "" && mg.NACLID != st.id {
				continue
			}
			mc := policy.Canonical(mg.Target)
			md := meta{Exp: mg.ExpiresAt.UTC().Truncate(time.Second), Origin: req.Origin, CIDR: mc, Reason: cmpOr(mg.Reason, req.Reason), Severity: req.Severity, At: now.UTC().Truncate(time.Second)}
			if _, _, err := m.mergeInside(ctx, st, mc, md, req.Port, now, pending, &redundant, &wrote); err != nil {
				mergeErrs = append(mergeErrs, err)
			}
		}
	}

	// Decisions whose deny swallows entries of ours go first, so the
	// numbers they free are there for the rest.
	order := make([]int, len(ds))
	swallows := make([]bool, len(ds))
	for i, d := range ds {
		order[i] = i
		c := decisionCIDR(d)
		swallows[i] = len(m.inside(st, c, func(policy.NACLEntry) bool { return true })) > 0
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case swallows[a] == swallows[b]:
			return 0
		case swallows[a]:
			return -1
		}
		return 1
	})

	for _, idx := range order {
		d := ds[idx]
		cidr = decisionCIDR(d)
		reason := req.Reason
		if reason == "" && len(d.Reasons) > 0 {
			reason = d.Reasons[0]
		}
		md := meta{Exp: expiry(d, now), Origin: req.Origin, CIDR: cidr, Reason: reason, Severity: req.Severity, Volume: d.Volume}
		if d.Volume > 0 {
			md.At = now.UTC().Truncate(time.Second)
		}

		// Already denied by an entry of ours that will stay (not about to
		// expire) and that no lower allow bypasses for this traffic: extend
		// its metadata if needed.
		if n, found := m.covering(st, cidr, usable); found {
			extend(st, pending, n, md)
			ok = append(ok, done{d, n, idx})
			continue
		}

		// A deny over entries of ours (an aggregate, or a prefix holding
		// earlier single blocks): rewrite the lowest of them in place and
		// delete the rest once it is tagged.
		if n, merged, err := m.mergeInside(ctx, st, cidr, md, req.Port, now, pending, &redundant, &wrote); err != nil || merged {
			if err != nil {
				fail(d, err)
			} else {
				ok = append(ok, done{d, n, idx})
			}
			continue
		}

		// Eviction: the new deny takes the evicted entry's number in place.
		// An evicted entry about to expire may be deleted any moment by a
		// sweep that read it expired, taking the new deny with it: a free
		// number is taken instead when there is one (the old entry goes
		// with the sweep), its number only when there is none.
		var inPlace func()
		if ev := d.Evicts; ev != nil && (ev.NACLID == "" || ev.NACLID == st.id) {
			e, has := st.entry(ev.RuleNumber, false)
			if has && m.ours(e) && e.CIDR == policy.Canonical(ev.Target) && e.CIDR.Addr().Is4() == cidr.Addr().Is4() &&
				m.shadow(st, cidr, ev.RuleNumber, req.Port) == nil {
				evict := func() {
					if err := m.replace(ctx, st, ev.RuleNumber, cidr); err != nil {
						fail(d, err)
						return
					}
					pending[ev.RuleNumber] = md
					ok = append(ok, done{d, ev.RuleNumber, idx})
				}
				if !m.expiring(st, ev.RuleNumber, now) {
					evict()
					continue
				}
				inPlace = evict
			}
			// The evicted entry is gone already (swept, unblocked): take a
			// free number if there is one.
		}
		// An entry of ours covering cidr that is about to expire: a new
		// entry is created beside it (the sweep deletes the old one); only
		// when there is no room is the old one's metadata extended.
		if n, found := m.covering(st, cidr, unshadowed); found && inPlace == nil {
			inPlace = func() {
				extend(st, pending, n, md)
				ok = append(ok, done{d, n, idx})
			}
		}

		if st.nTags+newTags(st, pending)+1 > maxTags {
			if inPlace != nil {
				inPlace()
				continue
			}
			fail(d, fmt.Errorf("%s has %d tags, the most AWS allows on one resource: %w", st.id, maxTags, ErrNoRoom))
			continue
		}
		n, adopted, err := m.create(ctx, st, cidr, d.RuleNumber, req.Port, now)
		if errors.Is(err, ErrNoRoom) {
			// A number a merge of this call left redundant: its old source
			// is denied by the merged entry already, so it is rewritten
			// in place (no count changes, no gap).
			// Read again first: a racing merge may have deleted the number
			// and another writer re-used it.
			if len(redundant) > 0 {
				if rerr := m.reread(ctx, st); rerr != nil {
					fail(d, errors.Join(err, rerr))
					continue
				}
				redundant = slices.DeleteFunc(redundant, func(n int) bool { return !m.insideWritten(st, n, wrote) })
			}
			if k := slices.IndexFunc(redundant, func(r int) bool { return m.shadow(st, cidr, r, req.Port) == nil }); k >= 0 {
				r := redundant[k]
				if rerr := m.replace(ctx, st, r, cidr); rerr != nil {
					fail(d, rerr)
					continue
				}
				redundant = slices.Delete(redundant, k, k+1)
				pending[r] = md
				ok = append(ok, done{d, r, idx})
				continue
			}
		}
		if (errors.Is(err, ErrNoRoom) || errors.Is(err, ErrShadowed)) && inPlace != nil {
			inPlace()
			continue
		}
		if err != nil {
			fail(d, err)
			continue
		}
		if adopted {
			extend(st, pending, n, md)
		} else {
			created = append(created, n)
			pending[n] = md
		}
		ok = append(ok, done{d, n, idx})
	}
	slices.SortStableFunc(ok, func(a, b done) int { return a.idx - b.idx })
	errs = append(errs, mergeErrs...)

	if len(pending) > 0 {
		if err := m.writeTags(ctx, st, pending, nil); err != nil {
			// Without metadata the new entries must not stay: roll back.
			rb := m.rollback(ctx, st, created)
			for _, x := range ok {
				fail(x.d, errors.Join(err, rb))
			}
			return nil, errors.Join(errs...)
		}
	}

	var out []policy.Block
	for _, x := range ok {
		md, _ := st.meta(x.n)
		out = append(out, policy.Block{
			Target: md.CIDR, Scope: policy.ScopeVPC, NACLID: st.id, RuleNumber: x.n,
			ExpiresAt: md.Exp, Reason: md.Reason, Origin: md.Origin, Severity: md.Severity,
		})
	}

	// Entries an aggregate covers now, and metadata left without an entry
	// by an earlier failure: delete them (entries first). Deletion is by
	// number, so the NACL is read again first and only numbers still
	// holding an entry of ours inside what this call wrote go: a racing
	// writer that rewrote one meanwhile keeps its entry.
	if len(redundant) > 0 {
		if err := m.reread(ctx, st); err != nil {
			errs = append(errs, fmt.Errorf("reading %s before removing entries covered by an aggregate: %w", st.id, err))
			redundant = nil
		}
		redundant = slices.DeleteFunc(redundant, func(n int) bool { return !m.insideWritten(st, n, wrote) })
	}
	if err := m.removeRules(ctx, st, redundant); err != nil {
		errs = append(errs, fmt.Errorf("removing entries covered by an aggregate: %w", err))
	}
	return out, errors.Join(errs...)
}

// mergeInside writes a deny for cidr in place of the lowest entry of ours
// strictly inside it (not about to expire, and no allow ahead of that
// number bypasses cidr) and marks the others redundant; md, merged with
// their metadata (latest expiry, summed volume, highest severity), becomes
// its pending metadata. merged is false when there is no such entry.
func (m *Manager) mergeInside(ctx context.Context, st *naclState, cidr netip.Prefix, md meta, port policy.Port, now time.Time,
	pending map[int]meta, redundant *[]int, wrote *[]netip.Prefix) (n int, merged bool, err error) {
	if len(m.inside(st, cidr, func(policy.NACLEntry) bool { return true })) == 0 {
		return 0, false, nil
	}
	// Writing in place goes by rule number, and a racing writer may have
	// deleted or re-used a number since this Manager read the NACL: read
	// it again right before, and on a failure again, a bounded number of
	// times.
	for attempt := 0; ; attempt++ {
		if rerr := m.reread(ctx, st); rerr != nil {
			return 0, false, errors.Join(err, rerr)
		}
		n, merged, err = m.mergeOnce(ctx, st, cidr, md, port, now, pending, redundant, wrote)
		if err == nil || attempt == 2 || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return n, merged, err
		}
	}
}

func (m *Manager) mergeOnce(ctx context.Context, st *naclState, cidr netip.Prefix, md meta, port policy.Port, now time.Time,
	pending map[int]meta, redundant *[]int, wrote *[]netip.Prefix) (n int, merged bool, err error) {
	inner := m.inside(st, cidr, func(e policy.NACLEntry) bool { return !m.expiring(st, e.RuleNumber, now) })
	if len(inner) == 0 {
		return 0, false, nil
	}
	// Another writer's merge got there first: the entries inside are
	// redundant under its entry, which this block extends.
	if c, ok := m.covering(st, cidr, func(e policy.NACLEntry) bool {
		return !m.expiring(st, e.RuleNumber, now) && m.shadow(st, cidr, e.RuleNumber, port) == nil
	}); ok {
		for _, k := range inner {
			if cm, has := st.meta(k); has {
				md.Volume += cm.Volume
			}
			delete(pending, k)
		}
		extend(st, pending, c, md)
		*redundant = append(*redundant, inner...)
		*wrote = append(*wrote, cidr)
		return c, true, nil
	}
	if m.shadow(st, cidr, inner[0], port) != nil {
		return 0, false, nil
	}
	n = inner[0]
	for _, k := range inner {
		cm, has := pending[k]
		if !has {
			cm, has = st.meta(k)
		}
		if has {
			md.Exp = later(md.Exp, cm.Exp)
			md.Volume += cm.Volume
			md.Severity = max(md.Severity, cm.Severity)
			if cm.At.After(md.At) {
				md.At = cm.At
			}
		}
	}
	if err := m.replace(ctx, st, n, cidr); err != nil {
		return 0, false, err
	}
	pending[n] = md
	for _, k := range inner[1:] {
		delete(pending, k)
		*redundant = append(*redundant, k)
	}
	*wrote = append(*wrote, cidr)
	return n, true, nil
}

// insideWritten reports whether rule n holds an ingress entry of ours
// strictly inside one of the wider denies this call wrote.
func (m *Manager) insideWritten(st *naclState, n int, wrote []netip.Prefix) bool {
	e, has := st.entry(n, false)
	return has && m.ours(e) && slices.ContainsFunc(wrote, func(w netip.Prefix) bool {
		return w.Addr().Is4() == e.CIDR.Addr().Is4() && w.Bits() < e.CIDR.Bits() && w.Contains(e.CIDR.Addr())
	})
}

// decisionCIDR returns what a decision denies: its aggregate, else its
// target.
func decisionCIDR(d policy.Decision) netip.Prefix {
	if d.Aggregate != nil {
		return policy.Canonical(*d.Aggregate)
	}
	return policy.Canonical(d.Target)
}

// reuseMargin is how close to its expiry an entry of ours is treated as
// gone by Block: a sweep may have read it expired (its clock ahead of
// ours, or its deletes still under way) and delete it after Block
// extended or rewrote it, which would lose the new block. The margin
// also bounds how old a read Sweep deletes from (sweepReadMaxAge).
const reuseMargin = 5 * time.Minute

// expiring reports whether entry n of ours has metadata saying it expires
// within reuseMargin of now.
func (m *Manager) expiring(st *naclState, n int, now time.Time) bool {
	md, ok := st.meta(n)
	return ok && md.expired(now.Add(reuseMargin))
}

// extend records md for the existing entry n in pending: metadata for an
// entry that has none (adoption), or a later expiry for one that has.
func extend(st *naclState, pending map[int]meta, n int, md meta) {
	cur, has := pending[n]
	if !has {
		cur, has = st.meta(n)
	}
	switch {
	case !has:
		e, _ := st.entry(n, false)
		md.CIDR = e.CIDR
		pending[n] = md
	case md.Volume > 0:
		// A sighting of the attack: the entry is worth more, and was seen
		// now; a later expiry and the newer block's name as below.
		cur.Volume += md.Volume
		if md.At.After(cur.At) {
			cur.At = md.At
		}
		if !cur.Exp.IsZero() && (md.Exp.IsZero() || md.Exp.After(cur.Exp)) {
			cur.Exp = md.Exp
			if md.Reason != "" {
				cur.Reason, cur.Origin = md.Reason, md.Origin
			}
		}
		cur.Severity = max(cur.Severity, md.Severity)
		pending[n] = cur
	case !cur.Exp.IsZero() && (md.Exp.IsZero() || md.Exp.After(cur.Exp)):
		// The tag then names the latest block (its reason carries the
		// repeat count a later alarm escalates from).
		cur.Exp = md.Exp
		if md.Reason != "" {
			cur.Reason, cur.Origin = md.Reason, md.Origin
		}
		cur.Severity = max(cur.Severity, md.Severity)
		pending[n] = cur
	}
}

// newTags counts the metadata tags pending writes would add.
func newTags(st *naclState, pending map[int]meta) int {
	n := 0
	for k := range pending {
		if _, ok := st.tags[k]; !ok {
			n++
		}
	}
	return n
}

// covering returns the ingress entry of ours that denies all of cidr,
// preferring an exact one, then the narrowest, among those keep accepts
// (nil: all).
func (m *Manager) covering(st *naclState, cidr netip.Prefix, keep func(policy.NACLEntry) bool) (int, bool) {
	best, bestBits := 0, -1
	for _, e := range st.entries {
		if e.Egress || !m.ours(e) || e.CIDR.Addr().Is4() != cidr.Addr().Is4() || keep != nil && !keep(e) {
			continue
		}
		if e.CIDR.Bits() <= cidr.Bits() && e.CIDR.Contains(cidr.Addr()) && e.CIDR.Bits() > bestBits {
			best, bestBits = e.RuleNumber, e.CIDR.Bits()
		}
	}
	return best, bestBits >= 0
}

// inside returns the numbers of the ingress entries of ours strictly inside
// cidr that keep accepts, lowest first.
func (m *Manager) inside(st *naclState, cidr netip.Prefix, keep func(policy.NACLEntry) bool) []int {
	var out []int
	for _, e := range st.entries {
		if !e.Egress && m.ours(e) && e.CIDR.Addr().Is4() == cidr.Addr().Is4() && e.CIDR.Bits() > cidr.Bits() && cidr.Contains(e.CIDR.Addr()) && keep(e) {
			out = append(out, e.RuleNumber)
		}
	}
	slices.Sort(out)
	return out
}

// directions returns the directions a block occupies.
func (m *Manager) directions() []bool {
	if m.cfg.Egress {
		return []bool{false, true}
	}
	return []bool{false}
}

// shadow returns the lowest allow entry numbered below n, in a direction a
// block occupies, that admits traffic of cidr on port first: inbound, to
// the attacked port; outbound, the replies, to the peer's ephemeral ports
// (replyPorts).
func (m *Manager) shadow(st *naclState, cidr netip.Prefix, n int, port policy.Port) *policy.NACLEntry {
	var best *policy.NACLEntry
	for _, eg := range m.directions() {
		p := port
		if eg {
			p = replyPorts(port)
		}
		for i, e := range st.entries {
			if e.Egress != eg || !e.Allow || e.RuleNumber >= n || !e.CIDR.Overlaps(cidr) || !e.Port.Overlaps(p) {
				continue
			}
			if best == nil || e.RuleNumber < best.RuleNumber {
				best = &st.entries[i]
			}
		}
	}
	if best != nil {
		c := *best
		return &c
	}
	return nil
}

// candidates returns the rule numbers a new deny for cidr may take, lowest
// first. Quota: for each direction the block occupies, the entries of
// cidr's family must stay within nacl.quota, default rules and entries
// outside the range included. To keep that true when several processes
// race (each creates on its own read), a family's denies are confined to a
// window at the bottom of the range, [rule_min, end], with end the largest
// number such that the window's size plus the family's entries in the
// range above it is at most the quota left by the entries outside the
// range: EC2 lets one number exist once, so no interleaving can put more
// entries of the family in the window than it has numbers, and the
// entries above it are all counted.
func (m *Manager) candidates(st *naclState, cidr netip.Prefix, taken map[int]bool, port policy.Port) ([]int, error) {
	v4 := cidr.Addr().Is4()
	fam := "IPv4"
	if !v4 {
		fam = "IPv6"
	}
	end := m.cfg.RuleMax
	for _, eg := range m.directions() {
		total, outside := 0, 0
		for _, e := range st.entries {
			if e.Egress == eg && e.CIDR.Addr().Is4() == v4 {
				total++
				if !m.inRange(e.RuleNumber) {
					outside++
				}
			}
		}
		if total >= m.cfg.Quota {
			return nil, fmt.Errorf("%s has %d %s %s entries, the quota (nacl.quota %d): %w", st.id, total, fam, dirName(eg), m.cfg.Quota, ErrNoRoom)
		}
		end = min(end, m.windowEnd(st, v4, eg, m.cfg.Quota-outside))
	}
	var free []int
	for n := m.cfg.RuleMin; n <= end; n++ {
		if !st.used(n) && !taken[n] {
			free = append(free, n)
		}
	}
	if len(free) == 0 {
		return nil, fmt.Errorf("%s: no free rule number for %s in the reserved range %d-%d (usable up to %d under the quota): %w",
			st.id, fam, m.cfg.RuleMin, m.cfg.RuleMax, end, ErrNoRoom)
	}
	var ok []int
	var sh *policy.NACLEntry
	for _, n := range free {
		if s := m.shadow(st, cidr, n, port); s != nil {
			if sh == nil {
				sh = s
			}
			continue
		}
		ok = append(ok, n)
	}
	if len(ok) == 0 {
		return nil, &ShadowError{Target: cidr, NACLID: st.id, Rule: *sh, Min: m.cfg.RuleMin}
	}
	return ok, nil
}

// windowEnd returns the largest end (rule_min-1 when there is none) such
// that (end - rule_min + 1) plus the entries of the family and direction
// in the range numbered above end is at most avail.
func (m *Manager) windowEnd(st *naclState, v4, egress bool, avail int) int {
	end := min(m.cfg.RuleMax, m.cfg.RuleMin+avail-1)
	for ; end >= m.cfg.RuleMin; end-- {
		above := 0
		for _, e := range st.entries {
			if e.Egress == egress && e.CIDR.Addr().Is4() == v4 && m.inRange(e.RuleNumber) && e.RuleNumber > end {
				above++
			}
		}
		if end-m.cfg.RuleMin+1+above <= avail {
			break
		}
	}
	return end
}

func dirName(egress bool) string {
	if egress {
		return "egress"
	}
	return "ingress"
}

// create adds a deny for cidr (both directions with nacl.egress) at the
// planned number if it is still usable, else the lowest usable one. On
// NetworkAclEntryAlreadyExists it reads the NACL again: when the number
// now holds exactly this deny without metadata (our own earlier attempt
// whose answer was lost, or a racing writer of the same block) it adopts
// it; otherwise it takes the next free number. adopted reports the first
// case.
func (m *Manager) create(ctx context.Context, st *naclState, cidr netip.Prefix, planned int, port policy.Port, now time.Time) (n int, adopted bool, err error) {
	taken := map[int]bool{}
	limit := m.cfg.RuleMax - m.cfg.RuleMin + 3
	for round := 0; round < limit; round++ {
		cands, err := m.candidates(st, cidr, taken, port)
		if err != nil {
			return 0, false, err
		}
		n := cands[0]
		if slices.Contains(cands, planned) {
			n = planned
		}
		err = m.createBoth(ctx, st, n, cidr)
		if err == nil {
			return n, false, nil
		}
		if !errors.Is(err, errEntryExists) {
			return 0, false, err
		}
		taken[n] = true
		if rerr := m.reread(ctx, st); rerr != nil {
			return 0, false, rerr
		}
		if n2, ok := m.covering(st, cidr, func(e policy.NACLEntry) bool {
			return !m.expiring(st, e.RuleNumber, now) && m.shadow(st, cidr, e.RuleNumber, port) == nil
		}); ok {
			// Our own lost answer, or another writer blocking the same
			// source meanwhile: nothing to create.
			return n2, true, nil
		}
	}
	return 0, false, fmt.Errorf("%s: rule numbers kept being taken by other writers after %d tries: %w", st.id, limit, ErrNoRoom)
}

// createBoth creates the ingress (and, with nacl.egress, the egress) entry
// at n. If the egress one is taken, the ingress one is removed again.
func (m *Manager) createBoth(ctx context.Context, st *naclState, n int, cidr netip.Prefix) error {
	for _, eg := range m.directions() {
		if err := m.createEntry(ctx, st.id, n, eg, cidr); err != nil {
			if eg {
				if rb := m.deleteEntry(ctx, st.id, n, false); rb != nil && !errors.Is(rb, errEntryGone) {
					err = errors.Join(err, rb)
				}
			}
			return err
		}
		st.putEntry(policy.NACLEntry{RuleNumber: n, Egress: eg, CIDR: cidr})
	}
	return nil
}

func (m *Manager) createEntry(ctx context.Context, naclID string, n int, egress bool, cidr netip.Prefix) error {
	if err := m.mutate(ctx); err != nil {
		return err
	}
	in := &ec2.CreateNetworkAclEntryInput{
		NetworkAclId: aws.String(naclID), RuleNumber: i32(n), Egress: aws.Bool(egress),
		Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny,
	}
	setCIDR(&in.CidrBlock, &in.Ipv6CidrBlock, cidr)
	_, err := m.ec2.CreateNetworkAclEntry(ctx, in)
	return classify(fmt.Sprintf("creating %s deny %d for %s in %s", dirName(egress), n, cidr, naclID), naclID, err)
}

func setCIDR(v4, v6 **string, cidr netip.Prefix) {
	if cidr.Addr().Is4() {
		*v4 = aws.String(cidr.String())
	} else {
		*v6 = aws.String(cidr.String())
	}
}

// replace rewrites the entries at n to deny cidr, in place: the number is
// never free, so no moment exists where neither the old nor the new deny
// is in force.
func (m *Manager) replace(ctx context.Context, st *naclState, n int, cidr netip.Prefix) error {
	for _, eg := range m.directions() {
		if _, ok := st.entry(n, eg); !ok {
			if err := m.createEntry(ctx, st.id, n, eg, cidr); err != nil {
				return err
			}
			st.putEntry(policy.NACLEntry{RuleNumber: n, Egress: eg, CIDR: cidr})
			continue
		}
		if err := m.mutate(ctx); err != nil {
			return err
		}
		in := &ec2.ReplaceNetworkAclEntryInput{
			NetworkAclId: aws.String(st.id), RuleNumber: i32(n), Egress: aws.Bool(eg),
			Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny,
		}
		setCIDR(&in.CidrBlock, &in.Ipv6CidrBlock, cidr)
		if _, err := m.ec2.ReplaceNetworkAclEntry(ctx, in); err != nil {
			return classify(fmt.Sprintf("replacing %s entry %d of %s with a deny for %s", dirName(eg), n, st.id, cidr), st.id, err)
		}
		st.putEntry(policy.NACLEntry{RuleNumber: n, Egress: eg, CIDR: cidr})
	}
	return nil
}

func (m *Manager) deleteEntry(ctx context.Context, naclID string, n int, egress bool) error {
	if err := m.mutate(ctx); err != nil {
		return err
	}
	_, err := m.ec2.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{
		NetworkAclId: aws.String(naclID), RuleNumber: i32(n), Egress: aws.Bool(egress),
	})
	return classify(fmt.Sprintf("deleting %s entry %d of %s", dirName(egress), n, naclID), naclID, err)
}

// writeTags writes metadata (and sightings, Sweep's record of entries
// found without metadata) in one CreateTags call, with the cache of the
// VPC's CIDRs when this Manager has a newer one to give (vpccache.go).
func (m *Manager) writeTags(ctx context.Context, st *naclState, mds map[int]meta, sights map[int]seen) error {
	nums := make([]int, 0, len(mds))
	for n := range mds {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	tags := make([]types.Tag, 0, len(nums)+len(sights)+1)
	for _, n := range nums {
		tags = append(tags, types.Tag{Key: aws.String(ruleKey(n)), Value: aws.String(mds[n].encode())})
	}
	seenNums := make([]int, 0, len(sights))
	for n := range sights {
		seenNums = append(seenNums, n)
	}
	slices.Sort(seenNums)
	for _, n := range seenNums {
		tags = append(tags, types.Tag{Key: aws.String(seenKey(n)), Value: aws.String(sights[n].encode())})
	}
	added := newTags(st, mds)
	for _, n := range seenNums {
		if _, ok := st.seen[n]; !ok {
			added++
		}
	}
	vt, withVPC := m.vpcTag(st, added)
	if withVPC {
		tags = append(tags, vt)
	}
	if err := m.mutate(ctx); err != nil {
		return err
	}
	if _, err := m.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{st.id}, Tags: tags}); err != nil {
		return classify(fmt.Sprintf("writing metadata of rules %v of %s", append(nums, seenNums...), st.id), st.id, err)
	}
	st.managed = true
	for _, n := range nums {
		if _, ok := st.tags[n]; !ok {
			st.nTags++
		}
		st.tags[n] = mds[n].encode()
	}
	for _, n := range seenNums {
		if _, ok := st.seen[n]; !ok {
			st.nTags++
		}
		st.seen[n] = sights[n].encode()
	}
	if withVPC {
		m.mu.Lock()
		if st.vpcTag == "" {
			st.nTags++
		}
		st.vpcTag = aws.ToString(vt.Value)
		m.mu.Unlock()
	}
	return nil
}

// dropTags deletes the metadata tags of rules and the sighting tags of
// sights in one DeleteTags call. Each tag is named with the value read,
// so EC2 deletes it only if nobody rewrote it since.
func (m *Manager) dropTags(ctx context.Context, st *naclState, rules, sights []int) error {
	var tags []types.Tag
	slices.Sort(rules)
	rules = slices.Compact(rules)
	slices.Sort(sights)
	sights = slices.Compact(sights)
	for _, n := range rules {
		if v, ok := st.tags[n]; ok {
			tags = append(tags, types.Tag{Key: aws.String(ruleKey(n)), Value: aws.String(v)})
		}
	}
	for _, n := range sights {
		if v, ok := st.seen[n]; ok {
			tags = append(tags, types.Tag{Key: aws.String(seenKey(n)), Value: aws.String(v)})
		}
	}
	if len(tags) == 0 {
		return nil
	}
	if err := m.mutate(ctx); err != nil {
		return err
	}
	if _, err := m.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{st.id}, Tags: tags}); err != nil {
		return classify(fmt.Sprintf("deleting metadata of rules %v of %s", append(rules, sights...), st.id), st.id, err)
	}
	for _, n := range rules {
		if _, ok := st.tags[n]; ok {
			delete(st.tags, n)
			st.nTags--
		}
	}
	for _, n := range sights {
		if _, ok := st.seen[n]; ok {
			delete(st.seen, n)
			st.nTags--
		}
	}
	return nil
}

// staleTags returns the numbers whose metadata has no block of ours left.
func (m *Manager) staleTags(st *naclState) []int {
	var out []int
	for n := range st.tags {
		if !m.ourAt(st, n) {
			out = append(out, n)
		}
	}
	return out
}

// staleSights returns the numbers whose sighting has no block of ours
// without metadata left (the entry went, or its writer tagged it).
func (m *Manager) staleSights(st *naclState) []int {
	var out []int
	for n := range st.seen {
		if _, has := st.meta(n); has || !m.ourAt(st, n) {
			out = append(out, n)
		}
	}
	return out
}

// removeRules deletes banshee's entries at nums (the ingress deny, and
// with nacl.egress the egress deny of the same CIDR; an entry already
// gone is fine; anyone else's entry at the same number is left alone),
// then their metadata and sightings and any left without an entry, in
// one DeleteTags call. Metadata of an entry that failed to go is kept.
func (m *Manager) removeRules(ctx context.Context, st *naclState, nums []int) error {
	var errs []error
	var gone []int
	failed := map[int]error{}
	for _, n := range nums {
		in, hasIn := st.entry(n, false)
		for _, eg := range []bool{false, true} {
			e, ok := st.entry(n, eg)
			if !ok || !m.ours(e) {
				continue
			}
			if eg && (!m.cfg.Egress || hasIn && (!m.ours(in) || in.CIDR != e.CIDR)) {
				continue
			}
			err := m.deleteEntry(ctx, st.id, n, eg)
			if err != nil && !errors.Is(err, errEntryGone) {
				failed[n] = errors.Join(failed[n], err)
				continue
			}
			st.removeEntry(n, eg)
		}
	}
	if len(failed) > 0 {
		// A delete whose answer was lost may have happened: look before
		// reporting it failed.
		_ = m.reread(ctx, st)
		for n, err := range failed {
			if m.ourAt(st, n) {
				errs = append(errs, err)
			}
		}
	}
	for _, n := range nums {
		if !m.ourAt(st, n) {
			gone = append(gone, n)
		}
	}
	drop := append(gone, m.staleTags(st)...)
	if err := m.dropTags(ctx, st, drop, append(slices.Clone(gone), m.staleSights(st)...)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// rollback removes entries created by a call whose metadata could not be
// written, on a context that outlives the caller's cancellation. What it
// cannot remove is adopted by the next Sweep.
func (m *Manager) rollback(ctx context.Context, st *naclState, created []int) error {
	if len(created) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, n := range created {
		for _, eg := range m.directions() {
			if err := m.deleteEntry(ctx, st.id, n, eg); err != nil && !errors.Is(err, errEntryGone) {
				errs = append(errs, fmt.Errorf("rolling back: %w", err))
				continue
			}
			st.removeEntry(n, eg)
		}
	}
	return errors.Join(errs...)
}
