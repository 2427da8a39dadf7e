package hostfw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file is banshee's one door to netlink (ipset, nf_tables, sock_diag):
// a request on its own socket, answers read into a buffer kept between
// requests. (The netlink library allocates a fresh 64 KiB buffer for every
// read, which a short-lived command pays as 16 new pages each time.)

// nlBufs keeps receive buffers: a dump message is at most 32 KiB, and a
// failed request comes back echoed in the error.
var nlBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

var nlSeq atomic.Uint32

// errDumpInterrupted means the kernel's table changed during a dump: what
// was read may be inconsistent.
var errDumpInterrupted = errors.New("the kernel's table changed while it was read")

// nlConn is a netlink socket of one protocol in the network namespace of
// the thread that opened it.
type nlConn struct{ fd int }

func nlOpen(proto int) (*nlConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	// A kernel that never answers must not hang banshee.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 30}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &nlConn{fd: fd}, nil
}

func (c *nlConn) close() { unix.Close(c.fd) }

// nlRequest sends one request on a socket of its own (see nlConn.do).
func nlRequest(proto int, typ, flags uint16, payload []byte, each func(msg []byte) bool) error {
	c, err := nlOpen(proto)
	if err != nil {
		return err
	}
	defer c.close()
	return c.do(typ, flags, payload, each)
}

// do sends one request (message type typ, flags besides NLM_F_REQUEST,
// payload) and calls each with the payload of every answer until the
// kernel says done (a dump) or acknowledges (NLM_F_ACK). An error answer
// is returned as a syscall.Errno. When each returns false the rest is read
// and dropped.
func (c *nlConn) do(typ, flags uint16, payload []byte, each func(msg []byte) bool) error {
	seq := nlSeq.Add(1)
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(payload))
	msg = append(msg, payload...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	bp := nlBufs.Get().(*[]byte)
	defer nlBufs.Put(bp)
	buf := *bp
	stopped, interrupted := false, false
	for {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			mtyp := binary.NativeEndian.Uint16(b[4:])
			mflags := binary.NativeEndian.Uint16(b[6:])
			mseq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("netlink: a message of %d bytes in a read of %d", l, len(b))
			}
			m := b[unix.NLMSG_HDRLEN:l]
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
			if mseq != seq {
				continue
			}
			if mflags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch mtyp {
			case unix.NLMSG_NOOP:
				continue
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				if len(m) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m)); errno < 0 {
						return syscall.Errno(-errno)
					}
				}
				if interrupted {
					return errDumpInterrupted
				}
				return nil
			}
			if !stopped && !each(m) {
				stopped = true
			}
		}
	}
}
