package detect

import (
	"bytes"
	"net/netip"
)

// parseAddr parses an IPv4 or IPv6 address from b without allocating for
// IPv4. It returns the canonical form: an IPv6 zone ("fe80::1%eth0") is
// dropped (a firewall matches the address, not the interface) and
// IPv4-mapped IPv6 becomes IPv4.
func parseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 45+16 {
		return netip.Addr{}, false
	}
	for i, c := range b {
		if c == ':' {
			if z := bytes.IndexByte(b, '%'); z > i {
				if !isZone(b[z+1:]) {
					return netip.Addr{}, false
				}
				b = b[:z]
			}
			return parseAddr6(b)
		}
	}
	return parseAddr4(b)
}

// isZone reports whether b is an interface name as zones carry it.
func isZone(b []byte) bool {
	if len(b) == 0 || len(b) > 15 {
		return false
	}
	for _, c := range b {
		if !isHostChar(c) {
			return false
		}
	}
	return true
}

func parseAddr4(b []byte) (netip.Addr, bool) {
	var out [4]byte
	field, digits, val := 0, 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if digits > 0 && val == 0 {
				return netip.Addr{}, false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || field == 3 {
				return netip.Addr{}, false
			}
			out[field] = byte(val)
			field++
			digits, val = 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if field != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	out[3] = byte(val)
	return netip.AddrFrom4(out), true
}

func parseAddr6(b []byte) (netip.Addr, bool) {
	if len(b) > 45 {
		return netip.Addr{}, false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return netip.Addr{}, false // zones, brackets, spaces
		}
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isHostChar reports whether c may appear in a host name as resolvers
// return it (letters, digits, '-', '.', '_').
func isHostChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

func isHostname(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isHostChar(c) {
			return false
		}
	}
	return true
}

// atoiPort parses a decimal port number 0..65535.
func atoiPort(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// atoi parses a small non-negative decimal number.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
