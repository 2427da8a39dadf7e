package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
)

// LocalOptions say where Local looks.
type LocalOptions struct {
	SSHPorts []uint16 // ports sshd listens on (peers of these are protected)
	// FindSSHPorts, when set, finds the SSH ports instead (SSHPorts is then
	// ignored), at each call and while the host's addresses are read.
	FindSSHPorts func() []uint16
	ResolvConf   string // default /etc/resolv.conf
	Warn         func(error)
}

// Local returns the networks of the host the process runs on (its network
// namespace) that no block may overlap: established SSH peers, every
// address of its interfaces, its default gateways and its DNS resolvers.
// What cannot be read is passed to Warn, never silently left out. It reads
// from more than one thread: the process, not a locked thread, must be in
// the network namespace meant.
func Local(o LocalOptions) func() []policy.Protected {
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
	warn := o.Warn
	if warn == nil {
		warn = func(error) {}
	}
	return func() []policy.Protected {
		// The SSH sessions (sock_diag) are read while the addresses,
		// routes and resolvers are.
		type sshRead struct {
			ports []uint16
			peers []netip.Addr
			err   error
		}
		ssh := make(chan sshRead, 1)
		go func() {
			ports := o.SSHPorts
			if o.FindSSHPorts != nil {
				ports = o.FindSSHPorts()
			}
			if len(ports) == 0 {
				ports = []uint16{22}
			}
			peers, err := hostfw.SSHPeers(ports)
			ssh <- sshRead{ports, peers, err}
		}()
		addrs, gws, addrErr := hostAddrs()
		data, resolvErr := os.ReadFile(o.ResolvConf)

		var out []policy.Protected
		seen := map[netip.Addr]bool{}
		add := func(a netip.Addr, what string) {
			a = a.WithZone("").Unmap()
			// Loopback and link-local are protected by the policy itself,
			// under their own names.
			if !a.IsValid() || seen[a] || a.IsLoopback() || a.IsLinkLocalUnicast() {
				return
			}
			seen[a] = true
			out = append(out, policy.Protected{Prefix: netip.PrefixFrom(a, a.BitLen()), What: what})
		}
		if r := <-ssh; r.err != nil {
			warn(fmt.Errorf("cannot read the SSH sessions of this host: %w", r.err))
		} else {
			what := "an established SSH peer of this host"
			if len(r.ports) == 1 {
				what = fmt.Sprintf("%s (port %d)", what, r.ports[0])
			}
			for _, p := range r.peers {
				add(p, what)
			}
		}
		if addrErr != nil {
			warn(fmt.Errorf("cannot read this host's addresses: %w", addrErr))
		}
		for _, ha := range addrs {
			add(ha.addr, fmt.Sprintf("an address of this host (%s)", ha.dev))
		}
		for _, g := range gws {
			add(g, "a default gateway of this host")
		}
		if resolvErr != nil && !os.IsNotExist(resolvErr) {
			warn(fmt.Errorf("cannot read the DNS resolvers: %w", resolvErr))
		}
		for _, r := range resolvers(data) {
			add(r, "a DNS resolver of this host")
		}
		return out
	}
}

type hostAddr struct {
	addr netip.Addr
	dev  string
}

// resolvers parses the nameserver lines of resolv.conf.
func resolvers(data []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}
