package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() {
	register(newApplyCmd)
	register(newConfirmCmd)
	register(newRollbackCmd)
}

// sshPorts are the local ports whose established sessions are protected:
// 22, host.ssh_ports of the config and every port a root sshd listens on.
// A failure to read the listening sockets is a warning; 22 and the
// configured ports are still returned.
func sshPorts(cfg policy.Config, warn io.Writer) []uint16 {
	extra := make([]uint16, 0, len(cfg.Host.SSHPorts))
	for _, p := range cfg.Host.SSHPorts {
		extra = append(extra, uint16(p)) // validated 1..65535
	}
	ports, err := hostfw.SSHPorts(extra)
	if err != nil {
		fmt.Fprintf(warn, "banshee: warning: cannot read the ports sshd listens on: %v\n", err)
	}
	return ports
}

// sshPorts of the app's config; a config that cannot be read is reported
// by the command that needs it, here the defaults stand in.
func (a *app) sshPorts() []uint16 {
	cfg, err := a.config()
	if err != nil {
		cfg = policy.Default()
	}
	return sshPorts(cfg, a.stderr)
}

// applyOutput is the JSON shape of apply.
type applyOutput struct {
	Applied  []string        `json:"applied"`
	Pending  *hostfw.Pending `json:"pending,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
}

func newApplyCmd(a *app) *cobra.Command {
	var v6File string
	var within time.Duration
	cmd := &cobra.Command{
		Use:   "apply FILE [--ipv6 FILE6] [--confirm-within 60s]",
		Short: "Apply a whole ruleset atomically, rolled back unless confirmed",
		Long: `apply replaces the tables in FILE (iptables-save format, IPv4; --ipv6 for an
ip6tables-save file) in one iptables-restore run after a --test run of the same
input, keeping banshee's chain and its blocks, and keeping the previous ruleset.

Unless banshee confirm arrives within --confirm-within (default 60s; 0 turns
the safety net off), the previous ruleset comes back by itself, from a
detached timer process that outlives the SSH session that ran apply.
banshee rollback brings it back at once; banshee status shows the deadline.
apply warns when the new ruleset would not accept your current SSH session.`,
		Example: `  banshee apply /etc/iptables/rules.v4 --ipv6 /etc/iptables/rules.v6 --confirm-within 2m
  banshee confirm`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if within < 0 {
				return usageErrorf("--confirm-within %s: must not be negative", within)
			}
			sets := []hostfw.Ruleset{}
			for _, f := range []struct {
				path string
				fam  hostfw.Family
			}{{args[0], hostfw.V4}, {v6File, hostfw.V6}} {
				if f.path == "" {
					continue
				}
				data, err := os.ReadFile(f.path)
				if err != nil {
					return usageErrorf("reading ruleset %s: %v", f.path, err)
				}
				if err := hostfw.CheckRuleset(string(data)); err != nil {
					return usageErrorf("ruleset %s: %v", f.path, err)
				}
				sets = append(sets, hostfw.Ruleset{Family: f.fam, Text: string(data)})
			}
			var out applyOutput
			ports := a.sshPorts()
			peers := a.protectedPeersOn(ports)
			for _, rs := range sets {
				for _, p := range peers {
					if (rs.Family == hostfw.V4) != p.Is4() {
						continue
					}
					for _, port := range ports {
						v, why := hostfw.SSHVerdict(rs.Text, p, port)
						if v == hostfw.VerdictAccept {
							continue
						}
						w := fmt.Sprintf("the new %s ruleset may not accept your SSH session from %s to port %d (%s)", rs.Family, p, port, why)
						if v == hostfw.VerdictDrop {
							w = fmt.Sprintf("the new %s ruleset drops your SSH session from %s to port %d (%s)", rs.Family, p, port, why)
						}
						out.Warnings = append(out.Warnings, w)
						fmt.Fprintln(a.stderr, "banshee: warning: "+w)
					}
				}
			}
			fw, err := a.firewall(ctx)
			if err != nil {
				return err
			}
			// The rollback timer is started before anything changes.
			p, err := fw.ApplyArmed(ctx, sets, within, a.startRollbackTimer)
			if err != nil {
				return err
			}
			for _, rs := range sets {
				out.Applied = append(out.Applied, rs.Family.String())
			}
			out.Pending = p
			return a.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "applied the %v ruleset(s)\n", out.Applied)
				if p != nil {
					fmt.Fprintf(w, "run `banshee confirm` before %s (in %s), or the previous ruleset comes back\n", p.Deadline.Format(time.RFC3339), shortDuration(within))
				}
			})
		},
	}
	cmd.Flags().StringVar(&v6File, "ipv6", "", "ip6tables-save file to apply as well")
	durationVar(cmd.Flags(), &within, "confirm-within", 60*time.Second, "roll back unless banshee confirm arrives within this time (0: no rollback)")
	return cmd
}

// protectedPeersOn are the operator's SSH addresses: SSH_CONNECTION and
// the peers of established sessions to the given sshd ports.
func (a *app) protectedPeersOn(ports []uint16) []netip.Addr {
	out := callerAddrs(os.Getenv)
	if peers, err := hostfw.SSHPeers(ports); err == nil {
		for _, p := range peers {
			dup := false
			for _, o := range out {
				dup = dup || o == p
			}
			if !dup {
				out = append(out, p)
			}
		}
	} else {
		fmt.Fprintf(a.stderr, "banshee: warning: cannot read the SSH sessions of this host: %v\n", err)
	}
	return out
}

// startRollbackTimer starts "banshee rollback --timer TOKEN --at DEADLINE"
// as a detached process in its own session, so it outlives the terminal
// and the SSH session that ran apply. It runs in the same network namespace.
// (A systemd-run timer would run in the root namespace, not in this one.)
func (a *app) startRollbackTimer(p *hostfw.Pending) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding banshee's own binary: %w", err)
	}
	logPath := filepath.Join(a.stateDir, "hostfw", "rollback-timer.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening %s: %w", logPath, err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "--state-dir", a.stateDir, "--config", a.configPath,
		"rollback", "--timer", p.Token, "--at", p.Deadline.Format(time.RFC3339Nano))
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", exe, err)
	}
	return cmd.Process.Release()
}

func newConfirmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "confirm",
		Short: "Keep the ruleset applied with banshee apply",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fw, err := a.firewall(cmd.Context())
			if err != nil {
				return err
			}
			p, err := fw.Confirm()
			if errors.Is(err, hostfw.ErrNothingPending) {
				return a.emit(map[string]any{"confirmed": false, "message": err.Error()}, func(w io.Writer) {
					fmt.Fprintln(w, "nothing to confirm: "+err.Error())
				})
			}
			if err != nil {
				return err
			}
			return a.emit(map[string]any{"confirmed": true, "applied": p.Applied}, func(w io.Writer) {
				fmt.Fprintf(w, "confirmed the ruleset applied at %s; the rollback is cancelled\n", p.Applied.Format(time.RFC3339))
			})
		},
	}
}

func newRollbackCmd(a *app) *cobra.Command {
	var token, at string
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Bring back the ruleset that was live before banshee apply",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if token != "" {
				deadline, err := time.Parse(time.RFC3339Nano, at)
				if err != nil {
					return usageErrorf("--at %q: %v", at, err)
				}
				if wait := time.Until(deadline); wait > 0 {
					if wait > 24*time.Hour {
						return usageErrorf("--at %s: more than a day away", at)
					}
					t := time.NewTimer(wait)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						// Even when told to stop, never leave the safety net undone.
					}
				}
			}
			fw, err := a.firewall(context.WithoutCancel(ctx))
			if err != nil {
				return err
			}
			done, err := fw.Rollback(context.WithoutCancel(ctx), token)
			if err != nil {
				return err
			}
			msg := "rolled back to the ruleset that was live before banshee apply"
			if !done {
				msg = "the change was confirmed or superseded: nothing rolled back"
			}
			if token != "" {
				msg = time.Now().UTC().Format(time.RFC3339) + " timer " + token + ": " + msg
			}
			return a.emit(map[string]any{"rolled_back": done, "message": msg}, func(w io.Writer) { fmt.Fprintln(w, msg) })
		},
	}
	cmd.Flags().StringVar(&token, "timer", "", "internal: act only if this pending change is still unconfirmed")
	cmd.Flags().StringVar(&at, "at", "", "internal: wait until this time (RFC 3339) first")
	_ = cmd.Flags().MarkHidden("timer")
	_ = cmd.Flags().MarkHidden("at")
	return cmd
}
