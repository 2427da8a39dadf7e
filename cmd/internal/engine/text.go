package engine

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// SummaryAbove is how many decisions text output lists one by one; a bulk
// request prints counts instead.
const SummaryAbove = 20

// WriteText prints the result as every door shows it: one line per
// decision (counts for a bulk request, refusals always one by one), then
// what was not blocked, then the notes.
func (r *Result) WriteText(w io.Writer) {
	if len(r.Decisions) > SummaryAbove {
		writeSummary(w, r.Decisions)
		var refused []policy.Decision
		for _, d := range r.Decisions {
			if d.Action == policy.ActionRefuse {
				refused = append(refused, d)
			}
		}
		WriteDecisions(w, refused)
	} else {
		WriteDecisions(w, r.Decisions)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// writeSummary prints counts per scope and action.
func writeSummary(w io.Writer, ds []policy.Decision) {
	type key struct {
		scope  policy.Scope
		action policy.Action
	}
	counts := map[key]int{}
	var order []key
	for _, d := range ds {
		k := key{d.Scope, d.Action}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	for _, k := range order {
		fmt.Fprintf(w, "%d target(s): %s %s\n", counts[k], k.scope, k.action)
	}
}

// WriteDecisions prints one line per decision: target, scope, action,
// where, how long, and the reasons.
func WriteDecisions(w io.Writer, ds []policy.Decision) {
	for _, d := range ds {
		var b strings.Builder
		b.WriteString(Show(d.Target))
		switch d.Action {
		case policy.ActionRefuse:
			b.WriteString(" refused")
		case policy.ActionSkip:
			b.WriteString(" skipped")
		default:
			fmt.Fprintf(&b, " %s %s", d.Scope, d.Action)
		}
		if d.Action == policy.ActionBlock {
			if d.NACLID != "" {
				fmt.Fprintf(&b, " %s rule %d", d.NACLID, d.RuleNumber)
				if d.Aggregate != nil {
					fmt.Fprintf(&b, " as %s", d.Aggregate)
				}
			}
			if len(d.Instances) > 0 {
				fmt.Fprintf(&b, " on %s", strings.Join(d.Instances, ","))
			}
			if d.ExpiresAt.IsZero() {
				b.WriteString(" permanently")
			} else {
				fmt.Fprintf(&b, " for %s until %s", ShortDuration(d.TTL), d.ExpiresAt.UTC().Format(time.RFC3339))
			}
		}
		reasons := slices.Clone(d.Reasons)
		if len(reasons) > 0 { // "x refused: refused: ..." says it once
			for _, p := range []string{string(d.Action) + ": ", "refused: ", "skip: "} {
				reasons[0] = strings.TrimPrefix(reasons[0], p)
			}
		}
		fmt.Fprintf(&b, ": %s", strings.Join(reasons, "; "))
		fmt.Fprintln(w, b.String())
	}
}

// WriteText prints one line per target.
func (r *UnblockResult) WriteText(w io.Writer) {
	for _, u := range r.Results {
		fmt.Fprintf(w, "%s: %s\n", Show(u.Target), u.Message)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// WriteText prints what reconcile repaired.
func (r *ReconcileResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "host: %d block(s) in force from the journal, %d found only in the kernel and recorded, %d expired; chain, jumps and sets re-created where missing\n", r.Restored, r.Adopted, r.Expired)
	if s := r.Sweep; s != nil {
		fmt.Fprintf(w, "network ACLs: %d expired deny(s) removed, %d adopted, %d waiting to be adopted, %d stale metadata tag(s) deleted\n", len(s.Removed), len(s.Adopted), s.Waiting, s.StaleTags)
	}
	for _, b := range r.Recreated {
		until := "no expiry"
		if !b.ExpiresAt.IsZero() {
			until = "until " + b.ExpiresAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "re-created: %s in %s rule %d, %s (deleted by someone else before its expiry)\n", Show(b.Target), b.NACLID, b.RuleNumber, until)
	}
	for _, b := range r.NotRecreated {
		fmt.Fprintf(w, "not re-created: %s in %s (rule %d, deleted by someone else): %s\n", Show(b.Target), b.NACLID, b.RuleNumber, b.Why)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
