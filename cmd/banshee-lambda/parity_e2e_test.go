package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/banshee-project/banshee/awsnacl/mototest"
)

// buildCLI builds the banshee command (the operator's door).
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "banshee")
	cmd := exec.Command("go", "build", "-o", bin, "../banshee")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ../banshee: %v\n%s", err, out)
	}
	return bin
}

// TestDoorsAgreeWithTheLambda drives one attack, the same block at VPC
// scope on one subnet, through the compiled Lambda bootstrap (a manual
// event) and through the compiled banshee command, against one moto world
// with the same configuration, and asserts the same decision (scope,
// action, network ACL, TTL, first reason) and the same final state of the
// network ACL; then each door lifts the other's block. (The CLI and watch
// are compared in cmd/banshee's TestDoorsAgree.) The command runs as an
// unprivileged user where the test is root, so no host firewall can change.
func TestDoorsAgreeWithTheLambda(t *testing.T) {
	if !mototest.Available() {
		t.Skip("moto_server not on PATH: install moto[server] to run the doors' parity test")
	}
	bin, cliBin := buildBootstrap(t), buildCLI(t)
	w := newWorld(t, nil)
	rt := newRuntimeAPI(t)
	_, out := startBootstrap(t, bin, rt, w.env(w.moto))
	defer func() {
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	}()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "banshee.yaml")
	// The configuration the function reads from its parameter.
	if err := os.WriteFile(cfgPath, []byte("allowlist: [198.51.100.0/24]\npolicy:\n  default_ttl: 1h\nnacl:\n  max_backoff: 100ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		argv := append([]string{cliBin, "--config", cfgPath, "--state-dir", filepath.Join(dir, "state")}, args...)
		if os.Geteuid() == 0 {
			if _, err := exec.LookPath("setpriv"); err != nil {
				t.Skip("needs setpriv (util-linux) to run the command unprivileged")
			}
			// The unprivileged user reaches the binary, the config and
			// its own state directory.
			for _, d := range []string{filepath.Dir(dir), filepath.Dir(filepath.Dir(cliBin)), filepath.Dir(cliBin)} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			argv = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"}, argv...)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		for k, v := range awsEnv(w.moto) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("banshee %v: %v\nstdout %s\nstderr %s", args, err, stdout.String(), stderr.String())
		}
		return stdout.Bytes()
	}

	// The Lambda's door.
	r := rt.invoke(t, mustJSON(t, map[string]any{"action": "block", "targets": []string{"203.0.113.31"}, "subnet": w.subnetA, "scope": "vpc", "ttl": "2h", "reason": "flood"}))
	if !r.ok {
		t.Fatalf("manual block: %s", r.body)
	}
	var lam struct{ Decisions []decision }
	if err := json.Unmarshal(r.body, &lam); err != nil || len(lam.Decisions) != 1 {
		t.Fatalf("manual block response %s: %v", r.body, err)
	}
	// The operator's door.
	var op struct{ Decisions []decision }
	if err := json.Unmarshal(cli("block", "203.0.113.32", "--scope", "vpc", "--subnet", w.subnetA, "--ttl", "2h", "--reason", "flood", "-o", "json"), &op); err != nil || len(op.Decisions) != 1 {
		t.Fatalf("block output: %v", err)
	}
	a, b := lam.Decisions[0], op.Decisions[0]
	if a.Scope != "vpc" || a.Action != "block" || a.Scope != b.Scope || a.Action != b.Action || a.NACLID != w.naclA || a.NACLID != b.NACLID ||
		a.TTLSeconds != 7200 || a.TTLSeconds != b.TTLSeconds || len(a.Reasons) == 0 || len(b.Reasons) == 0 || a.Reasons[0] != b.Reasons[0] || a.RuleNumber == b.RuleNumber {
		t.Errorf("the doors disagree:\n lambda %+v\n cli    %+v", a, b)
	}
	if got, want := w.denies(t, w.subnetA), []string{"203.0.113.31/32", "203.0.113.32/32"}; !slices.Equal(got, want) {
		t.Errorf("subnet A denies %v, want %v", got, want)
	}
	// The same refusal through both: the allowlisted office.
	r = rt.invoke(t, mustJSON(t, map[string]any{"action": "plan", "targets": []string{"198.51.100.9"}, "subnet": w.subnetA, "scope": "vpc"}))
	var lp struct{ Decisions []decision }
	if err := json.Unmarshal(r.body, &lp); err != nil || len(lp.Decisions) != 1 || lp.Decisions[0].Action != "refuse" {
		t.Errorf("lambda plan of an allowlisted address: %s", r.body)
	}

	// Each door lifts the other's block: the command unprivileged at VPC
	// scope (a bare unblock, which also looks at the host firewall, is
	// cmd/banshee's TestDoorsAgree), the function with no scope named.
	cli("unblock", "203.0.113.31", "--scope", "vpc")
	r = rt.invoke(t, mustJSON(t, map[string]any{"action": "unblock", "targets": []string{"203.0.113.32"}, "subnet": w.subnetA}))
	if !r.ok {
		t.Fatalf("manual unblock: %s", r.body)
	}
	if got := w.denies(t, w.subnetA); len(got) != 0 {
		t.Errorf("after each door lifted the other's block: subnet A still denies %v", got)
	}
}
