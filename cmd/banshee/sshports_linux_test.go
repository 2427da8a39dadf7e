package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// TestHelperSSHDListener is not a test: run as a process named sshd (see
// startFakeSSHD), it listens where BANSHEE_TEST_SSHD_ADDR says, prints
// "listening", and echoes until its standard input closes.
func TestHelperSSHDListener(t *testing.T) {
	addr := os.Getenv("BANSHEE_TEST_SSHD_ADDR")
	if addr == "" {
		t.Skip("helper process of TestSSHProtectionOnEverySSHDPort")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	os.Stdout.WriteString("listening\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startFakeSSHD runs this test binary as a root process named "sshd" that
// listens on port in the namespace: what banshee sees of an sshd on a
// non-standard port (comm, owner, listening socket).
func startFakeSSHD(t *testing.T, ns *nstest.NS, port string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sshd := filepath.Join(t.TempDir(), "sshd")
	if err := os.Symlink(self, sshd); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := ns.Command(ctx, sshd, "-test.run=^TestHelperSSHDListener$")
	cmd.Env = append(os.Environ(), "BANSHEE_TEST_SSHD_ADDR=[::]:"+port)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait(); cancel() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "listening" {
				ok = true
				break
			}
		}
		ready <- ok
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the fake sshd did not start")
		}
	case <-time.After(time.Minute):
		t.Fatal("the fake sshd did not start within a minute")
	}
}

// TestSSHProtectionOnEverySSHDPort: an admin's session to an sshd on port
// 2222 and an operator's to a port listed in host.ssh_ports are protected
// like port 22: block refuses both (exit 3), plan says so, and apply warns
// about a ruleset that drops them.
func TestSSHProtectionOnEverySSHDPort(t *testing.T) {
	n := nstest.New(t, "admin", "ops", "other")
	startFakeSSHD(t, n.Victim, "2222")
	n.Victim.ListenEcho(t, 2200) // not sshd: protected only through the config
	adm, ops, other := n.Peers["admin"], n.Peers["ops"], n.Peers["other"]
	for _, s := range []struct {
		p    *nstest.Peer
		port int
	}{{adm, 2222}, {ops, 2200}, {other, 2200}} {
		c, err := s.p.DialConn(s.p.VictimAddr4, s.port, reachTimeout)
		if err != nil {
			t.Fatalf("session to %d: %v", s.port, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	without := newCLI(t, n.Victim, "")
	with := newCLI(t, n.Victim, "host:\n  ssh_ports: [2200]\n")

	for _, tc := range []struct {
		c    *cli
		addr string
		code int
	}{
		{without, adm.Addr4.String(), 3}, // found: sshd listens on 2222
		{with, ops.Addr4.String(), 3},    // configured: host.ssh_ports
		{without, other.Addr4.String(), 0},
	} {
		r := tc.c.run("", "block", tc.addr, "--scope", "host", "--ttl", "1h")
		if r.code != tc.code {
			t.Errorf("block %s: exit %d, want %d: %s%s", tc.addr, r.code, tc.code, r.stdout, r.stderr)
		}
		if msg := r.stdout + r.stderr; tc.code == 3 && !strings.Contains(msg, "SSH peer") && !strings.Contains(msg, "the caller's own address") {
			t.Errorf("block %s: refusal does not name the SSH session: %s%s", tc.addr, r.stdout, r.stderr)
		}
		if tc.code == 3 {
			if p := tc.c.run("", "plan", tc.addr, "--scope", "host"); p.code != 3 {
				t.Errorf("plan %s: exit %d, want 3: %s%s", tc.addr, p.code, p.stdout, p.stderr)
			}
		}
	}
	r := without.run("", "apply", writeRules(t, dropAll), "--confirm-within", "30s")
	if !strings.Contains(r.stderr, "drops your SSH session from "+adm.Addr4.String()+" to port 2222") {
		t.Errorf("apply does not warn about the session to sshd on 2222: exit %d: %s", r.code, r.stderr)
	}
	without.must("", "rollback")
	if out, err := exec.Command("ip", "netns", "exec", n.Victim.Name, "true").CombinedOutput(); err != nil {
		t.Fatalf("namespace gone: %v %s", err, out)
	}
}
