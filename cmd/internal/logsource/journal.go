package logsource

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// journalEntry holds the fields of `journalctl -o json` that make a line.
// MESSAGE is a string, or an array of bytes when it is not valid UTF-8.
type journalEntry struct {
	Message    json.RawMessage `json:"MESSAGE"`
	Identifier string          `json:"SYSLOG_IDENTIFIER"`
	Comm       string          `json:"_COMM"`
	PID        string          `json:"_PID"`
	SyslogPID  string          `json:"SYSLOG_PID"`
	Hostname   string          `json:"_HOSTNAME"`
	Realtime   string          `json:"__REALTIME_TIMESTAMP"`
	// Trusted fields: journald sets them from the kernel's view of the
	// sender, which cannot choose them.
	UID  string `json:"_UID"`
	Exe  string `json:"_EXE"`
	Unit string `json:"_SYSTEMD_UNIT"`
}

// sshdNames are the process names of OpenSSH's server.
var sshdNames = []string{"sshd", "sshd-session", "sshd-auth"}

// trustedIdent returns the program name to write into the line. The
// sender chooses SYSLOG_IDENTIFIER (logger -t sshd), so it is used only
// when the trusted fields vouch for it: the sender runs as root (_UID 0)
// or in a system service (a _SYSTEMD_UNIT ending in .service, not a
// user's manager), and an sshd identifier needs an sshd process (_COMM or
// _EXE) or unit as well. Otherwise the line is tagged "untrusted-COMM",
// which no built-in detector reads.
func trustedIdent(e *journalEntry) string {
	ident := e.Identifier
	if ident == "" {
		ident = e.Comm
	}
	privileged := e.UID == "0" ||
		strings.HasSuffix(e.Unit, ".service") && !strings.HasPrefix(e.Unit, "user@") && !strings.HasPrefix(e.Unit, "user-runtime-dir@")
	if ident != "" && privileged && (!slices.Contains(sshdNames, ident) || sshdProcess(e)) {
		return ident
	}
	comm := e.Comm
	if comm == "" {
		comm = "unknown"
	}
	return "untrusted-" + comm
}

func sshdProcess(e *journalEntry) bool {
	if slices.Contains(sshdNames, e.Comm) || slices.Contains(sshdNames, path.Base(e.Exe)) {
		return true
	}
	u := strings.TrimSuffix(e.Unit, ".service")
	return u == "ssh" || u == "sshd" || strings.HasPrefix(u, "ssh@") || strings.HasPrefix(u, "sshd@") || strings.HasPrefix(u, "sshd-session@")
}

// ReadJournal reads the output of `journalctl -o json` (one JSON object a
// line) and calls fn with each entry as a syslog line with an RFC 3339
// timestamp: "2026-11-21T05:53:09.123456Z host ident[pid]: message".
// ident is SYSLOG_IDENTIFIER only where the trusted fields vouch for it
// (see trustedIdent). Control characters of the message (newlines of
// multi-line entries) become spaces, so one entry is one line. Entries
// that make no line (not JSON, no usable MESSAGE) are skipped, counted in
// bad and reported to o.OnBad; messages longer than o.MaxLine are dropped
// (o.OnLong is called) and counted in bad too.
func ReadJournal(r io.Reader, o Options, fn func([]byte)) (bad int, err error) {
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var line []byte
	for sc.Scan() {
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			bad++
			if o.OnBad != nil {
				o.OnBad()
			}
			continue
		}
		msg, ok := journalMessage(e.Message)
		if !ok {
			bad++
			if o.OnBad != nil {
				o.OnBad()
			}
			continue
		}
		if len(msg) > o.MaxLine {
			bad++
			if o.OnLong != nil {
				o.OnLong()
			}
			continue
		}
		line = appendJournalLine(line[:0], &e, msg)
		fn(line)
	}
	if err := sc.Err(); err != nil {
		return bad, fmt.Errorf("reading journal entries: %w", err)
	}
	return bad, nil
}

func journalMessage(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var bs []byte
	var nums []int
	if err := json.Unmarshal(raw, &nums); err != nil {
		return "", false
	}
	for _, n := range nums {
		if n < 0 || n > 255 {
			return "", false
		}
		bs = append(bs, byte(n))
	}
	return string(bs), true
}

func appendJournalLine(b []byte, e *journalEntry, msg string) []byte {
	t := time.Now()
	if us, err := strconv.ParseInt(e.Realtime, 10, 64); err == nil {
		t = time.UnixMicro(us)
	}
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, ' ')
	host := e.Hostname
	if host == "" {
		host = "localhost"
	}
	b = appendToken(b, host)
	b = append(b, ' ')
	b = appendToken(b, trustedIdent(e))
	pid := e.SyslogPID
	if pid == "" {
		pid = e.PID
	}
	if pid != "" {
		b = append(b, '[')
		b = appendToken(b, pid)
		b = append(b, ']')
	}
	b = append(b, ": "...)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// appendToken appends s with the characters that would break the syslog
// header (spaces, colons, brackets, control characters) replaced by '_'.
func appendToken(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == ':' || c == '[' || c == ']' || c == 0x7f {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// Journal runs `journalctl -f -o json` (with -n 0, or -b --no-tail with
// o.FromStart) until ctx is done and hands every entry to fn as
// ReadJournal does. With o.JournalDirectory it reads that directory's
// journal files (--directory), all of them with o.FromStart. It returns
// nil when ctx ends it.
func Journal(ctx context.Context, o Options, fn func([]byte)) error {
	args := journalArgs(o)
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("starting journalctl: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting journalctl: %w", err)
	}
	_, rerr := ReadJournal(out, o, fn)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return nil
	}
	if rerr != nil {
		return rerr
	}
	if werr != nil {
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			return fmt.Errorf("journalctl exited: %w: %s", werr, strings.TrimSpace(stderr.String()))
		}
		return fmt.Errorf("running journalctl: %w", werr)
	}
	return fmt.Errorf("journalctl ended: %s", strings.TrimSpace(stderr.String()))
}

// journalArgs returns journalctl's arguments for o.
func journalArgs(o Options) []string {
	args := []string{"-f", "-o", "json", "--no-pager"}
	if !o.FromStart {
		args = append(args, "-n", "0")
	} else {
		// -f alone starts with the last 10 entries
		args = append(args, "--no-tail")
	}
	if o.JournalDirectory != "" {
		// "--directory=DIR": a directory named like an option stays a
		// directory. Its journal may come from other machines and boots,
		// so from the start means all of it, not this boot.
		return append(args, "--directory="+o.JournalDirectory)
	}
	if o.FromStart {
		args = append(args, "-b")
	}
	return args
}
