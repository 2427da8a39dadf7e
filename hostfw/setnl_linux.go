package hostfw

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// setAdder puts entries into ipset sets over netlink, without a process:
// one entry per message for a single block, many per message in bulk.
type setAdder interface {
	add(set string, e Entry, replace bool) error
	addAll(set string, entries []Entry) error
	count(set string) (int, error)
	members(set string) (map[netip.Prefix]struct{}, error)
}

var (
	errEntryExists = errors.New("entry already in set")
	errNoSet       = errors.New("set does not exist")
)

// netlinkSets talks to the kernel's ipset netlink interface in the network
// namespace of the calling thread.
type netlinkSets struct{}

func (netlinkSets) add(set string, e Entry, replace bool) error {
	flags := uint16(unix.NLM_F_ACK)
	if !replace {
		flags |= unix.NLM_F_EXCL // an entry there already is an error: new vs refreshed
	}
	b := appendEntryData(ipsetRequest(nil, set), e)
	return ipsetError(ipsetDo(nl.IPSET_CMD_ADD, flags, b, nil))
}

// diagPeers lists the remote addresses of established TCP sessions to the
// local ports through sock_diag, filtered in the kernel (state and port),
// both families in one walk of the established table.
func diagPeers(ports []uint16) ([]netip.Addr, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	socks, err := diagTCP(1<<tcpEstablished, ports)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, s := range socks {
		// The kernel filtered already; checked again, so the answer is
		// exact whatever the kernel applied.
		if s.state != tcpEstablished || !slices.Contains(ports, s.sport) || !s.dst.IsValid() {
			continue
		}
		if !slices.Contains(out, s.dst) {
			out = append(out, s.dst)
		}
	}
	return out, nil
}
