// Package nstest builds throwaway network namespaces for banshee's tests:
// a victim and any number of peers, each joined to the victim by its own veth
// pair, with IPv4 (10.99.N.0/24) and IPv6 (fd99:N::/64) addresses. Tests run
// real iptables, ipset and real packets there and never touch the root
// namespace's firewall.
//
// It is for tests only and needs root; Require skips a test that cannot
// have it. It must never touch anything outside the namespaces it made.
package nstest
