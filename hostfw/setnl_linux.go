package hostfw

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
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
	timeout := uint32(timeoutSeconds(e.TTL))
	ne := &netlink.IPSetEntry{
		IP:      net.IP(e.Prefix.Addr().AsSlice()),
		CIDR:    uint8(e.Prefix.Bits()),
		Timeout: &timeout,
		Comment: setComment(e.Origin, e.Reason),
		Replace: replace,
	}
	err := netlink.IpsetAdd(set, ne)
	var ie nl.IPSetError
	if errors.As(err, &ie) && int(ie) == nl.IPSET_ERR_EXIST {
		return errEntryExists
	}
	return ipsetError(err)
}

// diagPeers lists the remote addresses of established TCP sessions to the
// local ports through sock_diag.
func diagPeers(ports []uint16) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagTCP(fam)
		if err != nil {
			return nil, fmt.Errorf("listing TCP sockets: %w", err)
		}
		for _, s := range socks {
			if s.State != unix.BPF_TCP_ESTABLISHED || !slices.Contains(ports, s.ID.SourcePort) {
				continue
			}
			a, ok := netip.AddrFromSlice(s.ID.Destination)
			if !ok {
				continue
			}
			a = a.Unmap()
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out, nil
}
