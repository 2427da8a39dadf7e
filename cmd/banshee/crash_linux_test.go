package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// crashList is the bulk list of the crash test: 11.A.B.Z with Z in 100..255.
// Any cut of one of its lines ("11.1.1", "11.1.1.1" of "11.1.1.123") parses
// as an address whose last octet is below 100, so an entry the kernel got
// from half a line is never mistaken for one that was asked for.
func crashList(n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for a := 0; len(out) < n; a++ {
		for b := 0; b < 256 && len(out) < n; b++ {
			for z := 100; z < 256 && len(out) < n; z++ {
				out = append(out, netip.AddrFrom4([4]byte{11, byte(a), byte(b), byte(z)}))
			}
		}
	}
	return out
}

// setEntry is one "add" line of ipset save.
type setEntry struct {
	addr    netip.Addr
	timeout int64 // -1: none (a permanent entry)
}

func setEntries(t *testing.T, ns *nstest.NS, set string) []setEntry {
	t.Helper()
	out, err := ns.Command(context.Background(), "ipset", "save", set).Output()
	if err != nil {
		t.Fatalf("ipset save %s: %v", set, err)
	}
	var es []setEntry
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "add" {
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSuffix(f[2], "/32"))
		if err != nil {
			t.Fatalf("ipset save line %q: %v", sc.Text(), err)
		}
		e := setEntry{addr: a, timeout: -1}
		if len(f) >= 5 && f[3] == "timeout" {
			fmt.Sscan(f[4], &e.timeout)
		}
		es = append(es, e)
	}
	return es
}

// TestCrashKilledBulkBlockLosesNothing kills a 300k-address bulk block with
// -9 at random points, blocks more after each crash, then restores into a
// fresh namespace (the reboot): restore succeeds, every acknowledged block
// is back, and the kernel never holds an entry nobody asked for.
func TestCrashKilledBulkBlockLosesNothing(t *testing.T) {
	const bulk, trials = 300_000, 10
	n := nstest.New(t)
	c := newCLI(t, n.Victim, "")
	list := crashList(bulk)
	var in strings.Builder
	for _, a := range list {
		in.WriteString(a.String() + "\n")
	}
	asked := map[netip.Addr]bool{}
	for _, a := range list {
		asked[a] = true
	}
	var acked []netip.Addr // blocks whose command exited 0

	// The first run completes: it is acknowledged, and its length bounds
	// where the kills land.
	start := time.Now()
	c.must(in.String(), "block", "-", "--scope", "host", "--ttl", "2h", "--reason", "threat list")
	full := time.Since(start)
	acked = append(acked, list...)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	unasked := func(ns *nstest.NS, when string) int {
		bad := 0
		for _, e := range setEntries(t, ns, "banshee4") {
			if !asked[e.addr] || e.timeout <= 0 {
				if bad < 5 {
					t.Errorf("%s: the kernel holds %s (timeout %d), which no block asked for", when, e.addr, e.timeout)
				}
				bad++
			}
		}
		return bad
	}
	killedMidway, totalUnasked := 0, 0
	for trial := range trials {
		delay := time.Duration(rng.Int64N(int64(full)))
		cmd := n.Victim.Command(context.Background(), bansheeBin(t), "--state-dir", c.stateDir, "--config", c.config,
			"block", "-", "--scope", "host", "--ttl", "2h", "--reason", fmt.Sprintf("trial %d", trial))
		cmd.Env = append(os.Environ(), "SSH_CONNECTION=", "SSH_CLIENT=")
		cmd.Stdin = strings.NewReader(in.String())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signaled() {
			killedMidway++
		}
		totalUnasked += unasked(n.Victim, fmt.Sprintf("trial %d, killed after %s", trial, delay))
		// More blocks after the crash, one alone and a small bulk one.
		one := netip.AddrFrom4([4]byte{12, 0, byte(trial), 100})
		c.must("", "block", one.String(), "--scope", "host", "--ttl", "2h")
		asked[one] = true
		acked = append(acked, one)
		var few strings.Builder
		for z := 101; z < 141; z++ {
			a := netip.AddrFrom4([4]byte{12, 1, byte(trial), byte(z)})
			few.WriteString(a.String() + "\n")
			asked[a] = true
			acked = append(acked, a)
		}
		c.must(few.String(), "block", "-", "--scope", "host", "--ttl", "2h")
		if trial == trials/2 {
			c.must("", "save") // a snapshot between crashes
		}
	}
	if killedMidway < trials/2 {
		t.Fatalf("only %d of %d runs were killed before they finished: the kills did not test anything", killedMidway, trials)
	}

	// The reboot: a fresh namespace, the same state directory.
	fresh := nstest.New(t)
	r := (&cli{t: t, ns: fresh.Victim, stateDir: c.stateDir, config: c.config}).run("", "restore", "-o", "json")
	if r.code != 0 {
		t.Fatalf("restore after %d kills: exit %d: %s%s", killedMidway, r.code, r.stdout, r.stderr)
	}
	have := map[netip.Addr]bool{}
	for _, e := range setEntries(t, fresh.Victim, "banshee4") {
		have[e.addr] = true
	}
	lost := 0
	for _, a := range acked {
		if !have[a] {
			if lost < 5 {
				t.Errorf("acknowledged block of %s is missing after restore", a)
			}
			lost++
		}
	}
	totalUnasked += unasked(fresh.Victim, "after restore")
	t.Logf("crash: %d trials (%d killed mid-run, kills within %s), %d acknowledged blocks, lost %d, unasked %d; restore: %s",
		trials, killedMidway, full, len(acked), lost, totalUnasked, strings.TrimSpace(r.stdout))
	if _, err := os.Stat(filepath.Join(c.stateDir, "hostfw", "journal.damaged")); err == nil {
		t.Errorf("restore found damaged records (more than a torn tail): %s", r.stderr)
	}
}

// TestRestoreChecksEveryRecord writes a journal the way an attacker with
// the state directory (or a bug) would: restore puts back only what passes
// the protected-network check, skips the unreadable line naming it, and
// refuses a directory others can write or a symlinked journal.
func TestRestoreChecksEveryRecord(t *testing.T) {
	n := nstest.New(t)
	c := newCLI(t, n.Victim, "allowlist: [203.0.113.0/24]\n")
	c.must("", "block", "192.0.2.1", "--scope", "host", "--ttl", "2h")
	journal := filepath.Join(c.stateDir, "hostfw", "journal")
	f, err := os.OpenFile(journal, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	for _, p := range []string{"0.0.0.0/1", "127.0.0.1/32", "169.254.169.254/32", "203.0.113.9/32", "198.51.100.77/32", "192.0.2.2/32"} {
		fmt.Fprintf(f, "+ %d %s \"cli\" \"planted\"\n", exp, p)
	}
	fmt.Fprintf(f, "+ 17961+ 1796178498 192.0.2.3/32 \"cli\" \"glued\"\n")
	f.Close()
	restore := func(env ...string) result {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := n.Victim.Command(ctx, bansheeBin(t), "--state-dir", c.stateDir, "--config", c.config, "restore", "-o", "json")
		cmd.Env = append(os.Environ(), env...)
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		r := result{stdout: so.String(), stderr: se.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}
	r := restore("SSH_CONNECTION=198.51.100.77 50000 10.0.0.1 22", "SSH_CLIENT=")
	if r.code != 0 {
		t.Fatalf("restore: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	got := map[string]bool{}
	for _, e := range setEntries(t, n.Victim, "banshee4") {
		got[e.addr.String()] = true
	}
	if len(got) != 2 || !got["192.0.2.1"] || !got["192.0.2.2"] {
		t.Errorf("after restore the set holds %v; want 192.0.2.1 and 192.0.2.2 only", got)
	}
	for _, want := range []string{"0.0.0.0/1 contains", "not restored: 127.0.0.1 is ", "169.254.169.254 is the instance metadata address",
		"203.0.113.9 is inside 203.0.113.0/24, on the allowlist", "198.51.100.77 is the caller's own address", "journal line 8: bad expiry"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("restore warnings lack %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, `"restored":2`) {
		t.Errorf("restore output: %s", r.stdout)
	}
	if _, err := os.Stat(journal + ".damaged"); err != nil {
		t.Errorf("no copy of the damaged journal kept: %v", err)
	}

	before := firewallState(t, n.Victim)
	if err := os.Chmod(filepath.Join(c.stateDir, "hostfw"), 0o777); err != nil {
		t.Fatal(err)
	}
	if r := restore(); r.code != 1 || !strings.Contains(r.stderr, "world-writable") {
		t.Errorf("restore from a world-writable state dir: exit %d, %q", r.code, r.stderr)
	}
	if err := os.Chmod(filepath.Join(c.stateDir, "hostfw"), 0o700); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(t.TempDir(), "planted")
	if err := os.WriteFile(planted, fmt.Appendf(nil, "+ %d 192.0.2.99/32 \"cli\" \"planted\"\n", exp), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(journal); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Symlink(planted, journal); err != nil {
		t.Fatal(err)
	}
	if r := restore(); r.code != 1 || !strings.Contains(r.stderr, "symbolic link") {
		t.Errorf("restore from a symlinked journal: exit %d, %q", r.code, r.stderr)
	}
	if after := firewallState(t, n.Victim); after != before {
		t.Errorf("a refused restore changed the firewall:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
