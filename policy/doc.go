// Package policy decides how banshee answers an attack: drop the sources
// on the attacked hosts (iptables + ipset), deny them at the subnet edge
// (a VPC network ACL entry in banshee's reserved rule-number range), skip
// them (the security groups already drop them, or they are already
// blocked), or refuse (they overlap a network banshee must never block).
//
// The engine (New, Engine.Decide) applies the default policy of DESIGN.md,
// every threshold a key of Config: protected networks (allowlist,
// security-group whitelists narrower than /0, VPC CIDRs, the caller's own
// address, loopback, link-local, the instance metadata address), the
// prefix-size limit, the security-group skip, the VPC triggers (instances
// of one subnet reached, flood rate, prefixes wider than one address, host
// blocks already on several instances), NACL quota counting per family and
// direction, aggregation to /24 or /64 when the range is nearly full,
// eviction of the entry that expires first for a more severe attack, host
// fallback, and repeat-offender TTL escalation. Every decision carries
// reasons a person can act on during an incident.
//
// The package is pure: it never does I/O, never calls AWS or the kernel
// and never reads the clock. Everything it needs arrives in a Snapshot
// (including Snapshot.Now) that callers fill from the config, EC2 and the
// host; ReadSnapshot and ParseConfig only parse bytes they are handed.
// Enforcement lives in hostfw and awsnacl; callers map a refusal
// (AnyRefused) to exit code 3 and an *InputError to exit code 2.
package policy
