package logsource

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/logsource/journaltest"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
)

// TestJournalDirectoryDetects builds a real journal file with
// systemd-journal-remote (no journald needed), reads it through the real
// journalctl with Journal's --directory, and runs the lines through the
// detectors: the attackers trip, the forged and injected addresses never
// do, and the entry without a message is counted as malformed.
func TestJournalDirectoryDetects(t *testing.T) {
	remote := journaltest.Remote(t)
	dir := t.TempDir()
	base := time.Now().Add(-time.Minute)
	var exp bytes.Buffer
	seq := 0
	entry := func(ident, comm, exe, unit, uid, msg string) {
		seq++
		f := [][2]string{
			{"__REALTIME_TIMESTAMP", fmt.Sprint(base.Add(time.Duration(seq) * time.Second).UnixMicro())},
			{"__MONOTONIC_TIMESTAMP", fmt.Sprint(1000000 + seq)},
			{"_BOOT_ID", "0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7"},
			{"_HOSTNAME", "web1"},
			{"_TRANSPORT", "syslog"},
			{"_PID", fmt.Sprint(4000 + seq)},
			{"_UID", uid},
			{"_COMM", comm},
			{"_EXE", exe},
			{"_SYSTEMD_UNIT", unit},
			{"SYSLOG_IDENTIFIER", ident},
		}
		if msg != "" {
			f = append(f, [2]string{"MESSAGE", msg})
		}
		journaltest.Entry(&exp, f)
	}
	sshd := func(msg string) { entry("sshd", "sshd", "/usr/sbin/sshd", "ssh.service", "0", msg) }
	const att4, att6, victim = "203.0.113.7", "2001:db8:77::7", "198.51.100.9"
	for i := range 5 {
		// OpenSSH auth.c auth_log: "Failed %s for %s%.100s from %.200s port %d ssh2%s%s"
		sshd(fmt.Sprintf("Failed password for invalid user admin%d from %s port %d ssh2", i, att4, 40000+i))
		// the same from OpenSSH 9.8's sshd-session, over IPv6
		entry("sshd-session", "sshd-session", "/usr/lib/openssh/sshd-session", "ssh.service", "0",
			fmt.Sprintf("Failed password for invalid user x from %s port %d ssh2", att6, 50000+i))
		// a user's logger -t sshd names a victim: the journal does not vouch for it
		entry("sshd", "logger", "/usr/bin/logger", "session-3.scope", "1000",
			fmt.Sprintf("Failed password for root from %s port 22 ssh2", victim))
		// the victim's address planted in a user name and in auth info
		sshd(fmt.Sprintf("Failed password for invalid user x from %s port 22 ssh2 from %s port 1 ssh2", victim, att4))
	}
	// a multi-line message (binary field in the export format)
	sshd("Received SIGHUP\nrestarting")
	// an entry without MESSAGE makes no line
	entry("sshd", "sshd", "/usr/sbin/sshd", "ssh.service", "0", "")
	const total = 5*4 + 2

	out := filepath.Join(dir, "remote.journal")
	cmd := exec.Command(remote, "--output="+out, "-")
	cmd.Stdin = &exp
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-journal-remote: %v\n%s", err, b)
	}

	m, err := detect.New(policy.WatchConfig{}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tr := m.NewTracker(0)
	var mu sync.Mutex
	var lines []string
	trips := map[netip.Prefix]string{}
	bad := 0
	progress := make(chan struct{}, 1)
	fn := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, string(b))
		if mt, ok := m.Match(b); ok {
			if trip, ok := tr.Observe(mt, time.Now()); ok {
				trips[trip.Source] = m.Detectors()[trip.Detector].Name
			}
		}
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	o := Options{JournalDirectory: dir, FromStart: true, OnBad: func() {
		mu.Lock()
		bad++
		mu.Unlock()
		select {
		case progress <- struct{}{}:
		default:
		}
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Journal(ctx, o, fn) }()
	deadline := time.After(30 * time.Second)
wait:
	for {
		mu.Lock()
		n := len(lines) + bad
		mu.Unlock()
		if n >= total {
			break
		}
		select {
		case <-progress:
		case err := <-done:
			cancel()
			t.Fatalf("journalctl ended after %d of %d entries: %v", n, total, err)
		case <-deadline:
			break wait
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Journal: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != total-1 || bad != 1 {
		t.Fatalf("%d lines and %d malformed entries, want %d and 1:\n%s", len(lines), bad, total-1, strings.Join(lines, "\n"))
	}
	want := map[netip.Prefix]string{
		netip.MustParsePrefix(att4 + "/32"):  "sshd",
		netip.MustParsePrefix(att6 + "/128"): "sshd",
	}
	if len(trips) != len(want) {
		t.Errorf("trips %v, want %v", trips, want)
	}
	for p, d := range want {
		if trips[p] != d {
			t.Errorf("%s: tripped %q, want %q (trips %v)", p, trips[p], d, trips)
		}
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, " untrusted-logger[") }) {
		t.Errorf("the logger entries are not tagged untrusted:\n%s", strings.Join(lines, "\n"))
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasSuffix(l, "sshd["+fmt.Sprint(4000+total-1)+"]: Received SIGHUP restarting")
	}) {
		t.Errorf("the multi-line message is not one line:\n%s", strings.Join(lines, "\n"))
	}
}

func TestJournalArgs(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "-f -o json --no-pager -n 0"},
		{Options{FromStart: true}, "-f -o json --no-pager --no-tail -b"},
		{Options{JournalDirectory: "/srv/j"}, "-f -o json --no-pager -n 0 --directory=/srv/j"},
		{Options{JournalDirectory: "-x", FromStart: true}, "-f -o json --no-pager --no-tail --directory=-x"},
	} {
		if got := strings.Join(journalArgs(c.o), " "); got != c.want {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
}
