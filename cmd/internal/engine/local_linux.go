package engine

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// hostAddrs reads every interface address and default gateway of the
// network namespace the process runs in.
func hostAddrs() ([]hostAddr, []netip.Addr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, nil, err
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, nil, err
	}
	var out []hostAddr
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, hostAddr{addr: ip, dev: names[a.LinkIndex]})
		}
	}
	rs, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return out, nil, err
	}
	var gws []netip.Addr
	for _, r := range rs {
		if !isDefault(r.Dst) {
			continue
		}
		if ip, ok := netip.AddrFromSlice(r.Gw); ok {
			gws = append(gws, ip)
		}
		for _, nh := range r.MultiPath {
			if ip, ok := netip.AddrFromSlice(nh.Gw); ok {
				gws = append(gws, ip)
			}
		}
	}
	return out, gws, nil
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0
}
