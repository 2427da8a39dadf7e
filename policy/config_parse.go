package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseConfig parses a YAML (or JSON, which YAML reads too) configuration
// over the defaults and validates it. Errors are *InputError values naming
// the line and the value: unknown keys, malformed or negative durations,
// bad CIDRs, out-of-range numbers.
func ParseConfig(data []byte) (Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, yamlInputError(err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return cfg, nil // empty file: the defaults
	}
	lines := map[string]int{}
	if err := checkNode(&root, reflect.TypeFor[Config](), "", lines); err != nil {
		return Config{}, err
	}
	if err := root.Decode(&cfg); err != nil {
		return Config{}, yamlInputError(err)
	}
	if key, err := cfg.validate(); err != nil {
		if err.Line == 0 {
			err.Line = lines[key]
		}
		return Config{}, err
	}
	return cfg, nil
}

// yamlLineRe is compiled on first use: package variables are initialised
// at the start of every command.
var yamlLineRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`) })

// yamlInputError turns yaml.v3's errors (maybe several lines) into a
// one-line *InputError with the line of the first problem.
func yamlInputError(err error) error {
	var ie *InputError
	if errors.As(err, &ie) {
		return ie
	}
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLineRe().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &InputError{Line: line, Value: "config", Msg: m[2]}
	}
	return &InputError{Value: "config", Msg: strings.TrimPrefix(msg, "yaml: ")}
}

var prefixType = reflect.TypeFor[netip.Prefix]()

// checkNode walks the YAML tree beside the Go type it decodes into: it
// rejects unknown keys with their line, records the line of every key by
// its dotted path (for the errors of validate), and checks and normalises
// CIDRs (an address becomes a /32 or /128) so netip can decode them.
func checkNode(n *yaml.Node, t reflect.Type, path string, lines map[string]int) error {
	for n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == prefixType:
		if n.Kind != yaml.ScalarNode {
			return &InputError{Line: n.Line, Value: path, Msg: "want a CIDR or an address"}
		}
		p, err := parseAllowPrefix(n.Value)
		if err != nil {
			return &InputError{Line: n.Line, Value: n.Value, Msg: err.Error()}
		}
		n.Value, n.Tag, n.Style = p.String(), "!!str", 0
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				section := "the top level"
				if path != "" {
					section = "section " + path
				}
				return &InputError{Line: k.Line, Value: k.Value, Msg: fmt.Sprintf("unknown key in %s (known: %s)", section, strings.Join(tagNames(t), ", "))}
			}
			key := joinPath(path, k.Value)
			lines[key] = k.Line
			if err := checkNode(v, f.Type, key, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			key := joinPath(path, strconv.Itoa(i))
			lines[key] = item.Line
			if err := checkNode(item, t.Elem(), key, lines); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}

// parseAllowPrefix parses an allowlist entry: an address or a CIDR.
func parseAllowPrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = netip.ParsePrefix(s)
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(s)
		if err == nil && a.Zone() != "" {
			return netip.Prefix{}, errors.New("an address with a zone is not a network")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil {
		return netip.Prefix{}, errors.New("not an IPv4/IPv6 address or CIDR")
	}
	p = Canonical(p)
	if p.Bits() == 0 {
		return netip.Prefix{}, errors.New("allowlisting every address would disable blocking")
	}
	return p, nil
}

// UnmarshalYAML reads a Go duration string and rejects negative values.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return &InputError{Line: n.Line, Value: n.Value, Msg: err.Error()}
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON reads a Go duration string and rejects negative values.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &InputError{Value: string(b), Msg: "not a duration string (want e.g. \"90s\", \"2h\", \"2d\")"}
	}
	v, err := parseDuration(s)
	if err != nil {
		return &InputError{Value: s, Msg: err.Error()}
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) { return ParseDuration(s) }

// MarshalYAML writes a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// DefaultJSON returns Default() as indented JSON, with every list present
// (empty rather than null): the documented defaults in the shape the
// Terraform module writes and `banshee config defaults -o json` prints.
func DefaultJSON() []byte {
	c := Default()
	if c.Allowlist == nil {
		c.Allowlist = []netip.Prefix{}
	}
	if c.Watch.Detectors == nil {
		c.Watch.Detectors = []DetectorConfig{}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic("policy: marshalling the defaults: " + err.Error()) // plain data; cannot fail
	}
	return append(b, '\n')
}

// validName reports whether s is 1 to max ASCII letters, digits and bytes
// of punct. (A loop, not a regular expression: a package variable would be
// compiled at the start of every command.)
func validName(s string, max int, punct string) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(punct, c) >= 0) {
			return false
		}
	}
	return true
}

// foreignChains are chains of the kernel and of other tools that
// host.chain must never name: banshee flushes its own chain when it
// rebuilds it.
var foreignChains = []string{
	"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING",
	"DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER-INGRESS",
	"KUBE-FIREWALL", "KUBE-SERVICES", "KUBE-FORWARD", "UFW-BEFORE-INPUT", "UFW-USER-INPUT",
}

// Validate checks ranges that the types cannot express.
func (c *Config) Validate() error {
	if _, err := c.validate(); err != nil {
		return err
	}
	return nil
}

// validate returns the dotted key of the first bad value with its error.
func (c *Config) validate() (string, *InputError) {
	p, n, h, w := c.Policy, c.NACL, c.Host, c.Watch
	bad := func(key string, v any, format string, args ...any) (string, *InputError) {
		return key, &InputError{Value: fmt.Sprint(v), Msg: key + " " + fmt.Sprintf(format, args...)}
	}
	for i, a := range c.Allowlist {
		if !a.IsValid() || a.Bits() == 0 {
			return bad(fmt.Sprintf("allowlist.%d", i), a, "must be a CIDR narrower than /0")
		}
	}
	type durKey struct {
		key string
		d   Duration
	}
	for _, dk := range []durKey{{"policy.default_ttl", p.DefaultTTL}, {"policy.max_ttl", p.MaxTTL}, {"policy.repeat_window", p.RepeatWindow},
		{"nacl.max_backoff", n.MaxBackoff}, {"nacl.call_timeout", n.CallTimeout}, {"nacl.orphan_ttl", n.OrphanTTL}, {"nacl.orphan_grace", n.OrphanGrace}, {"nacl.vpc_cidr_max_age", n.VPCCIDRMaxAge}, {"watch.find_time", w.FindTime}} {
		if dk.d < 0 {
			return bad(dk.key, time.Duration(dk.d), "must not be negative")
		}
	}
	switch {
	case p.DefaultTTL <= 0:
		return bad("policy.default_ttl", time.Duration(p.DefaultTTL), "must be positive")
	case p.MaxTTL > Duration(MaxTTLLimit):
		return bad("policy.max_ttl", time.Duration(p.MaxTTL), "must be at most %s (%d days)", MaxTTLLimit, MaxTTLLimit/(24*time.Hour))
	case p.MaxTTL < p.DefaultTTL:
		return bad("policy.max_ttl", time.Duration(p.MaxTTL), "must be at least policy.default_ttl (%s)", time.Duration(p.DefaultTTL))
	case p.MaxPrefixV4 < 0 || p.MaxPrefixV4 > 32:
		return bad("policy.max_prefix_v4", p.MaxPrefixV4, "must be 0..32")
	case p.MaxPrefixV6 < 0 || p.MaxPrefixV6 > 128:
		return bad("policy.max_prefix_v6", p.MaxPrefixV6, "must be 0..128")
	case p.VPCMinInstances < 0:
		return bad("policy.vpc_min_instances", p.VPCMinInstances, "must not be negative (0 disables)")
	case p.FloodRate < 0:
		return bad("policy.flood_rate", p.FloodRate, "must not be negative (0 disables)")
	case p.EscalateHosts < 0:
		return bad("policy.escalate_hosts", p.EscalateHosts, "must not be negative (0 disables)")
	case p.AggregateMinSources < 0:
		return bad("policy.aggregate_min_sources", p.AggregateMinSources, "must not be negative (0 disables)")
	case p.AggregateBitsV4 < 1 || p.AggregateBitsV4 > 32:
		return bad("policy.aggregate_bits_v4", p.AggregateBitsV4, "must be 1..32")
	case p.AggregateBitsV6 < 1 || p.AggregateBitsV6 > 128:
		return bad("policy.aggregate_bits_v6", p.AggregateBitsV6, "must be 1..128")
	case p.NearlyFullFree < 0:
		return bad("policy.nearly_full_free", p.NearlyFullFree, "must not be negative")
	case p.DefaultSeverity < 1 || p.DefaultSeverity > 10:
		return bad("policy.default_severity", p.DefaultSeverity, "must be 1..10")
	case n.RuleMin < 1 || n.RuleMin > 32766:
		return bad("nacl.rule_min", n.RuleMin, "must be 1..32766")
	case n.RuleMax < n.RuleMin || n.RuleMax > 32766:
		return bad("nacl.rule_max", n.RuleMax, "must be nacl.rule_min (%d)..32766", n.RuleMin)
	case n.Quota < 2 || n.Quota > 40:
		return bad("nacl.quota", n.Quota, "must be 2..40")
	case n.MaxAttempts < 0:
		return bad("nacl.max_attempts", n.MaxAttempts, "must not be negative")
	case n.MutatingBurst < 0:
		return bad("nacl.mutating_burst", n.MutatingBurst, "must not be negative")
	case n.MutatingRate < 0:
		return bad("nacl.mutating_rate", n.MutatingRate, "must not be negative")
	case !validName(h.Chain, 28, "_-"):
		return bad("host.chain", h.Chain, "must be 1..28 letters, digits, _ or - (an iptables chain name)")
	case slices.Contains(foreignChains, strings.ToUpper(h.Chain)):
		return bad("host.chain", h.Chain, "is a chain banshee does not own; name banshee's own chain (default BANSHEE)")
	case !validName(h.SetV4, 31, "_.-"):
		return bad("host.set_v4", h.SetV4, "must be 1..31 letters, digits, _, . or - (an ipset name)")
	case !validName(h.SetV6, 31, "_.-") || h.SetV6 == h.SetV4:
		return bad("host.set_v6", h.SetV6, "must be 1..31 letters, digits, _, . or - and differ from host.set_v4")
	case h.MaxEntries < 1 || h.MaxEntries > MaxHostEntries:
		return bad("host.max_entries", h.MaxEntries, "must be 1..%d", MaxHostEntries)
	case slices.ContainsFunc(h.SSHPorts, func(p int) bool { return p < 1 || p > 65535 }):
		i := slices.IndexFunc(h.SSHPorts, func(p int) bool { return p < 1 || p > 65535 })
		return bad(fmt.Sprintf("host.ssh_ports.%d", i), h.SSHPorts[i], "must be a TCP port, 1..65535")
	case w.MaxRetry < 0:
		return bad("watch.max_retry", w.MaxRetry, "must not be negative")
	}
	var names []string
	for i, dc := range w.Detectors {
		key := fmt.Sprintf("watch.detectors.%d", i)
		if dc.Name == "" {
			return bad(key, "", "needs a name")
		}
		if slices.Contains(names, dc.Name) {
			return bad(key+".name", dc.Name, "is used by another detector")
		}
		names = append(names, dc.Name)
		re, err := regexp.Compile(dc.Pattern)
		if err != nil {
			return bad(key+".pattern", dc.Pattern, "is not a regular expression: %v", err)
		}
		if !slices.Contains(re.SubexpNames(), "addr") {
			return bad(key+".pattern", dc.Pattern, "needs a named group (?P<addr>...) for the source address")
		}
		if _, err := ParsePort(dc.Port); err != nil {
			return bad(key+".port", dc.Port, "is not a port such as 110/tcp")
		}
		if dc.MaxRetry < 0 {
			return bad(key+".max_retry", dc.MaxRetry, "must not be negative")
		}
	}
	return "", nil
}
