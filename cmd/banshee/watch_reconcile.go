package main

import (
	"context"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
)

// watchReconcileEvery is how often watch compares what it recorded with
// what is in force on this host (a deleted jump, a lost set entry) and
// repairs drift; the subnet edge is swept every watchSweepEvery.
var (
	watchReconcileEvery = 10 * time.Second
	watchSweepEvery     = time.Minute
)

// keepReconciled runs the engine's level-triggered repair until ctx ends:
// the host when list finds drift, and (with the edge on) the network ACL
// of this instance's subnet, so expired VPC blocks go without a sweep.
func (w *watcher) keepReconciled(ctx context.Context, eng *engine.Engine) {
	t := time.NewTicker(watchReconcileEvery)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if lr, err := eng.List(ctx, engine.ListRequest{Where: engine.HostOnly}); err != nil {
			w.logf("error: checking for drift: %v", err)
		} else if lr.Drifted() {
			w.logf("drift: %s; repairing", lr.StatusLine())
			if rr, err := eng.Reconcile(ctx, engine.HostOnly, nil); err != nil {
				w.stats.enforceError(err)
				w.logf("error: reconcile: %v", err)
			} else {
				w.logf("reconciled: %d block(s) in force from the journal, %d recorded from the kernel", rr.Restored, rr.Adopted)
			}
		}
		if time.Since(lastSweep) < watchSweepEvery {
			continue
		}
		lastSweep = time.Now()
		w.mu.Lock()
		edge, world := w.edge, w.world
		cfg := w.cfg
		w.mu.Unlock()
		e, ok := edge.(*ec2Edge)
		if !ok || world == nil || len(world.targets) == 0 {
			continue
		}
		if rr, err := e.engine(cfg, time.Time{}).Reconcile(ctx, engine.VPCOnly, []string{world.targets[0].SubnetID}); err != nil {
			w.logf("error: sweeping %s: %v", world.targets[0].SubnetID, err)
		} else if rr.Sweep != nil && len(rr.Sweep.Removed) > 0 {
			w.logf("swept %d expired network ACL block(s) of %s", len(rr.Sweep.Removed), world.targets[0].SubnetID)
		}
	}
}
