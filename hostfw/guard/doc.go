// Package guard is banshee's emergency reset: a small daemon that watches
// for an authenticated "knock" datagram and, when it sees a valid one, resets
// the host firewall to permissive so an operator who locked themselves out
// while testing new rules can get back in.
//
// # The knock
//
// A knock is one UDP datagram to the guard port (62201 by default) whose
// payload is exactly 62 bytes:
//
//	"BNSHK2" | timestamp (8 bytes, big-endian Unix seconds) | nonce (16 random bytes)
//	        | HMAC-SHA256(HostKey(key, host), magic | timestamp | nonce)
//
// The key is 32 random bytes shared between the guard and the operator
// (a file of mode 0600, hex or raw). The MAC key is derived from it and the
// identity of the host the knock is meant for ([HostKey]: the address or
// name the operator knocks at), so a knock captured on its way to one host
// resets no other host sharing the key. The guard accepts the identities it
// is given (its name, its addresses, configured ones). A knock counts only when its MAC is
// right (compared in constant time), its timestamp is within the allowed
// skew of the guard's clock (in either direction), and its nonce has not
// been seen before. Nonces are remembered for twice the skew, which covers
// the whole time a captured knock would still pass the freshness check; the
// memory is bounded and only knocks with a valid MAC enter it, so nobody
// without the key can push entries out. A guard given a replay file
// ([OpenReplayCache]) records each accepted nonce, synced, before it resets,
// and reads the live ones back when it starts: a restart does not make a
// captured knock good again. A plain magic string would let
// anyone who sees or guesses it open the host; a knock can neither be forged
// without the key nor be replayed.
//
// # Why a packet socket
//
// The guard reads packets from an AF_PACKET socket (a device tap), not from
// a UDP socket. Taps get their copy of every frame in the device's receive
// path before the IP layer, so before netfilter's PREROUTING and INPUT hooks:
// the knock is seen even when INPUT drops everything, which is exactly the
// situation the guard exists for. A kernel filter (classic BPF) passes only
// unfragmented UDP datagrams to the guard port, so the guard does not copy
// the host's other traffic. What drops packets before the device — an XDP
// program, a security group, a network ACL — hides knocks from the guard as
// well: the guard port must be reachable up to the instance. Over IPv6 the
// knock also needs neighbor discovery, which a ruleset that drops all ICMPv6
// breaks; knock over IPv4 then.
//
// # What it must never do
//
// The guard never changes the firewall for anything but a valid, fresh,
// unseen knock, never resets more than through the [Resetter] it is given,
// and never logs without bound: ignored knocks are logged through a rate
// limiter, so a flood cannot fill the disk. Every reset is logged with the
// knock's source, timestamp and nonce.
package guard
