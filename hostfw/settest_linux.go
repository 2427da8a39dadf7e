package hostfw

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func (netlinkSets) test(set string, p netip.Prefix) (bool, error) {
	ok, err := netlink.IpsetTest(set, &netlink.IPSetEntry{IP: net.IP(p.Addr().AsSlice()), CIDR: uint8(p.Bits())})
	if errors.Is(err, unix.ENOENT) {
		return false, nil // no set: nothing in it
	}
	return ok, err
}
