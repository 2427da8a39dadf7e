// Package journaltest writes real systemd journal files for tests, with
// systemd-journal-remote and no running journald: the tests of logsource
// and of watch read them through the real journalctl.
package journaltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Remote returns the path of systemd-journal-remote, which writes journal
// files from the journal export format, or skips the test with a message
// when it or journalctl is not installed.
func Remote(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed")
	}
	for _, p := range []string{"/usr/lib/systemd/systemd-journal-remote", "/lib/systemd/systemd-journal-remote"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("systemd-journal-remote"); err == nil {
		return p
	}
	t.Skip("systemd-journal-remote not installed (Debian package systemd-journal-remote)")
	return ""
}

// Entry writes one entry in the journal export format (systemd's
// JOURNAL_EXPORT_FORMATS): KEY=VALUE lines, and a value holding a newline
// as KEY, a newline, its length as 64-bit little endian, the bytes and a
// newline; a blank line ends the entry.
func Entry(b *bytes.Buffer, fields [][2]string) {
	for _, f := range fields {
		if !strings.Contains(f[1], "\n") {
			fmt.Fprintf(b, "%s=%s\n", f[0], f[1])
			continue
		}
		b.WriteString(f[0] + "\n")
		_ = binary.Write(b, binary.LittleEndian, uint64(len(f[1])))
		b.WriteString(f[1] + "\n")
	}
	b.WriteString("\n")
}
