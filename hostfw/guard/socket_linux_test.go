//go:build linux

package guard

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// dropAll makes the namespace's INPUT drop everything, in both families and
// both iptables backends.
func dropAll(t *testing.T, ns *nstest.NS) {
	t.Helper()
	for _, tool := range []string{"iptables-nft", "ip6tables-nft", "iptables-legacy", "ip6tables-legacy"} {
		if _, err := ns.Run(context.Background(), tool, "-P", "INPUT", "DROP"); err != nil {
			if strings.Contains(err.Error(), "executable file not found") {
				continue
			}
			t.Fatal(err)
		}
	}
}

func TestSocketSeesKnocksThatINPUTDrops(t *testing.T) {
	n := nstest.New(t, "peer")
	p := n.Peers["peer"]
	dropAll(t, n.Victim)
	p.PinVictimNeighbor(t)

	const port = 40123
	var s *Socket
	if err := n.Victim.Do(func() error {
		var err error
		s, err = Listen(port)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	pkts := make(chan Packet, 16)
	go func() {
		defer close(pkts)
		for {
			pk, err := s.ReadPacket()
			if err != nil {
				return
			}
			pkts <- pk
		}
	}()
	t.Cleanup(func() { _ = s.Close() })

	next := func(what string) Packet {
		t.Helper()
		select {
		case pk, ok := <-pkts:
			if !ok {
				t.Fatalf("%s: socket closed", what)
			}
			return pk
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no packet within 5s", what)
		}
		return Packet{}
	}

	if err := p.Dial(p.VictimAddr4, 8080, 300*time.Millisecond); err == nil {
		t.Fatal("INPUT does not drop: the test would prove nothing")
	}
	for _, tc := range []struct{ src, dst netip.Addr }{{p.Addr4, p.VictimAddr4}, {p.Addr6, p.VictimAddr6}} {
		payload := []byte("knock over " + tc.dst.String())
		p.NS.SendUDP(t, netip.AddrPortFrom(tc.dst, port+1), []byte("other port")) // filtered out
		p.NS.SendUDP(t, netip.AddrPortFrom(tc.dst, port), payload)
		pk := next(tc.dst.String())
		if pk.Src.Addr() != tc.src || pk.Dst != netip.AddrPortFrom(tc.dst, port) || !bytes.Equal(pk.Payload, payload) {
			t.Fatalf("got %v → %v %q, want %v → %v:%d %q", pk.Src, pk.Dst, pk.Payload, tc.src, tc.dst, port, payload)
		}
	}
	// The kernel filter let through only the two datagrams to the port, not
	// the ones to the next port nor the TCP and neighbor traffic.
	if n, err := s.passed(); err != nil || n != 2 {
		t.Fatalf("%d frames passed the kernel filter (%v), want 2", n, err)
	}
	// Datagrams the victim sends itself over loopback are seen once (the
	// outgoing copy is skipped).
	n.Victim.SendUDP(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), []byte("local"))
	if pk := next("loopback"); string(pk.Payload) != "local" {
		t.Fatalf("loopback: %q", pk.Payload)
	}
	n.Victim.SendUDP(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), []byte("second"))
	if pk := next("loopback again"); string(pk.Payload) != "second" {
		t.Fatalf("loopback seen twice or out of order: %q", pk.Payload)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-pkts:
		if ok {
			t.Fatal("unexpected packet after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadPacket did not return after Close")
	}
}
