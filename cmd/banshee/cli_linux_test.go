package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// TestMain removes the binary bansheeBin built when the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

// bansheeBin builds the banshee binary once per test run.
func bansheeBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "banshee-bin")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "banshee")
		// As make build builds it: static (no cgo).
		cmd := exec.Command("go", "build", "-o", buildBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building banshee: %v", buildErr)
	}
	return buildBin
}

// cli runs banshee inside a namespace with its own state dir and config.
type cli struct {
	t        *testing.T
	ns       *nstest.NS
	stateDir string
	config   string
}

func newCLI(t *testing.T, ns *nstest.NS, config string) *cli {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "banshee.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cli{t: t, ns: ns, stateDir: filepath.Join(dir, "state"), config: cfg}
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--state-dir", c.stateDir, "--config", c.config}, args...)
	cmd := c.ns.Command(ctx, bansheeBin(c.t), full...)
	cmd.Env = append(os.Environ(), "SSH_CONNECTION=", "SSH_CLIENT=")
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("running banshee %v: %v", args, err)
	}
	return r
}

func (c *cli) must(stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("banshee %v: exit %d: %s%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// firewallState is everything of the namespace's firewall a test compares.
func firewallState(t *testing.T, ns *nstest.NS) string {
	t.Helper()
	var b strings.Builder
	ctx := context.Background()
	for _, tool := range []string{"iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		out, err := ns.Run(ctx, tool)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(out, "\n") {
			if !strings.HasPrefix(l, "#") { // drop the timestamps
				b.WriteString(l + "\n")
			}
		}
	}
	out, err := ns.Run(ctx, "ipset", "save")
	if err != nil {
		t.Fatal(err)
	}
	// An entry's remaining timeout counts down between two reads; the
	// entry itself, its comment and the set header are what must not change.
	b.WriteString(countdown.ReplaceAllString(out, "$1"))
	return b.String()
}

// countdown matches the remaining timeout of an "ipset save" add line.
var countdown = regexp.MustCompile(`(?m)^(add \S+ \S+) timeout \d+`)

const port = 8110

// reachTimeout is how long a dial that must succeed may take: far beyond
// what a loaded machine needs, so only a block makes it fail.
const reachTimeout = 15 * time.Second

func TestCLIBlockUnblockEndToEnd(t *testing.T) {
	for _, backend := range []string{"nft", "legacy"} {
		t.Run(backend, func(t *testing.T) {
			n := nstest.New(t, "attacker", "good")
			n.Victim.Listen(t, port)
			att, good := n.Peers["attacker"], n.Peers["good"]
			c := newCLI(t, n.Victim, "host:\n  backend: "+backend+"\n")
			if err := att.Dial(att.VictimAddr4, port, reachTimeout); err != nil {
				t.Fatalf("attacker cannot connect before the block: %v", err)
			}
			r := c.must("", "block", att.Addr4.String(), att.Addr6.String(), "--reason", `pop3 "bruteforce"`, "--ttl", "2h", "--scope", "host")
			if !strings.Contains(r.stdout, "host block") {
				t.Errorf("block output: %q", r.stdout)
			}
			for _, dst := range []string{"v4", "v6"} {
				addr := att.VictimAddr4
				if dst == "v6" {
					addr = att.VictimAddr6
				}
				if err := att.Dial(addr, port, 700*time.Millisecond); err == nil {
					t.Fatalf("attacker still connects over %s after block", dst)
				}
			}
			if err := good.Dial(good.VictimAddr4, port, reachTimeout); err != nil {
				t.Fatalf("good peer cut off: %v", err)
			}
			var list struct {
				Blocks []map[string]any `json:"blocks"`
			}
			r = c.must("", "list", "-o", "json")
			if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
				t.Fatalf("list -o json: %v: %q", err, r.stdout)
			}
			if len(list.Blocks) != 2 {
				t.Fatalf("list: %d blocks, want 2: %s", len(list.Blocks), r.stdout)
			}
			for _, b := range list.Blocks {
				for _, k := range []string{"target", "scope", "expires_at", "reason", "origin"} {
					if _, ok := b[k]; !ok {
						t.Errorf("list entry lacks %q: %v", k, b)
					}
				}
				if b["scope"] != "host" || b["origin"] != "cli" || b["reason"] != `pop3 'bruteforce'` {
					t.Errorf("list entry: %v", b)
				}
			}
			st := c.must("", "status", "-o", "json")
			if !strings.Contains(st.stdout, `"backend":"`+backend+`"`) {
				t.Errorf("status does not report backend %s: %s", backend, st.stdout)
			}
			c.must("", "unblock", att.Addr4.String())
			if err := att.Dial(att.VictimAddr4, port, reachTimeout); err != nil {
				t.Fatalf("attacker still blocked after unblock: %v", err)
			}
			r = c.must("", "unblock", att.Addr4.String())
			if !strings.Contains(r.stdout, "was not blocked") {
				t.Errorf("second unblock: %q", r.stdout)
			}
		})
	}
}

func TestCLIBulkStdinAndRefresh(t *testing.T) {
	n := nstest.New(t)
	c := newCLI(t, n.Victim, "")
	list := "# threat list\n192.0.2.1\n192.0.2.2 # trailing comment\n\n2001:db8::/64\n198.51.100.0/24\n"
	r := c.must(list, "block", "-", "--ttl", "1h", "--scope", "host", "-o", "json")
	var out struct {
		Decisions []map[string]any `json:"decisions"`
		Added     int              `json:"added"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Decisions) != 4 || out.Added != 4 {
		t.Fatalf("bulk block: %s", r.stdout)
	}
	for _, d := range out.Decisions {
		for _, k := range []string{"target", "scope", "action", "reasons", "ttl_seconds", "expires_at"} {
			if _, ok := d[k]; !ok {
				t.Errorf("decision lacks %q: %v", k, d)
			}
		}
	}
	r = c.must("", "block", "192.0.2.1", "--ttl", "3h", "--scope", "host", "-o", "json")
	if !strings.Contains(r.stdout, `"refreshed":1`) {
		t.Errorf("re-block did not refresh: %s", r.stdout)
	}
	saved, err := n.Victim.Run(context.Background(), "ipset", "save", "banshee4")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(saved, "192.0.2.1 ") != 1 {
		t.Errorf("duplicate entries after refresh:\n%s", saved)
	}
}

func TestCLIBadInputChangesNothing(t *testing.T) {
	n := nstest.New(t)
	c := newCLI(t, n.Victim, "")
	c.must("", "block", "192.0.2.1", "--scope", "host") // something to keep
	before := firewallState(t, n.Victim)
	for _, tc := range []struct {
		args  []string
		stdin string
		code  int
		names string
	}{
		{[]string{"block", "300.1.1.1"}, "", 2, "300.1.1.1"},
		{[]string{"block", "192.0.2.0/33"}, "", 2, "192.0.2.0/33"},
		{[]string{"block", "0.0.0.0/0"}, "", 2, "0.0.0.0/0"},
		{[]string{"block", "::/0"}, "", 2, "::/0"},
		{[]string{"block"}, "", 2, "no target"},
		{[]string{"block", "-"}, "# only a comment\n", 2, "no target"},
		{[]string{"block", "-"}, "192.0.2.5\nbogus\n", 2, "bogus"},
		{[]string{"block", "192.0.2.9", "--frobnicate"}, "", 2, "--frobnicate"},
		{[]string{"block", "192.0.2.9", "--ttl", "-1h"}, "", 2, "-1h"},
		{[]string{"block", "192.0.2.9", "--ttl", "soon"}, "", 2, "soon"},
		{[]string{"block", "192.0.2.9", "--scope", "galaxy"}, "", 2, "galaxy"},
		{[]string{"block", "192.0.2.9", "--reason", "x\nCOMMIT"}, "", 2, "control characters"},
		{[]string{"block", "192.0.2.9", "-o", "xml"}, "", 2, "xml"},
		{[]string{"blok", "192.0.2.9"}, "", 2, "blok"},
		{[]string{"block", "127.0.0.1"}, "", 3, "loopback"},
		{[]string{"block", "192.0.2.10", "10.0.0.0/8"}, "", 3, "10.0.0.0/8"},
		{[]string{"block", "169.254.169.254", "--force"}, "", 3, "metadata"},
	} {
		r := c.run(tc.stdin, tc.args...)
		if r.code != tc.code {
			t.Errorf("banshee %v: exit %d, want %d (stderr %q)", tc.args, r.code, tc.code, r.stderr)
		}
		msg := strings.TrimSuffix(r.stderr, "\n")
		if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.names) {
			t.Errorf("banshee %v: stderr %q: want one line naming %q", tc.args, r.stderr, tc.names)
		}
	}
	if after := firewallState(t, n.Victim); after != before {
		t.Errorf("bad input changed the firewall:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestCLINotRootIsClearExit1(t *testing.T) {
	n := nstest.New(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	bin := bansheeBin(t)
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cmd := n.Victim.Command(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		bin, "--state-dir", "/nonexistent", "block", "192.0.2.1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("unprivileged block: err %v, output %q; want exit 1", err, out)
	}
	if !strings.Contains(string(out), "CAP_NET_ADMIN") {
		t.Errorf("message does not say what is missing: %q", out)
	}
}

func TestCLISaveRestoreAndUnit(t *testing.T) {
	n := nstest.New(t, "attacker")
	n.Victim.Listen(t, port)
	att := n.Peers["attacker"]
	c := newCLI(t, n.Victim, "")
	c.must("", "block", att.Addr4.String(), "--ttl", "1h", "--scope", "host")
	c.must("", "save")
	ctx := context.Background()
	for _, cmd := range [][]string{{"iptables", "-F"}, {"iptables", "-X"}, {"ip6tables", "-F"}, {"ip6tables", "-X"}, {"ipset", "destroy"}} {
		if out, err := n.Victim.Run(ctx, cmd[0], cmd[1:]...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	if err := att.Dial(att.VictimAddr4, port, reachTimeout); err != nil {
		t.Fatalf("after the simulated reboot the attacker should connect: %v", err)
	}
	r := c.must("", "restore", "-o", "json")
	if !strings.Contains(r.stdout, `"restored":1`) {
		t.Errorf("restore: %s", r.stdout)
	}
	if err := att.Dial(att.VictimAddr4, port, 700*time.Millisecond); err == nil {
		t.Fatal("attacker connects after restore")
	}
	unit, err := os.ReadFile("systemd/banshee-restore.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/banshee restore") || !strings.Contains(string(unit), "WantedBy=multi-user.target") {
		t.Errorf("unit does not run banshee restore at boot:\n%s", unit)
	}
}

func TestCLIMissingToolsIsClearExit1(t *testing.T) {
	n := nstest.New(t)
	c := newCLI(t, n.Victim, "")
	ctx := context.Background()
	empty := t.TempDir()
	cmd := n.Victim.Command(ctx, bansheeBin(t), "--state-dir", c.stateDir, "--config", c.config, "block", "192.0.2.1", "--scope", "host")
	cmd.Env = []string{"PATH=" + empty}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("without ipset: err %v, output %q; want exit 1", err, out)
	}
	if !strings.Contains(string(out), "ipset not found") || !strings.Contains(string(out), "apt-get install") {
		t.Errorf("message does not say what is missing and how to install it: %q", out)
	}
}
