package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect/loggen"
)

const scanConfig = `
allowlist: [198.51.100.0/24]
watch:
  max_retry: 5
  find_time: 10m
`

// seedLog is the seed case and its neighbours: a pop3 brute force from
// one address, an allowlisted source crossing the threshold, a source
// below it, and a hostile user name.
func seedLog() string {
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, "Nov 21 05:53:%02d mail pop3[22145]: badlogin: fc.df.84ae.static.theplanet.com [174.132.223.252] plaintext branden SASL(-13): authentication failure: checkpass failed\n", i)
	}
	for i := range 5 {
		fmt.Fprintf(&b, "Nov 21 06:00:%02d mail sshd[7]: Failed password for root from 198.51.100.9 port 4000 ssh2\n", i)
	}
	b.WriteString("Nov 21 06:01:00 mail sshd[7]: Invalid user oracle from 2001:db8::5 port 4000\n")
	b.WriteString("Nov 21 06:01:01 mail sshd[7]: Invalid user oracle from 2001:db8::5 port 4001\n")
	for range 5 {
		b.WriteString("Nov 21 06:02:00 mail sshd[7]: Failed password for invalid user x from 10.0.0.1 port 22 ssh2 from 203.0.113.50 port 1 ssh2\n")
	}
	b.WriteString("Nov 21 06:03:00 mail sshd[7]: Accepted publickey for alice from 203.0.113.80 port 22 ssh2: ED25519 SHA256:abc\n")
	return b.String()
}

func decodeScan(t *testing.T, stdout string) scanOutput {
	t.Helper()
	var out scanOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("scan -o json: %v\n%s", err, stdout)
	}
	return out
}

func TestScanJSON(t *testing.T) {
	stdout, stderr, code := runPlan(t, scanConfig, seedLog(), "scan", "-", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Count(stdout, "\n") != 1 {
		t.Errorf("want one JSON object on one line, got:\n%s", stdout)
	}
	out := decodeScan(t, stdout)
	if out.Lines != 19 || out.FailureLines != 18 {
		t.Errorf("lines %d failure lines %d, want 19 and 18", out.Lines, out.FailureLines)
	}
	type want struct {
		detector string
		count    int
		crosses  bool
		scope    policy.Scope
		action   policy.Action
	}
	wants := map[string]want{
		"174.132.223.252": {"cyrus-pop3", 6, true, policy.ScopeHost, policy.ActionBlock},
		"198.51.100.9":    {"sshd", 5, true, policy.ScopeNone, policy.ActionRefuse},
		"203.0.113.50":    {"sshd", 5, true, policy.ScopeHost, policy.ActionBlock},
		"2001:db8::5":     {"sshd", 2, false, "", ""},
	}
	if len(out.Offenders) != len(wants) {
		t.Fatalf("offenders %+v", out.Offenders)
	}
	for _, o := range out.Offenders {
		w, ok := wants[o.Source.String()]
		if !ok {
			t.Errorf("unexpected offender %s (%s)", o.Source, o.Detector)
			continue
		}
		if o.Detector != w.detector || o.Count != w.count || o.CrossesThreshold != w.crosses {
			t.Errorf("%s: %s count %d crosses %v, want %+v", o.Source, o.Detector, o.Count, o.CrossesThreshold, w)
		}
		switch {
		case !w.crosses && (o.Decision == nil || o.Decision.Action != policy.ActionSkip || o.Decision.Scope != policy.ScopeNone ||
			len(o.Decision.Reasons) == 0 || !strings.Contains(o.Decision.Reasons[0], "below the threshold")):
			t.Errorf("%s: decision %+v below the threshold, want none/skip saying so", o.Source, o.Decision)
		case w.crosses && (o.Decision == nil || o.Decision.Scope != w.scope || o.Decision.Action != w.action):
			t.Errorf("%s: decision %+v, want %s %s", o.Source, o.Decision, w.scope, w.action)
		}
	}
	// crossing sources first, most failures first
	if out.Offenders[0].Source.String() != "174.132.223.252" || out.Offenders[3].Source.String() != "2001:db8::5" {
		t.Errorf("order: %v %v", out.Offenders[0].Source, out.Offenders[3].Source)
	}
	if first := out.Offenders[0].FirstSeen; first.Month() != time.November || first.Day() != 21 || first.Second() != 0 {
		t.Errorf("first seen %v", first)
	}
}

func TestScanText(t *testing.T) {
	path := writeFile(t, "auth.log", seedLog())
	stdout, stderr, code := runPlan(t, scanConfig, "", "scan", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "SOURCE") {
		t.Fatalf("text output:\n%s", stdout)
	}
	if f := strings.Fields(lines[1]); len(f) < 5 || f[0] != "174.132.223.252" || f[2] != "6" || f[3] != "crossed" || f[4] != "host" || f[5] != "block" {
		t.Errorf("first row %q", lines[1])
	}
	if !strings.Contains(lines[5], "19 lines, 18 failure lines, 4 offenders, 3 crossing") {
		t.Errorf("summary %q", lines[5])
	}
	below := 0
	for _, l := range lines[1:5] {
		if strings.Contains(l, " below ") {
			below++
			if !strings.Contains(l, "  skip: below the threshold: 2 of 5 failures") || strings.Contains(l, "skip: skip") || strings.Contains(l, "none skip") {
				t.Errorf("row below the threshold does not say skip once: %q", l)
			}
		}
	}
	if below != 1 {
		t.Errorf("%d rows below the threshold, want 1:\n%s", below, stdout)
	}
}

// TestScanCorpusNeverInjected replays every hostile corpus line: the
// address planted in user names, URLs and host names (10.0.0.1) is never
// an offender.
func TestScanCorpusNeverInjected(t *testing.T) {
	files, err := filepath.Glob("../../policy/detect/testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus: %v", err)
	}
	var args []string
	hostile := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, l := range strings.Split(string(data), "\n") {
			if _, line, ok := strings.Cut(l, "\t"); ok && !strings.HasPrefix(l, "#") {
				hostile += strings.Count(line, "10.0.0.1")
				b.WriteString(line + "\n")
			}
		}
		args = append(args, writeFile(t, filepath.Base(f), b.String()))
	}
	if hostile < 10 {
		t.Fatalf("only %d hostile lines in the corpus", hostile)
	}
	stdout, stderr, code := runPlan(t, "watch: {max_retry: 1}", "", append([]string{"scan", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out := decodeScan(t, stdout)
	if len(out.Offenders) < 20 {
		t.Fatalf("only %d offenders from the corpus", len(out.Offenders))
	}
	for _, o := range out.Offenders {
		if o.Source.String() == "10.0.0.1" {
			t.Errorf("injected address is an offender: %+v", o)
		}
	}
}

func TestScanGzipAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log.2.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte(seedLog()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	stdout, stderr, code := runPlan(t, scanConfig, "", "scan", "-o", "json", path)
	if code != 0 || decodeScan(t, stdout).FailureLines != 18 {
		t.Fatalf("gzip: exit %d %s %s", code, stderr, stdout)
	}
	if _, stderr, code := runPlan(t, scanConfig, "", "scan", filepath.Join(t.TempDir(), "missing.log")); code != 2 || !strings.Contains(stderr, "missing.log") {
		t.Errorf("missing file: exit %d %q, want 2", code, stderr)
	}
	if _, _, code := runPlan(t, scanConfig, "", "scan"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
	bad := "watch:\n  detectors:\n    - {name: x, pattern: 'from (\\S+)'}\n"
	if _, stderr, code := runPlan(t, bad, "", "scan", "-"); code != 2 {
		t.Errorf("detector without addr group: exit %d %q, want 2", code, stderr)
	}
	unanchored := "watch:\n  detectors:\n    - {name: x, pattern: 'failed from (?P<addr>\\S+)'}\n"
	_, stderr, code = runPlan(t, unanchored, "", "scan", "-")
	if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, `failed from (?P<addr>\\S+)`) || !strings.Contains(stderr, "anchored") {
		t.Errorf("unanchored detector: exit %d %q, want 2 and one line naming the pattern", code, stderr)
	}
}

// benchLog returns a generated log of n lines (30% failures from sources
// addresses, half IPv6), written once per process into the temp dir.
func benchLog(b *testing.B, n, sources int) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("banshee-bench-%d-%d.log", n, sources))
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return path
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := loggen.Write(f, loggen.Options{Lines: n, Sources: sources, FailureShare: 0.3, Seed: 42}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	return path
}

// peakRSS resets the kernel's peak RSS of this process (clear_refs 5) so
// the value read after a run is that run's peak. It returns a function
// giving the peak in MB, or nil where /proc does not allow it.
func peakRSS() func() float64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil
	}
	return func() float64 {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			return -1
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				return float64(kb) / 1024
			}
		}
		return -1
	}
}

func benchScan(b *testing.B, lines, sources int) {
	path := benchLog(b, lines, sources)
	cfg := policy.Default()
	var peak float64
	runtime.GC()
	for b.Loop() {
		read := peakRSS()
		prev := debug.SetMemoryLimit(scanMemoryLimit) // as the command does
		s, err := newScanner(cfg.Watch, scanMaxSources)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.readNamed(path, nil); err != nil {
			b.Fatal(err)
		}
		var cw countWriter
		if err := s.writeJSON(&cw, engine.New(engine.Deps{Config: cfg}).Offline()); err != nil {
			b.Fatal(err)
		}
		if s.lines != int64(lines) || s.tr.Len() < sources || s.tr.Evicted() > 0 || cw.n < int64(sources)*100 {
			b.Fatalf("%d lines, %d windows (%d evicted), %d bytes of JSON", s.lines, s.tr.Len(), s.tr.Evicted(), cw.n)
		}
		if read != nil {
			peak = max(peak, read())
		}
		debug.SetMemoryLimit(prev)
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	if peak > 0 {
		b.ReportMetric(peak, "peak-RSS-MB")
	}
}

// countWriter counts what the report would print.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkScan is the benchmark: 1,000,000 lines, 30% failures
// from 5,000 sources (IPv4 and IPv6), through the code of banshee scan
// including the decisions. Targets: >= 1,000,000 lines/s, peak < 64 MB.
func BenchmarkScan(b *testing.B) { benchScan(b, 1_000_000, 5_000) }

// BenchmarkScan100kSources is the memory target: 100,000 tracked sources.
func BenchmarkScan100kSources(b *testing.B) { benchScan(b, 1_000_000, 100_000) }

// TestScanExplain: scan --explain names the detector, form and source of a
// match, and the reason for each kind of non-match.
func TestScanExplain(t *testing.T) {
	lines := []string{
		"Nov 21 05:53:09 web1 sshd[1]: Failed password for invalid user admin from 192.0.2.7 port 4000 ssh2",
		"Nov 21 05:53:09 web1 sshd[1]: Did not receive identification string from 2001:db8::7 port 4000",
		"Nov 21 05:53:09 web1 sshd[1]: Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2",
		"Nov 21 05:53:09 web1 sshd[1]: User root from host.example.net not allowed because not listed in AllowUsers",
		"Nov 21 05:53:09 web1 sshd[1]: Accepted password for root from 192.0.2.7 port 4000 ssh2",
		"2026-11-21T05:53:09.000000Z web1 untrusted-logger[9]: Failed password for root from 192.0.2.8 port 22 ssh2",
		"Nov 21 05:53:09 web1 cron[1]: x",
		"not a log line",
	}
	args := []string{"scan", "-o", "json"}
	for _, l := range lines {
		args = append(args, "--explain", l)
	}
	code, out, errs := runBanshee(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	type ex struct {
		Matched  bool
		Detector string
		Form     string
		Source   string
		Weight   int
		Reason   string
	}
	want := []ex{
		{true, "sshd", "failed", "192.0.2.7", 10, "authentication failure"},
		{true, "sshd", "no-ident", "2001:db8::7", 5, "probe"},
		{false, "sshd", "failed", "", 0, "reads two ways"},
		{false, "sshd", "user-not-allowed", "", 0, "without an address"},
		{false, "sshd", "", "", 0, "no failure form"},
		{false, "", "", "", 0, "did not vouch"},
		{false, "", "", "", 0, "no built-in detector reads program cron"},
		{false, "", "", "", 0, "no syslog header"},
	}
	dec := json.NewDecoder(strings.NewReader(out))
	for i, w := range want {
		var g ex
		if err := dec.Decode(&g); err != nil {
			t.Fatalf("line %d: %v\n%s", i, err, out)
		}
		if g.Matched != w.Matched || g.Detector != w.Detector || g.Form != w.Form || g.Source != w.Source || g.Weight != w.Weight || !strings.Contains(g.Reason, w.Reason) {
			t.Errorf("line %d: %+v, want %+v", i, g, w)
		}
	}
	if code, _, _ := runBanshee(t, "scan", "--explain", "x", "some.log"); code != 2 {
		t.Errorf("--explain with files: exit %d, want 2", code)
	}
	code, out, _ = runBanshee(t, "scan", "--explain", lines[0])
	if code != 0 || !strings.Contains(out, "match:    detector sshd, form failed, source 192.0.2.7") {
		t.Errorf("text: exit %d\n%s", code, out)
	}
}
