package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
)

// Drift kinds: how what is differs from what should be.
const (
	DriftMissing    = "missing"     // recorded, but not in the kernel set (or the NACL): not dropped
	DriftUnrecorded = "unrecorded"  // in force, but not recorded (not restored at boot)
	DriftUnhooked   = "not-hooked"  // in the set, but the chain is not jumped to: not dropped
	DriftExpired    = "expired"     // past its expiry, still in the network ACL (sweep pending)
	DriftNoMetadata = "no-metadata" // a deny in banshee's range without banshee's metadata
)

// Listed is one block as list shows it: what is in force, and the drift
// from what is recorded.
type Listed struct {
	policy.Block
	Drift string `json:"drift,omitempty"`
}

// ListRequest reads blocks.
type ListRequest struct {
	Where Where
	NACLs []string // subnet or network ACL ids; none: every one banshee manages
}

// ListResult is what list and status print.
type ListResult struct {
	Blocks []Listed `json:"blocks"`
	// Problems are drift that is not one block's: a hook that is missing.
	Problems []string `json:"problems,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// Drifted reports whether anything differs from what is recorded.
func (r *ListResult) Drifted() bool {
	if len(r.Problems) > 0 {
		return true
	}
	for _, b := range r.Blocks {
		if b.Drift != "" {
			return true
		}
	}
	return false
}

// List reads both layers as they are and marks drift from what is recorded.
func (e *Engine) List(ctx context.Context, req ListRequest) (*ListResult, error) {
	if req.Where == "" {
		req.Where = Everywhere
	}
	res := &ListResult{Blocks: []Listed{}}
	now := e.d.Now()
	if req.Where != VPCOnly && (req.Where == HostOnly || len(req.NACLs) == 0) {
		if err := e.listHost(ctx, now, res); err != nil {
			return nil, err
		}
	}
	if req.Where != HostOnly {
		m, err := e.edgeMgr(ctx)
		if err == nil {
			var bs []policy.Block
			bs, err = m.List(ctx, req.NACLs...)
			for _, b := range bs {
				l := Listed{Block: b}
				switch {
				case b.Reason == awsnacl.NoMetadataReason:
					l.Drift = DriftNoMetadata
				case !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now):
					l.Drift = DriftExpired
				}
				res.Blocks = append(res.Blocks, l)
			}
		}
		if err == nil {
			// Tagged, unexpired, but the entry is gone: someone else
			// (a Terraform apply of the ACL, say) removed it.
			var gone []policy.Block
			gone, err = m.Vanished(ctx, now, req.NACLs...)
			for _, b := range gone {
				res.Blocks = append(res.Blocks, Listed{Block: b, Drift: DriftMissing})
			}
		}
		switch {
		case err != nil && req.Where == Everywhere && len(req.NACLs) == 0 && IsUsage(err):
			res.Notes = append(res.Notes, "network ACLs not listed: "+err.Error())
		case err != nil:
			return nil, err
		}
	}
	return res, nil
}

// hostBlocks turns kernel entries into blocks of this host.
func hostBlocks(es []hostfw.Entry) []policy.Block {
	out := make([]policy.Block, 0, len(es))
	for _, e := range es {
		out = append(out, policy.Block{Target: e.Prefix, Scope: policy.ScopeHost, ExpiresAt: e.ExpiresAt, Reason: e.Reason, Origin: policy.Origin(e.Origin)})
	}
	return out
}

// settle is how close to its expiry a recorded block may be missing from
// the kernel without counting as drift: the kernel expired it first.
const settle = 2 * time.Second

func (e *Engine) listHost(ctx context.Context, now time.Time, res *ListResult) error {
	fw, err := e.hostFW(ctx)
	if err != nil {
		return err
	}
	es, err := fw.List(ctx)
	if err != nil {
		return err
	}
	rec, rerr := fw.Recorded()
	if rerr != nil && !errors.Is(rerr, hostfw.ErrNoStateDir) {
		res.Problems = append(res.Problems, "the journal cannot be read: "+rerr.Error())
	}
	st, err := fw.Status(ctx)
	if err != nil {
		return err
	}
	unhooked := map[string]string{}
	for _, f := range st.Families {
		if f.Entries > 0 && (len(f.Hooks) == 0 || !f.Chain) {
			msg := fmt.Sprintf("%s: chain %s is not jumped to from INPUT: the %d blocks in set %s drop nothing (banshee reconcile repairs it)", f.Family, "of banshee", f.Entries, f.Set)
			if !f.Chain {
				msg = fmt.Sprintf("%s: banshee's chain is missing: the %d blocks in set %s drop nothing (banshee reconcile repairs it)", f.Family, f.Entries, f.Set)
			}
			unhooked[f.Family] = msg
			res.Problems = append(res.Problems, msg)
		}
	}
	inKernel := map[netip.Prefix]bool{}
	for _, b := range hostBlocks(es) {
		inKernel[b.Target.Masked()] = true
		l := Listed{Block: b}
		if _, ok := unhooked[hostfw.FamilyOf(b.Target).String()]; ok {
			l.Drift = DriftUnhooked
		}
		res.Blocks = append(res.Blocks, l)
	}
	if rerr != nil {
		return nil
	}
	recorded := map[netip.Prefix]bool{}
	for _, r := range rec {
		recorded[r.Prefix.Masked()] = true
		if inKernel[r.Prefix.Masked()] || (!r.ExpiresAt.IsZero() && r.ExpiresAt.Before(now.Add(settle))) {
			continue
		}
		b := hostBlocks([]hostfw.Entry{r})[0]
		res.Blocks = append(res.Blocks, Listed{Block: b, Drift: DriftMissing})
	}
	for i := range res.Blocks {
		l := &res.Blocks[i]
		if l.Scope == policy.ScopeHost && l.Drift != DriftMissing && !recorded[l.Target.Masked()] {
			l.Drift = DriftUnrecorded
		}
	}
	return nil
}

// ReconcileResult says what reconcile repaired.
type ReconcileResult struct {
	// Host: entries put back from the journal, and kernel entries adopted
	// into it; Hooks says whether chain and jumps were re-created.
	Restored int                  `json:"restored"`
	Adopted  int                  `json:"adopted"`
	Expired  int                  `json:"expired"`
	Sweep    *awsnacl.SweepResult `json:"sweep,omitempty"`
	// Recreated are the network ACL denies someone else deleted before
	// their expiry that reconcile denied again from their metadata;
	// NotRecreated those it left, with why (the sweep then deletes their
	// metadata).
	Recreated    []policy.Block        `json:"recreated,omitempty"`
	NotRecreated []awsnacl.NotRestored `json:"not_recreated,omitempty"`
	Notes        []string              `json:"notes,omitempty"`
}

// Reconcile repairs drift, level-triggered: on the host it re-creates the
// chain, jumps and sets, re-adds recorded blocks the kernel lost and
// records blocks found in banshee's sets but not in the journal; at the
// edge it re-creates the unexpired denies someone else deleted, from their
// metadata (awsnacl.Manager.Restore: never over the quota, never one that
// overlaps a protected network, RestoreCheck), then sweeps (expired denies
// removed, metadata left without an entry deleted, entries without
// metadata adopted after the grace period).
func (e *Engine) Reconcile(ctx context.Context, where Where, nacls []string) (*ReconcileResult, error) {
	if where == "" {
		where = Everywhere
	}
	res := &ReconcileResult{}
	if where != VPCOnly {
		if err := e.reconcileHost(ctx, res); err != nil {
			return res, err
		}
	}
	if where != HostOnly {
		m, err := e.edgeMgr(ctx)
		if err == nil {
			// Re-create first: the sweep deletes the metadata of what
			// vanished.
			rerr := e.restoreVPC(ctx, m, nacls, res)
			var sr awsnacl.SweepResult
			sr, err = m.Sweep(ctx, e.d.Now().UTC(), nacls...)
			res.Sweep = &sr
			err = errors.Join(rerr, err)
		}
		switch {
		case err != nil && where == Everywhere && len(nacls) == 0 && IsUsage(err):
			res.Notes = append(res.Notes, "network ACLs not reconciled: "+err.Error())
		case err != nil:
			return res, err
		}
	}
	return res, nil
}

// restoreVPC re-creates the vanished denies of nacls (none: every NACL
// banshee manages), refusing those that overlap a protected network.
func (e *Engine) restoreVPC(ctx context.Context, m Edge, nacls []string, res *ReconcileResult) error {
	protected := e.RestoreCheck()
	rr, err := m.Restore(ctx, e.d.Now().UTC(), func(b policy.Block) error { return protected(b.Target) }, nacls...)
	res.Recreated = append(res.Recreated, rr.Restored...)
	res.NotRecreated = append(res.NotRecreated, rr.NotRestored...)
	if err != nil {
		return fmt.Errorf("re-creating network ACL denies deleted before their expiry: %w", err)
	}
	return nil
}

func (e *Engine) reconcileHost(ctx context.Context, res *ReconcileResult) error {
	fw, err := e.hostFW(ctx)
	if err != nil {
		return err
	}
	// Kernel entries the journal does not have are adopted first, so the
	// restore below cannot lose them.
	es, err := fw.List(ctx)
	if err != nil {
		return err
	}
	rec, err := fw.Recorded()
	if err != nil && !errors.Is(err, hostfw.ErrNoStateDir) {
		return fmt.Errorf("reading the journal: %w", err)
	}
	recorded := map[netip.Prefix]bool{}
	for _, r := range rec {
		recorded[r.Prefix.Masked()] = true
	}
	now := e.d.Now()
	var adopt []hostfw.Entry
	for _, x := range es {
		if recorded[x.Prefix.Masked()] {
			continue
		}
		if !x.ExpiresAt.IsZero() {
			x.TTL = x.ExpiresAt.Sub(now).Round(time.Second)
			if x.TTL < time.Second {
				continue
			}
		}
		if x.Reason == "" {
			x.Reason = "adopted by reconcile"
		}
		adopt = append(adopt, x)
	}
	if len(adopt) > 0 {
		if _, err := fw.Block(ctx, adopt); err != nil {
			return fmt.Errorf("recording %d block(s) found only in the kernel: %w", len(adopt), err)
		}
		res.Adopted = len(adopt)
	}
	rr, err := fw.Restore(ctx, e.RestoreCheck())
	res.Restored, res.Expired = rr.Restored, rr.Expired
	for _, r := range rr.Refused {
		res.Notes = append(res.Notes, "not restored: "+r.Why)
	}
	for _, d := range rr.Damaged {
		res.Notes = append(res.Notes, fmt.Sprintf("skipped %s", d))
	}
	if err != nil {
		return err
	}
	return nil
}

// StatusLine is a one-line summary of drift, for status.
func (r *ListResult) StatusLine() string {
	counts := map[string]int{}
	for _, b := range r.Blocks {
		if b.Drift != "" {
			counts[b.Drift]++
		}
	}
	if len(counts) == 0 && len(r.Problems) == 0 {
		return "no drift: every recorded block is in force"
	}
	var parts []string
	for _, k := range []string{DriftMissing, DriftUnhooked, DriftUnrecorded, DriftExpired, DriftNoMetadata} {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	parts = append(parts, r.Problems...)
	return "drift: " + strings.Join(parts, "; ") + " (banshee reconcile repairs it)"
}
