package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
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

// hostEntries are the host-scope blocks of ds, for this host.
func hostEntries(ds []policy.Decision, atk policy.Attack) ([]hostfw.Entry, error) {
	entries := make([]hostfw.Entry, 0, len(ds))
	for _, d := range ds {
		if d.Action != policy.ActionBlock || d.Scope != policy.ScopeHost {
			continue
		}
		if len(d.Instances) > 0 {
			return nil, fmt.Errorf("host block of %s on %v: blocking on other instances goes through SSM, which this command does not do; run banshee on the instance, or use --scope vpc", d.Target, d.Instances)
		}
		entries = append(entries, hostfw.Entry{Prefix: d.Target, TTL: d.TTL, Reason: atk.Reason, Origin: string(atk.Origin)})
	}
	return entries, nil
}

// blockHost enforces host-scope decisions on this host, with the firewall
// that startHostProbe opened when it ran.
func (a *app) blockHost(ctx context.Context, ds []policy.Decision, atk policy.Attack) (hostfw.BlockResult, error) {
	entries, err := hostEntries(ds, atk)
	if err != nil || len(entries) == 0 {
		return hostfw.BlockResult{}, err
	}
	open := a.hostProbe
	if open == nil {
		open = a.probeHost(ctx, nil)
	}
	fw, err := open()
	if err != nil {
		return hostfw.BlockResult{}, err
	}
	return fw.Block(ctx, entries)
}

// startHostProbe runs probeHost for targets and keeps it for blockHost.
// The returned function releases what the probe prepared and Block did not
// use; call it when the command is done.
func (a *app) startHostProbe(ctx context.Context, targets []netip.Prefix) (release func()) {
	a.hostProbe = a.probeHost(ctx, targets)
	return func() {
		if fw, err := a.hostProbe(); err == nil {
			fw.Release()
		}
	}
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
		// A bulk list: ipset starts now; Block feeds it. If starting
		// fails here, Block starts its own and reports the error.
		_ = fw.PrepareBulk(ctx, len(targets))
	}()
	return func() (*hostfw.Firewall, error) { <-done; return fw, nil }
}

// hostBlocks lists the host blocks as policy blocks.
func hostBlocks(ctx context.Context, fw *hostfw.Firewall) ([]policy.Block, error) {
	es, err := fw.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]policy.Block, 0, len(es))
	for _, e := range es {
		out = append(out, policy.Block{
			Target:    e.Prefix,
			Scope:     policy.ScopeHost,
			ExpiresAt: e.ExpiresAt,
			Reason:    e.Reason,
			Origin:    policy.Origin(e.Origin),
		})
	}
	return out, nil
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
		d.Reasons = append(d.Reasons, fmt.Sprintf("host: TTL cut to %s, the longest the kernel keeps an ipset entry", shortDuration(hostfw.MaxTimeout)))
	}
}
