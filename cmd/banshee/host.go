package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/banshee-project/banshee/hostfw"
)

// firewall opens the host firewall of the network namespace banshee runs in.
func (a *app) firewall(ctx context.Context) (*hostfw.Firewall, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	backend, err := hostfw.ParseBackend(cfg.Host.Backend)
	if err != nil {
		return nil, usageErrorf("config host.backend: %v", err)
	}
	fw, err := hostfw.New(ctx, hostfw.Options{
		Chain:          cfg.Host.Chain,
		SetV4:          cfg.Host.SetV4,
		SetV6:          cfg.Host.SetV6,
		Backend:        backend,
		HookDockerUser: cfg.Host.HookDockerUser,
		HookForward:    cfg.Host.HookForward,
		MaxEntries:     cfg.Host.MaxEntries,
		StateDir:       a.stateDir,
	})
	if err != nil {
		return nil, fmt.Errorf("host firewall: %w", err)
	}
	return fw, nil
}

// startHostProbe runs probeHost for targets and keeps it for blockHost.
func (a *app) startHostProbe(ctx context.Context, targets []netip.Prefix) {
	a.hostProbe = a.probeHost(ctx, targets)
}

// probeHost starts the read-only check of the host firewall's hooks for
// the families of targets, so it runs while the policy decides. The
// returned function waits for it and returns the firewall (or the error of
// opening it, which only matters if a host block is decided).
func (a *app) probeHost(ctx context.Context, targets []netip.Prefix) func() (*hostfw.Firewall, error) {
	fw, err := a.firewall(ctx)
	if err != nil {
		return func() (*hostfw.Firewall, error) { return nil, err }
	}
	fams := map[hostfw.Family]bool{}
	for _, p := range targets {
		fams[hostfw.FamilyOf(p)] = true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, fam := range []hostfw.Family{hostfw.V4, hostfw.V6} {
			if fams[fam] {
				fw.Probe(ctx, fam)
			}
		}
	}()
	return func() (*hostfw.Firewall, error) { <-done; return fw, nil }
}
