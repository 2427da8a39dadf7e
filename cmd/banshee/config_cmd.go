package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy/detect"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func init() { register(newConfigCmd) }

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect banshee's configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "defaults",
		Short: "Print the default configuration (YAML, or the JSON the Terraform module writes with -o json)",
		Long: `Print the documented defaults: as a banshee.yaml with -o text, or with -o json
as the JSON object the Terraform module keeps in terraform/defaults.json and
writes to its SSM configuration parameter.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var text []byte
			if a.output == "text" {
				var err error
				if text, err = defaultsYAML(); err != nil {
					return err
				}
			}
			return a.emit(json.RawMessage(policy.DefaultJSON()), func(w io.Writer) {
				_, _ = w.Write(text)
			})
		},
	})
	return cmd
}

// defaultsYAML renders policy.Default() as a banshee.yaml, lists present.
func defaultsYAML() ([]byte, error) {
	// Going through the JSON keeps one source for the shape (empty lists,
	// duration strings); YAML is a superset of JSON.
	var node yaml.Node
	if err := yaml.Unmarshal(policy.DefaultJSON(), &node); err != nil {
		return nil, fmt.Errorf("converting the default configuration to YAML: %w", err)
	}
	clearStyle(&node)
	explain(&node, "", defaultsExplained())
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return nil, fmt.Errorf("writing the default configuration as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing the default configuration as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// clearStyle turns JSON's flow style and quoting into plain block YAML.
func clearStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		clearStyle(c)
	}
}

// defaultsExplained holds the comments of config defaults, by key path: what
// a zero means, and the limits a value runs into.
func defaultsExplained() map[string]string {
	var names []string
	for _, d := range detect.Builtins() {
		names = append(names, d.Name)
	}
	d := shortDuration
	return map[string]string{
		"allowlist":          "never blocked, besides what banshee always protects (VPC CIDRs, your SSH address, SSH peers, this host's addresses, gateways, DNS resolvers)",
		"policy.default_ttl": "TTL of a block without --ttl; durations take s, m, h and d (2d, 1d12h)",
		"policy.max_ttl": fmt.Sprintf("cap of repeat-offender doubling; a host block stops at %s (%s), the longest ipset keeps an entry; VPC blocks get the full TTL",
			d(hostfw.MaxTimeout.Round(time.Hour)), d(hostfw.MaxTimeout)),
		"policy.repeat_window": "offences within this window count as repeats",
		"nacl.rule_min":        "banshee's deny entries use rule numbers rule_min..rule_max of each network ACL",
		"nacl.quota":           "entries per direction and address family, allow rules and the default deny included (AWS: 20 unless raised, at most 40)",
		"nacl.max_attempts":    fmt.Sprintf("0: the built-in %d attempts per EC2 call", awsnacl.DefaultMaxAttempts),
		"nacl.max_backoff":     fmt.Sprintf("0s: the built-in %s between retries at most", d(awsnacl.DefaultMaxBackoff)),
		"nacl.call_timeout":    fmt.Sprintf("0s: the built-in %s per attempt", d(awsnacl.DefaultCallTimeout)),
		"nacl.mutating_burst":  fmt.Sprintf("0: the built-in burst of %d NACL writes", awsnacl.DefaultMutatingBurst),
		"nacl.mutating_rate":   fmt.Sprintf("0: the built-in %g NACL writes per second after the burst", awsnacl.DefaultMutatingRate),
		"nacl.orphan_ttl":      fmt.Sprintf("0s: the built-in %s for a deny found without banshee's tags", d(awsnacl.DefaultOrphanTTL)),
		"nacl.orphan_grace":    fmt.Sprintf("0s: the built-in %s a deny without banshee's tags is seen unchanged before a sweep adopts it", d(awsnacl.DefaultOrphanGrace)),
		"watch.detectors":      "[] adds none: the built-in detectors always run (" + strings.Join(names, ", ") + "); add regular expressions anchored at both ends (^...$) with an (?P<addr>...) group here",
	}
}

// goDuration matches what time.Duration.String writes (compiled on first
// use, not at the start of every command).
var goDuration = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+h)?([0-9]+m)?[0-9.]+s$`) })

// explain sets the comment of every key of the mapping n whose path (a.b)
// has an entry in notes.
func explain(n *yaml.Node, path string, notes map[string]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			explain(c, path, notes)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if note, ok := notes[p]; ok {
				v.LineComment = note
			}
			if v.Kind == yaml.ScalarNode && goDuration().MatchString(v.Value) {
				if d, err := time.ParseDuration(v.Value); err == nil {
					v.Value = shortDuration(d) // 30d rather than 720h0m0s
				}
			}
			explain(v, p, notes)
		}
	}
}
