package main

import (
	"io"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/spf13/cobra"
)

func init() { register(newReconcileCmd) }

func newReconcileCmd(a *app) *cobra.Command {
	var scope string
	var subnets, nacls []string
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Repair drift between what banshee recorded and what is in force",
		Long: `reconcile makes what is in force match what banshee recorded, on both layers:
on this host it re-creates banshee's chain, the jumps to it and the sets,
re-adds recorded blocks the kernel lost (with their remaining TTL) and records
blocks found in banshee's sets but not in the journal; at the subnet edge it
re-creates the denies someone else deleted before their expiry, from their
metadata (never over the quota, never over a protected network; what it
cannot re-create it names, with why), then sweeps (expired denies removed,
denies without metadata adopted after the grace period). watch runs it every few seconds and the Lambda function on its
schedule; run it from cron where neither runs. It is idempotent.`,
		Example: `  banshee reconcile
  banshee reconcile --scope host -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			where, err := engine.ParseWhere(scope)
			if err != nil {
				return usageErrorf("--scope: %v", err)
			}
			ids, err := vpcIDs(subnets, nacls)
			if err != nil {
				return err
			}
			eng, err := a.engine()
			if err != nil {
				return err
			}
			res, err := eng.Reconcile(cmd.Context(), where, ids)
			if res != nil {
				if eerr := a.emit(res, func(w io.Writer) { res.WriteText(w) }); eerr != nil {
					return eerr
				}
			}
			return err
		},
	}
	addScopeFlags(cmd, &scope, &subnets, &nacls, "what to reconcile")
	return cmd
}
