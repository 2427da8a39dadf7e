//go:build linux

package hostfw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// This file talks to the kernel's ipset netlink interface in bulk: many
// entries per message, the way "ipset restore" would if it batched, and the
// one listing a bulk block takes of a set before it adds to it.

// batchBytes is the most attribute bytes one add message carries. The
// entries sit in one nested attribute, whose length is 16 bits, and a
// failed request comes back echoed in the kernel's error, which must fit
// the 64 KiB banshee reads at once (netlink_linux.go).
const batchBytes = 32 << 10

// ipset flags and attributes that the netlink library does not name.
const (
	ipsetFlagListHeader = 1 << 2 // IPSET_FLAG_LIST_HEADER: list the header only
	ipsetErrPrivate     = 4096   // IPSET_ERR_PRIVATE: first ipset-specific errno
)

// ipsetDumpFlags are the flags "ipset list" asks with.
const ipsetDumpFlags = unix.NLM_F_ACK | unix.NLM_F_ROOT | unix.NLM_F_MATCH | unix.NLM_F_DUMP

// nlAttr is a netlink attribute being built in a byte slice.
type nlAttr int

// beginAttr appends the header of an attribute whose length is set by end.
func beginAttr(b []byte, typ uint16) ([]byte, nlAttr) {
	start := len(b)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ)
	return b, nlAttr(start)
}

// end sets the attribute's length and pads b to 4 bytes.
func (a nlAttr) end(b []byte) []byte {
	binary.NativeEndian.PutUint16(b[a:], uint16(len(b)-int(a)))
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendAttr(b []byte, typ uint16, payload ...byte) []byte {
	b, a := beginAttr(b, typ)
	b = append(b, payload...)
	return a.end(b)
}

func appendAttrU32(b []byte, typ uint16, v uint32) []byte {
	return appendAttr(b, typ|nl.NLA_F_NET_BYTEORDER, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// ipsetRequest appends the start of an ipset netlink message for set to
// b: the netfilter header, the protocol version and the set's name.
func ipsetRequest(b []byte, set string) []byte {
	b = append(b, unix.AF_INET, nl.NFNETLINK_V0, 0, 0) // nfgenmsg
	b = appendAttr(b, nl.IPSET_ATTR_PROTOCOL, nl.IPSET_PROTOCOL)
	return appendAttr(b, nl.IPSET_ATTR_SETNAME, append([]byte(set), 0)...)
}

// ipsetDo sends an ipset request of cmd and passes every answer to each
// (nil: none expected beyond the acknowledgement).
func ipsetDo(cmd int, flags uint16, payload []byte, each func(msg []byte) bool) error {
	if each == nil {
		each = func([]byte) bool { return true }
	}
	return nlRequest(unix.NETLINK_NETFILTER, ipsetType(cmd), flags, payload, each)
}

// ipsetType is the netlink message type of an ipset command.
func ipsetType(cmd int) uint16 { return uint16(cmd | unix.NFNL_SUBSYS_IPSET<<8) }

// appendEntryData appends one entry as the DATA attribute of an add: the
// address, its prefix length, the timeout and the comment banshee writes.
func appendEntryData(b []byte, e Entry) []byte {
	b, data := beginAttr(b, nl.IPSET_ATTR_DATA|nl.NLA_F_NESTED)
	b = appendPrefixAttrs(b, e.Prefix)
	b = appendAttrU32(b, nl.IPSET_ATTR_TIMEOUT, uint32(timeoutSeconds(e.TTL)))
	if c := setComment(e.Origin, e.Reason); c != "" {
		b = appendAttr(b, nl.IPSET_ATTR_COMMENT, append([]byte(c), 0)...)
	}
	return data.end(b)
}

// appendPrefixAttrs appends the address and prefix length of p as the
// attributes of an entry.
func appendPrefixAttrs(b []byte, p netip.Prefix) []byte {
	b, ip := beginAttr(b, nl.IPSET_ATTR_IP|nl.NLA_F_NESTED)
	if addr := p.Addr(); addr.Is4() {
		a := addr.As4()
		b = appendAttr(b, nl.IPSET_ATTR_IPADDR_IPV4|nl.NLA_F_NET_BYTEORDER, a[:]...)
	} else {
		a := addr.As16()
		b = appendAttr(b, nl.IPSET_ATTR_IPADDR_IPV6|nl.NLA_F_NET_BYTEORDER, a[:]...)
	}
	b = ip.end(b)
	return appendAttr(b, nl.IPSET_ATTR_CIDR, byte(p.Bits()))
}

// addAll puts entries, all of set's family, into set: as many entries per
// message as fit in batchBytes, one kernel round trip per message. An entry
// already in the set gets the new timeout and comment, as with
// "ipset -exist add". On an error the entries of earlier messages are in.
func (netlinkSets) addAll(set string, entries []Entry) error {
	c, err := nlOpen(unix.NETLINK_NETFILTER)
	if err != nil {
		return ipsetError(err)
	}
	defer c.close()
	var one []byte
	buf := make([]byte, 0, batchBytes+1024)
	for len(entries) > 0 {
		b := ipsetRequest(buf[:0], set)
		// Without NLM_F_EXCL the kernel refreshes what exists. A list of
		// entries comes with a line number (the kernel's rule).
		b = appendAttrU32(b, nl.IPSET_ATTR_LINENO, 0)
		b, adt := beginAttr(b, nl.IPSET_ATTR_ADT|nl.NLA_F_NESTED)
		n := 0
		for n < len(entries) {
			one = appendEntryData(one[:0], entries[n])
			if n > 0 && len(b)+len(one) > batchBytes {
				break
			}
			b = append(b, one...)
			n++
		}
		b = adt.end(b)
		if err := c.do(ipsetType(nl.IPSET_CMD_ADD), unix.NLM_F_ACK, b, func([]byte) bool { return true }); err != nil {
			return ipsetError(err)
		}
		entries = entries[n:]
	}
	return nil
}

// ipsetError maps a netlink error of ipset to banshee's errors.
func ipsetError(err error) error {
	var errno unix.Errno
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return errNoSet
	case errors.Is(err, unix.EPERM):
		return ErrNotPermitted
	case errors.As(err, &errno) && int(errno) >= ipsetErrPrivate:
		if int(errno) == nl.IPSET_ERR_EXIST {
			return errEntryExists
		}
		return nl.IPSetError(uintptr(errno))
	}
	return err
}

// count returns how many entries set holds (expired ones the kernel has not
// yet collected included), from its header alone.
func (netlinkSets) count(set string) (int, error) {
	b := ipsetRequest(nil, set)
	b = appendAttrU32(b, nl.IPSET_ATTR_FLAGS, ipsetFlagListHeader)
	n, found := 0, false
	err := ipsetDo(nl.IPSET_CMD_LIST, ipsetDumpFlags, b, func(msg []byte) bool {
		for typ, v := range attrs(msg, 4) {
			if typ != nl.IPSET_ATTR_DATA {
				continue
			}
			for typ, v := range attrs(v, 0) {
				if typ == nl.IPSET_ATTR_ELEMENTS && len(v) == 4 {
					n, found = int(binary.BigEndian.Uint32(v)), true
				}
			}
		}
		return true
	})
	if err != nil {
		return 0, ipsetError(err)
	}
	if !found {
		return 0, fmt.Errorf("reading the header of set %s: the kernel did not say how many entries it holds", set)
	}
	return n, nil
}

// listDump walks one netlink dump of set: fn gets each entry's prefix and
// its attributes (expired entries are left out by the kernel).
func listDump(set string, fn func(p netip.Prefix, data []byte)) error {
	var perr error
	err := ipsetDo(nl.IPSET_CMD_LIST, ipsetDumpFlags, ipsetRequest(nil, set), func(msg []byte) bool {
		for typ, v := range attrs(msg, 4) {
			if typ != nl.IPSET_ATTR_ADT {
				continue
			}
			for typ, v := range attrs(v, 0) {
				if typ != nl.IPSET_ATTR_DATA {
					continue
				}
				p, err := entryPrefix(v)
				if err != nil {
					perr = fmt.Errorf("listing set %s: %w", set, err)
					return false
				}
				fn(p, v)
			}
		}
		return true
	})
	if err != nil {
		return ipsetError(err)
	}
	return perr
}

// members lists the prefixes set holds now, in one dump.
func (netlinkSets) members(set string) (map[netip.Prefix]struct{}, error) {
	out := map[netip.Prefix]struct{}{}
	err := listDump(set, func(p netip.Prefix, _ []byte) { out[p] = struct{}{} })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// entries lists the entries set holds now with their timeout and comment,
// as "ipset save" prints them, from one netlink dump and without a
// process. keep picks the prefixes wanted: the others are passed over
// without building an Entry.
func (netlinkSets) entries(set string, now time.Time, keep func(netip.Prefix) bool) ([]Entry, error) {
	var out []Entry
	err := listDump(set, func(p netip.Prefix, data []byte) {
		if !keep(p) {
			return
		}
		e := Entry{Prefix: p}
		for typ, v := range attrs(data, 0) {
			switch {
			case typ == nl.IPSET_ATTR_TIMEOUT && len(v) == 4:
				if secs := binary.BigEndian.Uint32(v); secs > 0 {
					e.TTL = time.Duration(secs) * time.Second
					e.ExpiresAt = now.Add(e.TTL).Truncate(time.Second)
				}
			case typ == nl.IPSET_ATTR_COMMENT:
				e.Origin, e.Reason = parseSetComment(cString(v))
			}
		}
		out = append(out, e)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// entryPrefix reads the address and prefix length of a listed entry.
func entryPrefix(data []byte) (netip.Prefix, error) {
	var addr netip.Addr
	bits := -1
	for typ, v := range attrs(data, 0) {
		switch typ {
		case nl.IPSET_ATTR_IP:
			for typ, v := range attrs(v, 0) {
				switch {
				case typ == nl.IPSET_ATTR_IPADDR_IPV4 && len(v) == 4:
					addr = netip.AddrFrom4([4]byte(v))
				case typ == nl.IPSET_ATTR_IPADDR_IPV6 && len(v) == 16:
					addr = netip.AddrFrom16([16]byte(v))
				}
			}
		case nl.IPSET_ATTR_CIDR:
			if len(v) == 1 {
				bits = int(v[0])
			}
		}
	}
	if !addr.IsValid() {
		return netip.Prefix{}, errors.New("an entry without an address")
	}
	if bits < 0 {
		bits = addr.BitLen()
	}
	return addr.Prefix(bits)
}

// attrs iterates over the netlink attributes in b from offset skip on,
// yielding each one's type (flags cleared) and payload. It stops at the
// first malformed attribute.
func attrs(b []byte, skip int) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		if skip > len(b) {
			return
		}
		b := b[skip:]
		for len(b) >= 4 {
			l := int(binary.NativeEndian.Uint16(b))
			typ := binary.NativeEndian.Uint16(b[2:]) & nl.NLA_TYPE_MASK
			if l < 4 || l > len(b) {
				return
			}
			if !yield(typ, b[4:l]) {
				return
			}
			l = (l + 3) &^ 3
			if l >= len(b) {
				return
			}
			b = b[l:]
		}
	}
}
