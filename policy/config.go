package policy

import (
	"net/netip"
	"time"
)

// Bounds of the configuration that no setting may pass.
const (
	// MaxTTLLimit is the largest policy.max_ttl: ten years. Expiries stay
	// far inside what time and NACL tags can carry, and doubling a TTL
	// never comes near an overflow.
	MaxTTLLimit = 3650 * 24 * time.Hour
	// MaxHostEntries is the largest host.max_entries: the maxelem of an
	// ipset hash set is 32 bits, and each entry costs kernel memory.
	MaxHostEntries = 1 << 27
)

// Config is banshee's configuration file (banshee.yaml; JSON is accepted
// too, as in the SSM parameter the Terraform module writes). Every section is
// plain data: the CLI, the daemon and the Lambda function all read the same
// file. Durations are Go duration strings that may count days ("90s",
// "2h", "2d", "1d12h"; see ParseDuration).
type Config struct {
	// Allowlist holds networks that are never blocked.
	Allowlist []netip.Prefix `yaml:"allowlist" json:"allowlist"`
	Policy    PolicyConfig   `yaml:"policy" json:"policy"`
	Host      HostConfig     `yaml:"host" json:"host"`
	NACL      NACLConfig     `yaml:"nacl" json:"nacl"`
	Watch     WatchConfig    `yaml:"watch" json:"watch"`
}

// PolicyConfig holds the thresholds of the default policy (DESIGN.md).
type PolicyConfig struct {
	DefaultTTL          Duration `yaml:"default_ttl" json:"default_ttl"`
	MaxTTL              Duration `yaml:"max_ttl" json:"max_ttl"`             // cap of repeat-offender escalation
	RepeatWindow        Duration `yaml:"repeat_window" json:"repeat_window"` // offences within it count as repeats
	MaxPrefixV4         int      `yaml:"max_prefix_v4" json:"max_prefix_v4"` // broader needs --force
	MaxPrefixV6         int      `yaml:"max_prefix_v6" json:"max_prefix_v6"`
	VPCMinInstances     int      `yaml:"vpc_min_instances" json:"vpc_min_instances"`         // instances of one subnet reached
	FloodRate           float64  `yaml:"flood_rate" json:"flood_rate"`                       // events/s at or above → VPC
	EscalateHosts       int      `yaml:"escalate_hosts" json:"escalate_hosts"`               // host blocks elsewhere → VPC
	AggregateMinSources int      `yaml:"aggregate_min_sources" json:"aggregate_min_sources"` // sources of one /24 or /64
	AggregateBitsV4     int      `yaml:"aggregate_bits_v4" json:"aggregate_bits_v4"`
	AggregateBitsV6     int      `yaml:"aggregate_bits_v6" json:"aggregate_bits_v6"`
	NearlyFullFree      int      `yaml:"nearly_full_free" json:"nearly_full_free"` // free slots at or below: aggregate or evict
	DefaultSeverity     int      `yaml:"default_severity" json:"default_severity"` // severity of attacks and entries that carry none (1..10)
}

// HostConfig configures the host firewall backend.
type HostConfig struct {
	Chain          string `yaml:"chain" json:"chain"`
	SetV4          string `yaml:"set_v4" json:"set_v4"`
	SetV6          string `yaml:"set_v6" json:"set_v6"`
	HookDockerUser bool   `yaml:"hook_docker_user" json:"hook_docker_user"`
	HookForward    bool   `yaml:"hook_forward" json:"hook_forward"`
	MaxEntries     int    `yaml:"max_entries" json:"max_entries"`
	// Backend is the iptables backend: auto (what the system's iptables
	// uses), nft or legacy.
	Backend string `yaml:"backend" json:"backend"`
	// SSHPorts are TCP ports whose established sessions are protected like
	// sshd's, besides 22 and every port a root sshd listens on (found at
	// run time): for an sshd in a container or behind a port forward.
	SSHPorts []int `yaml:"ssh_ports" json:"ssh_ports"`
}

// NACLConfig configures VPC network ACL blocking.
type NACLConfig struct {
	RuleMin int  `yaml:"rule_min" json:"rule_min"` // reserved range for banshee's denies
	RuleMax int  `yaml:"rule_max" json:"rule_max"`
	Quota   int  `yaml:"quota" json:"quota"` // rules per direction and family, defaults included
	Egress  bool `yaml:"egress" json:"egress"`
	// VPCCIDRMaxAge is how long the VPC CIDRs cached in a tag on the NACL
	// (banshee:vpc-cidrs) are trusted instead of calling DescribeVpcs; 0
	// disables the cache. See awsnacl's package doc for the trade-off.
	VPCCIDRMaxAge Duration `yaml:"vpc_cidr_max_age" json:"vpc_cidr_max_age"`

	// The keys below tune the EC2 client; zero means the awsnacl default.
	MaxAttempts   int      `yaml:"max_attempts" json:"max_attempts"`     // attempts per EC2 call, first included (default 5)
	MaxBackoff    Duration `yaml:"max_backoff" json:"max_backoff"`       // cap of the retry backoff (default 5s)
	CallTimeout   Duration `yaml:"call_timeout" json:"call_timeout"`     // per attempt (default 10s)
	MutatingBurst int      `yaml:"mutating_burst" json:"mutating_burst"` // client-side bucket for mutating calls (default 20)
	MutatingRate  float64  `yaml:"mutating_rate" json:"mutating_rate"`   // its refill per second (default 2)
	OrphanTTL     Duration `yaml:"orphan_ttl" json:"orphan_ttl"`         // expiry given to an entry found without metadata (default 1h)
	OrphanGrace   Duration `yaml:"orphan_grace" json:"orphan_grace"`     // how long such an entry is seen unchanged before a sweep adopts it (default 5m)
}

// WatchConfig configures the detection daemon.
type WatchConfig struct {
	MetricsAddr string           `yaml:"metrics_addr" json:"metrics_addr"`
	MaxRetry    int              `yaml:"max_retry" json:"max_retry"`
	FindTime    Duration         `yaml:"find_time" json:"find_time"`
	Detectors   []DetectorConfig `yaml:"detectors" json:"detectors"`
	// IgnoreProbes stops counting pre-authentication probes (no
	// identification string, failed key exchange, connection closed
	// before authenticating); ProbeWeight is what one counts, 1 to 10,
	// where an authentication failure counts 10 (default 5).
	IgnoreProbes bool `yaml:"ignore_probes" json:"ignore_probes"`
	ProbeWeight  int  `yaml:"probe_weight" json:"probe_weight"`
	// LongMaxRetry failures within LongFindTime also trip a detector, for
	// attackers pacing their attempts (default 10 within 24h; a negative
	// long_max_retry turns the long window off).
	LongMaxRetry int      `yaml:"long_max_retry" json:"long_max_retry"`
	LongFindTime Duration `yaml:"long_find_time" json:"long_find_time"`
	// GroupV4 and GroupV6 are the prefix lengths whose addresses count
	// together toward a threshold (default 32, each IPv4 address alone,
	// and 64, one IPv6 /64; 16-32 and 64-128); a group of several
	// addresses is blocked as the network.
	GroupV4 int `yaml:"group_v4" json:"group_v4"`
	GroupV6 int `yaml:"group_v6" json:"group_v6"`
}

// DetectorConfig is a detector added by the user: a regular expression with
// a named group "addr" at the position the log format fixes.
type DetectorConfig struct {
	Name     string   `yaml:"name" json:"name"`
	Pattern  string   `yaml:"pattern" json:"pattern"`
	Port     string   `yaml:"port" json:"port"` // "110/tcp"
	MaxRetry int      `yaml:"max_retry" json:"max_retry"`
	FindTime Duration `yaml:"find_time" json:"find_time"`
	// LongMaxRetry and LongFindTime tune the detector's long window
	// (default: the watch section's).
	LongMaxRetry int      `yaml:"long_max_retry" json:"long_max_retry"`
	LongFindTime Duration `yaml:"long_find_time" json:"long_find_time"`
	// Program, when set, runs the pattern only on lines of that syslog
	// program, against the message after "PROGRAM[PID]: " (so "^" anchors
	// at the message's start); otherwise against "PROGRAM[PID]: MESSAGE".
	Program string `yaml:"program" json:"program,omitempty"`
	// Prefilter is a literal every matching line contains: lines without
	// it skip the regular expression.
	Prefilter string `yaml:"prefilter" json:"prefilter,omitempty"`
	// Weight is what a match counts toward max_retry × 10: 10 (default)
	// for an authentication failure, less for a probe.
	Weight int `yaml:"weight" json:"weight,omitempty"`
}

// Duration is a time.Duration read with ParseDuration.
type Duration time.Duration

// Default returns the documented defaults.
func Default() Config {
	return Config{
		Policy: PolicyConfig{
			DefaultTTL:          Duration(time.Hour),
			MaxTTL:              Duration(30 * 24 * time.Hour),
			RepeatWindow:        Duration(7 * 24 * time.Hour),
			MaxPrefixV4:         16,
			MaxPrefixV6:         32,
			VPCMinInstances:     2,
			FloodRate:           100,
			EscalateHosts:       2,
			AggregateMinSources: 3,
			AggregateBitsV4:     24,
			AggregateBitsV6:     64,
			NearlyFullFree:      2,
			DefaultSeverity:     5,
		},
		Host: HostConfig{
			Chain:      "BANSHEE",
			SetV4:      "banshee4",
			SetV6:      "banshee6",
			MaxEntries: 1 << 20,
			Backend:    "auto",
			SSHPorts:   []int{},
		},
		NACL: NACLConfig{
			RuleMin:       1,
			RuleMax:       19,
			Quota:         20,
			VPCCIDRMaxAge: Duration(15 * time.Minute),
		},
		Watch: WatchConfig{
			MetricsAddr: "127.0.0.1:9739",
			MaxRetry:    5,
			FindTime:    Duration(10 * time.Minute),
			// see policy/detect: probes count half a failure; 10 failures
			// in 24h also trip; an IPv6 /64 counts as one source
			ProbeWeight:  5,
			LongMaxRetry: 10,
			LongFindTime: Duration(24 * time.Hour),
			GroupV4:      32,
			GroupV6:      64,
		},
	}
}
