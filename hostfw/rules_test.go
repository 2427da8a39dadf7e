package hostfw

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSetAddLineQuotesHostileReasons(t *testing.T) {
	p := netip.MustParsePrefix("203.0.113.7/32")
	for _, tc := range []struct {
		reason, want string
	}{
		{"pop3 bruteforce", `add banshee4 203.0.113.7 timeout 3600 comment "[cli] pop3 bruteforce"` + "\n"},
		{`say "hi"`, `add banshee4 203.0.113.7 timeout 3600 comment "[cli] say 'hi'"` + "\n"},
		{`back\slash ü`, `add banshee4 203.0.113.7 timeout 3600 comment "[cli] back\slash ü"` + "\n"},
		{"x\nadd banshee4 0.0.0.0/1", `add banshee4 203.0.113.7 timeout 3600 comment "[cli] x add banshee4 0.0.0.0/1"` + "\n"},
	} {
		got := string(appendSetAdd(nil, "banshee4", Entry{Prefix: p, TTL: time.Hour, Reason: tc.reason, Origin: "cli"}))
		if got != tc.want {
			t.Errorf("reason %q:\n got %q\nwant %q", tc.reason, got, tc.want)
		}
		if strings.Count(got, "\n") != 1 {
			t.Errorf("reason %q produced %d lines", tc.reason, strings.Count(got, "\n"))
		}
	}
	long := strings.Repeat("é", 300)
	c := setComment("", long)
	if len(c) > maxComment || !strings.HasPrefix(long, c) {
		t.Errorf("long comment cut wrong: %d bytes", len(c))
	}
}

func TestCheckTextRejectsControlCharacters(t *testing.T) {
	for _, s := range []string{"a\nb", "a\rb", "nul\x00", "esc\x1b[31m", string([]byte{0xff})} {
		if CheckText("reason", s) == nil {
			t.Errorf("CheckText(%q) accepted it", s)
		}
	}
	for _, s := range []string{"", "COMMIT", "*filter", "-A INPUT -j ACCEPT", `"quoted" \ ü 日本`} {
		if err := CheckText("reason", s); err != nil {
			t.Errorf("CheckText(%q): %v", s, err)
		}
	}
}

func TestQuoteArg(t *testing.T) {
	for in, want := range map[string]string{
		"DROP":          "DROP",
		"two words":     `"two words"`,
		`a"b`:           `"a\"b"`,
		`back\slash`:    `"back\\slash"`,
		"":              `""`,
		"-A INPUT -j X": `"-A INPUT -j X"`,
	} {
		if got := quoteArg(in); got != want {
			t.Errorf("quoteArg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSave(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	out := `create banshee4 hash:net family inet hashsize 1024 maxelem 65536 timeout 0 comment bucketsize 12 initval 0x1
add banshee4 10.0.0.0/24 timeout 120 comment "[watch] sshd: 7 failures"
add banshee4 10.0.0.9 timeout 0 comment "plain"
add banshee4 10.0.0.10 timeout 30
`
	es, err := parseSave([]byte(out), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("%d entries", len(es))
	}
	if es[0].Prefix.String() != "10.0.0.0/24" || es[0].Origin != "watch" || es[0].Reason != "sshd: 7 failures" || !es[0].ExpiresAt.Equal(now.Add(2*time.Minute)) {
		t.Errorf("entry 0: %+v", es[0])
	}
	if es[1].Prefix.String() != "10.0.0.9/32" || !es[1].ExpiresAt.IsZero() || es[1].Reason != "plain" {
		t.Errorf("entry 1: %+v", es[1])
	}
	if es[2].Reason != "" || es[2].TTL != 30*time.Second {
		t.Errorf("entry 2: %+v", es[2])
	}
}

func TestStoreJournalAndSnapshot(t *testing.T) {
	s := &store{dir: t.TempDir()}
	now := time.Unix(1_800_000_000, 0)
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/64")
	if err := s.mkdir(); err != nil {
		t.Fatal(err)
	}
	if err := s.journalBlocks(now, []Entry{{Prefix: a, TTL: time.Hour, Reason: "r \"q\"\n", Origin: "cli"}, {Prefix: b}}); err != nil {
		t.Fatal(err)
	}
	if err := s.journalUnblocks([]netip.Prefix{b}); err != nil {
		t.Fatal(err)
	}
	// A crash mid-append leaves a torn last line: it is skipped.
	f, _ := os.OpenFile(s.path(journalFile), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("+ 17")
	f.Close()
	es, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Prefix != a || es[0].Reason != "r \"q\"\n" || !es[0].ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("load: %+v", es)
	}
	if err := s.writeSnapshot(es, now); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(s.path(journalFile)); err != nil || fi.Size() != 0 {
		t.Fatalf("journal not emptied: %v %v", fi, err)
	}
	matches, _ := filepath.Glob(filepath.Join(s.dir, "hostfw", ".*tmp*"))
	if len(matches) != 0 {
		t.Errorf("temp files left: %v", matches)
	}
	es2, err := s.load()
	if err != nil || len(es2) != 1 || es2[0].Prefix != a {
		t.Fatalf("after snapshot: %+v %v", es2, err)
	}
}
