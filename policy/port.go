package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// ParsePort parses a port and protocol as an operator writes them: "22/tcp",
// "tcp/22", "1000-2000/udp", "icmp", "22" (tcp) or "all" / "" (every
// protocol and port).
func ParsePort(s string) (Port, error) {
	in := s
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "all" || s == "any" || s == "-1" {
		return Port{}, nil
	}
	var num, proto string
	if a, b, ok := strings.Cut(s, "/"); ok {
		if isProto(a) {
			proto, num = a, b
		} else {
			num, proto = a, b
		}
	} else if isProto(s) {
		proto = s
	} else {
		num, proto = s, "tcp"
	}
	if !isProto(proto) {
		return Port{}, &InputError{Value: in, Msg: "unknown protocol (want tcp, udp, icmp or icmpv6)"}
	}
	p := Port{Proto: proto}
	if proto == "icmp" || proto == "icmpv6" {
		if num != "" && num != "all" {
			return Port{}, &InputError{Value: in, Msg: "icmp takes no port"}
		}
		return p, nil
	}
	if num == "" || num == "all" {
		return p, nil
	}
	lo, hi, isRange := strings.Cut(num, "-")
	from, err := parsePortNumber(lo)
	if err != nil {
		return Port{}, &InputError{Value: in, Msg: err.Error()}
	}
	to := from
	if isRange {
		if to, err = parsePortNumber(hi); err != nil {
			return Port{}, &InputError{Value: in, Msg: err.Error()}
		}
		if to < from {
			return Port{}, &InputError{Value: in, Msg: "port range ends before it starts"}
		}
	}
	p.From, p.To = from, to
	return p, nil
}

func isProto(s string) bool {
	switch s {
	case "tcp", "udp", "icmp", "icmpv6":
		return true
	}
	return false
}

func parsePortNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("not a port number 1..65535")
	}
	return uint16(n), nil
}

// String writes the port as reasons show it: "tcp/22", "udp/1000-2000",
// "icmp", "tcp" (every tcp port) or "all traffic".
func (p Port) String() string {
	switch {
	case p.Proto == "":
		return "all traffic"
	case p.allPorts():
		return p.Proto
	case p.From == p.To:
		return fmt.Sprintf("%s/%d", p.Proto, p.From)
	}
	return fmt.Sprintf("%s/%d-%d", p.Proto, p.From, p.To)
}

// allPorts reports whether p covers every port of its protocol.
func (p Port) allPorts() bool {
	pr := normProto(p.Proto)
	return pr == "icmp" || pr == "icmpv6" || (p.From == 0 && p.To == 0) || (p.From <= 1 && p.To == 65535)
}

// protoAll reports whether a protocol string means every protocol, as AWS
// writes it ("-1") or as banshee does ("").
func protoAll(proto string) bool { return proto == "" || proto == "-1" || proto == "all" }

// normProto lowers a protocol and names the IANA numbers AWS may return.
func normProto(proto string) string {
	switch p := strings.ToLower(proto); p {
	case "6":
		return "tcp"
	case "17":
		return "udp"
	case "1":
		return "icmp"
	case "58":
		return "icmpv6"
	default:
		return p
	}
}

// Overlaps reports whether some traffic matches both p and q.
func (p Port) Overlaps(q Port) bool {
	if protoAll(p.Proto) || protoAll(q.Proto) {
		return true
	}
	if normProto(p.Proto) != normProto(q.Proto) {
		return false
	}
	if p.allPorts() || q.allPorts() {
		return true
	}
	return p.From <= q.To && q.From <= p.To
}

// Covers reports whether every packet matching q also matches p.
func (p Port) Covers(q Port) bool {
	if protoAll(p.Proto) {
		return true
	}
	if protoAll(q.Proto) || normProto(p.Proto) != normProto(q.Proto) {
		return false
	}
	if p.allPorts() {
		return true
	}
	if q.allPorts() {
		return false
	}
	return p.From <= q.From && q.To <= p.To
}

// ParseKind parses an attack kind: manual, bruteforce, scan or flood.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case KindManual, KindBruteforce, KindScan, KindFlood:
		return k, nil
	case "":
		return KindManual, nil
	}
	return "", &InputError{Value: s, Msg: "unknown kind (want manual, bruteforce, scan or flood)"}
}
