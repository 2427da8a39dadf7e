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
	fuzzMatched(f, prog, func(t *testing.T, msg, name string, got Match) {
		if !accept(name) {
			t.Fatalf("detector %s matched a %s line: %q", name, prog, msg)
		}
		checkRef(t, unwrapRef(msg), got.Addr, refs)
	})
}

// fuzzMatched fuzzes one-line messages of prog and hands check every match
// that is not a PAM line's (checkPAMLine has checked those), with the name
// of the detector that matched.
func fuzzMatched(f *testing.F, prog string, check func(t *testing.T, msg, name string, got Match)) {
	fuzzProg(f, prog, 0, func(t *testing.T, m *Matcher, msg string, got Match) {
		if checkPAMLine(t, m, msg, got) {
			return
		}
		check(t, msg, m.Detectors()[got.Detector].Name, got)
	})
}

// fuzzProg fuzzes one-line messages of prog (at most maxLen bytes, 0: any
// length) and hands check every message a detector matched.
func fuzzProg(f *testing.F, prog string, maxLen int, check func(t *testing.T, m *Matcher, msg string, got Match)) {
	m, err := New(policy.WatchConfig{}, fixedNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if strings.ContainsAny(msg, "\r\n") || maxLen > 0 && len(msg) > maxLen {
			return // one line is one record; readers split on newlines
		}
		got, ok := m.Match([]byte("Nov 21 05:53:09 host " + prog + ": " + msg))
		if !ok {
			return
		}
		check(t, m, msg, got)
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
		form(`(?:\[ID \d+ [a-z]+\.[a-z]+\] )?Failed [a-z0-9@./-]+ for .* from `, ` port \d+(?: ssh2(?:: .+)?| ssh1)?`),
		form(`(?:Invalid|Illegal) user .* from `, `(?: port \d+)?`),
		form(`(?:error: )?maximum authentication attempts exceeded for .* from `, ` port \d+ ssh2(?: \[preauth\])?`),
		form(`User [^ ]+ from `, ` not allowed because .*`),
		form(`ROOT LOGIN REFUSED FROM `, ` port \d+(?: \[preauth\])?`),
		form(`error: PAM: .* for .* from `, `(?: via \S+)?`),
		form(`(?:Disconnected from|Connection closed by|Connection reset by) `+remoteID, ` port \d+ \[preauth\]`),
		form(`Disconnecting `+remoteID, ` port \d+: .*`),
		form(`(?:error: )?Received disconnect from `+remoteID, `(?: port \d+)?: ?(?:14|3): (?:.* )?\[preauth\]`),
		form(`Did not receive identification string from `, `(?: port \d+)?`),
		form(`Bad protocol version identification .* from `, ` port \d+`),
		form(`banner exchange: Connection from `, ` port \d+: .*`),
		form(`Timeout before authentication for `, ` port \d+`),
		form(`Unable to negotiate with `, ` port \d+: no matching .*`),
	}
)

var validUser = regexp.MustCompile(`^(?:\[ID \d+ [a-z]+\.[a-z]+\] )?(?:Failed [a-z0-9@./-]+|(?:error: )?maximum authentication attempts exceeded) for [^ ]+ from (\S+) port \d+ ssh2`)

var zoneChars = regexp.MustCompile(`^[A-Za-z0-9._-]{1,15}$`)

// zoneOK: an interface name as the kernel allows it (IFNAMSIZ 16).
func zoneOK(z string) bool { return z == "" || zoneChars.MatchString(z) }

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
			if err != nil || !zoneOK(a.Zone()) {
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
	fuzzProg(f, "sshd[1]", 400, func(t *testing.T, m *Matcher, msg string, got Match) {
		if n := m.Detectors()[got.Detector].Name; n != SSHD {
			t.Fatalf("detector %s matched an sshd line: %q", n, msg)
		}
		if inner := unwrapRef(msg); strings.HasPrefix(inner, "pam_unix(") || strings.HasPrefix(inner, "pam_sss(") {
			checkPAM(t, inner, got.Addr)
			return
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
	refs := []*regexp.Regexp{
		regexp.MustCompile(`(?s)^badlogin: (?:[A-Za-z0-9._-]+ )?\[([^\]]*)\] `),
		regexp.MustCompile(`(?s)^LOGIN FAILED, user=.*, ip=\[([^\]]*)\]$`), // Courier's pop3d shares the name
	}
	fuzzLine(f, "pop3[1]", refs, func(n string) bool { return n == CyrusPOP3 || n == Courier })
}

func FuzzPostfix(f *testing.F) {
	seedMessages(f, "postfix.txt", false)
	refs := []*regexp.Regexp{
		regexp.MustCompile(`(?s)^warning: [A-Za-z0-9._-]+\[([^\]]*)\]: SASL [^ ]+ authentication failed`),
		regexp.MustCompile(`(?s)^[A-Za-z0-9]+: reject: RCPT from [A-Za-z0-9._-]+\[([^\]]*)\]: 554 5\.7\.1 <.*>: Relay access denied;`),
		regexp.MustCompile(`(?s)^lost connection after AUTH from [A-Za-z0-9._-]+\[([^\]]*)\]$`),
	}
	fuzzLine(f, "postfix/smtpd[1]", refs, func(n string) bool { return n == PostfixSASL || n == PostfixRelay })
}

func FuzzVSFTPD(f *testing.F) {
	seedMessages(f, "vsftpd.txt", false)
	ref := regexp.MustCompile(`(?s)FAIL LOGIN: Client "([^"]*)"$`)
	fuzzLine(f, "vsftpd[1]", []*regexp.Regexp{ref}, func(n string) bool { return n == VSFTPD })
}

func FuzzDovecot(f *testing.F) {
	seedMessages(f, "dovecot.txt", false)
	fuzzMatched(f, "dovecot", func(t *testing.T, msg, n string, got Match) {
		if n == DovecotAuth {
			// PASSDB(USER,RIP[,<SESSION>]): the rip is the field before
			// the server's session id, or the last one
			checkRef(t, msg, got.Addr, dovecotAuthRefs)
			return
		}
		if n != DovecotPOP3 && n != DovecotIMAP && n != DovecotSieve && n != DovecotSubmission {
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

var dovecotAuthRefs = []*regexp.Regexp{
	regexp.MustCompile(`(?s)^auth(?:-worker\(\d+\))?: (?:(?:Info|Error|Warning): )?[^(]*\(.*,([^,]*),<[^>]*>\): (?:pam_authenticate\(\) failed: .*|Password mismatch.*|unknown user.*)$`),
	regexp.MustCompile(`(?s)^auth(?:-worker\(\d+\))?: (?:(?:Info|Error|Warning): )?[^(]*\(.*,([^,]*)\): (?:pam_authenticate\(\) failed: .*|Password mismatch.*|unknown user.*)$`),
}

// httpErrorRefs are the error log forms: the address is the one in
// Apache's "[client ADDR:PORT]" before the AH code, or the one after
// nginx's ", client: " that follows its fixed message.
var httpErrorRefs = []*regexp.Regexp{
	regexp.MustCompile(`(?s)^\[[^\]]*\] \[[^\]]*\] \[[^\]]*\] \[client ([^\]]*):\d+\] AH0161[4578]: `),
	regexp.MustCompile(`(?s)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[^\]]*\] [^:]*#[^:]*: (?:\*\d+ )?no user/password was provided for basic authentication, client: ([^,]*)(?:, server: .*)?$`),
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
		// nginx may log through syslog: the line is the message
		var rec Record
		NewParser(fixedNow, nil).Parse([]byte(line), &rec)
		if rec.Program != nil {
			line = string(rec.Msg)
		}
		if len(line) > 0 && line[0] == '[' || len(line) > 4 && line[4] == '/' {
			if strings.Contains(line, `": password mismatch, client: `) || strings.Contains(line, `" was not found in "`) {
				// user forms: every reading must name the address returned
				rs := nginxReadings(line)
				if !rs[got.Addr] || len(rs) != 1 {
					t.Fatalf("returned %v, readings %v: %q", got.Addr, rs, line)
				}
				return
			}
			checkRef(t, line, got.Addr, httpErrorRefs)
			return
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

var nginxUserHead = regexp.MustCompile(`(?s)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[^\]]*\] [^:]*#[^:]*: (?:\*\d+ )?user ".*(?:": password mismatch|" was not found in ".*")$`)

// nginxReadings returns the address after every ", client: " whose
// preceding text is a user form and that is followed by ", server: " or
// the end.
func nginxReadings(line string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for i := 0; ; {
		j := strings.Index(line[i:], ", client: ")
		if j < 0 {
			return out
		}
		at := i + j
		i = at + 1
		if !nginxUserHead.MatchString(line[:at]) {
			continue
		}
		rest := line[at+len(", client: "):]
		field, after, found := strings.Cut(rest, ",")
		if found && !strings.HasPrefix(","+after, ", server: ") {
			continue
		}
		if a, err := netip.ParseAddr(field); err == nil {
			out[a.WithZone("").Unmap()] = true
		}
	}
}

func FuzzCourier(f *testing.F) {
	seedMessages(f, "courier.txt", false)
	refs := []*regexp.Regexp{
		regexp.MustCompile(`(?s)^badlogin: (?:[A-Za-z0-9._-]+ )?\[([^\]]*)\] `),
		regexp.MustCompile(`(?s)^LOGIN FAILED, user=.*, ip=\[([^\]]*)\]$`),
	}
	fuzzLine(f, "imapd[1]", refs, func(n string) bool { return n == Courier || n == CyrusIMAP })
}

func FuzzProFTPD(f *testing.F) {
	seedMessages(f, "proftpd.txt", false)
	refs := []*regexp.Regexp{regexp.MustCompile(`(?s)^[^ ()]+ \([A-Za-z0-9._:-]+\[([^\]]*)\]\) - (?:USER .*(?:: no such user found from |\(Login failed\): ).*|Maximum login attempts \(.*\) exceeded)$`)}
	fuzzLine(f, "proftpd[1]", refs, func(n string) bool { return n == ProFTPD })
}

func FuzzPureFTPd(f *testing.F) {
	seedMessages(f, "pure-ftpd.txt", false)
	refs := []*regexp.Regexp{regexp.MustCompile(`(?s)^\(\?@([^)]*)\) \[WARNING\] Authentication failed for user \[`)}
	fuzzLine(f, "pure-ftpd", refs, func(n string) bool { return n == PureFTPd })
}

var eximReading = regexp.MustCompile(`(?:^| )\[([^\]]*)\]:\d+: 535 `)

// FuzzExim: an address is returned only when every "[ADDR]:PORT: 535 "
// after "authenticator failed for " names it.
func FuzzExim(f *testing.F) {
	seedMessages(f, "exim.txt", false)
	fuzzProg(f, "exim[1]", 0, func(t *testing.T, m *Matcher, msg string, got Match) {
		_, after, found := strings.Cut(msg, " authenticator failed for ")
		if !found {
			t.Fatalf("matched without the fixed text: %q", msg)
		}
		seen := map[netip.Addr]bool{}
		// every position, overlapping ones included
		for i := 0; i < len(after); i++ {
			if sm := eximReading.FindStringSubmatch(after[i:]); sm != nil && strings.HasPrefix(after[i:], sm[0]) && (i == 0 || sm[0][0] == ' ' || after[i-1] == ' ') {
				if a, err := netip.ParseAddr(sm[1]); err == nil {
					seen[a.WithZone("").Unmap()] = true
				}
			}
		}
		if !seen[got.Addr] || len(seen) != 1 {
			t.Fatalf("returned %v, readings %v: %q", got.Addr, seen, msg)
		}
	})
}

var pamHead = regexp.MustCompile(`^pam_(?:unix|sss)\([A-Za-z0-9._-]+:auth\): authentication failure; logname=[^ ]* uid=\d+ euid=\d+ tty=[^ ]* ruser=`)

// pamHosts returns the rhost values every reading of a pam_unix failure
// line allows (Linux-PAM support.c: "… ruser=%s rhost=%s %s%s", the last
// two " user=" and the name): with an empty ruser the one after it, else
// each " rhost=HOST" that ends the message or is followed by " " alone or
// " user=" after one or two spaces.
func pamHosts(msg string) []string {
	loc := pamHead.FindStringIndex(msg)
	if loc == nil {
		return nil
	}
	rest := msg[loc[1]:]
	read := func(at int) (string, bool) {
		h := rest[at+len(" rhost="):]
		host, tail := h, ""
		if sp := strings.IndexByte(h, ' '); sp >= 0 {
			host, tail = h[:sp], h[sp:]
		}
		return host, tail == "" || tail == " " || strings.HasPrefix(tail, " user=") || strings.HasPrefix(tail, "  user=")
	}
	if strings.HasPrefix(rest, " rhost=") {
		if h, ok := read(0); ok {
			return []string{h}
		}
		return nil
	}
	var hosts []string
	for i := range rest {
		if strings.HasPrefix(rest[i:], " rhost=") {
			if h, ok := read(i); ok {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// checkPAM fails unless every reading of msg names got.
func checkPAM(t *testing.T, msg string, got netip.Addr) {
	t.Helper()
	hosts := pamHosts(msg)
	if len(hosts) == 0 {
		t.Fatalf("returned %v from a message no pam_unix reading fits: %q", got, msg)
	}
	for _, h := range hosts {
		a, err := netip.ParseAddr(h)
		if err != nil || !zoneOK(a.Zone()) || a.WithZone("").Unmap() != got {
			t.Fatalf("returned %v, a reading names %q: %q", got, h, msg)
		}
	}
}

// checkPAMLine checks a match of a pam_unix line (the message after the
// tag, possibly repeated) and reports whether it was one: the detector is
// the one its PAM service names, the address the one every reading names.
func checkPAMLine(t *testing.T, m *Matcher, msg string, got Match) bool {
	t.Helper()
	inner := unwrapRef(msg)
	if !strings.HasPrefix(inner, "pam_unix(") && !strings.HasPrefix(inner, "pam_sss(") {
		return false
	}
	_, svc, _ := strings.Cut(inner, "(")
	svc, _, _ = strings.Cut(svc, ":")
	if id, ok := pamServices[svc]; !ok || id != got.Detector {
		t.Fatalf("service %q counted for %s: %q", svc, m.Detectors()[got.Detector].Name, msg)
	}
	checkPAM(t, inner, got.Addr)
	return true
}

// FuzzPAM: a pam_unix failure line of any program but sshd counts for the
// daemon its PAM service names, with the address every reading names.
func FuzzPAM(f *testing.F) {
	seedMessages(f, "dovecot.txt", false)
	seedMessages(f, "vsftpd.txt", false)
	fuzzProg(f, "auth[1]", 400, func(t *testing.T, m *Matcher, msg string, got Match) {
		if !checkPAMLine(t, m, msg, got) {
			t.Fatalf("program auth matched a message that is no pam_unix line: %q", msg)
		}
	})
}
