package engine

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
)

// hostAddrs reads every interface address and the default gateways (of the
// main routing table) of the network namespace the process runs in: three
// rtnetlink dumps through the standard library, which reads them into one
// page-sized buffer.
func hostAddrs() ([]hostAddr, []netip.Addr, error) {
	names := map[int32]string{}
	err := ribEach(syscall.RTM_GETLINK, syscall.RTM_NEWLINK, func(m syscall.NetlinkMessage) error {
		if len(m.Data) < syscall.SizeofIfInfomsg {
			return fmt.Errorf("a link message of %d bytes", len(m.Data))
		}
		index := int32(binary.NativeEndian.Uint32(m.Data[4:8]))
		return eachAttr(m.Data[syscall.SizeofIfInfomsg:], func(typ uint16, v []byte) {
			if typ == syscall.IFLA_IFNAME {
				names[index] = cString(v)
			}
		})
	})
	if err != nil {
		return nil, nil, err
	}
	var out []hostAddr
	err = ribEach(syscall.RTM_GETADDR, syscall.RTM_NEWADDR, func(m syscall.NetlinkMessage) error {
		if len(m.Data) < syscall.SizeofIfAddrmsg {
			return fmt.Errorf("an address message of %d bytes", len(m.Data))
		}
		index := int32(binary.NativeEndian.Uint32(m.Data[4:8]))
		// IPv4 sends the local address as IFA_LOCAL (IFA_ADDRESS is the
		// peer of a point-to-point link); IPv6 sends IFA_ADDRESS alone.
		var local, address netip.Addr
		err := eachAttr(m.Data[syscall.SizeofIfAddrmsg:], func(typ uint16, v []byte) {
			a, ok := netip.AddrFromSlice(v)
			switch {
			case !ok:
			case typ == syscall.IFA_LOCAL:
				local = a
			case typ == syscall.IFA_ADDRESS:
				address = a
			}
		})
		if local.IsValid() {
			address = local
		}
		if address.IsValid() {
			out = append(out, hostAddr{addr: address, dev: names[index]})
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var gws []netip.Addr
	err = ribEach(syscall.RTM_GETROUTE, syscall.RTM_NEWROUTE, func(m syscall.NetlinkMessage) error {
		if len(m.Data) < syscall.SizeofRtMsg {
			return fmt.Errorf("a route message of %d bytes", len(m.Data))
		}
		dstLen, table, flags := m.Data[1], uint32(m.Data[4]), binary.NativeEndian.Uint32(m.Data[8:12])
		var route []netip.Addr
		err := eachAttr(m.Data[syscall.SizeofRtMsg:], func(typ uint16, v []byte) {
			switch typ {
			case syscall.RTA_TABLE:
				if len(v) == 4 {
					table = binary.NativeEndian.Uint32(v)
				}
			case syscall.RTA_GATEWAY:
				if a, ok := netip.AddrFromSlice(v); ok {
					route = append(route, a)
				}
			case syscall.RTA_MULTIPATH:
				route = append(route, nextHops(v)...)
			}
		})
		if dstLen == 0 && table == syscall.RT_TABLE_MAIN && flags&syscall.RTM_F_CLONED == 0 {
			gws = append(gws, route...)
		}
		return err
	})
	if err != nil {
		return out, nil, err
	}
	return out, gws, nil
}

// ribEach dumps one kind of rtnetlink object of both families and calls fn
// with every message of type want.
func ribEach(req int, want uint16, fn func(syscall.NetlinkMessage) error) error {
	tab, err := syscall.NetlinkRIB(req, syscall.AF_UNSPEC)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(tab)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type != want {
			continue
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// nextHops returns the gateways of an RTA_MULTIPATH attribute: struct
// rtnexthop records, each followed by its own attributes.
func nextHops(b []byte) []netip.Addr {
	var out []netip.Addr
	for len(b) >= syscall.SizeofRtNexthop {
		l := int(binary.NativeEndian.Uint16(b))
		if l < syscall.SizeofRtNexthop || l > len(b) {
			break
		}
		_ = eachAttr(b[syscall.SizeofRtNexthop:l], func(typ uint16, v []byte) {
			if a, ok := netip.AddrFromSlice(v); ok && typ == syscall.RTA_GATEWAY {
				out = append(out, a)
			}
		})
		b = b[min(len(b), (l+3)&^3):]
	}
	return out
}

// eachAttr calls fn with the type and payload of every rtnetlink attribute
// in b.
func eachAttr(b []byte, fn func(typ uint16, v []byte)) error {
	for len(b) >= syscall.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b))
		if l < syscall.SizeofRtAttr || l > len(b) {
			return fmt.Errorf("an attribute of %d bytes in %d", l, len(b))
		}
		fn(binary.NativeEndian.Uint16(b[2:])&^(1<<15|1<<14), b[syscall.SizeofRtAttr:l])
		b = b[min(len(b), (l+3)&^3):]
	}
	return nil
}

// cString is a netlink string attribute without its terminating NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
