package guard

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// ipv4UDP builds an IPv4 packet carrying a UDP datagram.
func ipv4UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	udp := udpHeader(sport, dport, payload)
	b := make([]byte, 20, 20+len(udp))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(udp)))
	b[8], b[9] = 64, protoUDP
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return append(b, udp...)
}

// ipv6UDP builds an IPv6 packet carrying a UDP datagram after the given
// extension headers (each 8 bytes, next-header byte filled in).
func ipv6UDP(src, dst netip.Addr, sport, dport uint16, payload []byte, ext ...byte) []byte {
	udp := udpHeader(sport, dport, payload)
	b := make([]byte, 40, 40+8*len(ext)+len(udp))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(8*len(ext)+len(udp)))
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	next := &b[6]
	for _, e := range ext {
		*next = e
		h := make([]byte, 8)
		b = append(b, h...)
		next = &b[len(b)-8]
	}
	*next = protoUDP
	return append(b, udp...)
}

func udpHeader(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func TestParseUDP(t *testing.T) {
	s4, d4 := netip.MustParseAddr("10.99.10.2"), netip.MustParseAddr("10.99.10.1")
	s6, d6 := netip.MustParseAddr("fd99:10::2"), netip.MustParseAddr("fd99:10::1")
	payload := []byte("knock knock")
	v4 := ipv4UDP(s4, d4, 40000, DefaultPort, payload)
	frag := bytes.Clone(v4)
	frag[6] = 0x20 // more fragments
	shortTotal := bytes.Clone(v4)
	binary.BigEndian.PutUint16(shortTotal[2:], 24)
	longUDP := bytes.Clone(v4)
	binary.BigEndian.PutUint16(longUDP[24:], 200)
	tcp := bytes.Clone(v4)
	tcp[9] = 6
	v4opts := ipv4UDP(s4, d4, 40000, DefaultPort, payload)
	v4opts = append(append(append([]byte{}, v4opts[:20]...), 1, 1, 1, 0), v4opts[20:]...) // 4 bytes of options
	v4opts[0] = 0x46
	binary.BigEndian.PutUint16(v4opts[2:], uint16(len(v4opts)))
	padded := append(bytes.Clone(v4), 0, 0, 0, 0) // Ethernet padding after the IP packet

	cases := []struct {
		name string
		b    []byte
		ok   bool
		src  netip.AddrPort
	}{
		{"ipv4", v4, true, netip.AddrPortFrom(s4, 40000)},
		{"ipv4 with options", v4opts, true, netip.AddrPortFrom(s4, 40000)},
		{"ipv4 with link padding", padded, true, netip.AddrPortFrom(s4, 40000)},
		{"ipv6", ipv6UDP(s6, d6, 40001, DefaultPort, payload), true, netip.AddrPortFrom(s6, 40001)},
		{"ipv6 hop-by-hop and dest options", ipv6UDP(s6, d6, 40001, DefaultPort, payload, 0, 60), true, netip.AddrPortFrom(s6, 40001)},
		{"ipv6 fragment header", ipv6UDP(s6, d6, 40001, DefaultPort, payload, 44), false, netip.AddrPort{}},
		{"other port", ipv4UDP(s4, d4, 40000, DefaultPort+1, payload), false, netip.AddrPort{}},
		{"ipv4 fragment", frag, false, netip.AddrPort{}},
		{"total length too short for UDP", shortTotal, false, netip.AddrPort{}},
		{"UDP length beyond the packet", longUDP, false, netip.AddrPort{}},
		{"tcp", tcp, false, netip.AddrPort{}},
		{"truncated ipv4", v4[:19], false, netip.AddrPort{}},
		{"truncated ipv6", ipv6UDP(s6, d6, 1, DefaultPort, payload)[:50], false, netip.AddrPort{}},
		{"empty", nil, false, netip.AddrPort{}},
		{"version 5", append([]byte{0x50}, v4[1:]...), false, netip.AddrPort{}},
	}
	for _, c := range cases {
		p, ok := ParseUDP(c.b, DefaultPort)
		if ok != c.ok {
			t.Errorf("%s: ok = %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if p.Src != c.src || p.Dst.Port() != DefaultPort || !bytes.Equal(p.Payload, payload) {
			t.Errorf("%s: got %v → %v %q", c.name, p.Src, p.Dst, p.Payload)
		}
	}
}
