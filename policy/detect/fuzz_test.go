package detect

import (
	"bufio"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/banshee-project/banshee/policy"
)

// The fuzz tests check the one property that matters against log
// injection: any address a detector returns is the one at the position the
// format fixes. Each re-derives that position independently, with an
// anchored reference expression (or plain string functions) over the same
// message, and compares.

// seedMessages adds the messages (after "prog[pid]: ") or whole lines of a
// corpus file as seeds.
func seedMessages(f *testing.F, file string, whole bool) {
	fh, err := os.Open("testdata/" + file)
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		_, line, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		if whole {
			f.Add(line)
			continue
		}
		if i := strings.Index(line, "]: "); i >= 0 {
			f.Add(line[i+3:])
		} else if i := strings.Index(line, ": "); i >= 0 {
			f.Add(line[i+2:])
		}
	}
}

// checkRef fails unless one of refs matches msg with its first group
// parsing to got.
func checkRef(t *testing.T, msg string, got netip.Addr, refs []*regexp.Regexp) {
	t.Helper()
	for _, re := range refs {
		if sm := re.FindStringSubmatch(msg); sm != nil {
			if a, err := netip.ParseAddr(sm[1]); err == nil && a.WithZone("").Unmap() == got {
				return
			}
			t.Fatalf("returned %v, but the fixed position holds %q\nmsg: %q", got, sm[1], msg)
		}
	}
	t.Fatalf("returned %v from a message no reference form matches\nmsg: %q", got, msg)
}

var repeated = regexp.MustCompile(`(?s)^message repeated [1-9][0-9]* times: \[ (.*)\]$`)

func unwrapRef(msg string) string {
	if sm := repeated.FindStringSubmatch(msg); sm != nil {
		return sm[1]
	}
	return msg
}

func fuzzLine(f *testing.F, prog string, refs []*regexp.Regexp, accept func(name string) bool) {
	m, err := New(policy.WatchConfig{}, fixedNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if strings.ContainsAny(msg, "\r\n") {
			return // one line is one record; readers split on newlines
		}
		got, ok := m.Match([]byte("Nov 21 05:53:09 host " + prog + ": " + msg))
		if !ok {
			return
		}
		if name := m.Detectors()[got.Detector].Name; !accept(name) {
			t.Fatalf("detector %s matched a %s line: %q", name, prog, msg)
		}
		checkRef(t, unwrapRef(msg), got.Addr, refs)
	})
}

// sshdForm is a reference form of an sshd message: the text before the
// address token must match head and the text after it tail, both anchored.
type sshdForm struct{ head, tail *regexp.Regexp }

func form(head, tail string) sshdForm {
	return sshdForm{regexp.MustCompile(`(?s)^(?:` + head + `)$`), regexp.MustCompile(`(?s)^(?:` + tail + `)$`)}
}

var (
	remoteID = `(?:(?:authenticating|invalid) user .* )?`
	sshdRefs = []sshdForm{
		form(`(?:\[ID \d+ [a-z]+\.[a-z]+\] )?Failed [a-z0-9@./-]+ for .* from `, ` port \d+(?: ssh[12](?:: .+)?)?`),
		form(`(?:Invalid|Illegal) user .* from `, `(?: port \d+)?`),
		form(`(?:error: )?maximum authentication attempts exceeded for .* from `, ` port \d+ ssh2(?: \[preauth\])?`),
		form(`User [^ ]+ from `, ` not allowed because .*`),
		form(`ROOT LOGIN REFUSED FROM `, ` port \d+(?: \[preauth\])?`),
		form(`error: PAM: .* for .* from `, `(?: via \S+)?`),
		form(`pam_unix\(sshd:auth\): authentication failure; logname=[^ ]* uid=\d+ euid=\d+ tty=[^ ]* ruser=[^ ]* rhost=`, `(?:  ?user=.*)?`),
		form(`(?:Disconnected from|Connection closed by|Connection reset by) `+remoteID, ` port \d+ \[preauth\]`),
		form(`Disconnecting `+remoteID, ` port \d+: .*`),
		form(`Received disconnect from `+remoteID, `(?: port \d+)?: ?(?:14|3): .* \[preauth\]`),
		form(`Did not receive identification string from `, `(?: port \d+)?`),
		form(`Bad protocol version identification .* from `, ` port \d+`),
		form(`banner exchange: Connection from `, ` port \d+: .*`),
		form(`Timeout before authentication for `, ` port \d+`),
		form(`Unable to negotiate with `, ` port \d+: no matching .*`),
	}
)

var validUser = regexp.MustCompile(`^(?:\[ID \d+ [a-z]+\.[a-z]+\] )?(?:Failed [a-z0-9@./-]+|(?:error: )?maximum authentication attempts exceeded) for [^ ]+ from (\S+) port \d+ ssh2`)

// sshdReadings returns every address some reference form reads in msg:
// each token that parses as an address, with the text around it fitting
// one form.
func sshdReadings(msg string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for i := 0; i < len(msg); i++ {
		if i > 0 && msg[i-1] != ' ' && msg[i-1] != '=' {
			continue
		}
		for e := i + 1; e <= len(msg) && e <= i+62; e++ {
			tok := msg[i:e]
			a, err := netip.ParseAddr(tok)
			if err != nil {
				continue
			}
			for _, f := range sshdRefs {
				if f.head.MatchString(msg[:i]) && f.tail.MatchString(msg[e:]) {
					out[a.WithZone("").Unmap()] = true
				}
			}
		}
	}
	return out
}

// FuzzSSHD checks the property against injection for sshd: an address is
// returned only when every reading of the message any reference form
// allows names that same address.
func FuzzSSHD(f *testing.F) {
	seedMessages(f, "sshd.txt", false)
	m, err := New(policy.WatchConfig{}, fixedNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if strings.ContainsAny(msg, "\r\n") || len(msg) > 400 {
			return
		}
		got, ok := m.Match([]byte("Nov 21 05:53:09 host sshd[1]: " + msg))
		if !ok {
			return
		}
		if n := m.Detectors()[got.Detector].Name; n != SSHD {
			t.Fatalf("detector %s matched an sshd line: %q", n, msg)
		}
		rs := sshdReadings(unwrapRef(msg))
		if len(rs) > 1 && !strings.Contains(msg, " for invalid user ") {
			// a valid account's name has no space: the reading after
			// "for NAME from" wins
			if sm := validUser.FindStringSubmatch(unwrapRef(msg)); sm != nil {
				if a, err := netip.ParseAddr(sm[1]); err == nil {
					rs = map[netip.Addr]bool{a.WithZone("").Unmap(): true}
				}
			}
		}
		if !rs[got.Addr] || len(rs) != 1 {
			t.Fatalf("returned %v, the reference readings are %v\nmsg: %q", got.Addr, rs, msg)
		}
	})
}

func FuzzDropbear(f *testing.F) {
	seedMessages(f, "dropbear.txt", false)
	refs := []*regexp.Regexp{
		regexp.MustCompile(`(?s)^(?:Bad password attempt for|Bad PAM password attempt for|Login attempt for nonexistent user) .*from (\S+):\d+$`),
		regexp.MustCompile(`(?s)^Exit before auth from <([^>]+):\d+>: `),
	}
	fuzzLine(f, "dropbear[1]", refs, func(n string) bool { return n == Dropbear })
}

func FuzzCyrus(f *testing.F) {
	seedMessages(f, "cyrus.txt", false)
	refs := []*regexp.Regexp{regexp.MustCompile(`(?s)^badlogin: (?:[A-Za-z0-9._-]+ )?\[([^\]]*)\] `)}
	fuzzLine(f, "pop3[1]", refs, func(n string) bool { return n == CyrusPOP3 })
}

func FuzzPostfix(f *testing.F) {
	seedMessages(f, "postfix.txt", false)
	refs := []*regexp.Regexp{regexp.MustCompile(`(?s)^warning: [A-Za-z0-9._-]+\[([^\]]*)\]: SASL [^ ]+ authentication failed`)}
	fuzzLine(f, "postfix/smtpd[1]", refs, func(n string) bool { return n == PostfixSASL })
}

func FuzzVSFTPD(f *testing.F) {
	seedMessages(f, "vsftpd.txt", false)
	refs := []*regexp.Regexp{regexp.MustCompile(`(?s)FAIL LOGIN: Client "([^"]*)"$`)}
	fuzzLine(f, "vsftpd[1]", refs, func(n string) bool { return n == VSFTPD })
}

func FuzzDovecot(f *testing.F) {
	seedMessages(f, "dovecot.txt", false)
	m, err := New(policy.WatchConfig{}, fixedNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if strings.ContainsAny(msg, "\r\n") {
			return
		}
		got, ok := m.Match([]byte("Nov 21 05:53:09 host dovecot: " + msg))
		if !ok {
			return
		}
		if n := m.Detectors()[got.Detector].Name; n != DovecotPOP3 && n != DovecotIMAP {
			t.Fatalf("detector %s matched %q", n, msg)
		}
		// The server writes everything before the first "user=<" and
		// everything after the last ", rip=".
		msg = unwrapRef(msg)
		head, tail, ok := strings.Cut(msg, "user=<")
		if !ok || !strings.Contains(head, "(auth failed, ") {
			t.Fatalf("matched without auth failed in the server's part: %q", msg)
		}
		parts := strings.Split(tail, ", rip=")
		if len(parts) < 2 {
			t.Fatalf("matched without rip after the user: %q", msg)
		}
		field, _, _ := strings.Cut(parts[len(parts)-1], ",")
		if a, err := netip.ParseAddr(field); err != nil || a.Unmap() != got.Addr {
			t.Fatalf("returned %v, last rip field is %q: %q", got.Addr, field, msg)
		}
	})
}

func FuzzHTTP(f *testing.F) {
	seedMessages(f, "http.txt", true)
	m, err := New(policy.WatchConfig{}, fixedNow)
	if err != nil {
		f.Fatal(err)
	}
	ref := regexp.MustCompile(`(?s)^([^ ]+) .*?\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "(?:[^"\\]|\\.)*" (40[14])(?: |$)`)
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") {
			return
		}
		got, ok := m.Match([]byte(line))
		if !ok {
			return
		}
		if n := m.Detectors()[got.Detector].Name; n != HTTPAuth && n != HTTPScan && n != VSFTPD {
			t.Fatalf("detector %s matched %q", n, line)
		}
		if m.Detectors()[got.Detector].Name == VSFTPD {
			checkRef(t, line, got.Addr, []*regexp.Regexp{regexp.MustCompile(`(?s)FAIL LOGIN: Client "([^"]*)"$`)})
			return
		}
		// nginx may log through syslog: the combined line is the message
		var r Record
		NewParser(fixedNow, nil).Parse([]byte(line), &r)
		if r.Program != nil {
			line = string(r.Msg)
		}
		first, _, _ := strings.Cut(line, " ")
		if a, err := netip.ParseAddr(first); err != nil || a.Unmap() != got.Addr {
			t.Fatalf("returned %v, first field is %q: %q", got.Addr, first, line)
		}
		if ref.FindStringSubmatch(line) == nil {
			t.Fatalf("matched a line with no 401/404 after the request: %q", line)
		}
	})
}
