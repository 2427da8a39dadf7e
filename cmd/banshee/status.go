package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/cmd/internal/watch"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/spf13/cobra"
)

func init() { register(newStatusCmd) }

// statusOutput is the JSON shape of status.
type statusOutput struct {
	Host         *hostfw.Status  `json:"host"`
	PendingApply *hostfw.Pending `json:"pending_apply,omitempty"`
	Watch        *watch.Status   `json:"watch,omitempty"`
	// Drift lists the blocks whose kernel or NACL state differs from what
	// is recorded, and problems such as a missing jump (empty: none).
	Drift driftStatus `json:"drift"`
}

// driftStatus is the drift part of status.
type driftStatus struct {
	Blocks   []engine.Listed `json:"blocks"`
	Problems []string        `json:"problems,omitempty"`
	Notes    []string        `json:"notes,omitempty"`
	Summary  string          `json:"summary"`
}

func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the state of banshee on this host",
		Long: `status reports the iptables backend in use, banshee's sets, chain and hooks per
address family, and warns about anything that keeps blocks from working
(a missing hook, rules in the other iptables backend). It compares what banshee
recorded with what is in force (as list does) and exits 1 when they differ
(drift); banshee reconcile repairs it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			fw, err := a.firewall(ctx)
			if err != nil {
				return err
			}
			st, err := fw.Status(ctx)
			if err != nil {
				return err
			}
			pending, err := fw.PendingApply()
			if err != nil {
				return err
			}
			ws, err := watch.ReadStatus(a.stateDir)
			if err != nil {
				return err
			}
			lr, err := a.list(cmd, "all", nil, nil)
			if err != nil {
				return err
			}
			dr := driftStatus{Blocks: []engine.Listed{}, Problems: lr.Problems, Notes: lr.Notes, Summary: lr.StatusLine()}
			for _, b := range lr.Blocks {
				if b.Drift != "" {
					dr.Blocks = append(dr.Blocks, b)
				}
			}
			out := statusOutput{Host: &st, PendingApply: pending, Watch: ws, Drift: dr}
			err = a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "iptables backend: %s\n", st.Backend)
				for _, f := range st.Families {
					hooks := "none"
					if len(f.Hooks) > 0 {
						hooks = strings.Join(f.Hooks, ", ")
					}
					if !f.SetOK && !f.Chain {
						fmt.Fprintf(w, "%s: not set up yet (the first %s block creates set %s and the chain)\n", f.Family, f.Family, f.Set)
						continue
					}
					fmt.Fprintf(w, "%s: set %s %s, %d entries; chain %s; hooked from %s\n",
						f.Family, f.Set, present(f.SetOK), f.Entries, present(f.Chain), hooks)
				}
				if pending != nil {
					fmt.Fprintf(w, "pending: the ruleset applied at %s rolls back at %s unless `banshee confirm` (%s left)\n",
						pending.Applied.Format(time.RFC3339), pending.Deadline.Format(time.RFC3339), shortDuration(time.Until(pending.Deadline).Round(time.Second)))
				}
				for _, warn := range st.Warnings {
					fmt.Fprintf(w, "warning: %s\n", warn)
				}
				if ws != nil {
					watchStatusText(w, ws, time.Now())
				}
				fmt.Fprintln(w, dr.Summary)
				for _, b := range dr.Blocks {
					fmt.Fprintf(w, "  %s %s: %s\n", engine.Show(b.Target), b.Scope, b.Drift)
				}
				for _, n := range dr.Notes {
					fmt.Fprintf(w, "note: %s\n", n)
				}
			})
			if err != nil {
				return err
			}
			if lr.Drifted() {
				return fmt.Errorf("%s", lr.StatusLine())
			}
			return nil
		},
	}
}

func present(ok bool) string {
	if ok {
		return "present"
	}
	return "missing"
}
