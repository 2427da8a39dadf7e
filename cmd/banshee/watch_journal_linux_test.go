package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/logsource/journaltest"
	"github.com/banshee-project/banshee/cmd/internal/watch"
	"github.com/banshee-project/banshee/hostfw/nstest"
)

// TestWatchJournalDirectory: watch --journal-directory reads a journal
// written by systemd-journal-remote through the real journalctl, blocks
// the attacker it names (real packets dropped), never the address a
// user's logger -t sshd names, and counts the entry without a message in
// its parse errors.
func TestWatchJournalDirectory(t *testing.T) {
	remote := journaltest.Remote(t)
	net := nstest.New(t, "attacker", "bystander")
	const sshPort = 2222
	net.Victim.Listen(t, sshPort)
	att, other := net.Peers["attacker"], net.Peers["bystander"]

	dir := t.TempDir()
	var exp bytes.Buffer
	seq := 0
	entry := func(ident, comm, uid, unit, msg string) {
		seq++
		fields := [][2]string{
			{"__REALTIME_TIMESTAMP", fmt.Sprint(time.Now().UnixMicro())},
			{"__MONOTONIC_TIMESTAMP", fmt.Sprint(1000000 + seq)},
			{"_BOOT_ID", "0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7"},
			{"_HOSTNAME", "web1"},
			{"_PID", fmt.Sprint(4000 + seq)},
			{"_UID", uid},
			{"_COMM", comm},
			{"_SYSTEMD_UNIT", unit},
			{"SYSLOG_IDENTIFIER", ident},
		}
		if msg != "" {
			fields = append(fields, [2]string{"MESSAGE", msg})
		}
		journaltest.Entry(&exp, fields)
	}
	for i := range 3 {
		// OpenSSH auth.c auth_log: "Failed %s for %s%.100s from %.200s port %d ssh2"
		entry("sshd", "sshd", "0", "ssh.service", fmt.Sprintf("Failed password for invalid user admin%d from %s port %d ssh2", i, att.Addr4, 40000+i))
		entry("sshd", "logger", "1000", "session-2.scope", fmt.Sprintf("Failed password for root from %s port 22 ssh2", other.Addr4))
	}
	entry("sshd", "sshd", "0", "ssh.service", "")
	entry("sshd", "sshd", "0", "ssh.service", "Received SIGHUP;\nrestarting.")
	cmd := exec.Command(remote, "--output="+filepath.Join(dir, "journal", "remote.journal"), "-")
	if err := os.MkdirAll(filepath.Join(dir, "journal"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = &exp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-journal-remote: %v\n%s", err, out)
	}

	config := filepath.Join(dir, "banshee.yaml")
	if err := os.WriteFile(config, []byte("watch: {max_retry: 3, find_time: 10m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	logPath := filepath.Join(dir, "auth.log")
	appendLog(t, logPath, "Nov 21 05:53:09 web1 sshd[1]: Server listening on :: port 22.")
	for _, p := range []*nstest.Peer{att, other} {
		if err := p.Dial(p.VictimAddr4, sshPort, 500*time.Millisecond); err != nil {
			t.Fatalf("before watch: %s: %v", p.Name, err)
		}
	}
	w := startWatch(t, net.Victim, state, config, logPath, "--journal-directory", filepath.Join(dir, "journal"), "--from-start")
	w.waitLine("blocked on this host:", 30*time.Second, " "+att.Addr4.String()+"/32")
	if err := att.Dial(att.VictimAddr4, sshPort, 500*time.Millisecond); err == nil {
		t.Error("the attacker the journal names still connects")
	}
	if err := other.Dial(other.VictimAddr4, sshPort, 500*time.Millisecond); err != nil {
		t.Errorf("the address a user's logger named was blocked: %v", err)
	}
	if err := w.stop(); err != nil {
		t.Errorf("watch exit after SIGTERM: %v", err)
	}
	st, err := watch.ReadStatus(state)
	if err != nil || st == nil {
		t.Fatalf("status file: %v %v", st, err)
	}
	if st.ParseErrors != 1 || st.Matches["sshd"] != 3 || !strings.Contains(strings.Join(st.Sources, " "), "journal:") {
		t.Errorf("status: parse errors %d (want 1), sshd matches %d (want 3), sources %v", st.ParseErrors, st.Matches["sshd"], st.Sources)
	}
}
