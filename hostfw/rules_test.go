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
	// A failed kernel change takes its records back out.
	undo, err := s.journalBlocksUndo(now, []Entry{{Prefix: netip.MustParsePrefix("198.51.100.9/32"), TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if err := s.journalUnblocks([]netip.Prefix{b}); err != nil {
		t.Fatal(err)
	}
	// A crash mid-append leaves a torn last line: it is skipped.
	f, _ := os.OpenFile(s.path(journalFile), os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("+ 17")
	f.Close()
	ld, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	es := ld.entries
	if len(ld.damaged) != 1 || !ld.damaged[0].torn || ld.damaged[0].Line != 4 {
		t.Errorf("torn last line: damage %v, want line 4 torn", ld.damaged)
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
	ld2, err := s.load()
	if err != nil || len(ld2.entries) != 1 || ld2.entries[0].Prefix != a || len(ld2.damaged) != 0 {
		t.Fatalf("after snapshot: %+v %v", ld2, err)
	}
}

func TestSSHVerdict(t *testing.T) {
	peer := netip.MustParseAddr("203.0.113.9")
	for _, tc := range []struct {
		name, rules string
		want        Verdict
	}{
		{"no filter table", "*nat\nCOMMIT\n", VerdictAccept},
		{"accept policy", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", VerdictAccept},
		{"drop all", "*filter\n:INPUT DROP [0:0]\nCOMMIT\n", VerdictDrop},
		{"established", "*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n", VerdictAccept},
		{"ssh port", "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n", VerdictAccept},
		{"other port", "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n", VerdictDrop},
		{"office only", "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 198.51.100.0/24 -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", VerdictDrop},
		{"peer dropped first", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 203.0.113.0/24 -j DROP\nCOMMIT\n", VerdictDrop},
		{"via user chain", "*filter\n:INPUT DROP [0:0]\n:SSH - [0:0]\n-A INPUT -j SSH\n-A SSH -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", VerdictAccept},
		{"interface unknown", "*filter\n:INPUT DROP [0:0]\n-A INPUT -i eth0 -p tcp --dport 22 -j ACCEPT\nCOMMIT\n", VerdictUnknown},
	} {
		if got, why := SSHVerdict(tc.rules, peer, 22); got != tc.want {
			t.Errorf("%s: verdict %d (%s), want %d", tc.name, got, why, tc.want)
		}
	}
}

func TestParseProcNetTCP(t *testing.T) {
	data := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0F02000A:0016 0902000A:D431 01 00000000:00000000 02:000A7B2D 00000000     0        0 2 4 0000000000000000 20 4 30 10 -1
   2: 0F02000A:1F90 0A02000A:D432 01 00000000:00000000 02:000A7B2D 00000000     0        0 3 4 0000000000000000 20 4 30 10 -1
`
	got, err := parseProcNetTCP([]byte(data), []uint16{22})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != netip.MustParseAddr("10.0.2.9") {
		t.Fatalf("peers %v, want [10.0.2.9]", got)
	}
	v6 := "  sl  local_address                         remote_address                        st\n" +
		"   0: 00000000000000000000000001000000:0016 B80D0120000000000000000001000000:C350 01 0\n"
	got, err = parseProcNetTCP([]byte(v6), []uint16{22})
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("v6 peers %v %v, want [2001:db8::1]", got, err)
	}
}

func TestBackendOfLink(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, target string) string {
		p := filepath.Join(dir, name)
		if target == "" {
			if err := os.WriteFile(p, nil, 0o755); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("xtables-nft-multi", "")
	mk("iptables-nft", "xtables-nft-multi")
	alt := mk("alt-iptables", filepath.Join(dir, "iptables-nft"))
	nft := mk("iptables", alt)
	if got := backendOfLink(nft); got != BackendNFT {
		t.Errorf("debian nft chain: %q", got)
	}
	mk("xtables-legacy-multi", "")
	leg := mk("iptables2", "xtables-legacy-multi")
	if got := backendOfLink(leg); got != BackendLegacy {
		t.Errorf("legacy multi: %q", got)
	}
	if got := backendOfLink(mk("plain", "")); got != "" {
		t.Errorf("plain file: %q", got)
	}
}
