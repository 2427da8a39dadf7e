package detect

import (
	"bufio"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// fixedNow is the reference time of the corpus: syslog lines of Nov 21 are
// in the past.
func fixedNow() time.Time { return time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC) }

func newTestMatcher(t testing.TB, cfg policy.WatchConfig) *Matcher {
	t.Helper()
	m, err := New(cfg, fixedNow)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// TestCorpus runs every testdata/<detector>.txt file: each line is
// "EXPECTED<TAB>LOG LINE", EXPECTED being "-" (no match), "ADDR" or
// "ADDR*COUNT". A match must come from a detector whose name starts with
// the file's name.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	m := newTestMatcher(t, policy.WatchConfig{})
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(base, func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			sc := bufio.NewScanner(fh)
			n, hostile := 0, 0
			for ln := 1; sc.Scan(); ln++ {
				text := sc.Text()
				if text == "" || strings.HasPrefix(text, "#") {
					continue
				}
				want, line, ok := strings.Cut(text, "\t")
				if !ok {
					t.Fatalf("%s:%d: no tab", f, ln)
				}
				n++
				if strings.Contains(line, "10.0.0.1") {
					hostile++
				}
				got, matched := m.Match([]byte(line))
				if want == "-" {
					if matched {
						t.Errorf("%s:%d: matched %s %v, want no match\n%s", f, ln, m.Detectors()[got.Detector].Name, got.Addr, line)
					}
					continue
				}
				wantAddr, wantCount := want, 0
				if a, c, ok := strings.Cut(want, "*"); ok {
					wantAddr = a
					wantCount, _ = strconv.Atoi(c)
				}
				if !matched {
					t.Errorf("%s:%d: no match, want %s\n%s", f, ln, want, line)
					continue
				}
				if got.Addr != netip.MustParseAddr(wantAddr) {
					t.Errorf("%s:%d: addr %v, want %s\n%s", f, ln, got.Addr, wantAddr, line)
				}
				if wantCount > 0 && got.Count != wantCount {
					t.Errorf("%s:%d: count %d, want %d", f, ln, got.Count, wantCount)
				}
				name := m.Detectors()[got.Detector].Name
				if !strings.HasPrefix(name, base) {
					t.Errorf("%s:%d: detector %s, want %s*", f, ln, name, base)
				}
				if got.Time.IsZero() {
					t.Errorf("%s:%d: no timestamp", f, ln)
				}
				if got.Port.Proto != "tcp" || got.Port.From == 0 {
					t.Errorf("%s:%d: port %+v", f, ln, got.Port)
				}
				if strings.Contains(line, "10.0.0.1") && got.Addr == netip.MustParseAddr("10.0.0.1") {
					t.Errorf("%s:%d: injected address returned", f, ln)
				}
			}
			if n < 5 || hostile == 0 {
				t.Errorf("%s: %d cases, %d hostile: corpus too small", f, n, hostile)
			}
		})
	}
}

func TestPorts(t *testing.T) {
	m := newTestMatcher(t, policy.WatchConfig{})
	cases := map[string]policy.Port{
		`Nov 21 05:53:09 mail pop3[1]: badlogin: [203.0.113.9] PLAIN a SASL(-13): x`:                                                                            tcp(110),
		`Nov 21 05:53:09 mail pop3s[1]: badlogin: [203.0.113.9] PLAIN a SASL(-13): x`:                                                                           tcp(995),
		`Nov 21 05:53:09 mail imaps[1]: badlogin: [203.0.113.9] PLAIN a SASL(-13): x`:                                                                           tcp(993),
		`Nov 21 05:53:09 mail postfix/submission/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x`:                                    tcp(587),
		`Nov 21 05:53:09 mail postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x`:                                               tcp(25),
		`Nov 21 05:53:09 h sshd[1]: Invalid user a from 192.0.2.1`:                                                                                              tcp(22),
		`Nov 21 05:53:09 mail sieve[1]: badlogin: [203.0.113.9] PLAIN authentication failure`:                                                                   tcp(4190),
		`Nov 21 05:53:09 mail dovecot: submission-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<a>, method=PLAIN, rip=192.0.2.1, lip=10.0.0.5`: tcp(587),
		`Nov 21 05:53:09 ftp vsftpd[1]: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=a rhost=192.0.2.1  user=a`:           tcp(21),
	}
	for line, want := range cases {
		got, ok := m.Match([]byte(line))
		if !ok || got.Port != want {
			t.Errorf("%s: port %+v (matched %v), want %+v", line, got.Port, ok, want)
		}
	}
}

func TestTimestamps(t *testing.T) {
	p := NewParser(fixedNow, time.UTC)
	cases := []struct {
		line string
		want time.Time
	}{
		{"Nov 21 05:53:09 h sshd[1]: x", time.Date(2026, 11, 21, 5, 53, 9, 0, time.UTC)},
		{"Dec 31 23:59:59 h sshd[1]: x", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)}, // a month ahead: last year
		{"Dec  1 00:00:01 h sshd[1]: x", time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC)},
		{"2026-11-21T05:53:09.123456+02:00 h sshd[1]: x", time.Date(2026, 11, 21, 3, 53, 9, 123456000, time.UTC)},
		{"2026-11-21T05:53:09Z h sshd[1]: x", time.Date(2026, 11, 21, 5, 53, 9, 0, time.UTC)},
		{"2024-02-29T00:00:00-01:30 h sshd[1]: x", time.Date(2024, 2, 29, 1, 30, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		var r Record
		p.Parse([]byte(c.line), &r)
		if !r.Time.Equal(c.want) {
			t.Errorf("%q: %v, want %v", c.line, r.Time.UTC(), c.want)
		}
		if string(r.Program) != "sshd" || string(r.Msg) != "x" || string(r.Host) != "h" {
			t.Errorf("%q: program %q host %q msg %q", c.line, r.Program, r.Host, r.Msg)
		}
	}
	tt, ok := parseCLFTime([]byte("21/Nov/2026:05:53:09 -0130"))
	if !ok || !tt.Equal(time.Date(2026, 11, 21, 7, 23, 9, 0, time.UTC)) {
		t.Errorf("clf: %v %v", tt.UTC(), ok)
	}
	for _, bad := range []string{"Foo 21 05:53:09 h p: x", "2026-13-21T05:53:09Z h p: x", "2026-11-21T05:53:09 h p: x"} {
		var r Record
		p.Parse([]byte(bad), &r)
		if !r.Time.IsZero() || r.Program != nil {
			t.Errorf("%q: parsed %v %q", bad, r.Time, r.Program)
		}
	}
}

func TestUserDetectors(t *testing.T) {
	cfg := policy.WatchConfig{MaxRetry: 3, Detectors: []policy.DetectorConfig{
		{Name: "myapp", Pattern: `^myapp\[\d+\]: login failed from (?P<addr>\S+)$`, Port: "8443/tcp", MaxRetry: 2},
		{Name: "sshd", MaxRetry: 9, Port: "2222/tcp"},
	}}
	m := newTestMatcher(t, cfg)
	got, ok := m.Match([]byte("Nov 21 05:53:09 h myapp[7]: login failed from 2001:db8::9"))
	if !ok || got.Addr != netip.MustParseAddr("2001:db8::9") || got.Port != tcp(8443) {
		t.Fatalf("user detector: %+v %v", got, ok)
	}
	d := m.Detectors()[got.Detector]
	if d.Name != "myapp" || d.MaxRetry != 2 || d.FindTime != 10*time.Minute {
		t.Errorf("detector %+v", d)
	}
	if _, ok := m.Match([]byte("Nov 21 05:53:09 h myapp[7]: login failed from evil.example")); ok {
		t.Error("a host name in the addr group matched")
	}
	sshdDet := m.Detectors()[idSSHD]
	if sshdDet.MaxRetry != 9 || sshdDet.Port != tcp(2222) {
		t.Errorf("tuned sshd %+v", sshdDet)
	}
	if m.Detectors()[idCyrusPOP3].MaxRetry != 3 {
		t.Errorf("watch max_retry not applied: %+v", m.Detectors()[idCyrusPOP3])
	}

	bad := []struct {
		dc   policy.DetectorConfig
		says string
	}{
		{policy.DetectorConfig{Name: "x", Pattern: `^from (\S+)$`}, "exactly one group named addr"},
		{policy.DetectorConfig{Name: "x", Pattern: `^from (?P<addr>\S+) to (?P<addr>\S+)$`}, "exactly one group named addr"},
		{policy.DetectorConfig{Name: "x", Pattern: `^(?P<addr>[$`}, "bad pattern"},
		{policy.DetectorConfig{Name: "", Pattern: `^(?P<addr>\S+)$`}, "needs a name"},
		{policy.DetectorConfig{Name: "x"}, "no pattern given"},
		{policy.DetectorConfig{Name: "sshd", Pattern: `^(?P<addr>\S+)$`}, "duplicate detector name"},
		{policy.DetectorConfig{Name: "x", Pattern: `^(?P<addr>\S+)$`, Port: "80/icmp"}, "icmp"},
		{policy.DetectorConfig{Name: "bad name\n", Pattern: `^(?P<addr>\S+)$`}, "a name is 1 to 64"},
		// unanchored, at either end or in one branch
		{policy.DetectorConfig{Name: "x", Pattern: `login failed from (?P<addr>\S+)$`}, "anchored at both ends"},
		{policy.DetectorConfig{Name: "x", Pattern: `^login failed from (?P<addr>\S+)`}, "anchored at both ends"},
		{policy.DetectorConfig{Name: "x", Pattern: `^a (?P<addr>\S+)$|b (?P<x>\S+)$`}, "anchored at both ends"},
		{policy.DetectorConfig{Name: "x", Pattern: `(?m)^login failed from (?P<addr>\S+)$`}, "anchored at both ends"},
		{policy.DetectorConfig{Name: "x", Pattern: `^?login failed from (?P<addr>\S+)$`}, "anchored at both ends"},
	}
	for _, c := range bad {
		_, err := New(policy.WatchConfig{Detectors: []policy.DetectorConfig{c.dc}}, fixedNow)
		var ie *policy.InputError
		if err == nil || !asInputError(err, &ie) {
			t.Errorf("%+v: error %v, want an InputError", c.dc, err)
			continue
		}
		if !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %q, want one line saying %q", c.dc, err, c.says)
		}
	}
	// anchored forms: \A and \z, a group around the whole, branches
	// anchored each
	for _, p := range []string{`\Aa (?P<addr>\S+)\z`, `(^a (?P<addr>\S+)$)`, `^(?:a (?P<addr>\S+)|b (?P<y>\S+) c)$`, `^a (?P<addr>\S+)$|^b$`} {
		if _, err := New(policy.WatchConfig{Detectors: []policy.DetectorConfig{{Name: "x", Pattern: p}}}, fixedNow); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func asInputError(err error, ie **policy.InputError) bool {
	e, ok := err.(*policy.InputError)
	*ie = e
	return ok
}

func TestParseAddr(t *testing.T) {
	for _, s := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::ffff:1.2.3.4", "::1", "fe80::1%eth0"} {
		a, ok := parseAddr([]byte(s))
		want := netip.MustParseAddr(s).WithZone("").Unmap()
		if !ok || a != want {
			t.Errorf("%s: %v %v", s, a, ok)
		}
	}
	for _, s := range []string{"", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "1..2.3", "fe80::1%", "fe80::1%a b", "1.2.3.4%eth0", "[::1]", "1.2.3.4 ", "x"} {
		if a, ok := parseAddr([]byte(s)); ok {
			t.Errorf("%q: accepted as %v", s, a)
		}
	}
}
