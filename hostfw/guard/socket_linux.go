//go:build linux

package guard

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is an AF_PACKET socket that yields the UDP datagrams to one port
// arriving on any device of the network namespace it was opened in, before
// netfilter sees them.
type Socket struct {
	f    *os.File
	port uint16
	buf  []byte
}

// skfAdProtocol is SKF_AD_OFF + SKF_AD_PROTOCOL: classic BPF loads from it
// return the packet's ethertype (skb->protocol) in host order.
const skfAdProtocol = 0xfffff000

// udpPortFilter is a classic BPF program for a SOCK_DGRAM packet socket
// (data starts at the IP header) that passes unfragmented IPv4 UDP and IPv6
// UDP without extension headers to port.
func udpPortFilter(port uint16) []unix.SockFilter {
	const (
		ldAbsH  = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
		ldAbsB  = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		ldIndH  = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
		ldxMsh  = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH
		jeq     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset    = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret     = unix.BPF_RET | unix.BPF_K
		snapLen = 1 << 18
	)
	p := uint32(port)
	return []unix.SockFilter{
		/* 0 */ {Code: ldAbsH, K: skfAdProtocol},
		/* 1 */ {Code: jeq, Jt: 0, Jf: 7, K: unix.ETH_P_IP}, // → 2 (IPv4) or 9
		/* 2 */ {Code: ldAbsB, K: 9}, // protocol
		/* 3 */ {Code: jeq, Jt: 0, Jf: 11, K: protoUDP}, // → 4 or drop
		/* 4 */ {Code: ldAbsH, K: 6}, // flags and fragment offset
		/* 5 */ {Code: jset, Jt: 9, Jf: 0, K: 0x3fff}, // a fragment → drop
		/* 6 */ {Code: ldxMsh, K: 0}, // X = header length
		/* 7 */ {Code: ldIndH, K: 2}, // UDP destination port
		/* 8 */ {Code: jeq, Jt: 5, Jf: 6, K: p}, // → accept or drop
		/* 9 */ {Code: jeq, Jt: 0, Jf: 5, K: unix.ETH_P_IPV6}, // → 10 or drop
		/* 10 */ {Code: ldAbsB, K: 6}, // next header
		/* 11 */ {Code: jeq, Jt: 0, Jf: 3, K: protoUDP},
		/* 12 */ {Code: ldAbsH, K: 42}, // UDP destination port
		/* 13 */ {Code: jeq, Jt: 0, Jf: 1, K: p},
		/* 14 accept */ {Code: ret, K: snapLen},
		/* 15 drop */ {Code: ret, K: 0},
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Listen opens a packet socket for UDP datagrams to port in the current
// network namespace. It needs root or CAP_NET_RAW.
func Listen(port uint16) (*Socket, error) {
	// Protocol 0 receives nothing until bound: attach the filter first, so
	// no unfiltered packet is ever queued.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("opening a packet socket: %w (needs root or CAP_NET_RAW)", err)
		}
		return nil, fmt.Errorf("opening a packet socket: %w", err)
	}
	prog := udpPortFilter(port)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: unsafe.SliceData(prog)}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attaching the knock filter to the packet socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding the packet socket to all devices: %w", err)
	}
	return &Socket{f: os.NewFile(uintptr(fd), "guard-packet-socket"), port: port, buf: make([]byte, 1<<16)}, nil
}

// ReadPacket blocks until a UDP datagram to the port arrives on a device of
// this host (frames the host sends are skipped) and returns it.
func (s *Socket) ReadPacket() (Packet, error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return Packet{}, fmt.Errorf("reading the packet socket: %w", err)
	}
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), s.buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return Packet{}, fmt.Errorf("reading the packet socket: %w", err)
		}
		if errors.Is(rerr, unix.EINTR) {
			continue
		}
		if rerr != nil {
			return Packet{}, fmt.Errorf("reading the packet socket: %w", rerr)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype != unix.PACKET_HOST {
			continue // our own outgoing frames, or frames for other hosts
		}
		p, ok := ParseUDP(s.buf[:n], s.port)
		if !ok {
			continue
		}
		p.Payload = append([]byte(nil), p.Payload...)
		return p, nil
	}
}

// Close closes the socket; a blocked ReadPacket returns an error.
func (s *Socket) Close() error { return s.f.Close() }

// passed is how many frames passed the kernel filter since the last call
// (PACKET_STATISTICS, which resets on reading).
func (s *Socket) passed() (uint32, error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st *unix.TpacketStats
	var serr error
	if err := rc.Control(func(fd uintptr) {
		st, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("reading packet socket statistics: %w", serr)
	}
	return st.Packets, nil
}
