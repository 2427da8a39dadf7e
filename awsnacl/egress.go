package awsnacl

import (
	"strings"

	"github.com/banshee-project/banshee/policy"
)

// Ephemeral ports: NACLs are stateless, so the replies to a connection on
// the attacked port leave through the egress rules, matched on the peer's
// source port of the connection: an ephemeral port. 1024-65535 covers every
// client's range (Linux 32768-60999, Windows 49152-65535, NAT gateways and
// load balancers 1024-65535), as AWS's NACL guide recommends.
const (
	ephemeralMin = 1024
	ephemeralMax = 65535
)

// replyPorts is the traffic the replies to an attack on port are: the same
// protocol, to the ephemeral ports. Any protocol and ICMP stay as they are.
func replyPorts(port policy.Port) policy.Port {
	switch strings.ToLower(port.Proto) {
	case "tcp", "udp", "6", "17":
		return policy.Port{Proto: port.Proto, From: ephemeralMin, To: ephemeralMax}
	}
	return port
}
