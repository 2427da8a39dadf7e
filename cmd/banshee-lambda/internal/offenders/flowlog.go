package offenders

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/banshee-project/banshee/policy"
)

// flowRecord is a VPC flow log record in the default (version 2) format:
// version account-id interface-id srcaddr dstaddr srcport dstport protocol
// packets bytes start end action log-status.
type flowRecord struct {
	ENI     string
	Src     netip.Addr
	Port    policy.Port
	Packets int
}

// parseFlow parses a default-format flow log record and reports whether it
// is a REJECT record with a usable source address.
func parseFlow(line string) (flowRecord, bool) {
	f := strings.Fields(line)
	if len(f) != 14 || f[0] != "2" || !strings.HasPrefix(f[2], "eni-") || f[12] != "REJECT" {
		return flowRecord{}, false
	}
	src, err := netip.ParseAddr(f[3])
	if err != nil || src.Zone() != "" {
		return flowRecord{}, false
	}
	r := flowRecord{ENI: f[2], Src: src.Unmap()}
	r.Packets, _ = strconv.Atoi(f[8])
	proto, err := strconv.Atoi(f[7])
	if err != nil {
		return r, true
	}
	port, perr := strconv.ParseUint(f[6], 10, 16)
	switch proto {
	case 6, 17:
		r.Port.Proto = map[int]string{6: "tcp", 17: "udp"}[proto]
		if perr == nil && port > 0 {
			r.Port.From, r.Port.To = uint16(port), uint16(port)
		}
	case 1:
		r.Port.Proto = "icmp"
	case 58:
		r.Port.Proto = "icmpv6"
	}
	return r, true
}
