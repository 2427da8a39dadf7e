package policy

import (
	"bufio"
	"io"
	"net/netip"
	"strings"
)

// ParseTarget parses an IPv4 or IPv6 address or CIDR into a prefix. An
// address becomes a /32 or /128; an IPv4-mapped IPv6 address such as
// ::ffff:203.0.113.7 becomes its IPv4 form; host bits of a CIDR are masked.
// 0.0.0.0/0 and ::/0 are rejected: blocking everyone is never a block.
func ParseTarget(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, &InputError{Value: s, Msg: "empty target"}
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		pp, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, &InputError{Value: s, Msg: "not an IPv4/IPv6 address or CIDR"}
		}
		p = pp
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, &InputError{Value: s, Msg: "not an IPv4/IPv6 address or CIDR"}
		}
		if a.Zone() != "" {
			return netip.Prefix{}, &InputError{Value: s, Msg: "an address with a zone cannot be blocked"}
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() && p.Bits() < 96 {
		return netip.Prefix{}, &InputError{Value: s, Msg: "an IPv4-mapped prefix must be /96 or longer (it names IPv4 addresses)"}
	}
	p = Canonical(p)
	if p.Bits() == 0 {
		return netip.Prefix{}, &InputError{Value: s, Msg: "refusing to block every address"}
	}
	return p, nil
}

// Canonical masks host bits and turns IPv4-mapped IPv6 prefixes into IPv4.
func Canonical(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			bits = 0
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return p.Masked()
}

// ReadTargets reads targets one per line; '#' starts a comment and blank
// lines are skipped. It returns the first bad line as an *InputError with
// its line number.
func ReadTargets(r io.Reader) ([]netip.Prefix, error) {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = t[:i]
		}
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		p, err := ParseTarget(t)
		if err != nil {
			if ie, ok := err.(*InputError); ok {
				ie.Line = line
			}
			return nil, err
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
