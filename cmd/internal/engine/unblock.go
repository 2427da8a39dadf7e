package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/banshee-project/banshee/policy"
)

// Where names the layers a request reads or changes.
type Where string

// Layers of a request.
const (
	Everywhere Where = "all"  // this host and the network ACLs
	HostOnly   Where = "host" // this host
	VPCOnly    Where = "vpc"  // the network ACLs
)

// ParseWhere parses all, host or vpc ("" is all).
func ParseWhere(s string) (Where, error) {
	switch Where(s) {
	case "", Everywhere:
		return Everywhere, nil
	case HostOnly, VPCOnly:
		return Where(s), nil
	}
	return "", &policy.InputError{Value: s, Msg: "unknown scope (want all, host or vpc)"}
}

// UnblockRequest lifts blocks.
type UnblockRequest struct {
	Targets []netip.Prefix
	Where   Where
	// NACLs are subnet or network ACL ids to look in; none means every
	// network ACL banshee manages (as list and sweep read them).
	NACLs []string
}

// Unblocked is what unblock did for one target.
type Unblocked struct {
	Target  netip.Prefix `json:"target"`
	Scope   string       `json:"scope"` // where it was removed: host, vpc, host+vpc, or none
	Removed bool         `json:"removed"`
	Where   []string     `json:"where,omitempty"` // "this host", "acl-… rule N"
	Message string       `json:"message"`
	// CoveredBy are blocks that still cover the target (a wider prefix).
	CoveredBy []policy.Block `json:"covered_by,omitempty"`
}

// UnblockResult is the answer to an unblock.
type UnblockResult struct {
	Results []Unblocked `json:"results"`
	Notes   []string    `json:"notes,omitempty"`
	// Lifted are the network ACL blocks removed (the Lambda returns them).
	Lifted []policy.Block `json:"-"`
}

// Unblock removes each target wherever banshee blocked it (this host and
// every network ACL whose metadata records it), with no scope needed, and
// names any remaining block that still covers it.
func (e *Engine) Unblock(ctx context.Context, req UnblockRequest) (*UnblockResult, error) {
	if req.Where == "" {
		req.Where = Everywhere
	}
	res := &UnblockResult{}
	where := map[netip.Prefix][]string{}
	var remaining []policy.Block
	var errs []error
	if req.Where != VPCOnly {
		fw, err := e.hostFW(ctx)
		if err != nil {
			return nil, err
		}
		absent, err := fw.Unblock(ctx, req.Targets)
		if err != nil {
			return nil, err
		}
		for _, p := range req.Targets {
			if !slices.Contains(absent, p) {
				where[p] = append(where[p], "this host")
			}
		}
		if es, err := fw.List(ctx); err == nil {
			remaining = append(remaining, hostBlocks(es)...)
		}
	}
	if req.Where != HostOnly {
		bs, err := e.unblockVPC(ctx, req, where, res)
		switch {
		case err != nil && req.Where == Everywhere && IsUsage(err):
			res.Notes = append(res.Notes, "network ACLs not checked: "+err.Error())
		case err != nil:
			errs = append(errs, err)
		}
		remaining = append(remaining, bs...)
	}
	for _, p := range req.Targets {
		u := Unblocked{Target: p, Where: where[p], Scope: "none"}
		u.Removed = len(u.Where) > 0
		if u.Removed {
			u.Scope = scopeOf(u.Where)
			u.Message = "unblocked (" + strings.Join(u.Where, ", ") + ")"
		} else {
			u.Message = "was not blocked by banshee: nothing to do"
		}
		for _, b := range remaining {
			if b.Target != p && covers(b.Target, p) {
				u.CoveredBy = append(u.CoveredBy, b)
			}
		}
		if len(u.CoveredBy) > 0 {
			var names []string
			for _, b := range u.CoveredBy {
				names = append(names, fmt.Sprintf("%s (%s)", Show(b.Target), blockWhere(b)))
			}
			u.Message += fmt.Sprintf("; still dropped: covered by %s; lift it with banshee unblock %s", strings.Join(names, ", "), Show(u.CoveredBy[0].Target))
		}
		res.Results = append(res.Results, u)
	}
	return res, errors.Join(errs...)
}

func scopeOf(where []string) string {
	host := slices.Contains(where, "this host")
	switch {
	case host && len(where) > 1:
		return "host+vpc"
	case host:
		return "host"
	}
	return "vpc"
}

// blockWhere is where a block is enforced, for messages and tables.
func blockWhere(b policy.Block) string {
	switch {
	case b.NACLID != "":
		return fmt.Sprintf("%s rule %d", b.NACLID, b.RuleNumber)
	case b.InstanceID != "":
		return b.InstanceID
	}
	return "this host"
}

// unblockVPC removes the targets from every network ACL that records them
// and returns the VPC blocks left.
func (e *Engine) unblockVPC(ctx context.Context, req UnblockRequest, where map[netip.Prefix][]string, res *UnblockResult) ([]policy.Block, error) {
	m, err := e.edgeMgr(ctx)
	if err != nil {
		return nil, err
	}
	bs, err := m.List(ctx, req.NACLs...)
	if err != nil {
		return nil, err
	}
	want := map[netip.Prefix]bool{}
	for _, p := range req.Targets {
		want[p.Masked()] = true
	}
	byNACL := map[string][]netip.Prefix{}
	var order []string
	var left []policy.Block
	for _, b := range bs {
		if !want[b.Target.Masked()] {
			left = append(left, b)
			continue
		}
		if _, ok := byNACL[b.NACLID]; !ok {
			order = append(order, b.NACLID)
		}
		byNACL[b.NACLID] = append(byNACL[b.NACLID], b.Target)
	}
	var errs []error
	for _, id := range order {
		removed, err := m.Unblock(ctx, id, byNACL[id])
		res.Lifted = append(res.Lifted, removed...)
		for _, b := range removed {
			for _, p := range req.Targets {
				if p.Masked() == b.Target.Masked() {
					where[p] = append(where[p], fmt.Sprintf("%s rule %d", b.NACLID, b.RuleNumber))
				}
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return left, errors.Join(errs...)
}
