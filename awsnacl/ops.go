package awsnacl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// Unblock removes banshee's denies for exactly these prefixes from the NACL
// of a subnet id ("subnet-…") or the NACL id ("acl-…"), and their metadata
// (entries first, then one DeleteTags). It returns the blocks removed. A
// prefix that is not blocked is not an error (nothing to do); one that is
// only covered by a wider entry of ours comes back as a *TargetError
// naming that entry, since removing it would unblock more.
func (m *Manager) Unblock(ctx context.Context, subnetOrNACL string, prefixes []netip.Prefix) ([]policy.Block, error) {
	st, err := m.state(ctx, subnetOrNACL, false)
	if err != nil {
		return nil, err
	}
	return m.locked(st.id, func(st *naclState) ([]policy.Block, error) {
		var errs []error
		var nums []int
		var out []policy.Block
		all := m.blocks(st)
		for _, p := range prefixes {
			p = policy.Canonical(p)
			found := false
			for _, b := range all {
				if b.Target == p {
					found = true
					if !slices.Contains(nums, b.RuleNumber) {
						nums = append(nums, b.RuleNumber)
						out = append(out, b)
					}
				}
			}
			if found {
				continue
			}
			if n, ok := m.covering(st, p, nil); ok {
				e, _ := st.entry(n, false)
				errs = append(errs, &TargetError{Target: p, Err: fmt.Errorf("not blocked on its own: covered by %s rule %d for %s; unblock %s to lift it", st.id, n, e.CIDR, e.CIDR)})
			}
		}
		if err := m.removeRules(ctx, st, nums); err != nil {
			errs = append(errs, err)
			// Report only what is gone.
			out = slices.DeleteFunc(out, func(b policy.Block) bool { _, still := st.entry(b.RuleNumber, false); return still })
		}
		return out, errors.Join(errs...)
	})
}

// List returns banshee's VPC blocks in the NACLs of the given subnet or
// NACL ids, or in every NACL of the region banshee manages (one carrying
// a banshee: tag) when none is given. Entries without metadata are listed
// too, their reason saying so.
func (m *Manager) List(ctx context.Context, subnetsOrNACLs ...string) ([]policy.Block, error) {
	sts, err := m.states(ctx, subnetsOrNACLs)
	if err != nil {
		return nil, err
	}
	var out []policy.Block
	for _, st := range sts {
		bs, _ := m.locked(st.id, func(st *naclState) ([]policy.Block, error) { return m.blocks(st), nil })
		out = append(out, bs...)
	}
	return out, nil
}

// states reads the named NACLs (deduplicated), or all of the region that
// banshee manages.
func (m *Manager) states(ctx context.Context, ids []string) ([]naclRef, error) {
	if len(ids) == 0 {
		return m.describeAll(ctx)
	}
	var out []naclRef
	for _, id := range ids {
		st, err := m.state(ctx, id, false)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// SweepResult is what Sweep did.
type SweepResult struct {
	Removed   []policy.Block `json:"removed"`              // expired blocks deleted
	Adopted   []policy.Block `json:"adopted,omitempty"`    // entries found without metadata, now tagged
	StaleTags int            `json:"stale_tags,omitempty"` // metadata without an entry, deleted
	// Vanished are the blocks among StaleTags whose metadata had not
	// expired: someone else deleted their entries (see Vanished).
	Vanished []policy.Block `json:"vanished,omitempty"`
	// Waiting counts entries found without metadata that are not adopted
	// yet: first seen by this sweep, or less than the grace period ago.
	Waiting int `json:"waiting,omitempty"`
}

// DefaultOrphanGrace is how long an entry of the reserved range must be
// seen without metadata, by two sweeps at least that far apart, before a
// sweep adopts it. A writer is between its CreateNetworkAclEntry and its
// CreateTags for well under a second; an entry still untagged after the
// grace period is a writer's leftover, not work in progress.
const DefaultOrphanGrace = 5 * time.Minute

// sweepReadMaxAge bounds how old the read is that Sweep deletes from: an
// older one (a region-wide sweep working through many NACLs) is read
// again first, so Block's reuseMargin covers the time between a sweep's
// read and its deletes.
const sweepReadMaxAge = time.Minute

// Sweep deletes the blocks expired at now from the given NACLs (subnet or
// NACL ids), or from every NACL of the region that banshee manages (one
// carrying a banshee: tag; never anyone else's): one DeleteNetworkAclEntry
// per expired entry, then one DeleteTags per NACL for their metadata and
// for metadata left without an entry. It also reconciles the other way,
// on NACLs banshee manages only: an entry of the reserved range without
// metadata (a writer that failed between its two calls) is recorded on
// first sight (a banshee:seen:N tag, meta.go) and adopted, with an expiry
// of now + nacl.orphan_ttl and a reason saying so, when a sweep at least
// the grace period later finds it unchanged and still without metadata.
// Sightings and adoptions take one CreateTags per NACL; before adopting,
// the NACL is read again and a number that has metadata by then is left
// alone.
func (m *Manager) Sweep(ctx context.Context, now time.Time, subnetsOrNACLs ...string) (SweepResult, error) {
	var res SweepResult
	sts, err := m.states(ctx, subnetsOrNACLs)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, st := range sts {
		_, err := m.locked(st.id, func(st *naclState) ([]policy.Block, error) {
			return nil, m.sweepOne(ctx, st, now, &res)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// orphan is an entry of ours without (valid) metadata, and what Sweep
// makes of it.
type orphan struct {
	n     int
	cidr  netip.Prefix
	tag   uint32 // tagHash of the metadata tag the number carries
	adopt bool   // seen unchanged for the grace period: adopt now
	fresh bool   // no matching sighting: record one
}

// orphans lists the entries of ours without metadata on a NACL banshee
// manages: ingress denies, and egress ones without an ingress entry of
// ours when nacl.egress is set.
func (m *Manager) orphans(st *naclState, now time.Time) []orphan {
	if !st.managed {
		return nil
	}
	var out []orphan
	for _, e := range st.entries {
		if !m.ours(e) {
			continue
		}
		if e.Egress {
			if in, ok := st.entry(e.RuleNumber, false); !m.cfg.Egress || ok && m.ours(in) {
				continue
			}
		}
		if _, ok := st.meta(e.RuleNumber); ok {
			continue
		}
		v, tagged := st.tags[e.RuleNumber]
		o := orphan{n: e.RuleNumber, cidr: e.CIDR, tag: tagHash(v, tagged)}
		s, err := decodeSeen(st.seen[e.RuleNumber])
		switch {
		case err != nil || s.CIDR != e.CIDR || s.Tag != o.tag || s.At.After(now):
			o.fresh = true
		case !now.Before(s.At.Add(m.grace)):
			o.adopt = true
		}
		out = append(out, o)
	}
	return out
}

func (m *Manager) sweepOne(ctx context.Context, st *naclState, now time.Time, res *SweepResult) error {
	if m.now().Sub(st.readAt) > sweepReadMaxAge {
		if err := m.reread(ctx, st); err != nil {
			return err
		}
	}
	// A writer may have tagged an entry since the read: read again before
	// adopting anything, and adopt only what is still without metadata.
	if slices.ContainsFunc(m.orphans(st, now), func(o orphan) bool { return o.adopt }) {
		if err := m.reread(ctx, st); err != nil {
			return err
		}
	}
	adopt := map[int]meta{}
	sights := map[int]seen{}
	room := maxTags - st.nTags // tags the NACL can still take; what does not fit waits for a later sweep
	for _, o := range m.orphans(st, now) {
		_, tagged := st.tags[o.n]
		_, sighted := st.seen[o.n]
		switch {
		case o.adopt && (tagged || room > 0):
			if !tagged {
				room--
			}
			adopt[o.n] = meta{Exp: now.Add(m.orphTTL).UTC().Truncate(time.Second), CIDR: o.cidr,
				Reason: "adopted by sweep: entry had no banshee metadata"}
		case o.fresh && (sighted || room > 0):
			if !sighted {
				room--
			}
			sights[o.n] = seen{At: now.UTC().Truncate(time.Second), CIDR: o.cidr, Tag: o.tag}
			res.Waiting++
		default:
			res.Waiting++
		}
	}
	if len(adopt)+len(sights) > 0 {
		if err := m.writeTags(ctx, st, adopt, sights); err != nil {
			return err
		}
		for n, md := range adopt {
			res.Adopted = append(res.Adopted, policy.Block{Target: md.CIDR, Scope: policy.ScopeVPC, NACLID: st.id, RuleNumber: n, ExpiresAt: md.Exp, Reason: md.Reason})
		}
	}
	var expired []int
	for _, e := range st.entries {
		if !m.ourAt(st, e.RuleNumber) || slices.Contains(expired, e.RuleNumber) {
			continue
		}
		if md, ok := st.meta(e.RuleNumber); ok && md.expired(now) {
			expired = append(expired, e.RuleNumber)
		}
	}
	before := map[int]policy.Block{}
	for _, b := range m.blocks(st) {
		before[b.RuleNumber] = b
	}
	for _, n := range expired {
		if _, ok := before[n]; !ok { // an egress entry whose ingress one is gone
			md, _ := st.meta(n)
			before[n] = policy.Block{Target: md.CIDR, Scope: policy.ScopeVPC, NACLID: st.id, RuleNumber: n,
				ExpiresAt: md.Exp, Reason: md.Reason, Origin: md.Origin, Severity: md.Severity}
		}
	}
	stale := len(m.staleTags(st))
	vanished := m.vanished(st, now)
	err := m.removeRules(ctx, st, expired)
	for _, n := range expired {
		if !m.ourAt(st, n) {
			res.Removed = append(res.Removed, before[n])
		}
	}
	if err == nil {
		res.StaleTags += stale
		res.Vanished = append(res.Vanished, vanished...)
	}
	return err
}
