package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// P parses an address or CIDR for tests (addresses become /32 or /128,
// v4-mapped addresses are kept as written so the engine must unmap them).
func P(s string) netip.Prefix {
	if strings.Contains(s, "/") {
		return netip.MustParsePrefix(s)
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

func Ps(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = P(s)
	}
	return out
}

var pop3 = Port{Proto: "tcp", From: 110, To: 110}

func openRules(port Port) []SGRule {
	return []SGRule{
		{GroupID: "sg-open", Port: port, Source: P("0.0.0.0/0")},
		{GroupID: "sg-open", Port: port, Source: P("::/0")},
	}
}

// stdEntries are what AWS puts in a new custom-allow NACL: an allow-all
// per family at 100/101 and the '*' default deny per family.
func stdEntries(extra ...NACLEntry) []NACLEntry {
	es := []NACLEntry{
		{RuleNumber: 100, Allow: true, CIDR: P("0.0.0.0/0")},
		{RuleNumber: 101, Allow: true, CIDR: P("::/0")},
		{RuleNumber: 32767, CIDR: P("0.0.0.0/0")},
		{RuleNumber: 32767, CIDR: P("::/0")},
	}
	return append(es, extra...)
}

func deny(n int, cidr string, expiresIn time.Duration) NACLEntry {
	e := NACLEntry{RuleNumber: n, CIDR: P(cidr), Reason: "earlier attack", Origin: OriginWatch}
	if expiresIn != 0 {
		e.ExpiresAt = testNow.Add(expiresIn)
	}
	return e
}

// fill returns n banshee denies at rules from, from+1, ... for 192.k.2.k
// (one per /16, so none merge) expiring one hour apart, the first soonest.
func fill(from, n int) []NACLEntry {
	var out []NACLEntry
	for k := range n {
		out = append(out, deny(from+k, fmt.Sprintf("192.%d.2.%d", k+1, k+1), time.Duration(k+1)*time.Hour))
	}
	return out
}

func hosts(subnet string, ids ...string) []Target {
	var out []Target
	for _, id := range ids {
		out = append(out, Target{InstanceID: id, SubnetID: subnet})
	}
	return out
}

type world struct {
	cfg Config
	a   Attack
	s   Snapshot
}

func baseWorld() *world {
	return &world{
		cfg: Default(),
		a:   Attack{Port: pop3, Targets: hosts("subnet-a", "i-1")},
		s: Snapshot{
			Now: testNow,
			SGRules: map[string][]SGRule{
				"i-1": openRules(pop3), "i-2": openRules(pop3), "i-3": openRules(pop3),
				"i-9": openRules(pop3),
			},
			VPCCIDRs: Ps("10.0.0.0/16"),
			NACLs: map[string]NACL{
				"subnet-a": {ID: "acl-a", SubnetIDs: []string{"subnet-a"}, Entries: stdEntries()},
				"subnet-b": {ID: "acl-b", SubnetIDs: []string{"subnet-b"}, Entries: stdEntries()},
			},
		},
	}
}

// summary is a decision in one line: what is enforced where, for how long.
func summary(d Decision) string {
	s := fmt.Sprintf("%s %s", d.Scope, d.Action)
	if d.NACLID != "" {
		s += fmt.Sprintf(" %s#%d", d.NACLID, d.RuleNumber)
	}
	if d.Aggregate != nil {
		s += " as " + d.Aggregate.String()
	}
	if d.Evicts != nil {
		s += fmt.Sprintf(" evicts #%d", d.Evicts.RuleNumber)
	}
	if len(d.Instances) > 0 {
		s += " on " + strings.Join(d.Instances, ",")
	}
	if d.Action == ActionBlock {
		s += " ttl=" + fmtDur(d.TTL)
	}
	return s
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources []string
		setup   func(w *world)
		want    []string // summaries, one per source
		reasons []string // a substring of the first reason, per source ("" skips)
	}{
		// Rule 1: protected networks.
		{"allowlist of the config", []string{"198.51.100.9"},
			func(w *world) { w.cfg.Allowlist = Ps("198.51.100.0/24") },
			[]string{"none refuse"}, []string{"refused: 198.51.100.9 is inside 198.51.100.0/24, on the allowlist of the config (--force overrides this)"}},
		{"allowlist of the snapshot, source contains it", []string{"198.51.100.0/24"},
			func(w *world) { w.s.Allowlist = Ps("198.51.100.77/32") },
			[]string{"none refuse"}, []string{"refused: 198.51.100.0/24 contains 198.51.100.77, on the allowlist"}},
		{"overlapping allowlist prefixes name the narrowest", []string{"198.51.100.9"},
			func(w *world) { w.cfg.Allowlist = Ps("198.51.0.0/16", "198.51.100.0/24", "198.51.100.8/29") },
			[]string{"none refuse"}, []string{"inside 198.51.100.8/29, on the allowlist of the config; 198.51.100.9 is inside 198.51.100.0/24, on the allowlist of the config; 198.51.100.9 is inside 198.51.0.0/16, on the allowlist of the config (--force overrides this)"}},
		{"adjacent allowlist does not overlap", []string{"198.51.101.9"},
			func(w *world) { w.cfg.Allowlist = Ps("198.51.100.0/24") },
			[]string{"host block on i-1 ttl=1h"}, []string{"host: reaches 1 instance(s) in subnet-a (vpc threshold 2)"}},
		{"security-group whitelist", []string{"203.0.113.7"},
			func(w *world) {
				w.s.SGRules["i-1"] = append(w.s.SGRules["i-1"], SGRule{GroupID: "sg-0abc", Description: "office ssh", Port: Port{Proto: "tcp", From: 22, To: 22}, Source: P("203.0.113.0/24")})
			},
			[]string{"none refuse"}, []string{"refused: 203.0.113.7 is inside 203.0.113.0/24, allowed on tcp/22 by sg-0abc (rule 'office ssh') of i-1"}},
		{"security-group whitelist from a prefix list", []string{"203.0.113.7"},
			func(w *world) {
				w.s.SGRules["i-1"] = append(w.s.SGRules["i-1"], SGRule{GroupID: "sg-0abc", RuleID: "sgr-9", PrefixListID: "pl-01", Port: Port{}, Source: P("203.0.113.0/25")})
			},
			[]string{"none refuse"}, []string{"allowed on all traffic by sg-0abc (rule sgr-9) via pl-01 of i-1"}},
		{"v4-mapped source meets the v4 whitelist", []string{"::ffff:203.0.113.7"},
			func(w *world) {
				w.s.SGRules["i-1"] = append(w.s.SGRules["i-1"], SGRule{GroupID: "sg-0abc", Port: Port{Proto: "tcp", From: 22, To: 22}, Source: P("203.0.113.0/24")})
			},
			[]string{"none refuse"}, []string{"refused: 203.0.113.7 is inside 203.0.113.0/24"}},
		{"v4-mapped whitelist meets the v4 source", []string{"203.0.113.7"},
			func(w *world) {
				w.s.SGRules["i-1"] = append(w.s.SGRules["i-1"], SGRule{GroupID: "sg-0abc", Port: Port{}, Source: P("::ffff:203.0.113.0/120")})
			},
			[]string{"none refuse"}, []string{"refused: 203.0.113.7 is inside 203.0.113.0/24"}},
		{"whitelist of another instance is not the targets'", []string{"203.0.113.7"},
			func(w *world) {
				w.s.SGRules["i-9"] = append(w.s.SGRules["i-9"], SGRule{GroupID: "sg-0abc", Port: Port{}, Source: P("203.0.113.0/24")})
			},
			[]string{"host block on i-1 ttl=1h"}, nil},
		{"no target: every known whitelist protects", []string{"203.0.113.7"},
			func(w *world) {
				w.a.Targets = nil
				w.s.SGRules["i-9"] = append(w.s.SGRules["i-9"], SGRule{GroupID: "sg-0abc", Port: Port{}, Source: P("203.0.113.0/24")})
			},
			[]string{"none refuse"}, []string{"of i-9"}},
		{"VPC CIDR", []string{"10.0.3.4", "10.0.0.0/15"}, nil,
			[]string{"none refuse", "none refuse"}, []string{"refused: 10.0.3.4 is inside 10.0.0.0/16, a CIDR of the VPC", "refused: 10.0.0.0/15 contains 10.0.0.0/16, a CIDR of the VPC"}},
		{"caller even with --force", []string{"198.51.100.20", "198.51.100.0/24"},
			func(w *world) {
				w.s.Callers = []netip.Addr{netip.MustParseAddr("::ffff:198.51.100.20")}
				w.a.Force = true
			},
			[]string{"none refuse", "none refuse"}, []string{"refused: 198.51.100.20 is your own SSH session's address (--force does not override this)", "contains 198.51.100.20, your own SSH session's address"}},
		{"host's own networks even with --force, every one named", []string{"10.99.1.7", "10.99.1.0/24", "192.0.2.53"},
			func(w *world) {
				w.s.Protected = []Protected{
					{Prefix: netip.MustParsePrefix("10.99.1.7/32"), What: "an established SSH peer of this host (port 2222)"},
					{Prefix: netip.MustParsePrefix("10.99.1.1/32"), What: "an address of this host (eth0)"},
					{Prefix: netip.MustParsePrefix("10.99.1.254/32"), What: "a default gateway of this host"},
					{Prefix: netip.MustParsePrefix("192.0.2.53/32"), What: "a DNS resolver of this host"},
				}
				w.a.Force = true
			},
			[]string{"none refuse", "none refuse", "none refuse"},
			[]string{"refused: 10.99.1.7 is an established SSH peer of this host (port 2222) (--force does not override this)",
				"10.99.1.0/24 contains 10.99.1.1, an address of this host (eth0); 10.99.1.0/24 contains 10.99.1.7, an established SSH peer of this host (port 2222); 10.99.1.0/24 contains 10.99.1.254, a default gateway of this host",
				"192.0.2.53 is a DNS resolver of this host"}},
		{"special addresses even with --force", []string{"127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254", "169.254.1.1", "fe80::1", "0.0.0.0", "::", "::ffff:127.0.0.2"},
			func(w *world) { w.a.Force = true },
			[]string{"none refuse", "none refuse", "none refuse", "none refuse", "none refuse", "none refuse", "none refuse", "none refuse", "none refuse"},
			[]string{"loopback", "::1 is loopback", "169.254.169.254 is the instance metadata address", "fd00:ec2::254 is the instance metadata address", "link-local", "link-local", "the unspecified address", "the unspecified address", "127.0.0.2 is inside 127.0.0.0/8, loopback"}},
		{"every address never, not with --force", []string{"0.0.0.0/0", "::ffff:0.0.0.0/96", "::/0"},
			func(w *world) { w.a.Force = true },
			[]string{"none refuse", "none refuse", "none refuse"}, []string{"covers every address", "0.0.0.0/0 covers every address", "::/0 covers every address"}},
		{"--force passes the allowlist and says so", []string{"198.51.100.9"},
			func(w *world) { w.cfg.Allowlist = Ps("198.51.100.0/24"); w.a.Force = true },
			[]string{"host block on i-1 ttl=1h"}, nil},

		// Rule 2: prefix size.
		{"v4 /16 allowed, /15 refused", []string{"100.64.0.0/16", "100.66.0.0/15"}, nil,
			[]string{"vpc block acl-a#1 ttl=1h", "none refuse"}, []string{"", "refused: 100.66.0.0/15 is broader than /16 (--force overrides this)"}},
		{"v4 /15 with --force", []string{"100.66.0.0/15"}, func(w *world) { w.a.Force = true },
			[]string{"vpc block acl-a#1 ttl=1h"}, nil},
		{"v6 /32 allowed, /31 refused", []string{"2001:db8::/32", "2001:db6::/31"}, nil,
			[]string{"vpc block acl-a#1 ttl=1h", "none refuse"}, []string{"", "broader than /32"}},

		// Rule 3: the security groups already drop it.
		{"no group admits the port", []string{"198.51.100.9"},
			func(w *world) { w.s.SGRules["i-1"] = openRules(Port{Proto: "tcp", From: 443, To: 443}) },
			[]string{"none skip"}, []string{"skip: no security group of i-1 admits tcp/110 from 198.51.100.9; already dropped"}},
		{"only v4 admitted: v6 source skipped", []string{"2001:db8::9", "198.51.100.9"},
			func(w *world) { w.s.SGRules["i-1"] = openRules(pop3)[:1] },
			[]string{"none skip", "host block on i-1 ttl=1h"}, []string{"admits tcp/110 from 2001:db8::9", ""}},
		{"a group with no rules admits nothing", []string{"198.51.100.9"},
			func(w *world) { w.s.SGRules["i-1"] = []SGRule{} },
			[]string{"none skip"}, nil},
		{"unknown groups: cannot skip", []string{"198.51.100.9"},
			func(w *world) { delete(w.s.SGRules, "i-1") },
			[]string{"host block on i-1 ttl=1h"}, nil},
		{"port ranges and all-protocol rules admit", []string{"198.51.100.9", "198.51.100.10"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1")
				w.s.SGRules["i-1"] = []SGRule{{GroupID: "sg-r", Port: Port{Proto: "-1"}, Source: P("0.0.0.0/0")}}
			},
			[]string{"host block on i-1 ttl=1h", "host block on i-1 ttl=1h"}, nil},
		{"only the admitting instances are blocked", []string{"198.51.100.9"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.s.SGRules["i-2"] = openRules(Port{Proto: "tcp", From: 22, To: 22})
			},
			[]string{"host block on i-1 ttl=1h"}, []string{"host: reaches 1 instance(s) in subnet-a"}},

		// Rule 4: VPC triggers, each at its threshold and one below.
		{"reaches 2 instances of one subnet", []string{"198.51.100.9"},
			func(w *world) { w.a.Targets = hosts("subnet-a", "i-1", "i-2") },
			[]string{"vpc block acl-a#1 ttl=1h"}, []string{"vpc: reaches 2 instances in subnet-a (threshold 2)"}},
		{"2 instances in two subnets is not 2 in one", []string{"198.51.100.9"},
			func(w *world) { w.a.Targets = append(hosts("subnet-a", "i-1"), hosts("subnet-b", "i-2")...) },
			[]string{"host block on i-1,i-2 ttl=1h"}, nil},
		{"vpc in the busiest subnet, host blocks elsewhere", []string{"198.51.100.9"},
			func(w *world) { w.a.Targets = append(hosts("subnet-b", "i-3"), hosts("subnet-a", "i-1", "i-2")...) },
			[]string{"vpc block acl-a#1 on i-3 ttl=1h"}, []string{"vpc: reaches 2 instances in subnet-a"}},
		{"rate at the flood threshold", []string{"198.51.100.9"}, func(w *world) { w.a.Rate = 100 },
			[]string{"vpc block acl-a#1 ttl=1h"}, []string{"vpc: rate 100/s at or above the flood threshold 100/s"}},
		{"rate just below the flood threshold", []string{"198.51.100.9"}, func(w *world) { w.a.Rate = 99.9 },
			[]string{"host block on i-1 ttl=1h"}, []string{"rate 99.9/s below 100/s"}},
		{"a /31 is wider than one address, a /32 is not", []string{"198.51.100.8/31", "198.51.100.9/32", "2001:db8::/127", "2001:db8::1/128"}, nil,
			[]string{"vpc block acl-a#1 ttl=1h", "host block on i-1 ttl=1h", "vpc block acl-a#2 ttl=1h", "host block on i-1 ttl=1h"},
			[]string{"vpc: 198.51.100.8/31 is wider than one address", "host:", "vpc: 2001:db8::/127 is wider", "host:"}},
		{"already dropped on hosts of 2 instances", []string{"198.51.100.9"},
			func(w *world) {
				w.s.Blocks = []Block{
					{Target: P("198.51.100.9"), Scope: ScopeHost, InstanceID: "i-7", ExpiresAt: testNow.Add(time.Hour)},
					{Target: P("198.51.100.0/24"), Scope: ScopeHost, InstanceID: "i-8", ExpiresAt: testNow.Add(time.Hour)},
				}
			},
			[]string{"vpc block acl-a#1 ttl=1h"}, []string{"vpc: already dropped on hosts of 2 instances (i-7, i-8; threshold 2)"}},
		{"one host block elsewhere is not escalation; expired blocks do not count", []string{"198.51.100.9"},
			func(w *world) {
				w.s.Blocks = []Block{
					{Target: P("198.51.100.9"), Scope: ScopeHost, InstanceID: "i-7", ExpiresAt: testNow.Add(time.Hour)},
					{Target: P("198.51.100.9"), Scope: ScopeHost, InstanceID: "i-8", ExpiresAt: testNow},
				}
			},
			[]string{"host block on i-1 ttl=1h"}, nil},
		{"bare subnet target", []string{"198.51.100.9"},
			func(w *world) { w.a.Targets = []Target{{SubnetID: "subnet-b"}} },
			[]string{"vpc block acl-b#1 ttl=1h"}, []string{"vpc: target is subnet-b with no instance named"}},
		{"vpc wanted, no NACL known: host", []string{"198.51.100.9"},
			func(w *world) { w.a.Targets = hosts("subnet-z", "i-1", "i-2") },
			[]string{"host block on i-1,i-2 ttl=1h"}, []string{"host: vpc wanted but no network ACL is known for subnet-z; falling back"}},

		// Requested scope.
		{"--scope vpc without a NACL is refused", []string{"198.51.100.9"},
			func(w *world) { w.a.Scope = ScopeVPC; w.a.Targets = hosts("", "i-1") },
			[]string{"none refuse"}, []string{"refused: --scope vpc requested but no subnet is known for the targets"}},
		{"--scope vpc with no target", []string{"198.51.100.9"},
			func(w *world) { w.a.Scope = ScopeVPC; w.a.Targets = nil },
			[]string{"none refuse"}, []string{"no instance or subnet named"}},
		{"--scope vpc forces the NACL", []string{"198.51.100.9"}, func(w *world) { w.a.Scope = ScopeVPC },
			[]string{"vpc block acl-a#1 ttl=1h"}, []string{"vpc: --scope vpc requested"}},
		{"--scope host overrides the triggers", []string{"198.51.100.0/24"},
			func(w *world) { w.a.Scope = ScopeHost; w.a.Targets = hosts("subnet-a", "i-1", "i-2") },
			[]string{"host block on i-1,i-2 ttl=1h"}, []string{"host: --scope host requested"}},
		{"--scope host still skips and refuses", []string{"198.51.100.9", "10.0.0.5"},
			func(w *world) { w.a.Scope = ScopeHost; w.s.SGRules["i-1"] = openRules(pop3)[1:] },
			[]string{"none skip", "none refuse"}, nil},
		{"no target: this host", []string{"198.51.100.9"}, func(w *world) { w.a.Targets = nil },
			[]string{"host block ttl=1h"}, []string{"host: no instance named; dropped on this host"}},

		// NACL quota and range.
		{"lowest free rule number in the range", []string{"198.51.100.0/24"},
			func(w *world) { w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 3)...)} },
			[]string{"vpc block acl-a#4 ttl=1h"}, []string{""}},
		{"an unmanaged NACL: host fallback, or a refusal with --scope vpc", []string{"198.51.100.0/24"},
			func(w *world) {
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(), Unmanaged: "acl-a is not a network ACL this function manages"}
			},
			[]string{"host block on i-1 ttl=1h"}, []string{"host: vpc wanted but acl-a is not a network ACL this function manages; falling back"}},
		{"an unmanaged NACL with --scope vpc is refused", []string{"198.51.100.0/24"},
			func(w *world) {
				w.a.Scope = ScopeVPC
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(), Unmanaged: "acl-a is not a network ACL this function manages"}
			},
			[]string{"none refuse"}, []string{"refused: --scope vpc requested but acl-a is not a network ACL this function manages"}},
		{"full at 18 of 18 with the defaults: host fallback", []string{"198.51.100.0/24", "198.51.101.0/24"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 17)...)}
			},
			[]string{"vpc block acl-a#18 ttl=1h", "host block on i-1,i-2 ttl=1h"},
			[]string{"vpc: reaches 2 instances", "host: acl-a reserved range full (18/18), falling back (quota 20 IPv4 entries per direction, 2 of them outside the range incl. the default deny; the entries there are worth more (least 1, this source 1))"}},
		{"the default deny counts even when the snapshot omits it", []string{"198.51.100.0/24", "198.51.101.0/24"},
			func(w *world) {
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: append([]NACLEntry{{RuleNumber: 100, Allow: true, CIDR: P("0.0.0.0/0")}}, fill(1, 17)...)}
			},
			[]string{"vpc block acl-a#18 ttl=1h", "host block on i-1 ttl=1h"}, nil},
		{"quota is per family", []string{"198.51.100.0/24", "2001:db8:1::/48"},
			func(w *world) { w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 18)...)} },
			[]string{"host block on i-1 ttl=1h", "vpc block acl-a#19 ttl=1h"}, []string{"host: acl-a reserved range full (18/18", ""}},
		{"rule numbers are shared by the families", []string{"2001:db8:1::/48"},
			func(w *world) {
				w.cfg.NACL.RuleMin, w.cfg.NACL.RuleMax = 1, 3
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 3)...)}
			},
			[]string{"host block on i-1 ttl=1h"}, []string{"host: acl-a reserved range full (0/0)"}},
		{"never more entries than fit: batch of 5 into 3 free", []string{"198.51.100.0/24", "198.51.110.0/24", "198.51.120.0/24", "198.51.130.0/24", "198.51.140.0/24"},
			func(w *world) {
				w.cfg.Policy.NearlyFullFree = 0
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 15)...)}
			},
			[]string{"vpc block acl-a#16 ttl=1h", "vpc block acl-a#17 ttl=1h", "vpc block acl-a#18 ttl=1h", "host block on i-1 ttl=1h", "host block on i-1 ttl=1h"}, nil},
		{"egress mode needs the number free in both directions", []string{"198.51.100.0/24"},
			func(w *world) {
				w.cfg.NACL.Egress = true
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(NACLEntry{RuleNumber: 1, Egress: true, Allow: true, CIDR: P("0.0.0.0/0")})}
			},
			[]string{"vpc block acl-a#2 ttl=1h"}, nil},
		{"an allow ahead of the free numbers: refused naming it", []string{"198.51.100.0/24"},
			func(w *world) {
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(append(fill(1, 4), NACLEntry{RuleNumber: 5, Allow: true, CIDR: P("198.51.0.0/16"), Port: pop3})...)}
			},
			[]string{"none refuse"}, []string{"refused: acl-a rule 5 allows 198.51.0.0/16 on tcp/110 ahead of rule 6; a deny there for 198.51.100.0/24 would never match"}},
		{"an allow ahead for another port does not shadow", []string{"198.51.100.0/24"},
			func(w *world) {
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(NACLEntry{RuleNumber: 1, Allow: true, CIDR: P("198.51.0.0/16"), Port: Port{Proto: "tcp", From: 443, To: 443}})}
			},
			[]string{"vpc block acl-a#2 ttl=1h"}, nil},

		// Aggregation.
		{"nearly full: 3 sources of one /24 become one entry", []string{"198.51.100.7", "198.51.100.8", "198.51.100.9"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 14)...)}
			},
			[]string{"vpc block acl-a#15 as 198.51.100.0/24 ttl=1h", "vpc block acl-a#15 as 198.51.100.0/24 ttl=1h", "vpc block acl-a#15 as 198.51.100.0/24 ttl=1h"},
			[]string{"vpc: reaches 2"}},
		{"room to spare: 3 sources of one /24 are still one entry", []string{"198.51.100.7", "198.51.100.8", "198.51.100.9"},
			func(w *world) { w.a.Targets = hosts("subnet-a", "i-1", "i-2") },
			[]string{"vpc block acl-a#1 as 198.51.100.0/24 ttl=1h", "vpc block acl-a#1 as 198.51.100.0/24 ttl=1h", "vpc block acl-a#1 as 198.51.100.0/24 ttl=1h"},
			[]string{"vpc: reaches 2"}},
		{"aggregate_min_sources 0: no aggregation", []string{"198.51.100.7", "198.51.100.8", "198.51.100.9"},
			func(w *world) { w.a.Targets = hosts("subnet-a", "i-1", "i-2"); w.cfg.Policy.AggregateMinSources = 0 },
			[]string{"vpc block acl-a#1 ttl=1h", "vpc block acl-a#2 ttl=1h", "vpc block acl-a#3 ttl=1h"}, nil},
		{"2 sources are below aggregate_min_sources 3", []string{"198.51.100.7", "198.51.100.8", "198.51.101.9"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 14)...)}
			},
			[]string{"vpc block acl-a#15 ttl=1h", "vpc block acl-a#16 ttl=1h", "vpc block acl-a#17 ttl=1h"}, nil},
		{"never aggregate across a protected network", []string{"198.51.100.7", "198.51.100.8", "198.51.100.9"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.cfg.Allowlist = Ps("198.51.100.200/32")
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 14)...)}
			},
			[]string{"vpc block acl-a#15 ttl=1h", "vpc block acl-a#16 ttl=1h", "vpc block acl-a#17 ttl=1h"}, nil},
		{"full: adjacent /24s under attack are widened within max_prefix", []string{"198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24", "198.51.103.0/24", "198.51.140.0/24"},
			func(w *world) {
				w.cfg.Policy.NearlyFullFree = 0
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 15)...)}
			},
			[]string{"vpc block acl-a#16 as 198.51.100.0/22 ttl=1h", "vpc block acl-a#16 as 198.51.100.0/22 ttl=1h", "vpc block acl-a#16 as 198.51.100.0/22 ttl=1h", "vpc block acl-a#16 as 198.51.100.0/22 ttl=1h", "vpc block acl-a#17 ttl=1h"},
			nil},
		{"full: half the /24s of a wider prefix is not enough to widen", []string{"198.51.100.0/24", "198.51.101.0/24", "198.51.120.0/24", "198.51.130.0/24", "198.51.140.0/24"},
			func(w *world) {
				w.cfg.Policy.NearlyFullFree = 0
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 15)...)}
			},
			[]string{"vpc block acl-a#16 ttl=1h", "vpc block acl-a#17 ttl=1h", "vpc block acl-a#18 ttl=1h", "host block on i-1 ttl=1h", "host block on i-1 ttl=1h"}, nil},
		{"never widen over a protected network", []string{"198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24"},
			func(w *world) {
				w.cfg.Policy.NearlyFullFree = 0
				w.s.Allowlist = Ps("198.51.103.77")
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 16)...)}
			},
			[]string{"vpc block acl-a#17 ttl=1h", "vpc block acl-a#18 ttl=1h", "host block on i-1 ttl=1h"}, nil},
		{"without the protected address the same attack is widened", []string{"198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24"},
			func(w *world) {
				w.cfg.Policy.NearlyFullFree = 0
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 16)...)}
			},
			[]string{"vpc block acl-a#17 as 198.51.100.0/22 ttl=1h", "vpc block acl-a#17 as 198.51.100.0/22 ttl=1h", "vpc block acl-a#17 as 198.51.100.0/22 ttl=1h"}, nil},
		{"existing single entries of a /24 merge with a new one in place", []string{"198.51.100.9"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(deny(4, "198.51.100.7", time.Hour), deny(2, "198.51.100.8", 2*time.Hour), deny(3, "203.0.113.1", time.Hour))}
			},
			[]string{"vpc block acl-a#2 as 198.51.100.0/24 ttl=1h"},
			nil},
		{"v6 aggregates to /64", []string{"2001:db8:0:1::7", "2001:db8:0:1::8", "2001:db8:0:1:ffff::9"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.cfg.NACL.RuleMax = 3
			},
			[]string{"vpc block acl-a#1 as 2001:db8:0:1::/64 ttl=1h", "vpc block acl-a#1 as 2001:db8:0:1::/64 ttl=1h", "vpc block acl-a#1 as 2001:db8:0:1::/64 ttl=1h"}, nil},
		{"a source inside another rides on its entry", []string{"198.51.100.0/24", "198.51.100.9"},
			func(w *world) { w.a.Targets = hosts("subnet-a", "i-1", "i-2") },
			[]string{"vpc block acl-a#1 ttl=1h", "vpc block acl-a#1 as 198.51.100.0/24 ttl=1h"}, nil},

		// Eviction.
		{"full: a more severe attack evicts the entry expiring first", []string{"198.51.100.0/24"},
			func(w *world) {
				w.a.Severity = 8
				es := fill(1, 18)
				es[4].ExpiresAt = testNow.Add(time.Minute) // rule 5 expires first
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(es...)}
			},
			[]string{"vpc block acl-a#5 evicts #5 ttl=1h"}, []string{""}},
		{"full: an attack as severe evicts nothing", []string{"198.51.100.0/24"},
			func(w *world) {
				w.a.Severity = 5
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 18)...)}
			},
			[]string{"host block on i-1 ttl=1h"}, []string{"host: acl-a reserved range full (18/18"}},
		{"full: entries without expiry or more severe stay", []string{"198.51.100.0/24"},
			func(w *world) {
				w.a.Severity = 8
				es := fill(1, 18)
				for k := range es {
					if k%2 == 0 {
						es[k].ExpiresAt = time.Time{}
					} else {
						es[k].Severity = 9
					}
				}
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(es...)}
			},
			[]string{"host block on i-1 ttl=1h"}, nil},
		{"--scope vpc and full: the entry worth least makes room", []string{"198.51.100.0/24"},
			func(w *world) {
				w.a.Scope = ScopeVPC
				es := fill(1, 18)
				es[6].Volume = 0 // rule 7 expires in 7h; all others were blocked for more
				for k := range es {
					if k != 6 {
						es[k].Volume = 50
					}
				}
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(es...)}
			},
			[]string{"vpc block acl-a#7 evicts #7 ttl=1h"}, []string{"vpc: --scope vpc requested"}},
		{"--scope vpc and full of entries that never expire: refused", []string{"198.51.100.0/24"},
			func(w *world) {
				w.a.Scope = ScopeVPC
				es := fill(1, 18)
				for k := range es {
					es[k].ExpiresAt = time.Time{}
				}
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(es...)}
			},
			[]string{"none refuse"}, []string{"refused: acl-a reserved range full (18/18) and --scope vpc was requested (quota 20 IPv4 entries per direction, 2 of them outside the range incl. the default deny; no entry to evict: every entry there has no expiry or is being refreshed)"}},
		{"bare subnet and full: refused, no instance to fall back on", []string{"198.51.100.9"},
			func(w *world) {
				w.a.Targets = []Target{{SubnetID: "subnet-a"}}
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 18)...)}
			},
			[]string{"none refuse"}, []string{"refused: acl-a reserved range full (18/18) and no instance is named to drop it on instead"}},

		// Already blocked.
		{"already dropped on the host long enough: skip", []string{"198.51.100.9"},
			func(w *world) {
				w.s.Blocks = []Block{{Target: P("198.51.100.0/24"), Scope: ScopeHost, InstanceID: "i-1", ExpiresAt: testNow.Add(3 * time.Hour)}}
			},
			[]string{"none skip"}, []string{"skip: already dropped on i-1 (until 2026-01-02T06:04:05Z)"}},
		{"already dropped but ending sooner: refresh", []string{"198.51.100.9"},
			func(w *world) {
				w.s.Blocks = []Block{{Target: P("198.51.100.9"), Scope: ScopeHost, InstanceID: "i-1", ExpiresAt: testNow.Add(10 * time.Minute)}}
			},
			[]string{"host block on i-1 ttl=1h"}, []string{"host: reaches 1"}},
		{"already denied by the NACL: skip", []string{"198.51.100.9"},
			func(w *world) {
				w.a.Targets = hosts("subnet-a", "i-1", "i-2")
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(deny(3, "198.51.100.0/24", 5*time.Hour))}
			},
			[]string{"none skip"}, []string{"skip: already denied by acl-a rule 3 (198.51.100.0/24, until 2026-01-02T08:04:05Z)"}},
		{"a host-scope attack the subnet edge already denies: skip", []string{"198.51.100.9"},
			func(w *world) {
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(deny(3, "198.51.100.0/24", 0))}
			},
			[]string{"none skip"}, []string{"skip: already denied at the subnet edge by acl-a rule 3 (no expiry)"}},
		{"own NACL entry ending sooner: refresh at the same rule", []string{"198.51.100.0/24"},
			func(w *world) {
				w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 18)...)}
				w.s.NACLs["subnet-a"].Entries[4+6] = deny(7, "198.51.100.0/24", 5*time.Minute)
			},
			[]string{"vpc block acl-a#7 ttl=1h"}, []string{"refresh: acl-a rule 7 already denies 198.51.100.0/24 until 2026-01-02T03:09:05Z; extending to 2026-01-02T04:04:05Z"}},
		{"listed twice", []string{"198.51.100.9", "::ffff:198.51.100.9"}, nil,
			[]string{"host block on i-1 ttl=1h", "none skip"}, []string{"", "skip: 198.51.100.9 is listed more than once; decided at position 1"}},

		// Repeat offenders.
		{"ttl doubles per offence within the window, capped", []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.20"},
			func(w *world) {
				for k := range 3 {
					w.s.Offences = append(w.s.Offences, Offence{Source: P("198.51.100.2"), At: testNow.Add(-time.Duration(k+1) * time.Hour)})
				}
				w.s.Offences = append(w.s.Offences,
					Offence{Source: P("198.51.100.1"), At: testNow.Add(-8 * 24 * time.Hour)}, // outside the 7-day window
					Offence{Source: P("198.51.100.3"), At: testNow.Add(-7 * 24 * time.Hour)}, // exactly at its edge
				)
				for k := range 12 {
					w.s.Offences = append(w.s.Offences, Offence{Source: P("198.51.100.16/28"), At: testNow.Add(-time.Duration(k) * time.Minute)})
				}
			},
			[]string{"host block on i-1 ttl=1h", "host block on i-1 ttl=8h", "host block on i-1 ttl=2h", "host block on i-1 ttl=30d"},
			[]string{"host:", "host:", "host:", "host:"}},
		{"requested ttl escalates from itself", []string{"198.51.100.9"},
			func(w *world) {
				w.a.TTL = 2 * time.Hour
				w.s.Offences = []Offence{{Source: P("198.51.100.9"), At: testNow.Add(-time.Hour)}}
			},
			[]string{"host block on i-1 ttl=4h"}, []string{"host:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := baseWorld()
			w.a.Sources = Ps(tc.sources...)
			if tc.setup != nil {
				tc.setup(w)
			}
			ds := New(w.cfg).Decide(w.a, w.s)
			if len(ds) != len(tc.want) {
				t.Fatalf("got %d decisions, want %d", len(ds), len(tc.want))
			}
			for i, d := range ds {
				if got := summary(d); got != tc.want[i] {
					t.Errorf("source %d (%s): got %q, want %q\n  reasons: %q", i, tc.sources[i], got, tc.want[i], d.Reasons)
				}
				if i < len(tc.reasons) && tc.reasons[i] != "" && (len(d.Reasons) == 0 || !strings.Contains(d.Reasons[0], tc.reasons[i])) {
					t.Errorf("source %d: first reason %q, want it to contain %q\n  all: %q", i, first(d.Reasons), tc.reasons[i], d.Reasons)
				}
				checkDecision(t, w, d)
			}
		})
	}
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

// checkDecision asserts what holds for every decision.
func checkDecision(t *testing.T, w *world, d Decision) {
	t.Helper()
	if len(d.Reasons) == 0 {
		t.Errorf("%s: no reason", d.Target)
	}
	if !d.ExpiresAt.Equal(w.s.Now.Add(d.TTL)) || d.TTLSeconds != int64(d.TTL/time.Second) || d.TTL <= 0 {
		t.Errorf("%s: ttl %s, ttl_seconds %d, expires %s", d.Target, d.TTL, d.TTLSeconds, d.ExpiresAt)
	}
	switch {
	case d.Action == ActionBlock && d.Scope == ScopeVPC:
		if d.NACLID == "" || d.RuleNumber < w.cfg.NACL.RuleMin || d.RuleNumber > w.cfg.NACL.RuleMax {
			t.Errorf("%s: vpc decision with nacl %q rule %d", d.Target, d.NACLID, d.RuleNumber)
		}
	case d.Action == ActionBlock && d.Scope == ScopeHost:
		if d.NACLID != "" || d.RuleNumber != 0 {
			t.Errorf("%s: host decision carries nacl %q rule %d", d.Target, d.NACLID, d.RuleNumber)
		}
	case d.Action != ActionBlock && d.Scope != ScopeNone:
		t.Errorf("%s: %s with scope %s", d.Target, d.Action, d.Scope)
	}
}

func TestAnyRefused(t *testing.T) {
	if AnyRefused(nil) || AnyRefused([]Decision{{Action: ActionBlock}, {Action: ActionSkip}}) {
		t.Error("no refusal reported as refused")
	}
	if !AnyRefused([]Decision{{Action: ActionBlock}, {Action: ActionRefuse}}) {
		t.Error("refusal not reported")
	}
}

func TestDecideIsPure(t *testing.T) {
	w := baseWorld()
	w.a.Sources = Ps("198.51.100.7", "198.51.100.8", "198.51.100.9", "2001:db8::1")
	w.a.Targets = hosts("subnet-a", "i-1", "i-2")
	w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 14)...)}
	e := New(w.cfg)
	before := fmt.Sprintf("%+v %+v", w.a, w.s)
	d1 := e.Decide(w.a, w.s)
	d2 := e.Decide(w.a, w.s)
	if after := fmt.Sprintf("%+v %+v", w.a, w.s); after != before {
		t.Errorf("Decide changed its input")
	}
	if fmt.Sprintf("%+v", d1) != fmt.Sprintf("%+v", d2) {
		t.Errorf("two calls differ:\n%+v\n%+v", d1, d2)
	}
}

// TestDecideReasons pins every reason of a few decisions: what an operator
// reads during an incident.
func TestDecideReasons(t *testing.T) {
	w := baseWorld()
	w.a.Sources = Ps("198.51.100.7", "198.51.100.8", "198.51.100.9", "203.0.113.5")
	w.a.Targets = hosts("subnet-a", "i-1", "i-2", "i-3")
	w.a.Severity = 8
	w.s.SGRules["i-3"] = openRules(Port{Proto: "tcp", From: 443, To: 443})
	es := fill(1, 16)
	es[2].ExpiresAt = testNow.Add(time.Minute)
	w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(es...)}
	w.s.Offences = []Offence{{Source: P("203.0.113.5"), At: testNow.Add(-time.Hour)}}
	ds := New(w.cfg).Decide(w.a, w.s)
	want := [][]string{
		{
			"vpc: reaches 2 instances in subnet-a (threshold 2)",
			"not on i-3: no security group there admits tcp/110 from this source",
			"vpc: aggregated 3 sources into 198.51.100.0/24 (policy.aggregate_min_sources 3)",
			"vpc: deny 198.51.100.0/24 at acl-a rule 17 (IPv4 reserved range 1-19: 17/18 used; 18 = quota 20 - 2 IPv4 entries outside the range)",
		},
		nil, nil,
		{
			"vpc: reaches 2 instances in subnet-a (threshold 2)",
			"not on i-3: no security group there admits tcp/110 from this source",
			"repeat offender: 1 prior offence(s) within 7d; ttl 1h doubled to 2h",
			"vpc: deny 203.0.113.5 at acl-a rule 18 (IPv4 reserved range 1-19: 18/18 used; 18 = quota 20 - 2 IPv4 entries outside the range)",
		},
	}
	for i, d := range ds {
		if want[i] == nil {
			continue
		}
		if strings.Join(d.Reasons, "\n") != strings.Join(want[i], "\n") {
			t.Errorf("source %d reasons:\n got %q\nwant %q", i, d.Reasons, want[i])
		}
	}

	// Full: the severe attack evicts the entry that expires first.
	w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(append(es, deny(17, "192.17.2.17", 9*time.Hour), deny(18, "192.18.2.18", 9*time.Hour))...)}
	w.a.Sources = Ps("203.0.113.5")
	d := New(w.cfg).Decide(w.a, w.s)[0]
	wantR := []string{
		"vpc: reaches 2 instances in subnet-a (threshold 2)",
		"not on i-3: no security group there admits tcp/110 from this source",
		"repeat offender: 1 prior offence(s) within 7d; ttl 1h doubled to 2h",
		"vpc: deny 203.0.113.5 at acl-a rule 3",
		"vpc: evicts acl-a rule 3 (192.3.2.3, worth 0.00843: volume 1, until 2026-01-02T03:05:05Z) for an entry worth 1.6",
	}
	if strings.Join(d.Reasons, "\n") != strings.Join(wantR, "\n") || d.Evicts == nil || d.Evicts.Target != P("192.3.2.3") || d.Evicts.NACLID != "acl-a" {
		t.Errorf("eviction: %s\n got %q\nwant %q", summary(d), d.Reasons, wantR)
	}
}

// TestRepeatOffenderTTLSaturates doubles a TTL for many offences under the
// largest cap the type can hold: it must stop at the cap, never wrap
// negative (an expiry in the past).
func TestRepeatOffenderTTLSaturates(t *testing.T) {
	for _, maxTTL := range []time.Duration{MaxTTLLimit, time.Duration(1<<63 - 1)} {
		w := baseWorld()
		w.cfg.Policy.MaxTTL = Duration(maxTTL) // past validation on purpose for the second
		w.a.Sources = Ps("198.51.100.2")
		for k := range 80 {
			w.s.Offences = append(w.s.Offences, Offence{Source: P("198.51.100.2"), At: testNow.Add(-time.Duration(k+1) * time.Minute)})
		}
		ds := New(w.cfg).Decide(w.a, w.s)
		if len(ds) != 1 {
			t.Fatalf("max_ttl %s: %d decisions", maxTTL, len(ds))
		}
		if d := ds[0]; d.TTL != maxTTL || !d.ExpiresAt.After(testNow) {
			t.Errorf("max_ttl %s, 80 offences: ttl %s, expires %s; want the cap, in the future", maxTTL, d.TTL, d.ExpiresAt)
		}
	}
}

func TestProtectedForRecordedBlocks(t *testing.T) {
	cfg := Default()
	cfg.Allowlist = Ps("203.0.113.0/24")
	e := New(cfg)
	caller := netip.MustParseAddr("198.51.100.77")
	for _, tc := range []struct {
		p    string
		want string // first reason; "" = not protected
	}{
		{"0.0.0.0/1", "0.0.0.0/1 contains 0.0.0.0, the unspecified address"},
		{"0.0.0.0/0", "0.0.0.0/0 covers every address"},
		{"127.0.0.1", "127.0.0.1 is inside 127.0.0.0/8, loopback"},
		{"169.254.169.254", "169.254.169.254 is the instance metadata address"},
		{"::ffff:169.254.169.254", "169.254.169.254 is the instance metadata address"},
		{"198.51.100.77", "198.51.100.77 is the caller's own address"},
		{"198.51.100.0/24", "198.51.100.0/24 contains 198.51.100.77, the caller's own address"},
		{"203.0.113.9", "203.0.113.9 is inside 203.0.113.0/24, on the allowlist of the config"},
		{"192.0.2.1", ""},
		{"2001:db8::/64", ""},
	} {
		got := e.Protected(P(tc.p), []netip.Addr{caller})
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: protected by %q, want nothing", tc.p, got)
		case tc.want != "" && (len(got) == 0 || got[0] != tc.want):
			t.Errorf("%s: %q, want first %q", tc.p, got, tc.want)
		}
	}
}

// TestPlacementReasons pins the reasons of a merge in place and of a
// widened entry: what the operator reads when the range is re-placed.
func TestPlacementReasons(t *testing.T) {
	w := baseWorld()
	w.a.Sources = Ps("198.51.100.9")
	w.a.Targets = hosts("subnet-a", "i-1", "i-2")
	w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(deny(4, "198.51.100.7", time.Hour), deny(2, "198.51.100.8", 2*time.Hour), deny(3, "203.0.113.1", time.Hour))}
	d := New(w.cfg).Decide(w.a, w.s)[0]
	want := []string{
		"vpc: reaches 2 instances in subnet-a (threshold 2)",
		"vpc: aggregated 3 sources into 198.51.100.0/24, 2 of them already denied (policy.aggregate_min_sources 3)",
		"vpc: deny 198.51.100.0/24 at acl-a rule 2 (IPv4 reserved range 1-19: 2/18 used; 18 = quota 20 - 2 IPv4 entries outside the range)",
	}
	if strings.Join(d.Reasons, "\n") != strings.Join(want, "\n") || d.Merges != nil {
		t.Errorf("merge in place: %s merges %v\n got %q\nwant %q", summary(d), d.Merges, d.Reasons, want)
	}

	w = baseWorld()
	w.cfg.Policy.NearlyFullFree = 0
	w.a.Sources = Ps("198.51.100.0/24", "198.51.101.0/24", "198.51.102.0/24")
	w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(fill(1, 16)...)}
	d = New(w.cfg).Decide(w.a, w.s)[1]
	want = []string{
		"vpc: 198.51.101.0/24 is wider than one address",
		"vpc: widened to 198.51.100.0/22 to fit the range: 3 entries with attack sources in /24 blocks (policy.nearly_full_free 0, policy.max_prefix_v4 16)",
		"vpc: deny 198.51.100.0/22 at acl-a rule 17 (IPv4 reserved range 1-19: 17/18 used; 18 = quota 20 - 2 IPv4 entries outside the range)",
	}
	if strings.Join(d.Reasons, "\n") != strings.Join(want, "\n") {
		t.Errorf("widened: %s\n got %q\nwant %q", summary(d), d.Reasons, want)
	}

	// Existing entries of a /24 that reached aggregate_min_sources before
	// this rule existed merge too; the first placed decision carries it.
	w = baseWorld()
	w.a.Sources = Ps("203.0.113.9")
	w.a.Targets = hosts("subnet-a", "i-1", "i-2")
	w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", Entries: stdEntries(deny(5, "198.51.100.7", time.Hour), deny(2, "198.51.100.8", 2*time.Hour), deny(9, "198.51.100.20", 3*time.Hour))}
	d = New(w.cfg).Decide(w.a, w.s)[0]
	wantM := []Block{{Target: P("198.51.100.0/24"), Scope: ScopeVPC, NACLID: "acl-a", RuleNumber: 2, ExpiresAt: testNow.Add(3 * time.Hour),
		Reason: "vpc: aggregated 3 sources into 198.51.100.0/24, 3 of them already denied (policy.aggregate_min_sources 3); rules 2, 5, 9 merged in place at 2"}}
	if fmt.Sprint(d.Merges) != fmt.Sprint(wantM) || summary(d) != "vpc block acl-a#1 ttl=1h" {
		t.Errorf("merges: %s\n got %+v\nwant %+v", summary(d), d.Merges, wantM)
	}
}

// TestPermanentBlocks decides --ttl permanent: TTL 0 and a zero ExpiresAt
// (what every layer reads as "never"), no repeat doubling, and an existing
// block that expires is refreshed to no expiry, not kept as it is.
func TestPermanentBlocks(t *testing.T) {
	w := baseWorld()
	w.a.Sources = Ps("198.51.100.2", "203.0.113.5")
	w.a.Permanent = true
	w.a.TTL = time.Hour // ignored
	w.s.Offences = []Offence{{Source: P("198.51.100.2"), At: testNow.Add(-time.Hour)}}
	w.s.Blocks = []Block{{Target: P("203.0.113.5"), Scope: ScopeHost, InstanceID: "i-1", ExpiresAt: testNow.Add(MaxTTLLimit)}}
	ds := New(w.cfg).Decide(w.a, w.s)
	for _, d := range ds {
		if d.Action != ActionBlock || d.TTL != 0 || d.TTLSeconds != 0 || !d.ExpiresAt.IsZero() {
			t.Errorf("%s: %s ttl %s (%ds) expires %v; want a block with no expiry", d.Target, d.Action, d.TTL, d.TTLSeconds, d.ExpiresAt)
		}
		for _, r := range d.Reasons {
			if strings.Contains(r, "doubled") {
				t.Errorf("%s: a permanent block is not doubled: %q", d.Target, r)
			}
		}
	}
	if got := strings.Join(ds[1].Reasons, "\n"); !strings.Contains(got, "to no expiry (permanent)") {
		t.Errorf("existing 10-year block: reasons %q; want it extended to no expiry", got)
	}
}

// TestCoveredAtTheEdgeStillDropsOutside: a source the chosen subnet's NACL
// already denies (long enough) needs no new entry, but the attacked
// instance in another subnet still gets its host block.
func TestCoveredAtTheEdgeStillDropsOutside(t *testing.T) {
	w := baseWorld()
	w.a.Sources = Ps("198.51.100.7")
	w.a.Targets = append(hosts("subnet-a", "i-1", "i-2"), hosts("subnet-b", "i-3")...)
	w.a.Scope = ScopeVPC
	w.s.NACLs["subnet-a"] = NACL{ID: "acl-a", SubnetIDs: []string{"subnet-a"}, Entries: stdEntries(deny(4, "198.51.100.0/24", 48*time.Hour))}
	d := New(w.cfg).Decide(w.a, w.s)[0]
	if d.Scope != ScopeHost || d.Action != ActionBlock || !slices.Equal(d.Instances, []string{"i-3"}) || d.NACLID != "" ||
		!strings.Contains(d.Reasons[0], "already denied by acl-a rule 4") {
		t.Errorf("%s %+v; want a host block on i-3 only, saying acl-a rule 4 holds the rest", summary(d), d)
	}
	// With every instance behind that NACL, nothing is left to do.
	w.a.Targets = hosts("subnet-a", "i-1", "i-2")
	if d := New(w.cfg).Decide(w.a, w.s)[0]; d.Action != ActionSkip {
		t.Errorf("all behind acl-a: %s, want skip", summary(d))
	}
}
