package policy_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/banshee-project/banshee/policy"
)

var exampleNow = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// A source inside a security-group whitelist is refused, naming the rule.
func ExampleEngine_Decide_refused() {
	e := policy.New(policy.Default())
	a := policy.Attack{
		Sources: []netip.Prefix{pfx("203.0.113.7/32")},
		Targets: []policy.Target{{InstanceID: "i-0123", SubnetID: "subnet-0aa"}},
		Port:    policy.Port{Proto: "tcp", From: 22, To: 22},
	}
	s := policy.Snapshot{
		Now: exampleNow,
		SGRules: map[string][]policy.SGRule{"i-0123": {
			{GroupID: "sg-0abc", Description: "office ssh", Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Source: pfx("203.0.113.0/24")},
		}},
	}
	for _, d := range e.Decide(a, s) {
		fmt.Println(d.Action, d.Reasons[0])
	}
	fmt.Println(policy.AnyRefused(e.Decide(a, s)))
	// Output:
	// refuse refused: 203.0.113.7 is inside 203.0.113.0/24, allowed on tcp/22 by sg-0abc (rule 'office ssh') of i-0123 (--force overrides this)
	// true
}

// A source no security group admits is skipped: the whitelist drops it.
func ExampleEngine_Decide_skip() {
	e := policy.New(policy.Default())
	a := policy.Attack{
		Sources: []netip.Prefix{pfx("198.51.100.9/32")},
		Targets: []policy.Target{{InstanceID: "i-0123"}},
		Port:    policy.Port{Proto: "tcp", From: 110, To: 110},
	}
	s := policy.Snapshot{
		Now: exampleNow,
		SGRules: map[string][]policy.SGRule{"i-0123": {
			{GroupID: "sg-0web", Port: policy.Port{Proto: "tcp", From: 443, To: 443}, Source: pfx("0.0.0.0/0")},
		}},
	}
	d := e.Decide(a, s)[0]
	fmt.Println(d.Scope, d.Action, d.Reasons[0])
	// Output:
	// none skip skip: no security group of i-0123 admits tcp/110 from 198.51.100.9; already dropped
}

// An attack reaching two instances of one subnet is denied at its NACL.
func ExampleEngine_Decide_vpc() {
	e := policy.New(policy.Default())
	open := []policy.SGRule{{GroupID: "sg-0pop", Port: policy.Port{Proto: "tcp", From: 110, To: 110}, Source: pfx("0.0.0.0/0")}}
	a := policy.Attack{
		Sources: []netip.Prefix{pfx("174.132.223.252/32")},
		Targets: []policy.Target{
			{InstanceID: "i-01", SubnetID: "subnet-0aa"},
			{InstanceID: "i-02", SubnetID: "subnet-0aa"},
			{InstanceID: "i-03", SubnetID: "subnet-0aa"},
		},
		Port: policy.Port{Proto: "tcp", From: 110, To: 110},
	}
	s := policy.Snapshot{
		Now:     exampleNow,
		SGRules: map[string][]policy.SGRule{"i-01": open, "i-02": open, "i-03": open},
		NACLs: map[string]policy.NACL{"subnet-0aa": {ID: "acl-0bb", SubnetIDs: []string{"subnet-0aa"}, Entries: []policy.NACLEntry{
			{RuleNumber: 100, Allow: true, CIDR: pfx("0.0.0.0/0")},
			{RuleNumber: 32767, CIDR: pfx("0.0.0.0/0")},
		}}},
	}
	d := e.Decide(a, s)[0]
	fmt.Println(d.Scope, d.Action, d.NACLID, d.RuleNumber, d.TTLSeconds, d.ExpiresAt.Format(time.RFC3339))
	for _, r := range d.Reasons {
		fmt.Println(r)
	}
	// Output:
	// vpc block acl-0bb 1 3600 2026-11-21T07:00:00Z
	// vpc: reaches 3 instances in subnet-0aa (threshold 2)
	// vpc: deny 174.132.223.252 at acl-0bb rule 1 (IPv4 reserved range 1-19: 1/18 used; 18 = quota 20 - 2 IPv4 entries outside the range)
}

// Configuration errors name the line, the value and the rule it breaks.
func ExampleParseConfig() {
	_, err := policy.ParseConfig([]byte("policy:\n  default_ttl: 2h\n  max_ttl: -1h\n"))
	fmt.Println(err)
	_, err = policy.ParseConfig([]byte("allowlist:\n  - 203.0.113.0/24\n  - 198.51.100.0/33\n"))
	fmt.Println(err)
	_, err = policy.ParseConfig([]byte("policy:\n  default_ttl: 2h\nalowlist: []\n"))
	fmt.Println(err)
	// Output:
	// line 3: "-1h": duration must not be negative
	// line 3: "198.51.100.0/33": not an IPv4/IPv6 address or CIDR
	// line 3: "alowlist": unknown key in the top level (known: allowlist, policy, host, nacl, watch)
}

// Placing a family's reserved range: two addresses already denied and a
// third of the same /24 become one entry; with room for two entries the
// lighter of the other two sources stays on the hosts.
func ExamplePlaceRange() {
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	plan := policy.PlaceRange(policy.RangeInput{
		Items: []policy.RangeItem{
			{Prefix: p("45.33.1.1/32"), Rule: 1, Value: 3, Sources: 1},
			{Prefix: p("45.33.1.8/32"), Rule: 2, Value: 2, Sources: 1},
			{Prefix: p("45.33.1.9/32"), Value: 4, Sources: 1},
			{Prefix: p("203.0.113.7/32"), Value: 6, Sources: 1},
			{Prefix: p("198.51.100.7/32"), Value: 1, Sources: 1},
		},
		Capacity:      2,
		AggregateBits: 24, AggregateMin: 3, MaxPrefix: 16,
	})
	for _, e := range plan.Entries {
		fmt.Println(e.Prefix, e.Items)
	}
	fmt.Println("dropped", plan.Dropped)
	// Output:
	// 45.33.1.0/24 [0 1 2]
	// 203.0.113.7/32 [3]
	// dropped [4]
}
