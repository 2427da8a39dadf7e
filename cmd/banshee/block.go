package main

import (
	"context"
	"errors"
	"io"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() { register(newBlockCmd) }

func newBlockCmd(a *app) *cobra.Command {
	var f attackFlags
	cmd := &cobra.Command{
		Use:   "block TARGET... [flags]",
		Short: "Block addresses or CIDRs at the layer the policy chooses",
		Long: `block decides, per target (an IPv4/IPv6 address or CIDR; - reads targets from
standard input, one per line, # starts a comment), where to block it and
enforces that: a host firewall DROP on this host (ipset entry with a kernel
timeout) or a VPC network ACL deny.

Blocking an address that is already blocked never shortens the block nor
drops its reason: the later expiry wins and the reasons are kept (newest
first); --replace makes the new TTL and reason exact. When the policy refuses
any target (the allowlist, a security-group whitelist, the VPC's own CIDRs,
your own SSH session, an SSH peer, an address, gateway or DNS resolver of this
host, a too-broad prefix), nothing changes and block exits 3;
--skip-refused blocks the rest. Use plan to see the decisions first.`,
		Example: `  banshee block 174.132.223.252 --reason "pop3 bruteforce" --ttl 2h
  banshee block - --ttl 24h --reason "threat list" --skip-refused < list.txt`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBlock(cmd.Context(), &f, args, true)
		},
	}
	f.register(cmd)
	f.registerBlock(cmd)
	return cmd
}

// runBlock is block (enforce) and plan (not): one engine call, printed.
func (a *app) runBlock(ctx context.Context, f *attackFlags, args []string, enforce bool) error {
	targets, err := readTargetArgs(args, a.stdin)
	if err != nil {
		return err
	}
	atk, err := f.attack(targets)
	if err != nil {
		return err
	}
	if err := checkReason(atk.Reason); err != nil {
		return err
	}
	req := engine.BlockRequest{Attack: atk, Enforce: enforce, SkipRefused: f.skipRefused, Replace: f.replace, StrictPort: true}
	if f.snapshot != "" {
		snap, err := loadSnapshot(f.snapshot)
		if err != nil {
			return err
		}
		req.Snapshot = &snap
	}
	eng, err := a.engine()
	if err != nil {
		return err
	}
	if enforce {
		a.startHostProbe(ctx, targets) // read-only; overlaps the decision
	}
	res, err := eng.Block(ctx, req)
	if res == nil {
		return err
	}
	if enforce && errors.Is(err, engine.ErrRefused) && a.output == "text" {
		return err // the error names every refused target: printed once
	}
	if eerr := a.emit(res, func(w io.Writer) { res.WriteText(w) }); eerr != nil {
		return eerr
	}
	return err
}

// checkReason rejects a reason that could never be stored safely.
func checkReason(reason string) error {
	for _, r := range reason {
		if r < 0x20 || r == 0x7f {
			return &policy.InputError{Value: reason, Msg: "--reason must not contain control characters such as newlines"}
		}
	}
	return nil
}

// shortDuration writes a duration without trailing zero units: 1h, 1h30m.
var shortDuration = engine.ShortDuration
