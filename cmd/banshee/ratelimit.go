package main

import (
	"fmt"
	"io"

	"github.com/banshee-project/banshee/hostfw"
	"github.com/spf13/cobra"
)

func init() { register(newRateLimitCmd) }

func newRateLimitCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "ratelimit",
		Short: "Drop sources that open too many new connections to a port",
		Long: `ratelimit manages connection rate limits with the iptables recent module, kept
in banshee's own chain and saved and restored with the rest: from one source,
the HITS-th new connection to PORT within SECONDS is dropped; other sources
are unaffected.`,
	}
	var port, name, comment string
	var hits, seconds int
	add := &cobra.Command{
		Use:     "add --port PORT/PROTO --hits N --seconds S [--name NAME]",
		Short:   "Add or replace a rate limit",
		Example: `  banshee ratelimit add --port 110/tcp --hits 10 --seconds 60 --name pop3`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port == "" {
				return usageErrorf("--port is required, such as --port 110/tcp")
			}
			proto, p, err := hostfw.ParseRateLimitPort(port)
			if err != nil {
				return usageErrorf("--port: %v", err)
			}
			if name == "" {
				name = fmt.Sprintf("%s%d", proto, p)
			}
			rl := hostfw.RateLimit{Name: name, Proto: proto, Port: p, Hits: hits, Seconds: seconds, Comment: comment}
			if err := rl.Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			fw, err := a.firewall(cmd.Context())
			if err != nil {
				return err
			}
			replaced, err := fw.AddRateLimit(cmd.Context(), rl)
			if err != nil {
				return err
			}
			return a.emit(map[string]any{"ratelimit": rl, "replaced": replaced}, func(w io.Writer) {
				verb := "added"
				if replaced {
					verb = "replaced"
				}
				fmt.Fprintf(w, "%s rate limit %s: the %dth new connection to %d/%s within %ds from one source is dropped\n", verb, rl.Name, rl.Hits, rl.Port, rl.Proto, rl.Seconds)
			})
		},
	}
	add.Flags().StringVar(&port, "port", "", "port and protocol, such as 110/tcp")
	add.Flags().IntVar(&hits, "hits", 10, "the new connection that reaches this count is dropped (1-20)")
	add.Flags().IntVar(&seconds, "seconds", 60, "within this many seconds")
	add.Flags().StringVar(&name, "name", "", "name of the rate limit (default PROTO+PORT)")
	add.Flags().StringVar(&comment, "comment", "", "free text shown with the rules in iptables-save")

	list := &cobra.Command{
		Use:   "list",
		Short: "List rate limits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fw, err := a.firewall(cmd.Context())
			if err != nil {
				return err
			}
			rls, err := fw.RateLimits()
			if err != nil {
				return err
			}
			if rls == nil {
				rls = []hostfw.RateLimit{}
			}
			return a.emit(map[string]any{"ratelimits": rls}, func(w io.Writer) {
				if len(rls) == 0 {
					fmt.Fprintln(w, "no rate limits")
				}
				for _, r := range rls {
					fmt.Fprintf(w, "%-16s %d/%s  %d new connections within %ds\n", r.Name, r.Port, r.Proto, r.Hits, r.Seconds)
				}
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a rate limit",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fw, err := a.firewall(cmd.Context())
			if err != nil {
				return err
			}
			ok, err := fw.RemoveRateLimit(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.emit(map[string]any{"removed": ok, "name": args[0]}, func(w io.Writer) {
				if ok {
					fmt.Fprintf(w, "removed rate limit %s\n", args[0])
				} else {
					fmt.Fprintf(w, "no rate limit named %s: nothing to do\n", args[0])
				}
			})
		},
	}
	root.AddCommand(add, list, remove)
	return root
}
