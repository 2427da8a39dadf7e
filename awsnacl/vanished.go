package awsnacl

import (
	"context"
	"errors"
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
// by rule number.
func (m *Manager) vanished(st *naclState, now time.Time) []policy.Block {
	var out []policy.Block
	nums := m.staleTags(st)
	slices.Sort(nums)
	for _, n := range nums {
		md, ok := st.meta(n)
		if !ok || md.expired(now) {
			continue
		}
		out = append(out, policy.Block{Target: md.CIDR, Scope: policy.ScopeVPC, NACLID: st.id, RuleNumber: n,
			ExpiresAt: md.Exp, Reason: md.Reason, Origin: md.Origin, Severity: md.Severity})
	}
	return out
}
