package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// Each message an operator meets first reads as one sentence, with the
// documented exit code.
func TestOperatorMessages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		want    string // in stderr
		notWant string
	}{
		{"no target", []string{"block"}, exitUsage, "banshee: no target given: name addresses or CIDRs", `""`},
		{"no target on stdin", []string{"plan", "-"}, exitUsage, "no target given", ""},
		{"did you mean", []string{"blok", "203.0.113.7"}, exitUsage, `unknown command "blok": did you mean block?`, ""},
		{"did you mean a prefix", []string{"unbl"}, exitUsage, "did you mean unblock?", ""},
		{"no suggestion", []string{"xyzzy"}, exitUsage, `unknown command "xyzzy" (see banshee --help)`, "did you mean"},
		{"ttl 0", []string{"plan", "203.0.113.7", "--ttl", "0"}, exitUsage, `--ttl: "0": a block needs a length such as 2h or 2d; say --ttl permanent for one that never expires`, ""},
		{"ttl negative", []string{"block", "203.0.113.7", "--ttl", "-1h"}, exitUsage, "duration must not be negative", ""},
		{"ttl unit", []string{"plan", "203.0.113.7", "--ttl", "2days"}, exitUsage, "not a duration (want e.g. 90s, 2h, 2d or 1d12h)", `unknown unit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runPlan(t, "", "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out, stderr)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
			if tc.notWant != "" && strings.Contains(stderr, tc.notWant) {
				t.Errorf("stderr %q contains %q", stderr, tc.notWant)
			}
		})
	}
}

func TestTTLCountsDays(t *testing.T) {
	for _, tc := range []struct{ ttl, want string }{
		{"2d", "host block for 2d until "},
		{"1d12h", "host block for 1d12h until "},
		{"90m", "host block for 1h30m until "},
	} {
		out, stderr, code := runPlan(t, "", "", "plan", "203.0.113.7", "--ttl", tc.ttl)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("--ttl %s: exit %d, stdout %q, stderr %q; want %q", tc.ttl, code, out, stderr, tc.want)
		}
	}
	// The documented spelling of a block that never expires.
	out, stderr, code := runPlan(t, "", "", "plan", "203.0.113.7", "--ttl", "permanent")
	if code != 0 || !strings.Contains(out, "host block permanently") {
		t.Errorf("--ttl permanent: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// The configuration takes days as well.
	out, stderr, code = runPlan(t, "policy:\n  default_ttl: 1d\n  max_ttl: 20d\n", "", "plan", "203.0.113.7")
	if code != 0 || !strings.Contains(out, "host block for 1d until ") {
		t.Errorf("default_ttl 1d: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

func TestGuardHelpNamesTheKeyFile(t *testing.T) {
	out, stderr, code := runPlan(t, "", "", "guard", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var line string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.Contains(l, "--key") && strings.Contains(l, "holding the key") {
			line = l
		}
	}
	if !strings.Contains(line, "--key FILE ") || strings.Contains(line, "--key banshee") {
		t.Errorf("--key help line %q: want the value shown as FILE", line)
	}
}

func TestConfigDefaultsExplained(t *testing.T) {
	out := runConfigDefaults(t, "text")
	for _, want := range []string{
		"  max_ttl: 30d # cap of repeat-offender doubling; a host block stops at 24d21h (24d20h31m23s), the longest ipset keeps an entry",
		"  default_ttl: 1h # ",
		"  call_timeout: 0s # 0s: the built-in 10s per attempt",
		"  orphan_ttl: 0s # 0s: the built-in 1h",
		"  max_attempts: 0 # 0: the built-in 5 attempts per EC2 call",
		"  detectors: [] # [] adds none: the built-in detectors always run (sshd, ",
		"allowlist: [] # never blocked, besides",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config defaults lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "0m0s") {
		t.Errorf("config defaults writes durations the long way:\n%s", out)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "5a78433a9541d588014c3b054379bc181c448693"}, {Key: "vcs.modified", Value: "false"}}}, true,
			"banshee v1.2.0 (rev 5a78433, go1.26.8)"},
		{"source tree", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "5a78433a9541d588014c3b054379bc181c448693"}, {Key: "vcs.modified", Value: "true"}}}, true,
			"banshee devel (rev 5a78433, modified, go1.26.8)"},
		{"no vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true,
			"banshee devel (no VCS revision, go1.26.8)"},
	} {
		if got := readVersion(tc.bi, tc.ok).String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
