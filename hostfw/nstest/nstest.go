//go:build linux

package nstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips the test unless it can create network namespaces and run
// iptables and ipset: root, the ip command and the kernel tools.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root and network namespaces; run `make test` (as root) to include it")
	}
	for _, tool := range []string{"ip", "ipset", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s in PATH; run `make test`, which installs it", tool)
		}
	}
}

// NS is one network namespace made for a test.
type NS struct {
	Name string
}

// Peer is a namespace joined to the victim by a veth pair.
type Peer struct {
	*NS
	Addr4, Addr6             netip.Addr // the peer's addresses
	VictimAddr4, VictimAddr6 netip.Addr // the victim's addresses on this link
	Dev, VictimDev           string     // the veth ends in the peer and in the victim
	victim                   *NS
}

// Net is a victim namespace and its peers.
type Net struct {
	Victim *NS
	Peers  map[string]*Peer
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// New creates a victim namespace and one peer namespace per name, removed
// when the test ends.
func New(t testing.TB, peers ...string) *Net {
	t.Helper()
	Require(t)
	id := randHex(3)
	n := &Net{Victim: newNS(t, "bsh-"+id+"-v"), Peers: map[string]*Peer{}}
	for i, name := range peers {
		vv, pv := fmt.Sprintf("bv%s%d", id, i), fmt.Sprintf("bp%s%d", id, i)
		p := &Peer{NS: newNS(t, fmt.Sprintf("bsh-%s-%d", id, i)), Dev: pv, VictimDev: vv, victim: n.Victim}
		run(t, "ip", "link", "add", vv, "netns", n.Victim.Name, "type", "veth", "peer", "name", pv, "netns", p.Name)
		sub := 10 + i
		p.VictimAddr4 = netip.MustParseAddr(fmt.Sprintf("10.99.%d.1", sub))
		p.Addr4 = netip.MustParseAddr(fmt.Sprintf("10.99.%d.2", sub))
		p.VictimAddr6 = netip.MustParseAddr(fmt.Sprintf("fd99:%d::1", sub))
		p.Addr6 = netip.MustParseAddr(fmt.Sprintf("fd99:%d::2", sub))
		for _, side := range []struct {
			ns, dev string
			a4, a6  netip.Addr
		}{{n.Victim.Name, vv, p.VictimAddr4, p.VictimAddr6}, {p.Name, pv, p.Addr4, p.Addr6}} {
			run(t, "ip", "-n", side.ns, "addr", "add", side.a4.String()+"/24", "dev", side.dev)
			run(t, "ip", "-n", side.ns, "addr", "add", side.a6.String()+"/64", "dev", side.dev, "nodad")
			run(t, "ip", "-n", side.ns, "link", "set", side.dev, "up")
		}
		n.Peers[name] = p
	}
	return n
}

func newNS(t testing.TB, name string) *NS {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return &NS{Name: name}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// Do runs fn on an OS thread switched into the namespace. Sockets fn opens
// and processes it starts belong to the namespace. If the switch fails, fn
// does not run: nothing can leak into the root namespace.
func (n *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening own netns: %w", err)
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening netns %s: %w", n.Name, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering netns %s: %w", n.Name, err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: Go destroys it when the goroutine ends,
		// so no other goroutine runs in the wrong namespace.
		return fmt.Errorf("leaving netns %s: %w", n.Name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Command returns a command that runs prog inside the namespace.
func (n *NS) Command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, prog}, args...)...)
}

// Run runs prog inside the namespace and returns its combined output.
func (n *NS) Run(ctx context.Context, prog string, args ...string) (string, error) {
	out, err := n.Command(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", prog, strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// Listen starts a TCP server on port in the namespace, on all addresses of
// both families; every connection gets "ok\n" and is closed. It stops when
// the test ends.
func (n *NS) Listen(t testing.TB, port int) {
	t.Helper()
	n.serve(t, port, func(c net.Conn) { _, _ = io.WriteString(c, "ok\n") })
}

// ListenEcho starts a TCP echo server on port in the namespace, for tests
// that keep a session open. It stops when the test ends.
func (n *NS) ListenEcho(t testing.TB, port int) {
	t.Helper()
	n.serve(t, port, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		_, _ = io.Copy(c, c)
	})
}

// serve accepts connections on port in the namespace and runs handle on
// each (which closes afterwards) until the test ends.
func (n *NS) serve(t testing.TB, port int, handle func(net.Conn)) {
	t.Helper()
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listening in %s: %v", n.Name, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
}

// PinVictimNeighbor gives the peer a permanent IPv6 neighbor entry for the
// victim: a victim whose INPUT drops everything answers no neighbor
// solicitation, so without it no IPv6 packet would leave the peer.
func (p *Peer) PinVictimNeighbor(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	out, err := p.victim.Run(ctx, "ip", "-o", "link", "show", "dev", p.VictimDev)
	if err != nil {
		t.Fatal(err)
	}
	mac := ""
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "link/ether" && i+1 < len(f) {
			mac = f[i+1]
		}
	}
	if mac == "" {
		t.Fatalf("no MAC for %s in %q", p.VictimDev, out)
	}
	if _, err := p.Run(ctx, "ip", "-6", "neigh", "replace", p.VictimAddr6.String(), "lladdr", mac, "dev", p.Dev, "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
}

// SendUDP sends one datagram from the namespace to addr.
func (n *NS) SendUDP(t testing.TB, to netip.AddrPort, payload []byte) {
	t.Helper()
	err := n.Do(func() error {
		c, err := net.Dial("udp", to.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})
	if err != nil {
		t.Fatalf("sending a datagram from %s to %v: %v", n.Name, to, err)
	}
}

// Dial opens a TCP connection from the namespace to addr:port and reads the
// server's greeting; it fails if that does not happen within timeout.
func (n *NS) Dial(addr netip.Addr, port int, timeout time.Duration) error {
	return n.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		buf := make([]byte, 3)
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("reading greeting: %w", err)
		}
		return nil
	})
}

// DialConn opens a TCP connection from the namespace and returns it.
func (n *NS) DialConn(addr netip.Addr, port int, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		var err error
		c, err = d.Dial("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		return err
	})
	return c, err
}
