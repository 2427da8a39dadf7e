package logsource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", DefaultMaxLine+10)
	in := "a\r\nb\n\n" + long + "\nc"
	var got []string
	cut, err := ReadLines(strings.NewReader(in), func(b []byte) { got = append(got, string(b)) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", "", "c"} // the long line is dropped, not cut
	if fmt.Sprint(len(got)) != fmt.Sprint(len(want)) || cut != 1 {
		t.Fatalf("%d lines, cut %d", len(got), cut)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %.20q, want %.20q", i, got[i], want[i])
		}
	}
}

func TestSplitterAcrossChunks(t *testing.T) {
	s := splitter{max: 8}
	var got []string
	fn := func(b []byte) { got = append(got, string(b)) }
	for _, chunk := range []string{"ab", "c\nde", "f\n0123", "456789abc", "\nz\n"} {
		s.feed([]byte(chunk), fn)
	}
	want := "abc|def|z" // "0123456789abc" is over 8 bytes: dropped
	if strings.Join(got, "|") != want || s.cut != 1 {
		t.Errorf("got %q cut %d, want %q", strings.Join(got, "|"), s.cut, want)
	}
}

func TestReadJournal(t *testing.T) {
	f, err := os.Open("testdata/journal.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	onBad := 0
	bad, err := ReadJournal(f, Options{OnBad: func() { onBad++ }}, func(b []byte) { got = append(got, string(b)) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2026-11-21T05:53:09.123456Z web1 sshd[4242]: Failed password for invalid user admin from 203.0.113.7 port 52144 ssh2",
		"2026-11-21T05:53:10.000001Z web1 sshd-session[4243]: Connection closed by invalid user x 2001:db8::7 port 4242 [preauth]",
		"2026-11-21T05:53:11.000000Z mail pop3[22145]: badlogin: [174.132.223.252] plaintext branden\xff SASL",
		"2026-11-21T05:53:12.000000Z web1 myapp[7]: first line Invalid user x from 198.51.100.1",
		"2026-11-21T05:53:14.000000Z web1 evil_ident__sshd[9]: Failed password for root from 192.0.2.99 port 22 ssh2",
		// logger -t sshd by a user, an sshd binary a user runs, a root
		// process that is no sshd: the identifier is not believed
		"2026-11-21T05:53:15.000000Z web1 untrusted-logger[10]: Failed password for root from 192.0.2.100 port 22 ssh2",
		"2026-11-21T05:53:16.000000Z web1 untrusted-sshd[11]: Failed password for root from 192.0.2.101 port 22 ssh2",
		"2026-11-21T05:53:17.000000Z web1 untrusted-python3[12]: Failed password for root from 192.0.2.102 port 22 ssh2",
		// a daemon's own user in its system service
		"2026-11-21T05:53:18.000000Z mail postfix/smtpd[13]: warning: unknown[192.0.2.103]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
	}
	if bad != 2 || onBad != 2 {
		t.Errorf("bad entries %d (OnBad %d), want 2 (not JSON, null MESSAGE)", bad, onBad)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestReadJournalDropsLongMessages(t *testing.T) {
	long := `{"SYSLOG_IDENTIFIER":"dovecot","_UID":"0","_COMM":"log","MESSAGE":"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<` + strings.Repeat("a", 18<<10) + `>, method=PLAIN, rip=10.10.1.2, lip=10.0.0.1"}`
	in := long + "\n" + `{"SYSLOG_IDENTIFIER":"sshd","_UID":"0","_COMM":"sshd","MESSAGE":"x"}` + "\n"
	var got []string
	longs, malformed := 0, 0
	bad, err := ReadJournal(strings.NewReader(in), Options{OnLong: func() { longs++ }, OnBad: func() { malformed++ }}, func(b []byte) { got = append(got, string(b)) })
	if err != nil {
		t.Fatal(err)
	}
	// a long message is counted as long, not as malformed
	if bad != 1 || longs != 1 || malformed != 0 || len(got) != 1 || !strings.HasSuffix(got[0], " sshd: x") {
		t.Errorf("bad %d, long %d, malformed %d, lines %q", bad, longs, malformed, got)
	}
}

// collector gathers lines from Follow's goroutine.
type collector struct {
	mu    sync.Mutex
	lines []string
	rot   []string
}

func (c *collector) add(b []byte) {
	c.mu.Lock()
	c.lines = append(c.lines, string(b))
	c.mu.Unlock()
}

func (c *collector) rotated(how string) {
	c.mu.Lock()
	c.rot = append(c.rot, how)
	c.mu.Unlock()
}

// waitFor waits (bounded) until the collected lines end with want.
func (c *collector) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := strings.Join(c.lines, "|")
		c.mu.Unlock()
		if got == strings.Join(want, "|") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lines %q, want %q", got, strings.Join(want, "|"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func startFollow(t *testing.T, path string, o Options) *collector {
	t.Helper()
	c := &collector{}
	o.OnRotate = c.rotated
	o.Poll = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	o.Ready = func() { close(ready) }
	go func() { done <- Follow(ctx, path, o, c.add) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Follow: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Follow did not return after cancel")
		}
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not get ready")
	}
	return c
}

func TestFollowStartsAtEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	appendFile(t, path, "old 1\nold 2\n")
	c := startFollow(t, path, Options{})
	// lines written before Follow started are skipped; to know it has
	// started, keep appending a marker until it shows up
	appendFile(t, path, "new 1\nnew")
	appendFile(t, path, " 2\n")
	c.waitFor(t, "new 1", "new 2")
}

func TestFollowFromStartAndRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	appendFile(t, path, "old 1\n")
	c := startFollow(t, path, Options{FromStart: true})
	c.waitFor(t, "old 1")
	appendFile(t, path, "before rotate\n")
	c.waitFor(t, "old 1", "before rotate")
	// logrotate: rename away, the writer still appends to the old file,
	// then a new file appears at the path
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".1", "late in old\n")
	appendFile(t, path, "first in new\n")
	c.waitFor(t, "old 1", "before rotate", "late in old", "first in new")
	appendFile(t, path, "second in new\n")
	c.waitFor(t, "old 1", "before rotate", "late in old", "first in new", "second in new")
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rot) != 1 || c.rot[0] != "rename" {
		t.Errorf("rotations %v, want [rename]", c.rot)
	}
}

func TestFollowCopyTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	appendFile(t, path, "a long first line that makes the file big\n")
	c := startFollow(t, path, Options{FromStart: true})
	c.waitFor(t, "a long first line that makes the file big")
	// copytruncate: copy, then truncate the same file in place
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "after\n")
	c.waitFor(t, "a long first line that makes the file big", "after")
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rot) != 1 || c.rot[0] != "truncate" {
		t.Errorf("rotations %v, want [truncate]", c.rot)
	}
}

func TestFollowWaitsForFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	c := startFollow(t, path, Options{})
	appendFile(t, path, "hello\n")
	c.waitFor(t, "hello")
}
