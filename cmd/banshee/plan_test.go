package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runPlan runs banshee with args against a config file holding cfg and
// returns stdout, stderr and the exit code.
func runPlan(t *testing.T, cfg, stdin string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv("SSH_CONNECTION", "")
	t.Setenv("SSH_CLIENT", "")
	dir := t.TempDir()
	path := filepath.Join(dir, "banshee.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--config", path, "--state-dir", dir}, args...), strings.NewReader(stdin), &out, &errb)
	code := report(err, &errb)
	return out.String(), errb.String(), code
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const planSnapshot = `{
  "now": "2026-01-02T03:04:05Z",
  "sg_rules": {
    "i-01": [{"group_id": "sg-0pop", "port": {"proto": "tcp", "from": 110, "to": 110}, "source": "0.0.0.0/0"},
             {"group_id": "sg-0ssh", "description": "office ssh", "port": {"proto": "tcp", "from": 22, "to": 22}, "source": "203.0.113.0/24"}],
    "i-02": [{"group_id": "sg-0pop", "port": {"proto": "tcp", "from": 110, "to": 110}, "source": "0.0.0.0/0"}]
  },
  "nacls": {"subnet-0aa": {"id": "acl-0bb", "subnet_ids": ["subnet-0aa"], "entries": [
    {"rule_number": 1, "allow": false, "cidr": "192.0.2.0/24", "expires_at": "2026-01-02T05:00:00Z"},
    {"rule_number": 100, "allow": true, "cidr": "0.0.0.0/0"},
    {"rule_number": 32767, "allow": false, "cidr": "0.0.0.0/0"}
  ]}}
}`

func TestPlanJSON(t *testing.T) {
	snap := writeFile(t, "world.json", planSnapshot)
	out, stderr, code := runPlan(t, "", "", "plan", "174.132.223.252", "--port", "110/tcp",
		"--instance", "i-01", "--instance", "i-02", "--subnet", "subnet-0aa", "--snapshot", snap, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got struct {
		Decisions []map[string]any `json:"decisions"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	if len(got.Decisions) != 1 {
		t.Fatalf("want 1 decision, got %s", out)
	}
	d := got.Decisions[0]
	for _, k := range []string{"target", "scope", "action", "reasons", "ttl_seconds", "expires_at", "nacl_id", "rule_number"} {
		if _, ok := d[k]; !ok {
			t.Errorf("decision lacks %q: %s", k, out)
		}
	}
	if d["target"] != "174.132.223.252/32" || d["scope"] != "vpc" || d["action"] != "block" || d["nacl_id"] != "acl-0bb" ||
		d["rule_number"] != 2.0 || d["ttl_seconds"] != 3600.0 || d["expires_at"] != "2026-01-02T04:04:05Z" {
		t.Errorf("decision: %s", out)
	}
}

func TestPlanRefusedExits3(t *testing.T) {
	snap := writeFile(t, "world.json", planSnapshot)
	out, stderr, code := runPlan(t, "allowlist: [198.51.100.0/24]\n", "", "plan", "203.0.113.7", "198.51.100.9", "174.132.223.252",
		"--port", "22/tcp", "--instance", "i-01", "--snapshot", snap)
	if code != exitRefused {
		t.Fatalf("exit %d, want 3; stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per target, got %q", out)
	}
	wants := []string{
		"203.0.113.7 refused: 203.0.113.7 is inside 203.0.113.0/24, allowed on tcp/22 by sg-0ssh (rule 'office ssh') of i-01",
		"198.51.100.9 refused: 198.51.100.9 is inside 198.51.100.0/24, on the allowlist of the config",
		"174.132.223.252 skipped: no security group of i-01 admits tcp/22 from 174.132.223.252; already dropped",
	}
	for i, w := range wants {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d:\n got %q\nwant prefix %q", i+1, lines[i], w)
		}
	}
	if !strings.Contains(stderr, "2 of 3 target(s) would be refused") {
		t.Errorf("stderr %q", stderr)
	}
}

func TestPlanStdinAndHost(t *testing.T) {
	out, stderr, code := runPlan(t, "policy:\n  default_ttl: 2h\n", "# incident dump\n198.51.100.9\n::ffff:198.51.100.10\n", "plan", "-")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "198.51.100.9 host block for 2h until ") ||
		!strings.HasPrefix(lines[1], "198.51.100.10 host block for 2h until ") {
		t.Errorf("got %q", out)
	}
}

func TestPlanBadInputExits2(t *testing.T) {
	bad := writeFile(t, "bad.json", "{\n  \"now\": \"2026-01-02T03:04:05Z\",\n  \"nacls\": 7\n}\n")
	for _, tc := range []struct {
		name string
		cfg  string
		args []string
		want string
	}{
		{"no target", "", []string{"plan"}, "no target given"},
		{"bad target", "", []string{"plan", "300.1.2.3"}, "300.1.2.3"},
		{"every address", "", []string{"plan", "0.0.0.0/0"}, "every address"},
		{"bad scope", "", []string{"plan", "192.0.2.1", "--scope", "edge"}, "--scope"},
		{"bad port", "", []string{"plan", "192.0.2.1", "--port", "22/sctp"}, "--port"},
		{"bad snapshot", "", []string{"plan", "192.0.2.1", "--snapshot", bad}, "line 3"},
		{"missing snapshot", "", []string{"plan", "192.0.2.1", "--snapshot", filepath.Join(t.TempDir(), "nope.json")}, "reading snapshot"},
		{"bad config", "policy:\n  default_ttl: -1h\n", []string{"plan", "192.0.2.1"}, "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runPlan(t, tc.cfg, "", tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want 2; stdout %q stderr %q", code, out, stderr)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q: want one line containing %q", stderr, tc.want)
			}
		})
	}
}
