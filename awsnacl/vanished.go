package awsnacl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// Vanished returns banshee's VPC blocks whose deny entry is gone from the
// given NACLs (subnet or NACL ids), or from every NACL banshee manages when
// none is given, although their metadata says they have not expired at
// now: someone else deleted them. The usual cause is a Terraform apply of
// an aws_default_network_acl or an aws_network_acl with inline rules,
// which replaces the ACL's entries with its own list. It only reads; the
// next Sweep deletes the metadata left behind and reports the same blocks
// in SweepResult.Vanished.
//
// banshee's own Unblock and Sweep delete an entry before its metadata, so
// a read between their two calls sees the same picture: a block reported
// here once may be one banshee was removing at that moment; one reported
// by two reads a few seconds apart was not.
func (m *Manager) Vanished(ctx context.Context, now time.Time, subnetsOrNACLs ...string) ([]policy.Block, error) {
	sts, err := m.states(ctx, subnetsOrNACLs)
	if err != nil {
		return nil, err
	}
	var out []policy.Block
	var errs []error
	for _, st := range sts {
		bs, err := m.locked(st.id, func(st *naclState) ([]policy.Block, error) { return m.vanished(st, now), nil })
		out = append(out, bs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// vanished lists the unexpired metadata of st that has no entry of ours,
// by rule number (its number may hold someone else's entry now).
func (m *Manager) vanished(st *naclState, now time.Time) []policy.Block {
	var out []policy.Block
	nums := m.staleTags(st)
	slices.Sort(nums)
	for _, n := range nums {
		md, err := decodeMeta(st.tags[n])
		if err != nil || md.expired(now) {
			continue
		}
		out = append(out, policy.Block{Target: md.CIDR, Scope: policy.ScopeVPC, NACLID: st.id, RuleNumber: n,
			ExpiresAt: md.Exp, Reason: md.Reason, Origin: md.Origin, Severity: md.Severity})
	}
	return out
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	// Restored are the vanished blocks denied again, at the rule number
	// they hold now.
	Restored []policy.Block `json:"restored,omitempty"`
	// NotRestored are the vanished blocks left as they are, each with why.
	NotRestored []NotRestored `json:"not_restored,omitempty"`
}

// NotRestored is a vanished block Restore did not re-create.
type NotRestored struct {
	policy.Block
	Why string `json:"why"`
}

// restoreSettle is how long Restore waits between the two reads that must
// both find a block vanished: banshee's own Unblock and Sweep delete an
// entry before its metadata, well within it, so a block one of them was
// removing at the first read has no metadata left at the second.
const restoreSettle = 2 * time.Second

// Restore re-creates the vanished blocks (see Vanished) of the given NACLs
// (subnet or NACL ids; none: every NACL banshee manages) from their
// metadata: the deny of the recorded CIDR at its old rule number when that
// number is free, else at a free number of the reserved range, always
// within the quota (the same window rule as Block) and never where a
// lower allow rule would bypass it. The entry is created first, then the
// metadata written to its number in one CreateTags per NACL, then the old
// number's tag deleted when the block moved; when the metadata cannot be
// written, the new entries are removed again. check (nil: none) may refuse
// a block, such as one that overlaps a protected network: it is then
// reported, not re-created. A block must be vanished in two reads
// restoreSettle apart with unchanged metadata, and expire later than
// reuseMargin from now (else a sweep may be deleting it); a block whose
// CIDR an entry of ours already denies is not re-created either.
func (m *Manager) Restore(ctx context.Context, now time.Time, check func(policy.Block) error, subnetsOrNACLs ...string) (RestoreResult, error) {
	var res RestoreResult
	sts, err := m.states(ctx, subnetsOrNACLs)
	if err != nil {
		return res, err
	}
	first := map[string]map[int]string{} // NACL → rule → tag value at the first read
	for _, st := range sts {
		_, err := m.locked(st.id, func(st *naclState) ([]policy.Block, error) {
			for _, b := range m.vanished(st, now) {
				if first[st.id] == nil {
					first[st.id] = map[int]string{}
				}
				first[st.id][b.RuleNumber] = st.tags[b.RuleNumber]
			}
			return nil, nil
		})
		if err != nil {
			return res, err
		}
	}
	if len(first) == 0 {
		return res, nil
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(restoreSettle):
	}
	var errs []error
	for _, st := range sts {
		if first[st.id] == nil {
			continue
		}
		_, err := m.locked(st.id, func(st *naclState) ([]policy.Block, error) {
			if err := m.reread(ctx, st); err != nil {
				return nil, err
			}
			return nil, m.restoreOne(ctx, st, now, first[st.id], check, &res)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// restoreOne is Restore on one NACL, under its lock, on a fresh read:
// seen holds the tag values of the blocks found vanished by the first read.
func (m *Manager) restoreOne(ctx context.Context, st *naclState, now time.Time, seen map[int]string, check func(policy.Block) error, res *RestoreResult) error {
	pending := map[int]meta{}
	var created []int
	moved := map[int]int{} // old number → new
	var done []policy.Block
	for _, b := range m.vanished(st, now) {
		if v, ok := seen[b.RuleNumber]; !ok || v != st.tags[b.RuleNumber] {
			continue // vanished only now, or rewritten meanwhile: the next run decides
		}
		md, _ := decodeMeta(st.tags[b.RuleNumber])
		skip := func(format string, args ...any) {
			res.NotRestored = append(res.NotRestored, NotRestored{Block: b, Why: fmt.Sprintf(format, args...)})
		}
		if md.expired(now.Add(reuseMargin)) {
			skip("expires at %s, within %s: a sweep may be removing it", md.Exp.Format(time.RFC3339), reuseMargin)
			continue
		}
		if check != nil {
			if err := check(b); err != nil {
				skip("%v", err)
				continue
			}
		}
		if n, ok := m.covering(st, md.CIDR, func(e policy.NACLEntry) bool { return !m.expiring(st, e.RuleNumber, now) }); ok {
			e, _ := st.entry(n, false)
			skip("already denied by %s rule %d (%s)", st.id, n, e.CIDR)
			continue
		}
		// A number other than its own takes one more tag until the old
		// one is deleted.
		if st.nTags+newTags(st, pending)+1 > maxTags {
			if cands, err := m.candidates(st, md.CIDR, nil, policy.Port{}); err != nil || !slices.Contains(cands, b.RuleNumber) {
				skip("%s has %d tags, the most AWS allows on one resource, and rule %d is not free", st.id, maxTags, b.RuleNumber)
				continue
			}
		}
		n, adopted, err := m.create(ctx, st, md.CIDR, b.RuleNumber, policy.Port{}, now)
		if err != nil {
			skip("%v", err)
			continue
		}
		if adopted {
			// An untagged deny of the CIDR is there already (a racing
			// writer's): it gets the metadata, of its own CIDR.
			e, _ := st.entry(n, false)
			md.CIDR = e.CIDR
		} else {
			created = append(created, n)
		}
		pending[n] = md
		if n != b.RuleNumber {
			moved[b.RuleNumber] = n
		}
		b.RuleNumber = n
		done = append(done, b)
	}
	if len(pending) == 0 {
		return nil
	}
	if err := m.writeTags(ctx, st, pending, nil); err != nil {
		// Without metadata the new entries must not stay: roll back.
		rb := m.rollback(ctx, st, created)
		for _, b := range done {
			res.NotRestored = append(res.NotRestored, NotRestored{Block: b, Why: "metadata could not be written; the entry was removed again"})
		}
		return errors.Join(err, rb)
	}
	res.Restored = append(res.Restored, done...)
	// The old numbers' tags, unless a restored block now holds the number.
	var old []int
	for from := range moved {
		if _, taken := pending[from]; !taken {
			old = append(old, from)
		}
	}
	if err := m.dropTags(ctx, st, old, nil); err != nil {
		return fmt.Errorf("deleting the metadata of re-created blocks at their old numbers: %w", err)
	}
	return nil
}
