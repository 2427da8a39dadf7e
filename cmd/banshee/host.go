package main

import (
	"context"
	"fmt"

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

// blockHost enforces host-scope decisions on this host.
func (a *app) blockHost(ctx context.Context, ds []policy.Decision, atk policy.Attack) (hostfw.BlockResult, error) {
	entries := make([]hostfw.Entry, 0, len(ds))
	for _, d := range ds {
		if d.Action != policy.ActionBlock || d.Scope != policy.ScopeHost {
			continue
		}
		if len(d.Instances) > 0 {
			return hostfw.BlockResult{}, fmt.Errorf("host block of %s on %v: blocking on other instances goes through SSM, which this command does not do; run banshee on the instance, or use --scope vpc", d.Target, d.Instances)
		}
		entries = append(entries, hostfw.Entry{Prefix: d.Target, TTL: d.TTL, Reason: atk.Reason, Origin: string(atk.Origin)})
	}
	if len(entries) == 0 {
		return hostfw.BlockResult{}, nil
	}
	fw, err := a.firewall(ctx)
	if err != nil {
		return hostfw.BlockResult{}, err
	}
	return fw.Block(ctx, entries)
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
