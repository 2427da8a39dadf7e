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
			if n, ok := m.covering(st, p); ok {
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
// NACL ids, or in every NACL of the region when none is given. Entries
// without metadata are listed too, their reason saying so.
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

// states reads the named NACLs (deduplicated), or all of the region.
func (m *Manager) states(ctx context.Context, ids []string) ([]*naclState, error) {
	if len(ids) == 0 {
		return m.describeAll(ctx)
	}
	var out []*naclState
	for _, id := range ids {
		st, err := m.state(ctx, id, false)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(out, func(x *naclState) bool { return x.id == st.id }) {
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
}

// Sweep deletes the blocks expired at now from the given NACLs (subnet or
// NACL ids), or from every NACL of the region: one DeleteNetworkAclEntry
// per expired entry, then one DeleteTags per NACL for their metadata and
// for metadata left without an entry. It also reconciles the other way:
// an entry of the reserved range without metadata (a writer that failed
// between its two calls) is adopted with an expiry of now + nacl.orphan_ttl
// and a reason saying so, in one CreateTags per NACL.
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

func (m *Manager) sweepOne(ctx context.Context, st *naclState, now time.Time, res *SweepResult) error {
	var expired []int
	orphans := map[int]meta{}
	for _, e := range st.entries {
		if !m.ours(e) {
			continue
		}
		md, ok := st.meta(e.RuleNumber)
		switch {
		case !ok:
			if _, seen := orphans[e.RuleNumber]; !seen || !e.Egress {
				orphans[e.RuleNumber] = meta{Exp: now.Add(m.orphTTL).UTC().Truncate(time.Second), CIDR: e.CIDR,
					Reason: "adopted by sweep: entry had no banshee metadata"}
			}
		case md.expired(now) && !e.Egress:
			expired = append(expired, e.RuleNumber)
		}
	}
	if len(orphans) > 0 {
		if err := m.writeTags(ctx, st, orphans); err != nil {
			return err
		}
		for n, md := range orphans {
			res.Adopted = append(res.Adopted, policy.Block{Target: md.CIDR, Scope: policy.ScopeVPC, NACLID: st.id, RuleNumber: n, ExpiresAt: md.Exp, Reason: md.Reason})
		}
	}
	before := map[int]policy.Block{}
	for _, b := range m.blocks(st) {
		before[b.RuleNumber] = b
	}
	stale := len(m.staleTags(st))
	err := m.removeRules(ctx, st, expired)
	for _, n := range expired {
		if !st.used(n) {
			res.Removed = append(res.Removed, before[n])
		}
	}
	if err == nil {
		res.StaleTags += stale
	}
	return err
}
