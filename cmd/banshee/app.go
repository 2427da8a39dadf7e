package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

// Defaults of the global flags (DESIGN.md).
const (
	defaultStateDir = "/var/lib/banshee"
	defaultConfig   = "/etc/banshee/banshee.yaml"
)

// app is what every command shares: streams, global flags and the config.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	output     string // text or json
	stateDir   string
	configPath string

	cfg     *policy.Config
	started bool // a command's own code has started running

	// hostProbe waits for the host firewall check started while deciding.
	hostProbe func() (*hostfw.Firewall, error)
}

// commands holds the constructors of the subcommands; each command file
// registers its own in init.
var commands []func(*app) *cobra.Command

func register(f func(*app) *cobra.Command) { commands = append(commands, f) }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := explainAWS(root.ExecuteContext(ctx)) // awserr.go: AWS failures in one line
	if err != nil && !a.started {
		// Cobra failed before any command ran: an unknown command or flag,
		// or a wrong number of arguments. That is usage (exit 2).
		var ue *usageError
		if !errors.As(err, &ue) {
			err = &usageError{Msg: err.Error()}
		}
	}
	return err
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "banshee",
		Short: "Block attacking IP addresses on EC2 at the right layer",
		Long: `banshee blocks attacking IP addresses on AWS EC2 at the right layer: a host
firewall DROP (iptables + ipset) or a VPC network ACL deny, never blocking what
the security groups deliberately allow.

Exit codes: 0 done, 1 runtime failure, 2 bad input or usage (nothing changed),
3 refused by policy (nothing changed).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// "did you mean" for a mistyped command: one or two edits away.
		SuggestionsMinimumDistance: 2,
		Args:                       cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					return usageErrorf("unknown command %q: did you mean %s? (see banshee --help)", args[0], strings.Join(s, " or "))
				}
				return usageErrorf("unknown command %q (see banshee --help)", args[0])
			}
			return cmd.Help()
		},
		// Commands must not define their own PersistentPreRunE: this one
		// marks the point after which errors are no longer usage errors.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.started = true
			if a.output != "text" && a.output != "json" {
				return usageErrorf("--output %q: want text or json", a.output)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&a.stateDir, "state-dir", envOr("BANSHEE_STATE_DIR", defaultStateDir), "state directory (env BANSHEE_STATE_DIR)")
	pf.StringVar(&a.configPath, "config", envOr("BANSHEE_CONFIG", defaultConfig), "configuration file (env BANSHEE_CONFIG)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{Msg: err.Error()}
	})
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	for _, f := range commands {
		root.AddCommand(f(a))
	}
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// config loads the configuration once. A missing file at the default path
// means the defaults; a missing file that was asked for is an error.
func (a *app) config() (policy.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	data, err := os.ReadFile(a.configPath)
	var cfg policy.Config
	switch {
	case errors.Is(err, fs.ErrNotExist) && a.configPath == defaultConfig:
		cfg = policy.Default()
	case err != nil:
		return policy.Config{}, usageErrorf("reading config %s: %v", a.configPath, err)
	default:
		cfg, err = policy.ParseConfig(data)
		if err != nil {
			return policy.Config{}, fmt.Errorf("config %s: %w", a.configPath, err)
		}
	}
	a.cfg = &cfg
	return cfg, nil
}

// emit prints v as one JSON object with -o json, or calls text.
func (a *app) emit(v any, text func(w io.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	// Buffered: a list of 100,000 blocks is one write per 64 KiB, not
	// one per line.
	w := bufio.NewWriterSize(a.stdout, 64<<10)
	text(w)
	return w.Flush()
}
