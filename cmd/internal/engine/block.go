package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
)

// BlockRequest is a block (or, with Enforce off, a plan).
type BlockRequest struct {
	Attack policy.Attack
	// Enforce off is plan: the same decisions, nothing changes.
	Enforce bool
	// SkipRefused blocks the rest when some targets are refused; the
	// default refuses the whole request.
	SkipRefused bool
	// Replace makes the new TTL and reason exact (no repeat-offender
	// doubling either); by default a re-block never shortens a block nor
	// drops its reason.
	Replace bool
	// StrictPort refuses (usage) a host block of an attack on one port:
	// host blocks drop every port of the source. The CLI sets it, where a
	// --port flag could otherwise look like a narrower block than it is.
	StrictPort bool
	// Snapshot, when set, is the world to decide against instead of
	// reading EC2 (plan --snapshot). The host's protected networks and the
	// callers are added to it.
	Snapshot *policy.Snapshot
	// Known is what the caller knows that EC2 does not show (watch: its
	// host blocks, past offences and protected networks); it is added to
	// the world read.
	Known *policy.Snapshot
	// LeaveHost returns host decisions (and the fallback of VPC blocks
	// that failed) without enforcing them: the caller does (watch batches
	// its host blocks).
	LeaveHost bool
}

// Result is the answer to a block or plan: every door prints it.
type Result struct {
	Decisions []policy.Decision `json:"decisions"`
	Added     int               `json:"added"`
	Refreshed int               `json:"refreshed"`
	// AddedOrRefreshed counts host blocks of a bulk list that went into a
	// set too large to list first: new or refreshed, not told apart.
	AddedOrRefreshed int `json:"added_or_refreshed,omitempty"`
	// NotBlocked lists targets decided for the NACL that found no room
	// there at write time and could not fall back to this host.
	NotBlocked []NotBlocked `json:"not_blocked,omitempty"`
	// Refused lists the targets the policy refused.
	Refused []netip.Prefix `json:"refused,omitempty"`
	// Notes are facts about the outcome an operator should know (how VPC
	// blocks expire, say).
	Notes []string `json:"notes,omitempty"`
	// Planned is true for a plan (nothing was changed).
	Planned bool `json:"planned,omitempty"`
}

// vpcExpiryNote says how a VPC block goes away at its expiry.
const vpcExpiryNote = "network ACL denies are removed at expiry by whichever runs first: banshee watch, banshee reconcile or banshee sweep on a host, or the Lambda function's schedule; if none of them runs, run `banshee sweep` (from cron, say)"

// Block decides the attack and, with Enforce, enforces it: VPC blocks
// through the edge, falling back to this host when the NACL has no room,
// host blocks here. It returns the result and an error that wraps
// ErrRefused (exit 3) when the policy refused targets (and nothing was
// blocked), a *UsageError for bad input (exit 2), or a runtime failure.
func (e *Engine) Block(ctx context.Context, req BlockRequest) (*Result, error) {
	atk := req.Attack
	var snap policy.Snapshot
	var vpc *vpcSide
	if req.Snapshot != nil {
		snap = *req.Snapshot
		if snap.Now.IsZero() {
			snap.Now = e.d.Now().UTC()
		}
		local := e.snapshot()
		snap.Callers = append(snap.Callers, local.Callers...)
		snap.Protected = append(snap.Protected, local.Protected...)
	} else {
		snap = e.snapshot()
		var err error
		if vpc, err = e.prepareVPC(ctx, &atk, &snap); err != nil {
			return nil, err
		}
	}
	if e.d.Offences != nil && !req.Replace { // --replace: exactly the TTL asked for
		past, err := e.d.Offences.Load()
		if err != nil {
			return nil, err
		}
		snap.Offences = append(snap.Offences, past...)
	}
	if k := req.Known; k != nil {
		snap.Blocks = append(snap.Blocks, k.Blocks...)
		snap.Offences = append(snap.Offences, k.Offences...)
		snap.Callers = append(snap.Callers, k.Callers...)
		snap.Protected = append(snap.Protected, k.Protected...)
	}
	ds := e.pol.Decide(atk, snap)
	res := &Result{Decisions: ds, Planned: !req.Enforce}
	for _, d := range ds {
		if d.Action == policy.ActionRefuse {
			res.Refused = append(res.Refused, d.Target)
		}
	}
	if len(res.Refused) > 0 && !req.SkipRefused {
		return res, refusal(ds, req.Enforce)
	}
	vpc.onThisHost(ctx, ds)
	if err := e.checkHost(ds, atk, req.StrictPort); err != nil {
		return res, err
	}
	reason := func(netip.Prefix) string { return atk.Reason }
	e.extendHost(ctx, ds, reason, req.Replace)
	if !req.Enforce {
		return res, e.outcome(res)
	}
	bs, noRoom, vpcErr := vpc.block(ctx, ds, atk)
	if req.LeaveHost {
		if vpcErr != nil {
			failedToHost(ds, bs, noRoom, vpcErr)
		}
		res.NotBlocked = vpc.fallBack(ctx, ds, atk, noRoom)
		return res, vpcErr
	}
	if vpcErr != nil && len(bs) == 0 {
		return res, vpcErr // nothing changed
	}
	if len(bs) > 0 {
		res.Notes = append(res.Notes, vpcExpiryNote)
	}
	res.NotBlocked = vpc.fallBack(ctx, ds, atk, noRoom)
	if err := e.blockHere(ctx, res, reason, string(atk.Origin)); err != nil {
		return res, errors.Join(vpcErr, err)
	}
	if err := e.recordOffences(res, snap.Now); err != nil {
		return res, errors.Join(vpcErr, err)
	}
	if vpcErr != nil {
		return res, vpcErr
	}
	if n := len(res.NotBlocked); n > 0 {
		nb := res.NotBlocked[0]
		return res, fmt.Errorf("%d of %d target(s) not blocked: %s: %s", n, len(ds), Show(nb.Target), nb.Reason)
	}
	return res, e.outcome(res)
}

// maxOffenceBatch is the largest request whose blocks are recorded as
// offences: a bulk threat list is not an attack seen repeating, and its
// size would make every later block read a large record.
const maxOffenceBatch = 1000

// recordOffences notes every block made as an offence of its source.
func (e *Engine) recordOffences(res *Result, now time.Time) error {
	if e.d.Offences == nil || len(res.Decisions) > maxOffenceBatch {
		return nil
	}
	var add []policy.Offence
	for _, d := range res.Decisions {
		if d.Action == policy.ActionBlock {
			add = append(add, policy.Offence{Source: d.Target, At: now})
		}
	}
	if err := e.d.Offences.Add(add, now.Add(-time.Duration(e.d.Config.Policy.RepeatWindow))); err != nil {
		return fmt.Errorf("blocked, but recording the offences for repeat-offender escalation failed: %w", err)
	}
	return nil
}

// failedToHost turns the VPC decisions that a failed write left unapplied
// (not in bs, not found without room) into host blocks.
func failedToHost(ds []policy.Decision, bs []policy.Block, noRoom map[netip.Prefix]error, err error) {
	for i := range ds {
		d := &ds[i]
		if !isVPCBlock(*d) || noRoom[d.Target] != nil || slices.ContainsFunc(bs, func(b policy.Block) bool { return covers(b.Target, d.Target) }) {
			continue
		}
		ToHost(d, fmt.Sprintf("the VPC block failed (%v)", err))
	}
}

// World resolves the attack's targets through EC2 and reads the world a
// decision about them would see (security groups, VPC CIDRs, network ACLs
// and their blocks), changing nothing.
func (e *Engine) World(ctx context.Context, atk policy.Attack) (policy.Attack, policy.Snapshot, error) {
	snap := e.snapshot()
	_, err := e.prepareVPC(ctx, &atk, &snap)
	return atk, snap, err
}

// outcome is the error of a request that got through: ErrRefused when
// targets were refused and nothing else was (or would be) blocked.
func (e *Engine) outcome(res *Result) error {
	if len(res.Refused) == 0 {
		return nil
	}
	for _, d := range res.Decisions {
		if d.Action == policy.ActionBlock {
			return nil // --skip-refused: the rest is blocked
		}
	}
	return refusal(res.Decisions, !res.Planned)
}

// refusal is the error of a request whose targets the policy refused.
// A block names each refused target with its reasons, on one line (the
// CLI prints it instead of the decisions, so a refusal is printed once); a
// plan, whose decisions are its output, only counts.
func refusal(ds []policy.Decision, enforce bool) error {
	var refused []policy.Decision
	for _, d := range ds {
		if d.Action == policy.ActionRefuse {
			refused = append(refused, d)
		}
	}
	if !enforce {
		return fmt.Errorf("%d of %d target(s) would be refused: %w", len(refused), len(ds), ErrRefused)
	}
	const named = 5
	var parts []string
	for i, d := range refused {
		if i == named {
			parts = append(parts, fmt.Sprintf("%d more refused target(s) (see -o json)", len(refused)-named))
			break
		}
		why := strings.TrimPrefix(strings.Join(d.Reasons, "; "), "refused: ")
		parts = append(parts, fmt.Sprintf("%s: %s", Show(d.Target), why))
	}
	return fmt.Errorf("%s (%d of %d target(s)): %w", strings.Join(parts, "; "), len(refused), len(ds), ErrRefused)
}

// checkHost finds host blocks this request cannot make, before anything
// changes: blocks on other instances (those go through SSM), and with
// strict a host block of an attack on one port.
func (e *Engine) checkHost(ds []policy.Decision, atk policy.Attack, strict bool) error {
	for _, d := range ds {
		if d.Action != policy.ActionBlock || d.Scope != policy.ScopeHost {
			continue
		}
		if len(d.Instances) > 0 {
			return Usagef("host block of %s on %s: blocking on other instances goes through SSM, which this command does not do; run banshee on the instance, or use --scope vpc (nothing changed)", Show(d.Target), strings.Join(d.Instances, ", "))
		}
		if strict && atk.Port.Proto != "" {
			return Usagef("--port %s: a host block drops every port and protocol of %s, not only %s; leave out --port for a host block, or use --scope vpc for a per-port network ACL deny (nothing changed)", atk.Port, Show(d.Target), atk.Port)
		}
	}
	return nil
}

// maxReasons bounds how many earlier reasons a re-block keeps.
const maxReasons = 3

// mergeReason puts the new reason first and keeps earlier ones (bounded,
// without repeats), as a re-block never drops a reason.
func mergeReason(newer, older string) string {
	var parts []string
	seen := map[string]bool{}
	for _, s := range append([]string{newer}, strings.Split(older, " | ")...) {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		parts = append(parts, s)
		if len(parts) == maxReasons {
			break
		}
	}
	return strings.Join(parts, " | ")
}

// extendHost looks up the host blocks that already exist for the local
// host decisions and, unless replace, keeps the later expiry and the
// earlier reasons; each decision says so.
func (e *Engine) extendHost(ctx context.Context, ds []policy.Decision, reason func(netip.Prefix) string, replace bool) {
	e.reasons = nil
	var ps []netip.Prefix
	for _, d := range ds {
		if d.Action == policy.ActionBlock && d.Scope == policy.ScopeHost && len(d.Instances) == 0 {
			ps = append(ps, d.Target)
		}
	}
	if len(ps) == 0 {
		return
	}
	fw, err := e.hostFW(ctx)
	if err != nil {
		return // plan off the host, or blockHere reports it
	}
	have, err := fw.Existing(ctx, ps)
	if err != nil || len(have) == 0 {
		return
	}
	if e.reasons == nil {
		e.reasons = map[netip.Prefix]string{}
	}
	for i := range ds {
		d := &ds[i]
		old, ok := have[d.Target.Masked()]
		if !ok || d.Action != policy.ActionBlock || d.Scope != policy.ScopeHost {
			continue
		}
		until := "never expires"
		if !old.ExpiresAt.IsZero() {
			until = "until " + old.ExpiresAt.UTC().Format(time.RFC3339)
		}
		switch {
		case replace:
			d.Reasons = append(d.Reasons, fmt.Sprintf("host: already blocked %s; --replace sets the TTL and reason exactly", until))
			continue
		case old.ExpiresAt.IsZero() && old.TTL == 0 || !d.ExpiresAt.IsZero() && old.ExpiresAt.After(d.ExpiresAt):
			if old.ExpiresAt.IsZero() {
				d.TTL, d.TTLSeconds, d.ExpiresAt = 0, 0, time.Time{}
			} else {
				d.TTL = old.ExpiresAt.Sub(d.ExpiresAt.Add(-d.TTL)).Round(time.Second)
				d.TTLSeconds = int64(d.TTL / time.Second)
				d.ExpiresAt = old.ExpiresAt
			}
			d.Reasons = append(d.Reasons, fmt.Sprintf("host: already blocked %s; TTL kept (a re-block never shortens a block; --replace does)", until))
		default:
			d.Reasons = append(d.Reasons, fmt.Sprintf("host: already blocked %s; TTL extended", until))
		}
		e.reasons[d.Target.Masked()] = mergeReason(reason(d.Target), old.Reason)
	}
}

// blockHere enforces the local host decisions on this host.
func (e *Engine) blockHere(ctx context.Context, res *Result, reasonOf func(netip.Prefix) string, origin string) error {
	var entries []hostfw.Entry
	for _, d := range res.Decisions {
		if d.Action != policy.ActionBlock || d.Scope != policy.ScopeHost || len(d.Instances) > 0 {
			continue
		}
		reason := reasonOf(d.Target)
		if r, ok := e.reasons[d.Target.Masked()]; ok {
			reason = r
		}
		entries = append(entries, hostfw.Entry{Prefix: d.Target, TTL: d.TTL, Reason: reason, Origin: origin})
	}
	if len(entries) == 0 {
		return nil
	}
	fw, err := e.hostFW(ctx)
	if err != nil {
		return err
	}
	hr, err := fw.Block(ctx, entries)
	if err != nil {
		return err
	}
	res.Added, res.Refreshed, res.AddedOrRefreshed = hr.Added, len(hr.Refreshed), hr.AddedOrRefreshed
	clampHostTTL(res.Decisions, hr.Clamped)
	return nil
}

// EnforceHost writes host blocks decided elsewhere to this host's
// firewall the way Block writes its own: a re-block never shortens a block
// nor drops its reason, and a TTL the kernel cuts is reported in the
// decision. watch decides each line against what it keeps in memory and
// enforces its batches through it. reasons holds each target's reason.
func (e *Engine) EnforceHost(ctx context.Context, ds []policy.Decision, reasons map[netip.Prefix]string, origin policy.Origin) (*Result, error) {
	reason := func(p netip.Prefix) string { return reasons[p] }
	e.extendHost(ctx, ds, reason, false)
	res := &Result{Decisions: ds}
	return res, e.blockHere(ctx, res, reason, string(origin))
}

// clampHostTTL makes the decisions of host blocks whose TTL the kernel cut
// (ipset keeps an entry at most hostfw.MaxTimeout) say so.
func clampHostTTL(ds []policy.Decision, clamped []netip.Prefix) {
	if len(clamped) == 0 {
		return
	}
	cut := map[netip.Prefix]bool{}
	for _, p := range clamped {
		cut[p] = true
	}
	for i := range ds {
		d := &ds[i]
		if d.Scope != policy.ScopeHost || !cut[d.Target] {
			continue
		}
		d.ExpiresAt = d.ExpiresAt.Add(hostfw.MaxTimeout - d.TTL)
		d.TTL = hostfw.MaxTimeout
		d.TTLSeconds = int64(hostfw.MaxTimeout / time.Second)
		d.Reasons = append(d.Reasons, fmt.Sprintf("host: TTL cut to %s, the longest the kernel keeps an ipset entry", ShortDuration(hostfw.MaxTimeout)))
	}
}

// ShortDuration writes a duration without zero units, counting days: 45s,
// 1h30m, 2d, 1d12h (policy.FormatDuration).
func ShortDuration(d time.Duration) string { return policy.FormatDuration(d) }
