package hostfw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// This file asks the kernel for TCP sockets through sock_diag with the
// filtering done in the kernel: only the states asked for (listening
// sockets live in their own small table, which a listening-only dump walks
// alone) and only the local ports asked for. Every dump of established
// sockets walks the whole established hash table, every namespace's
// buckets, so banshee asks once for both families.

// tcpSock is what banshee reads of one socket.
type tcpSock struct {
	state uint8
	sport uint16
	dst   netip.Addr // the remote address (unmapped)
	inode uint32
}

// TCP states and sock_diag constants that x/sys/unix does not name.
const (
	tcpEstablished = 1
	tcpListen      = 10

	tcpdiagGetsock      = 18 // TCPDIAG_GETSOCK: the compat request, both families in one walk
	inetDiagReqBytecode = 1  // INET_DIAG_REQ_BYTECODE
	inetDiagBCJmp       = 1  // INET_DIAG_BC_JMP
	inetDiagBCSEq       = 11 // INET_DIAG_BC_S_EQ

	sizeofInetDiagMsg = 72 // struct inet_diag_msg
)

// diagTCP returns the TCP sockets of the calling thread's network
// namespace, both families, that are in one of the states (a mask of
// 1<<state) and, when sports is not empty, whose local port is one of
// sports.
func diagTCP(states uint32, sports []uint16) ([]tcpSock, error) {
	bc := portFilter(sports)
	socks, err := diagTCPCompat(states, bc)
	if err == nil {
		return socks, nil
	}
	// A kernel without the compat request: one dump per family.
	socks = nil
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		s, ferr := diagTCPFamily(fam, states, bc)
		if ferr != nil {
			return nil, fmt.Errorf("listing TCP sockets: %w", ferr)
		}
		socks = append(socks, s...)
	}
	return socks, nil
}

// sockid is an empty struct inet_diag_sockid: no socket named, the dump
// filters by states and bytecode only.
var sockid [48]byte

// diagTCPCompat dumps both families in one walk (TCPDIAG_GETSOCK, whose
// request the kernel treats as family AF_UNSPEC).
func diagTCPCompat(states uint32, bc []byte) ([]tcpSock, error) {
	b := make([]byte, 0, 60+len(bc)+4)
	b = append(b, unix.AF_INET, 0, 0, 0) // family, src_len, dst_len, ext
	b = append(b, sockid[:]...)
	b = binary.NativeEndian.AppendUint32(b, states)
	b = binary.NativeEndian.AppendUint32(b, 0) // dbs
	if bc != nil {
		b = appendAttr(b, inetDiagReqBytecode, bc...)
	}
	return diagExec(tcpdiagGetsock, b)
}

// diagTCPFamily dumps one family (SOCK_DIAG_BY_FAMILY).
func diagTCPFamily(fam uint8, states uint32, bc []byte) ([]tcpSock, error) {
	b := make([]byte, 0, 56+len(bc)+4)
	b = append(b, fam, unix.IPPROTO_TCP, 0, 0) // family, protocol, ext, pad
	b = binary.NativeEndian.AppendUint32(b, states)
	b = append(b, sockid[:]...)
	if bc != nil {
		b = appendAttr(b, inetDiagReqBytecode, bc...)
	}
	return diagExec(unix.SOCK_DIAG_BY_FAMILY, b)
}

func diagExec(typ uint16, payload []byte) ([]tcpSock, error) {
	var out []tcpSock
	var perr error
	err := nlRequest(unix.NETLINK_INET_DIAG, typ, unix.NLM_F_DUMP, payload, func(msg []byte) bool {
		s, err := parseDiagMsg(msg)
		if err != nil {
			perr = err
			return false
		}
		out = append(out, s)
		return true
	})
	if err == nil {
		err = perr
	}
	return out, err
}

// parseDiagMsg reads a struct inet_diag_msg.
func parseDiagMsg(m []byte) (tcpSock, error) {
	if len(m) < sizeofInetDiagMsg {
		return tcpSock{}, errors.New("reading sock_diag: a socket message too short")
	}
	s := tcpSock{
		state: m[1],
		sport: binary.BigEndian.Uint16(m[4:6]),
		inode: binary.NativeEndian.Uint32(m[68:72]),
	}
	switch m[0] {
	case unix.AF_INET:
		s.dst = netip.AddrFrom4([4]byte(m[24:28]))
	case unix.AF_INET6:
		s.dst = netip.AddrFrom16([16]byte(m[24:40])).Unmap()
	default:
		return tcpSock{}, fmt.Errorf("reading sock_diag: a socket of family %d", m[0])
	}
	return s, nil
}

// portFilter is sock_diag bytecode that accepts a socket whose local port
// is one of ports: "sport = p1 or sport = p2 ...", built as ss builds an
// or (each comparison either jumps past the rest, accepting, or falls to
// the next; the last one's miss jumps past the end, rejecting). nil for no
// ports (no filter).
func portFilter(ports []uint16) []byte {
	if len(ports) == 0 {
		return nil
	}
	// Built from the last comparison back: each earlier one is followed by
	// a jump over what comes after it.
	var rest []byte
	for i := len(ports) - 1; i >= 0; i-- {
		var b []byte
		b = appendBCOp(b, inetDiagBCSEq, 8, 12) // yes: the op after; no: skip it
		b = appendBCOp(b, 0, 0, ports[i])       // the port, in the second op's "no"
		if rest != nil {
			b = appendBCOp(b, inetDiagBCJmp, 4, uint16(len(rest)+4))
		}
		rest = append(b, rest...)
	}
	return rest
}

// appendBCOp appends a struct inet_diag_bc_op.
func appendBCOp(b []byte, code, yes uint8, no uint16) []byte {
	b = append(b, code, yes)
	return binary.NativeEndian.AppendUint16(b, no)
}
