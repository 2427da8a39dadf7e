package guard

import (
	"encoding/binary"
	"net/netip"
)

// Packet is a UDP datagram seen by the guard.
type Packet struct {
	Src, Dst netip.AddrPort
	Payload  []byte
}

const (
	protoUDP      = 17
	maxExtHeaders = 8
)

// ParseUDP parses an IPv4 or IPv6 packet, starting at the IP header, and
// returns the UDP datagram it carries to dstPort. ok is false for anything
// else: other protocols or ports, fragments, and headers or lengths that do
// not fit the bytes. Payload aliases b.
func ParseUDP(b []byte, dstPort uint16) (p Packet, ok bool) {
	if len(b) < 1 {
		return Packet{}, false
	}
	var udp []byte
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return Packet{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl || total > len(b) {
			return Packet{}, false
		}
		if b[9] != protoUDP || binary.BigEndian.Uint16(b[6:])&0x3fff != 0 { // MF or an offset: a fragment
			return Packet{}, false
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		udp = b[ihl:total]
	case 6:
		if len(b) < 40 {
			return Packet{}, false
		}
		end := 40 + int(binary.BigEndian.Uint16(b[4:]))
		if end > len(b) { // a jumbogram (length 0 with a hop-by-hop option) is not a knock either
			return Packet{}, false
		}
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, off := b[6], 40
		for i := 0; ; i++ {
			if next == protoUDP {
				break
			}
			// Hop-by-hop, routing and destination options; anything else
			// (a fragment header included) is not a knock.
			if i == maxExtHeaders || (next != 0 && next != 43 && next != 60) || off+8 > end {
				return Packet{}, false
			}
			next, off = b[off], off+(int(b[off+1])+1)*8
		}
		if off > end {
			return Packet{}, false
		}
		udp = b[off:end]
	default:
		return Packet{}, false
	}
	if len(udp) < 8 || binary.BigEndian.Uint16(udp[2:]) != dstPort {
		return Packet{}, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < 8 || ulen > len(udp) {
		return Packet{}, false
	}
	return Packet{
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:])),
		Dst:     netip.AddrPortFrom(dst, dstPort),
		Payload: udp[8:ulen],
	}, true
}
