package main

import (
	"fmt"
	"io"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

// attackFlags are the flags shared by block and plan: they describe the
// attack an operator reports and how it should be answered.
type attackFlags struct {
	scope     string
	ttl       time.Duration
	ttlFlag   *durationFlag
	permanent bool // --ttl permanent
	reason    string
	force     bool
	port      string
	instances []string
	subnet    string
	rate      float64
	kind      string
	severity  int

	skipRefused bool   // block the rest when some targets are refused
	replace     bool   // make TTL and reason exact on a re-block
	snapshot    string // plan: decide against this snapshot file
}

// register adds the attack flags to cmd.
func (f *attackFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.scope, "scope", string(policy.ScopeAuto), "where to block: auto (the policy chooses), host or vpc")
	f.ttlFlag = durationVar(fl, &f.ttl, "ttl", 0, "how long the block lasts, such as 90m, 2h, 2d or 1d12h, or \"permanent\" for a block that never expires (default: policy.default_ttl of the config)")
	f.ttlFlag.permanent = &f.permanent
	fl.StringVar(&f.reason, "reason", "", "why, recorded with the block")
	fl.BoolVar(&f.force, "force", false, "override the allowlist, security-group whitelists, VPC CIDRs and the prefix-size limit (never the caller's own address)")
	fl.StringVar(&f.port, "port", "", "attacked port and protocol such as 22/tcp, 1000-2000/udp or icmp (default: all traffic)")
	fl.StringArrayVar(&f.instances, "instance", nil, "attacked instance id (repeatable); default: this host")
	fl.StringVar(&f.subnet, "subnet", "", "subnet id of the attacked instances (enables VPC network ACL blocking)")
	fl.Float64Var(&f.rate, "rate", 0, "observed attack rate in events per second")
	fl.StringVar(&f.kind, "kind", string(policy.KindManual), "kind of attack: manual, bruteforce, scan or flood")
	fl.IntVar(&f.severity, "severity", 0, "severity 1..10 (0: the configured default); a more severe attack may evict older NACL entries")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"auto", "host", "vpc"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"manual", "bruteforce", "scan", "flood"}, cobra.ShellCompDirectiveNoFileComp))
}

// registerBlock adds the flags block and plan share beyond the attack.
func (f *attackFlags) registerBlock(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.skipRefused, "skip-refused", false, "block the targets the policy allows and list the refused ones (default: a refusal of any target blocks none)")
	fl.BoolVar(&f.replace, "replace", false, "make --ttl and --reason exact for targets already blocked (default: a re-block never shortens a block nor drops its reason)")
}

// attack validates the flags and builds the attack on targets. Bad values
// are *policy.InputError (exit 2).
func (f *attackFlags) attack(targets []netip.Prefix) (policy.Attack, error) {
	scope, err := policy.ParseScope(f.scope)
	if err != nil {
		return policy.Attack{}, fmt.Errorf("--scope: %w", err)
	}
	port, err := policy.ParsePort(f.port)
	if err != nil {
		return policy.Attack{}, fmt.Errorf("--port: %w", err)
	}
	kind, err := policy.ParseKind(f.kind)
	if err != nil {
		return policy.Attack{}, fmt.Errorf("--kind: %w", err)
	}
	switch {
	case f.ttl == 0 && f.ttlFlag != nil && f.ttlFlag.set && !f.permanent:
		return policy.Attack{}, fmt.Errorf("--ttl: %w", &policy.InputError{Value: "0", Msg: "a block needs a length such as 2h or 2d; say --ttl permanent for one that never expires, or leave --ttl out for policy.default_ttl"})
	case f.ttl < 0:
		return policy.Attack{}, fmt.Errorf("--ttl: %w", &policy.InputError{Value: f.ttl.String(), Msg: "must not be negative"})
	case f.ttl > 0 && f.ttl < time.Second:
		return policy.Attack{}, fmt.Errorf("--ttl: %w", &policy.InputError{Value: f.ttl.String(), Msg: "must be at least 1s (blocks are kept in whole seconds)"})
	case f.rate < 0:
		return policy.Attack{}, fmt.Errorf("--rate: %w", &policy.InputError{Value: fmt.Sprint(f.rate), Msg: "must not be negative"})
	case f.severity < 0 || f.severity > 10:
		return policy.Attack{}, fmt.Errorf("--severity: %w", &policy.InputError{Value: fmt.Sprint(f.severity), Msg: "must be 0..10"})
	}
	subnet := strings.TrimSpace(f.subnet)
	if subnet != "" && !strings.HasPrefix(subnet, "subnet-") {
		return policy.Attack{}, fmt.Errorf("--subnet: %w", &policy.InputError{Value: subnet, Msg: "not a subnet id (subnet-...)"})
	}
	var tg []policy.Target
	seen := map[string]bool{}
	for _, id := range f.instances {
		id = strings.TrimSpace(id)
		if !strings.HasPrefix(id, "i-") {
			return policy.Attack{}, fmt.Errorf("--instance: %w", &policy.InputError{Value: id, Msg: "not an instance id (i-...)"})
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		tg = append(tg, policy.Target{InstanceID: id, SubnetID: subnet})
	}
	if len(tg) == 0 && subnet != "" {
		tg = append(tg, policy.Target{SubnetID: subnet})
	}
	// The kernel and the NACL metadata keep whole seconds: round up, so
	// what is reported is what is enforced.
	if r := f.ttl % time.Second; r != 0 {
		f.ttl += time.Second - r
	}
	return policy.Attack{
		Sources:   targets,
		Targets:   tg,
		Port:      port,
		Rate:      f.rate,
		Kind:      kind,
		Severity:  f.severity,
		Origin:    policy.OriginCLI,
		Reason:    f.reason,
		TTL:       f.ttl,
		Permanent: f.permanent,
		Scope:     scope,
		Force:     f.force,
	}, nil
}

// bulkTargets is where a target list counts as bulk.
const bulkTargets = 5000

// readTargetArgs parses the TARGET arguments: addresses or CIDRs, or "-"
// for one target per line on stdin ('#' starts a comment). No target at all
// is an *policy.InputError.
func readTargetArgs(args []string, stdin io.Reader) ([]netip.Prefix, error) {
	var out []netip.Prefix
	readStdin := false
	for _, arg := range args {
		if arg == "-" {
			if readStdin {
				continue
			}
			readStdin = true
			ts, err := policy.ReadTargets(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading targets from standard input: %w", err)
			}
			out = append(out, ts...)
			continue
		}
		p, err := policy.ParseTarget(arg)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, &policy.InputError{Value: strings.Join(args, " "), Msg: "no target given: name addresses or CIDRs (such as 203.0.113.7 or 198.51.100.0/24), or - to read them from standard input"}
	}
	if len(out) >= bulkTargets {
		// A bulk list: trade memory (tens of MB at most) for less
		// garbage collection while every target is decided and written.
		debug.SetGCPercent(400)
	}
	return out, nil
}

// callerAddrs returns the operator's own addresses that the environment
// reveals (the SSH client of SSH_CONNECTION or SSH_CLIENT), so the policy
// never blocks the person running banshee.
func callerAddrs(getenv func(string) string) []netip.Addr {
	var out []netip.Addr
	for _, key := range []string{"SSH_CONNECTION", "SSH_CLIENT"} {
		fields := strings.Fields(getenv(key))
		if len(fields) == 0 {
			continue
		}
		if a, err := netip.ParseAddr(fields[0]); err == nil {
			a = a.WithZone("").Unmap()
			dup := false
			for _, o := range out {
				dup = dup || o == a
			}
			if !dup {
				out = append(out, a)
			}
		}
	}
	return out
}
