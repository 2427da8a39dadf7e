package hostfw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file answers "does INPUT jump to banshee's chain?" for the legacy
// backend without starting iptables: the filter table as the kernel holds
// it (the x_tables blob iptables-legacy itself reads, IPT_SO_GET_ENTRIES),
// read the way "iptables -C INPUT -j CHAIN" compares.

// x_tables constants and sizes (linux/netfilter_ipv4/ip_tables.h,
// linux/netfilter_ipv6/ip6_tables.h, linux/netfilter/x_tables.h).
const (
	soGetInfo        = 64 // IPT_SO_GET_INFO, IP6T_SO_GET_INFO
	soGetEntries     = 65 // IPT_SO_GET_ENTRIES, IP6T_SO_GET_ENTRIES
	hookLocalIn      = 1  // NF_INET_LOCAL_IN: the INPUT chain
	sizeofGetinfo    = 84 // struct ipt_getinfo
	entriesHeader    = 40 // offsetof(struct ipt_get_entries, entrytable)
	sizeofIPTEntry   = 112
	sizeofIP6TEntry  = 168
	sizeofIPTIP      = 84  // struct ipt_ip
	sizeofIP6TIP     = 136 // struct ip6t_ip6
	xtTargetHeader   = 32  // struct xt_entry_target before its data
	xtTableMaxNamLen = 32
)

// legacyJumps reports whether the legacy filter table's INPUT holds a rule
// that jumps to chain to with no match at all: what "iptables -C INPUT -j
// to" accepts. A missing table is no jump.
func legacyJumps(fam Family, to string) (bool, error) {
	domain, entrySize, ipSize := unix.AF_INET, sizeofIPTEntry, sizeofIPTIP
	level := unix.IPPROTO_IP
	if fam == V6 {
		domain, entrySize, ipSize = unix.AF_INET6, sizeofIP6TEntry, sizeofIP6TIP
		level = unix.IPPROTO_IPV6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	info := make([]byte, sizeofGetinfo)
	copy(info, "filter")
	if err := getsockopt(fd, level, soGetInfo, info); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil // no filter table: nothing jumps
		}
		return false, fmt.Errorf("reading the filter table: %w", err)
	}
	validHooks := binary.NativeEndian.Uint32(info[32:])
	if validHooks&(1<<hookLocalIn) == 0 {
		return false, errors.New("reading the filter table: it has no INPUT chain")
	}
	start := int(binary.NativeEndian.Uint32(info[36+4*hookLocalIn:]))
	end := int(binary.NativeEndian.Uint32(info[56+4*hookLocalIn:])) // the policy
	size := int(binary.NativeEndian.Uint32(info[80:]))
	buf := make([]byte, entriesHeader+size)
	copy(buf, "filter")
	binary.NativeEndian.PutUint32(buf[xtTableMaxNamLen:], uint32(size))
	if err := getsockopt(fd, level, soGetEntries, buf); err != nil {
		return false, fmt.Errorf("reading the filter table: %w", err)
	}
	table := buf[entriesHeader:]
	if start > end || end > len(table) {
		return false, errors.New("reading the filter table: INPUT out of bounds")
	}
	// The user chain's first rule follows its head, an ERROR target whose
	// data is the chain's name.
	chainAt := -1
	for off := 0; off+entrySize <= len(table); {
		tOff, next := entryOffsets(table[off:], ipSize)
		if next < entrySize || off+next > len(table) {
			return false, errors.New("reading the filter table: a malformed entry")
		}
		if name, data, ok := entryTarget(table[off:off+next], tOff); ok && name == "ERROR" && cString(data) == to {
			chainAt = off + next
			break
		}
		off += next
	}
	if chainAt < 0 {
		return false, nil // no such chain
	}
	for off := start; off < end; {
		tOff, next := entryOffsets(table[off:], ipSize)
		if next < entrySize || off+next > len(table) {
			return false, errors.New("reading the filter table: a malformed INPUT rule")
		}
		e := table[off : off+next]
		off += next
		// No match of any kind: the address part is all zero (no
		// address, interface, protocol or inversion) and the target
		// follows the entry directly.
		if tOff != entrySize || !allZero(e[:ipSize]) {
			continue
		}
		name, data, ok := entryTarget(e, tOff)
		if ok && name == "" && len(data) >= 4 && int(int32(binary.NativeEndian.Uint32(data))) == chainAt {
			return true, nil
		}
	}
	return false, nil
}

// entryOffsets returns an entry's target_offset and next_offset, which
// follow its address part and nfcache.
func entryOffsets(e []byte, ipSize int) (target, next int) {
	at := ipSize + 4
	return int(binary.NativeEndian.Uint16(e[at:])), int(binary.NativeEndian.Uint16(e[at+2:]))
}

// entryTarget returns the name and data of the entry's target.
func entryTarget(e []byte, tOff int) (string, []byte, bool) {
	if tOff+xtTargetHeader > len(e) {
		return "", nil, false
	}
	t := e[tOff:]
	size := int(binary.NativeEndian.Uint16(t))
	if size < xtTargetHeader || size > len(t) {
		return "", nil, false
	}
	return cString(t[2:31]), t[xtTargetHeader:size], true
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// getsockopt reads an option of any length into buf.
func getsockopt(fd, level, opt int, buf []byte) error {
	l := uint32(len(buf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}
