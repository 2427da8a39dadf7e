package policy

import (
	"fmt"
	"net/netip"
	"time"
)

// Scope is the layer a block is enforced at.
type Scope string

// Scopes of a decision. ScopeAuto is only ever requested, never decided.
const (
	ScopeHost Scope = "host" // iptables + ipset on the attacked instances
	ScopeVPC  Scope = "vpc"  // VPC network ACL deny at the subnet edge
	ScopeNone Scope = "none" // nothing is enforced (skip or refuse)
	ScopeAuto Scope = "auto" // let the engine choose (requests only)
)

// ParseScope parses a requested scope: auto, host or vpc.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeAuto, ScopeHost, ScopeVPC:
		return Scope(s), nil
	}
	return "", &InputError{Value: s, Msg: "unknown scope (want auto, host or vpc)"}
}

// Action is what a decision does.
type Action string

// Actions of a decision.
const (
	ActionBlock  Action = "block"  // enforce a deny
	ActionSkip   Action = "skip"   // nothing to do: already dropped or already blocked
	ActionRefuse Action = "refuse" // policy forbids it; nothing changes (exit 3)
)

// Kind classifies an attack.
type Kind string

// Kinds of attack.
const (
	KindManual     Kind = "manual"
	KindBruteforce Kind = "bruteforce"
	KindScan       Kind = "scan"
	KindFlood      Kind = "flood"
)

// Origin says who asked for a block.
type Origin string

// Origins of a block.
const (
	OriginCLI    Origin = "cli"
	OriginWatch  Origin = "watch"
	OriginLambda Origin = "lambda"
)

// Port is a protocol and port range of an attack or a rule. The zero value
// (Proto "") means every protocol and port.
type Port struct {
	Proto string `json:"proto,omitempty"` // "tcp", "udp", "icmp", "icmpv6" or "" for all
	From  uint16 `json:"from,omitempty"`
	To    uint16 `json:"to,omitempty"`
}

// Target is an instance (or a bare subnet) under attack.
type Target struct {
	InstanceID string       `json:"instance_id,omitempty"`
	SubnetID   string       `json:"subnet_id,omitempty"`
	VPCID      string       `json:"vpc_id,omitempty"`
	Addresses  []netip.Addr `json:"addresses,omitempty"`
}

// Attack is what detection (or an operator) reports: sources attacking
// targets on a port.
type Attack struct {
	Sources  []netip.Prefix `json:"sources"`
	Targets  []Target       `json:"targets,omitempty"`
	Port     Port           `json:"port"`
	Evidence int            `json:"evidence,omitempty"` // failure lines or packets seen
	Rate     float64        `json:"rate,omitempty"`     // events per second
	Window   time.Duration  `json:"window,omitempty"`
	Kind     Kind           `json:"kind,omitempty"`
	Severity int            `json:"severity,omitempty"` // 0 (unknown) to 10
	Origin   Origin         `json:"origin,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	TTL      time.Duration  `json:"ttl,omitempty"` // requested; 0 means the configured default
	// Permanent asks for blocks that never expire (the CLI's --ttl
	// permanent): TTL is ignored, no repeat doubling applies, and the
	// decisions carry TTL 0 and a zero ExpiresAt.
	Permanent bool  `json:"permanent,omitempty"`
	Scope     Scope `json:"scope,omitempty"`
	Force     bool  `json:"force,omitempty"`
	// Volume is, per source (parallel to Sources), the failures or
	// packets seen from it: what denying it at the edge is worth. Empty:
	// Evidence spread evenly over the sources.
	Volume []int64 `json:"volume,omitempty"`
}

// SGRule is one inbound rule of a security group, its source already
// resolved to a CIDR (managed prefix lists are expanded by the caller).
type SGRule struct {
	GroupID      string       `json:"group_id"`
	RuleID       string       `json:"rule_id,omitempty"`
	Description  string       `json:"description,omitempty"`
	Port         Port         `json:"port"`
	Source       netip.Prefix `json:"source"`
	PrefixListID string       `json:"prefix_list_id,omitempty"`
}

// NACLEntry is one entry of a network ACL (any rule number, ours or not).
type NACLEntry struct {
	RuleNumber int          `json:"rule_number"`
	Egress     bool         `json:"egress,omitempty"`
	Allow      bool         `json:"allow"`
	CIDR       netip.Prefix `json:"cidr"`
	Port       Port         `json:"port"`
	ExpiresAt  time.Time    `json:"expires_at,omitzero"` // banshee's entries only
	Reason     string       `json:"reason,omitempty"`
	Origin     Origin       `json:"origin,omitempty"`
	Severity   int          `json:"severity,omitempty"` // banshee's entries: severity of the attack (0: policy.default_severity)
	Volume     int64        `json:"volume,omitempty"`   // banshee's entries: failures or packets seen from what it denies (0: unknown)
	LastSeen   time.Time    `json:"last_seen,omitzero"` // banshee's entries: when it was last blocked or extended (zero: unknown)
}

// NACL is the network ACL of a subnet with every entry it has, so the engine
// can count the quota (per family, default rules included) and check order.
type NACL struct {
	ID        string      `json:"id"`
	SubnetIDs []string    `json:"subnet_ids,omitempty"`
	Entries   []NACLEntry `json:"entries"`
	// Unmanaged, when set, says why banshee may not change this ACL (it is
	// outside the set a deployment manages): a VPC decision for it falls
	// back to the hosts, or is refused when VPC scope was asked for.
	Unmanaged string `json:"unmanaged,omitempty"`
}

// Block is an active block at either scope.
type Block struct {
	Target     netip.Prefix `json:"target"`
	Scope      Scope        `json:"scope"`
	InstanceID string       `json:"instance_id,omitempty"`
	NACLID     string       `json:"nacl_id,omitempty"`
	RuleNumber int          `json:"rule_number,omitempty"`
	ExpiresAt  time.Time    `json:"expires_at,omitzero"`
	Reason     string       `json:"reason,omitempty"`
	Origin     Origin       `json:"origin,omitempty"`
	Severity   int          `json:"severity,omitempty"` // severity of the attack (0: policy.default_severity)
}

// Offence is a past block of a source, for repeat-offender escalation.
type Offence struct {
	Source netip.Prefix `json:"source"`
	At     time.Time    `json:"at"`
}

// Snapshot is the world the engine decides against. Callers fill it from
// config, AWS and the host; the engine never looks anything up itself.
type Snapshot struct {
	Now       time.Time           `json:"now,omitzero"`
	Allowlist []netip.Prefix      `json:"allowlist,omitempty"`
	SGRules   map[string][]SGRule `json:"sg_rules,omitempty"` // by instance id
	VPCCIDRs  []netip.Prefix      `json:"vpc_cidrs,omitempty"`
	Callers   []netip.Addr        `json:"callers,omitempty"` // the operator's own addresses (SSH client, ...)
	// Protected are networks of the host itself that no block may overlap,
	// not even with --force: established SSH peers, the host's own
	// addresses, its default gateways and DNS resolvers.
	Protected []Protected     `json:"protected,omitempty"`
	NACLs     map[string]NACL `json:"nacls,omitempty"` // by subnet id
	Blocks    []Block         `json:"blocks,omitempty"`
	Offences  []Offence       `json:"offences,omitempty"`
}

// Protected is a network of the host that no block may overlap, and what it
// is ("an established SSH peer of this host (port 2222)").
type Protected struct {
	Prefix netip.Prefix `json:"prefix"`
	What   string       `json:"what"`
}

// Decision is the engine's answer for one source.
type Decision struct {
	Target     netip.Prefix  `json:"target"`
	Scope      Scope         `json:"scope"`
	Action     Action        `json:"action"`
	Reasons    []string      `json:"reasons"`
	TTL        time.Duration `json:"-"`
	TTLSeconds int64         `json:"ttl_seconds"`
	ExpiresAt  time.Time     `json:"expires_at,omitzero"`
	Instances  []string      `json:"instances,omitempty"` // host scope: where to enforce
	SubnetID   string        `json:"subnet_id,omitempty"`
	NACLID     string        `json:"nacl_id,omitempty"`
	RuleNumber int           `json:"rule_number,omitempty"`
	Aggregate  *netip.Prefix `json:"aggregate,omitempty"` // the NACL entry covering this source, when aggregated
	Evicts     *Block        `json:"evicts,omitempty"`
	Repeat     int           `json:"repeat,omitempty"` // prior offences within the window
	Volume     int64         `json:"volume,omitempty"` // the source's share of the attack, recorded with a VPC block
	// Merges lists entries of the NACL that this decision's placement
	// rewrites without a source of its own: each is a wider deny (Target)
	// to write in place of the lowest entry of ours inside it (RuleNumber),
	// the others inside it then deleted. Only the first VPC decision of a
	// NACL carries them; they are applied before any new entry.
	Merges []Block `json:"merges,omitempty"`
}

// InputError is bad input from a user: a bad address, flag or config value.
// Commands map it to exit code 2.
type InputError struct {
	Value string // the offending value, quoted in the message
	Line  int    // config line, when known
	Msg   string
}

func (e *InputError) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("line %d: %q: %s", e.Line, e.Value, e.Msg)
	case e.Value == "":
		return e.Msg // nothing to quote: the message says what is missing
	}
	return fmt.Sprintf("%q: %s", e.Value, e.Msg)
}
