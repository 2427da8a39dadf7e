package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

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
