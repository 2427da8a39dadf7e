// Package hostfw is banshee's Linux host firewall backend: iptables (through
// github.com/coreos/go-iptables and iptables-restore) plus ipset.
//
// Layout in the kernel, per address family:
//
//	INPUT (and optionally DOCKER-USER, FORWARD)
//	  -j BANSHEE                        first rule, inserted once
//	BANSHEE
//	  -m set --match-set banshee4 src -j DROP   ONE rule per family
//	banshee4 / banshee6                 ipset hash:net with per-entry timeout
//	                                    and a comment carrying origin and reason
//
// Blocking an address is one ipset entry, so a block costs O(1) per packet and
// the kernel expires it by itself. Chain contents are replaced atomically
// through one iptables-restore --noflush run, after a --test of the same input.
// Blocks are journaled in the state directory so "banshee restore" can bring
// them back, with their remaining TTL, after a reboot. A block whose chain
// and jump are in place starts no process: entries go in over ipset
// netlink, the jump is read over nf_tables netlink (or from the legacy
// filter table), and SSH sessions come from sock_diag.
//
// hostfw touches only banshee's own chains and sets and the single jump rule
// into them. It never flushes, reorders or deletes anything else, and it acts
// in the network namespace the process runs in.
package hostfw
