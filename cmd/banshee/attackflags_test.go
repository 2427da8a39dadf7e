package main

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func parseAttackFlags(t *testing.T, args ...string) (policy.Attack, error) {
	t.Helper()
	var f attackFlags
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	f.register(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parsing flags %q: %v", args, err)
	}
	return f.attack([]netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")})
}

func TestAttackFlags(t *testing.T) {
	a, err := parseAttackFlags(t, "--scope", "vpc", "--ttl", "2h", "--reason", "pop3 bruteforce", "--force",
		"--port", "110/tcp", "--instance", "i-0aa", "--instance", "i-0bb", "--instance", "i-0aa",
		"--subnet", "subnet-01", "--rate", "12.5", "--kind", "bruteforce", "--severity", "7")
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Attack{
		Sources:  []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")},
		Targets:  []policy.Target{{InstanceID: "i-0aa", SubnetID: "subnet-01"}, {InstanceID: "i-0bb", SubnetID: "subnet-01"}},
		Port:     policy.Port{Proto: "tcp", From: 110, To: 110},
		Rate:     12.5,
		Kind:     policy.KindBruteforce,
		Severity: 7,
		Origin:   policy.OriginCLI,
		Reason:   "pop3 bruteforce",
		TTL:      2 * time.Hour,
		Scope:    policy.ScopeVPC,
		Force:    true,
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("attack:\n got %+v\nwant %+v", a, want)
	}

	a, err = parseAttackFlags(t)
	if err != nil {
		t.Fatal(err)
	}
	if a.Scope != policy.ScopeAuto || a.TTL != 0 || a.Port != (policy.Port{}) || len(a.Targets) != 0 || a.Kind != policy.KindManual {
		t.Errorf("defaults: got %+v", a)
	}

	a, err = parseAttackFlags(t, "--subnet", "subnet-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Targets) != 1 || !reflect.DeepEqual(a.Targets[0], policy.Target{SubnetID: "subnet-02"}) {
		t.Errorf("bare subnet: targets %+v", a.Targets)
	}
}

func TestAttackFlagsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"--scope", "everywhere"},
		{"--port", "22/sctp"},
		{"--port", "70000"},
		{"--kind", "ddos"},
		{"--severity", "11"},
		{"--rate", "-3"},
		{"--instance", "web-1"},
		{"--subnet", "vpc-1"},
	} {
		_, err := parseAttackFlags(t, args...)
		var ie *policy.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%q: want *policy.InputError, got %v", args, err)
		}
	}
}

func TestReadTargetArgs(t *testing.T) {
	got, err := readTargetArgs([]string{"198.51.100.9", "-", "::ffff:203.0.113.7"}, strings.NewReader("# list\n192.0.2.0/24\n\n2001:db8::1 # v6\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"198.51.100.9/32", "192.0.2.0/24", "2001:db8::1/128", "203.0.113.7/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("target %d: got %s, want %s", i, got[i], want[i])
		}
	}

	for _, tc := range []struct {
		args  []string
		stdin string
	}{
		{nil, ""},
		{[]string{"-"}, "# only comments\n"},
		{[]string{"not-an-ip"}, ""},
		{[]string{"0.0.0.0/0"}, ""},
		{[]string{"-"}, "192.0.2.1\nbad\n"},
	} {
		_, err := readTargetArgs(tc.args, strings.NewReader(tc.stdin))
		var ie *policy.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%q with stdin %q: want *policy.InputError, got %v", tc.args, tc.stdin, err)
		}
	}
	_, err = readTargetArgs([]string{"-"}, strings.NewReader("192.0.2.1\nbad\n"))
	var ie *policy.InputError
	if errors.As(err, &ie) && ie.Line != 2 {
		t.Errorf("bad stdin line: got line %d, want 2", ie.Line)
	}
}

func TestCallerAddrs(t *testing.T) {
	env := map[string]string{
		"SSH_CONNECTION": "::ffff:198.51.100.20 52100 10.0.0.5 22",
		"SSH_CLIENT":     "198.51.100.20 52100 22",
	}
	got := callerAddrs(func(k string) string { return env[k] })
	if len(got) != 1 || got[0] != netip.MustParseAddr("198.51.100.20") {
		t.Errorf("got %v, want [198.51.100.20]", got)
	}
	if got := callerAddrs(func(string) string { return "" }); len(got) != 0 {
		t.Errorf("empty env: got %v", got)
	}
}
