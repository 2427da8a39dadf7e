package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/banshee-project/banshee/hostfw/guard"
	"github.com/spf13/cobra"
)

// defaultGuardKey is where guard and knock look for the shared key.
const defaultGuardKey = "/etc/banshee/guard.key"

func init() { register(newGuardCmd) }

func newGuardCmd(a *app) *cobra.Command {
	var (
		keyPath string
		port    uint16
		maxSkew time.Duration
		hostIDs []string
	)
	cmd := &cobra.Command{
		Use:   "guard",
		Short: "Reset the host firewall to permissive when an authenticated knock arrives",
		Long: `guard is the emergency reset for testing new rules on a remote host. It runs
until SIGINT or SIGTERM, reads packets from a packet socket — before the
firewall, so it hears knocks even when INPUT drops everything — and on a
valid knock resets the filter table of both families to ACCEPT with no rules.

A knock is one UDP datagram to --port carrying a timestamp and a random nonce,
authenticated with HMAC-SHA256 under a key derived from the shared 32-byte key
and the host it is meant for (the address or name the operator knocks at), so
a captured knock resets no other host. The guard accepts knocks bound to its
host name, its own addresses and every --host-id (add the public address or
DNS name the operator uses when it is not on an interface, as behind EC2's
NAT). Knocks with a bad MAC, a timestamp more than --max-skew from this
host's clock, or a nonce seen before (also before a restart: the nonces are
kept in the state directory) are ignored. Every reset and (rate-limited) every ignored knock is
logged to standard error.

  banshee guard keygen /etc/banshee/guard.key     # once; copy the key to your machine
  banshee guard --key /etc/banshee/guard.key &    # on the host, while testing rules
  banshee guard knock HOST --key ./guard.key      # from your machine, when locked out

The guard port must be reachable up to the host: security groups and network
ACLs act before the packet socket.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runGuard(cmd.Context(), keyPath, port, maxSkew, hostIDs)
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", defaultGuardKey, "shared `FILE` holding the key (mode 0600, written by banshee guard keygen)")
	f.Uint16Var(&port, "port", guard.DefaultPort, "UDP port knocks are sent to")
	durationVar(f, &maxSkew, "max-skew", guard.DefaultMaxSkew, "accept knock timestamps this far from this host's clock")
	f.StringArrayVar(&hostIDs, "host-id", nil, "also accept knocks bound to this address or name (repeatable)")
	cmd.AddCommand(newGuardKeygenCmd(a), newGuardKnockCmd(a))
	return cmd
}

// guardHostIDs are the identities a knock for this host may be bound to:
// the configured ones, the host name and every address of this network
// namespace.
func guardHostIDs(extra []string) []string {
	ids := slices.Clone(extra)
	if h, err := os.Hostname(); err == nil && h != "" {
		ids = append(ids, h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				ids = append(ids, p.Addr().Unmap().String())
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (a *app) runGuard(ctx context.Context, keyPath string, port uint16, maxSkew time.Duration, hostIDs []string) error {
	if port == 0 {
		return usageErrorf("--port 0: want a UDP port from 1 to 65535")
	}
	if maxSkew <= 0 {
		return usageErrorf("--max-skew %s: want a positive duration", maxSkew)
	}
	key, err := readGuardKey(keyPath)
	if err != nil {
		return err
	}
	fw, err := a.firewall(ctx)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(a.stderr, nil))
	ids := guardHostIDs(hostIDs)
	g, err := guard.New(guard.Options{Key: key, HostIDs: ids, ReplayFile: filepath.Join(a.stateDir, "guard", "nonces"),
		MaxSkew: maxSkew, Resetter: fw, Logger: log})
	if err != nil {
		return fmt.Errorf("starting the guard: %w", err)
	}
	sock, err := guard.Listen(port)
	if err != nil {
		return fmt.Errorf("starting the guard: %w", err)
	}
	defer sock.Close()
	log.Info("guard listening", "port", port, "max_skew", maxSkew.String(), "backend", string(fw.Backend()), "host_ids", strings.Join(ids, ","))
	if err := g.Run(ctx, sock); err != nil {
		return err
	}
	log.Info("guard stopped")
	return nil
}

// readGuardKey reads the shared key; a missing, unreadable, malformed or
// too open key file is bad input (exit 2).
func readGuardKey(path string) ([]byte, error) {
	key, err := guard.ReadKeyFile(path)
	if err != nil {
		return nil, &usageError{Msg: err.Error()}
	}
	return key, nil
}

func newGuardKeygenCmd(a *app) *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "keygen FILE",
		Short: "Write a new random guard key to FILE (mode 0600; never overwrites)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := args[0]
			if err := guard.WriteKeyFile(path, raw); err != nil {
				if errors.Is(err, guard.ErrKeyExists) {
					return &usageError{Msg: err.Error()}
				}
				return err
			}
			format := "hex"
			if raw {
				format = "raw"
			}
			v := struct {
				KeyFile string `json:"key_file"`
				Format  string `json:"format"`
			}{path, format}
			return a.emit(v, func(w io.Writer) {
				fmt.Fprintf(w, "wrote a new guard key to %s (%s, mode 0600); copy it to the operator's machine over a secure channel\n", path, format)
			})
		},
	}
	cmd.Flags().BoolVar(&raw, "raw", false, "write the 32 raw bytes instead of hex")
	return cmd
}

func newGuardKnockCmd(a *app) *cobra.Command {
	var (
		keyPath string
		port    uint16
		hostID  string
	)
	cmd := &cobra.Command{
		Use:   "knock HOST",
		Short: "Send one authenticated knock to a host running banshee guard",
		Long: `knock sends one knock (a UDP datagram) to HOST, an IPv4 or IPv6 address or a
name. A guard with the same key resets that host's firewall to permissive. Each
knock is good once and only within the guard's --max-skew of its clock. The
knock is bound to HOST as written (or to --host-id): it opens no other host.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.knock(cmd.Context(), args[0], keyPath, port, hostID)
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyPath, "key", defaultGuardKey, "shared `FILE` holding the key (mode 0600)")
	f.Uint16Var(&port, "port", guard.DefaultPort, "UDP port of the guard")
	f.StringVar(&hostID, "host-id", "", "bind the knock to this identity instead of HOST (one of the guard's --host-id)")
	return cmd
}

func (a *app) knock(ctx context.Context, host, keyPath string, port uint16, hostID string) error {
	if host == "" {
		return usageErrorf("knock: empty HOST")
	}
	if port == 0 {
		return usageErrorf("--port 0: want a UDP port from 1 to 65535")
	}
	key, err := readGuardKey(keyPath)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("knocking at %s: %w", host, err)
	}
	defer conn.Close()
	k, err := guard.NewKnock(rand.Reader, time.Now())
	if err != nil {
		return err
	}
	if hostID == "" {
		hostID = host
		if ap, err := netip.ParseAddr(host); err == nil {
			hostID = ap.Unmap().String() // the form the guard lists its addresses in
		}
	}
	if _, err := conn.Write(k.Seal(guard.HostKey(key, hostID))); err != nil {
		return fmt.Errorf("knocking at %s: %w", host, err)
	}
	v := struct {
		Host      string `json:"host"`
		HostID    string `json:"host_id"`
		Address   string `json:"address"`
		Timestamp string `json:"timestamp"`
		Nonce     string `json:"nonce"`
	}{host, hostID, conn.RemoteAddr().String(), k.Time.UTC().Format(time.RFC3339), k.NonceHex()}
	return a.emit(v, func(w io.Writer) {
		fmt.Fprintf(w, "knock sent to %s, bound to %s (nonce %s); a guard with the same key resets that host's firewall to permissive\n", v.Address, v.HostID, v.Nonce)
	})
}
