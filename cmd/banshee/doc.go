// Command banshee blocks attacking IP addresses on AWS EC2 at the right
// layer: a host firewall DROP (iptables + ipset, package hostfw) or a VPC
// network ACL deny (package awsnacl), as the policy (package policy)
// decides, never blocking what the security groups deliberately allow.
//
// Each command is a small file that registers itself; main only parses,
// wires and calls. Commands print one JSON object with -o json and exit 0
// (done), 1 (runtime failure), 2 (bad input or usage, nothing changed) or 3
// (refused by policy, nothing changed). The command never changes a
// firewall or an ACL before every target is validated and decided.
package main
