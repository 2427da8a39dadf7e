package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

const dropAll = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"

func writeRules(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "rules.v4")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLIApplyRollsBackWithoutConfirm: apply of a drop-everything ruleset
// with --confirm-within 2s and no confirm; the process that applied is
// killed; the previous ruleset is back within the window plus 1 s.
func TestCLIApplyRollsBackWithoutConfirm(t *testing.T) {
	n := nstest.New(t, "admin")
	n.Victim.Listen(t, port)
	adm := n.Peers["admin"]
	c := newCLI(t, n.Victim, "")
	rules := writeRules(t, dropAll)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.ns.Command(ctx, bansheeBin(t), "--state-dir", c.stateDir, "--config", c.config, "apply", rules, "--confirm-within", "2s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	applied := time.Now()
	if err != nil {
		t.Fatalf("apply: %v: %s", err, out)
	}
	// The SSH session that ran apply goes away: kill its whole process group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err := adm.Dial(adm.VictimAddr4, port, 400*time.Millisecond); err == nil {
		t.Fatal("the drop-everything ruleset is not live")
	}
	st := c.must("", "status", "-o", "json")
	var status struct {
		Pending *struct {
			Deadline time.Time `json:"deadline"`
		} `json:"pending_apply"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &status); err != nil || status.Pending == nil {
		t.Fatalf("status shows no pending confirmation: %v %s", err, st.stdout)
	}
	deadline := applied.Add(3 * time.Second)
	for i := 0; ; i++ {
		if adm.Dial(adm.VictimAddr4, port, 200*time.Millisecond) == nil {
			break
		}
		if time.Now().After(deadline) || i > 100 {
			t.Fatal("the previous ruleset is not back within the window plus 1 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	st = c.must("", "status", "-o", "json")
	if strings.Contains(st.stdout, "pending_apply") {
		t.Errorf("still pending after the rollback: %s", st.stdout)
	}
}

func TestCLIApplyConfirmKeepsRuleset(t *testing.T) {
	n := nstest.New(t, "admin")
	n.Victim.Listen(t, port)
	adm := n.Peers["admin"]
	c := newCLI(t, n.Victim, "")
	// Keep the service, drop the rest.
	rules := writeRules(t, "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A INPUT -p tcp --dport 8110 -j ACCEPT\nCOMMIT\n")
	r := c.must("", "apply", rules, "--confirm-within", "2s")
	if !strings.Contains(r.stdout, "banshee confirm") {
		t.Errorf("apply does not say how to confirm: %q", r.stdout)
	}
	c.must("", "confirm")
	time.Sleep(3 * time.Second)
	out, err := n.Victim.Run(context.Background(), "iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, ":INPUT DROP") || !strings.Contains(out, "--dport 8110 -j ACCEPT") {
		t.Fatalf("confirmed ruleset was rolled back:\n%s", out)
	}
	if err := adm.Dial(adm.VictimAddr4, port, time.Second); err != nil {
		t.Fatalf("service unreachable under the confirmed ruleset: %v", err)
	}
	if r := c.must("", "confirm"); !strings.Contains(r.stdout, "nothing to confirm") {
		t.Errorf("second confirm: %q", r.stdout)
	}
	// The SSH warning: a session from 203.0.113.9 would be dropped.
	cmd := c.ns.Command(context.Background(), bansheeBin(t), "--state-dir", c.stateDir, "--config", c.config, "apply", writeRules(t, dropAll), "--confirm-within", "1s")
	cmd.Env = append(os.Environ(), "SSH_CONNECTION=203.0.113.9 50000 10.99.10.1 22")
	o, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(o), "drops your SSH session from 203.0.113.9") {
		t.Errorf("apply did not warn about the caller's SSH session: %v %s", err, o)
	}
	c.must("", "rollback")
}

func TestCLIRateLimit(t *testing.T) {
	n := nstest.New(t, "attacker")
	n.Victim.Listen(t, port)
	att := n.Peers["attacker"]
	c := newCLI(t, n.Victim, "")
	c.must("", "ratelimit", "add", "--port", "8110/tcp", "--hits", "3", "--seconds", "60", "--name", "svc")
	r := c.must("", "ratelimit", "list", "-o", "json")
	if !strings.Contains(r.stdout, `"name":"svc"`) || !strings.Contains(r.stdout, `"hits":3`) {
		t.Errorf("list: %s", r.stdout)
	}
	for i := 0; i < 2; i++ {
		if err := att.Dial(att.VictimAddr4, port, time.Second); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	if err := att.Dial(att.VictimAddr4, port, 500*time.Millisecond); err == nil {
		t.Fatal("3rd connection within 60 s got through")
	}
	for _, bad := range [][]string{
		{"ratelimit", "add", "--port", "70000/tcp"},
		{"ratelimit", "add", "--port", "22/sctp"},
		{"ratelimit", "add", "--port", "22/tcp", "--hits", "50"},
		{"ratelimit", "add", "--port", "22/tcp", "--name", "bad name"},
		{"ratelimit", "add", "--hits", "5"},
	} {
		if r := c.run("", bad...); r.code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", bad, r.code, r.stderr)
		}
	}
	c.must("", "ratelimit", "remove", "svc")
	if r := c.must("", "ratelimit", "remove", "svc"); !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("second remove: %q", r.stdout)
	}
	// Saved with the rest: a restore after a "reboot" brings it back.
	c.must("", "ratelimit", "add", "--port", "8110/tcp", "--hits", "5", "--seconds", "60", "--name", "svc")
	ctx := context.Background()
	for _, cmd := range [][]string{{"iptables", "-F"}, {"iptables", "-X"}, {"ip6tables", "-F"}, {"ip6tables", "-X"}} {
		if out, err := n.Victim.Run(ctx, cmd[0], cmd[1:]...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	c.must("", "restore")
	out, err := n.Victim.Run(ctx, "iptables-save")
	if err != nil || !strings.Contains(out, "--name bsh_svc") {
		t.Errorf("rate limit not restored: %v\n%s", err, out)
	}
}
