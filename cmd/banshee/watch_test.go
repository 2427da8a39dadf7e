package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine/enginetest"
	"github.com/banshee-project/banshee/cmd/internal/logsource"
	"github.com/banshee-project/banshee/cmd/internal/watch"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type watchEnv struct {
	t     *testing.T
	clock *testClock
	host  *enginetest.Host
	w     *watch.Watcher
	log   *syncBuffer
	dir   string
	once  sync.Once
	mu    sync.Mutex
	peers []policy.Protected // the SSH peers the watcher sees
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func testWatchConfig(t *testing.T, yaml string) policy.Config {
	t.Helper()
	cfg, err := policy.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newWatchEnv starts a watcher (and its enforcer) over a fake host in a
// fresh state directory; dir reuses one (a restart).
func newWatchEnv(t *testing.T, cfg policy.Config, dir string, host *enginetest.Host, clock *testClock) *watchEnv {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if clock == nil {
		clock = &testClock{t: time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)}
	}
	if host == nil {
		host = enginetest.NewHost(clock.now)
	}
	log := &syncBuffer{}
	env := &watchEnv{t: t, clock: clock, host: host, log: log, dir: dir}
	// No SSH sessions on the fake host, unless a test says so.
	callers := func() []policy.Protected {
		env.mu.Lock()
		defer env.mu.Unlock()
		return env.peers
	}
	w, err := watch.New(cfg, host, watch.NewStats([]string{"file:test"}, "", clock.now()), dir, log, clock.now, 0, callers)
	if err != nil {
		t.Fatal(err)
	}
	env.w = w
	if err := w.SyncBans(context.Background()); err != nil {
		t.Fatal(err)
	}
	go w.Enforce(context.Background())
	t.Cleanup(env.stop)
	return env
}

// stop closes the queue and waits for the enforcer: every queued block
// has then reached the fake host.
func (e *watchEnv) stop() {
	e.t.Helper()
	e.once.Do(func() {
		if !e.w.Close(10 * time.Second) {
			e.t.Error("enforcer did not finish")
		}
	})
}

func (e *watchEnv) lines(format string, n int, args ...any) {
	for range n {
		e.w.HandleLine([]byte(fmt.Sprintf(format, args...)))
	}
}

// sshFail is a failure line stamped with the watcher's clock (UTC syslog
// stamps are read in the local zone, so RFC 3339 keeps the test zone-free).
func (e *watchEnv) sshFail(user, addr string) string {
	return e.clock.now().Format(time.RFC3339) + " web1 sshd[9]: Failed password for " + user + " from " + addr + " port 4000 ssh2"
}

func TestWatchBlocksAtThreshold(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, "watch: {max_retry: 5, find_time: 10m}"), "", nil, nil)
	for range 4 {
		env.w.HandleLine([]byte(env.sshFail("root", "203.0.113.7")))
	}
	// hostile user names and an allowlisted-looking address in them
	for range 10 {
		env.w.HandleLine([]byte(env.sshFail("x from 10.0.0.1 port 22 ssh2", "198.51.100.20")))
	}
	env.w.HandleLine([]byte(env.sshFail("root", "203.0.113.7")))
	env.stop()
	if _, ok := env.host.Get(netip.MustParsePrefix("203.0.113.7/32")); !ok {
		t.Errorf("203.0.113.7 not blocked after 5 failures; log:\n%s", env.log)
	}
	if _, ok := env.host.Get(netip.MustParsePrefix("198.51.100.20/32")); !ok {
		t.Error("198.51.100.20 not blocked")
	}
	if _, ok := env.host.Get(netip.MustParsePrefix("10.0.0.1/32")); ok {
		t.Error("the address injected through the user name was blocked")
	}
	e, _ := env.host.Get(netip.MustParsePrefix("203.0.113.7/32"))
	if e.Origin != "watch" || e.TTL != time.Hour || !strings.Contains(e.Reason, "sshd") {
		t.Errorf("entry %+v", e)
	}
	// 198.51.100.20 trips twice (10 lines): blocked, then (lines still in
	// flight) a repeat offender whose block is extended
	if e, _ := env.host.Get(netip.MustParsePrefix("198.51.100.20/32")); e.TTL != 2*time.Hour {
		t.Errorf("repeat trip: entry %+v, want TTL 2h", e)
	}
	st := env.w.Stats().Snapshot(env.clock.now())
	if st.LinesRead != 15 || st.Matches["sshd"] != 15 || st.Decisions["host/block"] != 3 {
		t.Errorf("stats %+v\n%s", st, env.log)
	}
}

func TestWatchAllowlistAndProtected(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, "allowlist: [10.99.3.0/24]\nwatch: {max_retry: 3}"), "", nil, nil)
	for range 9 {
		env.w.HandleLine([]byte(env.sshFail("root", "10.99.3.2")))
		env.w.HandleLine([]byte(env.sshFail("root", "127.0.0.1")))
	}
	env.stop()
	es, _ := env.host.List(context.Background())
	if len(es) != 0 {
		t.Errorf("blocked %+v", es)
	}
	st := env.w.Stats().Snapshot(env.clock.now())
	if st.Decisions["none/refuse"] != 6 || st.Decisions["host/block"] != 0 {
		t.Errorf("decisions %v", st.Decisions)
	}
}

// An operator's open SSH session shares its address with failing logins
// (a typo in a second terminal): watch never blocks that address.
func TestWatchNeverBlocksAnSSHPeer(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, "watch: {max_retry: 3}"), "", nil, nil)
	env.mu.Lock()
	env.peers = []policy.Protected{{Prefix: netip.MustParsePrefix("203.0.113.9/32"), What: "an established SSH peer of this host (port 22)"}}
	env.mu.Unlock()
	for range 6 {
		env.w.HandleLine([]byte(env.sshFail("root", "203.0.113.9")))
		env.w.HandleLine([]byte(env.sshFail("root", "203.0.113.10")))
	}
	env.stop()
	if _, ok := env.host.Get(netip.MustParsePrefix("203.0.113.9/32")); ok {
		t.Errorf("the operator's SSH peer was blocked; log:\n%s", env.log)
	}
	if _, ok := env.host.Get(netip.MustParsePrefix("203.0.113.10/32")); !ok {
		t.Errorf("the attacker next to it was not blocked; log:\n%s", env.log)
	}
	if !strings.Contains(env.log.String(), "an established SSH peer of this host") {
		t.Errorf("the refusal does not say why; log:\n%s", env.log)
	}
}

func TestWatchReplayedOldLinesDoNotBlock(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, "watch: {max_retry: 3, find_time: 10m}"), "", nil, nil)
	old := env.clock.now().Add(-2 * time.Hour).Format(time.RFC3339)
	env.lines("%s web1 sshd[9]: Invalid user a from 192.0.2.44 port 1", 5, old)
	env.stop()
	if _, ok := env.host.Get(netip.MustParsePrefix("192.0.2.44/32")); ok {
		t.Error("an attack from two hours ago was blocked on replay")
	}
}

func TestWatchRestartKeepsBansAndEscalates(t *testing.T) {
	cfg := testWatchConfig(t, "watch: {max_retry: 2}\npolicy: {default_ttl: 1h, max_ttl: 24h, repeat_window: 168h}")
	env := newWatchEnv(t, cfg, "", nil, nil)
	env.lines("%s", 2, env.sshFail("root", "2001:db8::66"))
	env.stop()
	first, ok := env.host.Get(netip.MustParsePrefix("2001:db8::66/128"))
	if !ok || first.TTL != time.Hour {
		t.Fatalf("first ban %+v %v", first, ok)
	}
	// restart over the same kernel state and state directory: the block is
	// still there, and the past offence is remembered
	env.clock.add(2 * time.Hour)
	env2 := newWatchEnv(t, cfg, env.dir, env.host, env.clock)
	if n := env2.w.ActiveBans(env.clock.now()); n != 0 {
		t.Errorf("%d active bans after the first expired", n)
	}
	env2.lines("%s", 2, env2.sshFail("root", "2001:db8::66"))
	env2.stop()
	second, ok := env.host.Get(netip.MustParsePrefix("2001:db8::66/128"))
	if !ok || second.TTL != 2*time.Hour {
		t.Errorf("second ban %+v, want TTL 2h (repeat offender across a restart)", second)
	}
	env.clock.add(3 * time.Hour)
	env3 := newWatchEnv(t, cfg, env.dir, env.host, env.clock)
	env3.lines("%s", 2, env3.sshFail("root", "2001:db8::66"))
	env3.stop()
	if third, _ := env.host.Get(netip.MustParsePrefix("2001:db8::66/128")); third.TTL != 4*time.Hour {
		t.Errorf("third ban %+v, want TTL 4h", third)
	}
}

func TestWatchEnforceErrorRetries(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, "watch: {max_retry: 2}"), "", nil, nil)
	env.host.Mu.Lock()
	env.host.Fail = errors.New("ipset: kernel says no")
	env.host.Mu.Unlock()
	env.lines("%s", 2, env.sshFail("root", "192.0.2.77"))
	// wait (bounded) for the enforcer to fail
	for i := 0; i < 500 && env.w.Stats().Snapshot(time.Now()).EnforceErrors == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	st := env.w.Stats().Snapshot(time.Now())
	if st.EnforceErrors != 1 || !strings.Contains(st.LastError, "kernel says no") {
		t.Fatalf("stats %+v", st)
	}
	env.host.Mu.Lock()
	env.host.Fail = nil
	env.host.Mu.Unlock()
	env.lines("%s", 2, env.sshFail("root", "192.0.2.77"))
	env.stop()
	if _, ok := env.host.Get(netip.MustParsePrefix("192.0.2.77/32")); !ok {
		t.Errorf("not blocked on the next trip after a failed block; log:\n%s", env.log)
	}
}

func TestWatchReload(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, "watch: {max_retry: 3}"), "", nil, nil)
	env.lines("%s", 3, env.sshFail("root", "192.0.2.10"))
	env.lines("%s", 2, env.sshFail("root", "192.0.2.11"))
	// same detectors: windows survive; a new allowlist applies at once
	if err := env.w.Reload(testWatchConfig(t, "allowlist: [192.0.2.11/32]\nwatch: {max_retry: 3}")); err != nil {
		t.Fatal(err)
	}
	env.lines("%s", 1, env.sshFail("root", "192.0.2.11"))
	// a changed threshold: windows start afresh
	if err := env.w.Reload(testWatchConfig(t, "watch: {max_retry: 2}")); err != nil {
		t.Fatal(err)
	}
	env.lines("%s", 2, env.sshFail("root", "192.0.2.12"))
	bad := policy.Default()
	bad.Watch.Detectors = []policy.DetectorConfig{{Name: "x", Pattern: "no group"}}
	if err := env.w.Reload(bad); err == nil {
		t.Error("a bad config was accepted on reload")
	}
	env.stop()
	for addr, want := range map[string]bool{"192.0.2.10/32": true, "192.0.2.11/32": false, "192.0.2.12/32": true} {
		if _, ok := env.host.Get(netip.MustParsePrefix(addr)); ok != want {
			t.Errorf("%s blocked %v, want %v", addr, ok, want)
		}
	}
	st := env.w.Stats().Snapshot(time.Now())
	if st.Reloads != 2 || st.Decisions["none/refuse"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestWatchStatusAndMetrics(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, "watch: {max_retry: 2}"), "", nil, nil)
	env.lines("%s", 2, env.sshFail("root", "192.0.2.90"))
	env.lines("%s", 1, "Nov 21 05:53:09 mail pop3[1]: badlogin: [192.0.2.91] plaintext u SASL(-13): x")
	env.lines("%s", 2, "an unrelated line")
	// two readings, two addresses: skipped and counted
	env.lines("%s", 1, env.sshFail("invalid user a", "10.0.0.1 port 1 ssh2: from 192.0.2.92"))
	env.stop()
	now := env.clock.now()
	env.w.Stats().SetActiveBans(env.w.ActiveBans(now))
	env.w.Stats().SetTracked(env.w.Tracked())
	if err := env.w.Stats().WriteFile(env.dir, now, true); err != nil {
		t.Fatal(err)
	}
	st, err := watch.ReadStatus(env.dir)
	if err != nil || st == nil {
		t.Fatalf("readWatchStatus: %v %v", st, err)
	}
	if st.LinesRead != 6 || st.Matches["sshd"] != 2 || st.Matches["cyrus-pop3"] != 1 || st.ActiveBans != 1 || st.TrackedSources != 2 || !st.Running {
		t.Errorf("status %+v", st)
	}
	var text bytes.Buffer
	watchStatusText(&text, st, now)
	for _, want := range []string{"watch: running", "6 lines read", "1 active bans", "matches sshd 2", "decisions host/block 1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, text.String())
		}
	}
	watchStatusText(&text, st, now.Add(time.Hour))
	if !strings.Contains(text.String(), "stale") {
		t.Errorf("an old status file is not called stale:\n%s", text.String())
	}
	if none, err := watch.ReadStatus(t.TempDir()); none != nil || err != nil {
		t.Errorf("no status file: %v %v", none, err)
	}

	// The exposition is read back by Prometheus's own text parser.
	rec := httptest.NewRecorder()
	metricsHandler(env.w.Stats()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != metricsContentType {
		t.Errorf("content type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("%v:\n%s", err, rec.Body.String())
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"banshee_watch_lines_read_total":                        6,
		"banshee_watch_matches_total,detector=sshd":             2,
		"banshee_watch_matches_total,detector=cyrus-pop3":       1,
		"banshee_watch_decisions_total,action=block,scope=host": 1,
		"banshee_watch_active_bans":                             1,
		"banshee_watch_tracked_sources":                         2,
		"banshee_watch_parse_errors_total":                      0,
		"banshee_watch_enforce_errors_total":                    0,
		"banshee_watch_skipped_lines_total,reason=ambiguous":    1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestWatchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"watch"},
		{"watch", "--log", "-", "--journal"},
		{"watch", "--log", "x.log", "--metrics-addr", "0.0.0.0:9739"},
		{"watch", "--log", "x.log", "--metrics-addr", "nonsense"},
		{"watch", "--journal-directory", "/nonexistent/journal"},
	} {
		if _, stderr, code := runPlan(t, "", "", args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, stderr)
		}
	}
}

// TestWatchUnit checks the shipped unit runs watch with the hardening the
// daemon needs, and that systemd accepts it where systemd-analyze exists.
func TestWatchUnit(t *testing.T) {
	data, err := os.ReadFile("systemd/banshee-watch.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/banshee watch ",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW\n",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"StateDirectory=banshee",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
		"SystemCallFilter=@system-service",
		"After=banshee-restore.service",
		"WantedBy=multi-user.target",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: directives checked, unit not verified")
	}
	// verify wants the executable to exist: point it at one that does
	tmp := filepath.Join(t.TempDir(), "banshee-watch.service")
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(unit, "/usr/local/bin/banshee", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", tmp).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMetricsEscaping: label values with a quote, a backslash and a newline
// survive Prometheus's own text parser.
func TestMetricsEscaping(t *testing.T) {
	odd := "a\"b\\c\nd"
	var b bytes.Buffer
	writeMetrics(&b, watch.Status{Matches: map[string]int64{odd: 3}, Decisions: map[string]int64{"host/block": 1}, SkippedLines: map[string]int64{"too_long": 2}})
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	ms := mfs["banshee_watch_matches_total"].GetMetric()
	if len(ms) != 1 || ms[0].GetLabel()[0].GetValue() != odd || ms[0].GetCounter().GetValue() != 3 {
		t.Errorf("matches = %v, want detector %q = 3", ms, odd)
	}
	if len(mfs) != 8 {
		t.Errorf("%d families, want 8:\n%s", len(mfs), b.String())
	}
}

// TestWatchCountsMalformedJournalEntries: journal entries that make no
// line are counted in banshee_watch_parse_errors_total (and logged once);
// a long message is counted as skipped, not as a parse error.
func TestWatchCountsMalformedJournalEntries(t *testing.T) {
	env := newWatchEnv(t, testWatchConfig(t, ""), "", nil, nil)
	in := strings.Join([]string{
		`not json`,
		`{"SYSLOG_IDENTIFIER":"sshd","_UID":"0","_COMM":"sshd","MESSAGE":null}`,
		`{"SYSLOG_IDENTIFIER":"sshd","_UID":"0","_COMM":"sshd","MESSAGE":[300]}`,
		`{"SYSLOG_IDENTIFIER":"sshd","_UID":"0","_COMM":"sshd","MESSAGE":"` + strings.Repeat("a", logsource.DefaultMaxLine+1) + `"}`,
		`{"SYSLOG_IDENTIFIER":"sshd","_UID":"0","_COMM":"sshd","MESSAGE":"Failed password for root from 203.0.113.5 port 22 ssh2"}`,
	}, "\n")
	if _, err := logsource.ReadJournal(strings.NewReader(in), env.w.SourceOptions(false), env.w.HandleLine); err != nil {
		t.Fatal(err)
	}
	st := env.w.Stats().Snapshot(env.clock.now())
	if st.ParseErrors != 3 || st.SkippedLines["too_long"] != 1 || st.LinesRead != 1 || st.Matches["sshd"] != 1 {
		t.Errorf("parse errors %d, too long %d, lines %d, matches %v; want 3, 1, 1, sshd 1", st.ParseErrors, st.SkippedLines["too_long"], st.LinesRead, st.Matches)
	}
	var b bytes.Buffer
	writeMetrics(&b, st)
	if !strings.Contains(b.String(), "\nbanshee_watch_parse_errors_total 3\n") {
		t.Errorf("metrics lack the parse errors:\n%s", b.String())
	}
	if n := strings.Count(env.log.String(), "makes no line"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, env.log.String())
	}
}

// BenchmarkWatch100kSources is watch's memory target: the generated
// 1,000,000-line log of 100,000 sources read through watch's line path
// (detectors, windows, policy, a stateful fake host firewall) until
// 100,000 sources are tracked. Reports lines/s, the windows held and the
// process's peak RSS (target <= 64 MB).
func BenchmarkWatch100kSources(b *testing.B) {
	path := benchLog(b, 1_000_000, 100_000)
	cfg := policy.Default()
	var peak float64
	var tracked int
	runtime.GC()
	for b.Loop() {
		read := peakRSS()
		clock := &testClock{t: time.Now()}
		host := enginetest.NewHost(clock.now)
		w, err := watch.New(cfg, host, watch.NewStats([]string{"file:bench"}, "", clock.now()), b.TempDir(), io.Discard, clock.now, detect.DefaultLimit, func() []policy.Protected { return nil })
		if err != nil {
			b.Fatal(err)
		}
		go w.Enforce(context.Background())
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := logsource.ReadLines(f, w.HandleLine); err != nil {
			b.Fatal(err)
		}
		f.Close()
		w.Close(time.Hour)
		tracked = w.Tracked()
		if tracked < 100_000 || w.Stats().Snapshot(clock.now()).LinesRead != 1_000_000 {
			b.Fatalf("%d windows tracked, want 100,000", tracked)
		}
		if read != nil {
			peak = max(peak, read())
		}
		runtime.KeepAlive(w)
	}
	b.ReportMetric(float64(1_000_000*b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(tracked), "tracked-sources")
	if peak > 0 {
		b.ReportMetric(peak, "peak-RSS-MB")
	}
}
