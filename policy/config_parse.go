package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseConfig parses a YAML (or JSON) configuration over the defaults and
// validates it. Errors are *InputError values naming the line and the value.
func ParseConfig(data []byte) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, yamlInputError(err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// yamlInputError turns yaml.v3's multi-line errors into a one-line *InputError.
func yamlInputError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		var line int
		var msg string
		if _, e := fmt.Sscanf(te.Errors[0], "line %d:", &line); e == nil {
			msg = te.Errors[0][len(fmt.Sprintf("line %d: ", line)):]
		} else {
			msg = te.Errors[0]
		}
		return &InputError{Line: line, Value: "config", Msg: msg}
	}
	return &InputError{Value: "config", Msg: err.Error()}
}

// UnmarshalYAML reads a Go duration string and rejects negative values.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &InputError{Line: n.Line, Value: n.Value, Msg: "not a duration (want e.g. 90s, 2h)"}
	}
	if v < 0 {
		return &InputError{Line: n.Line, Value: n.Value, Msg: "duration must not be negative"}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", time.Duration(d).String())), nil
}

// Validate checks ranges that the types cannot express.
func (c *Config) Validate() error {
	p := c.Policy
	switch {
	case p.MaxPrefixV4 < 0 || p.MaxPrefixV4 > 32:
		return &InputError{Value: fmt.Sprint(p.MaxPrefixV4), Msg: "policy.max_prefix_v4 must be 0..32"}
	case p.MaxPrefixV6 < 0 || p.MaxPrefixV6 > 128:
		return &InputError{Value: fmt.Sprint(p.MaxPrefixV6), Msg: "policy.max_prefix_v6 must be 0..128"}
	case c.NACL.RuleMin < 1 || c.NACL.RuleMax > 32766 || c.NACL.RuleMin > c.NACL.RuleMax:
		return &InputError{Value: fmt.Sprintf("%d-%d", c.NACL.RuleMin, c.NACL.RuleMax), Msg: "nacl rule range must satisfy 1 <= rule_min <= rule_max <= 32766"}
	case c.NACL.Quota < 2 || c.NACL.Quota > 40:
		return &InputError{Value: fmt.Sprint(c.NACL.Quota), Msg: "nacl.quota must be 2..40"}
	}
	return nil
}
