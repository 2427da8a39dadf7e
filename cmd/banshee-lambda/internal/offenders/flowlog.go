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

// Probes are the ACCEPT records a flow-log metric filter of the Terraform
// module counts: TCP, at most probeMaxPackets packets, to a port below
// probeMaxPort. A scan of a closed port is one SYN (the instance answers
// RST); a SYN scan of an open one adds the scanner's RST; a connection that
// carries anything has more. The port bound leaves out the replies to the
// instances' own connections, which go to their ephemeral ports (Linux
// 32768-60999, Windows 49152-65535). Traffic a banshee deny stops is
// recorded as REJECT: once a source is blocked, it is no probe any more.
const (
	probeMaxPackets = 2
	probeMaxPort    = 32767
)

// parseFlow parses a default-format flow log record and reports whether it
// is a REJECT record, or an ACCEPT record of a probe, with a usable source
// address. (The metric filter's pattern chooses which of the two an alarm
// counts; this accepts both, so that either pattern's records parse.)
func parseFlow(line string) (flowRecord, bool) {
	f := strings.Fields(line)
	if len(f) != 14 || f[0] != "2" || !strings.HasPrefix(f[2], "eni-") || (f[12] != "REJECT" && !probe(f)) {
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

// probe reports whether the fields of an ACCEPT record are a probe: the
// same test as the module's metric filter pattern (terraform/alarms.tf,
// kept equal by a test), no lower bound on the port (a scan of TCP port 0
// is a probe too) or the packets.
func probe(f []string) bool {
	packets, perr := strconv.Atoi(f[8])
	port, derr := strconv.Atoi(f[6])
	return f[12] == "ACCEPT" && f[7] == "6" && perr == nil && packets <= probeMaxPackets && derr == nil && port <= probeMaxPort
}
