package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
	"github.com/banshee-project/banshee/policy/detect/tail"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

func init() { register(newWatchCmd) }

// watchStatusEvery is how often watch rewrites its status file.
const watchStatusEvery = 5 * time.Second

// watchOffencesFile keeps past watch blocks for repeat-offender escalation
// across restarts.
const watchOffencesFile = "watch-offences.json"

// hostBlocker is what watch needs of the host firewall (*hostfw.Firewall).
type hostBlocker interface {
	Block(ctx context.Context, entries []hostfw.Entry) (hostfw.BlockResult, error)
	List(ctx context.Context) ([]hostfw.Entry, error)
}

// watcher is the daemon's core: lines → detectors → windows → policy →
// host firewall. handleLine runs on one goroutine; enforcement runs on
// another so that a slow firewall call never stalls reading.
type watcher struct {
	stateDir string
	log      io.Writer
	now      func() time.Time
	stats    *watchStats
	host     hostBlocker

	// owned by the reading goroutine
	cfg policy.Config
	eng *policy.Engine
	m   *detect.Matcher
	tr  *detect.Tracker

	mu       sync.Mutex
	bans     map[netip.Prefix]time.Time // known host blocks → expiry (zero: permanent)
	offences []policy.Offence

	queue chan hostfw.Entry
	done  chan struct{} // closed when the enforcer has finished
}

func newWatcher(cfg policy.Config, host hostBlocker, stats *watchStats, stateDir string, log io.Writer, now func() time.Time, maxSources int) (*watcher, error) {
	m, err := detect.New(cfg.Watch, now)
	if err != nil {
		return nil, err
	}
	w := &watcher{
		stateDir: stateDir, log: log, now: now, stats: stats, host: host,
		cfg: cfg, eng: policy.New(cfg), m: m, tr: detect.NewTracker(m.Detectors(), maxSources),
		bans:  map[netip.Prefix]time.Time{},
		queue: make(chan hostfw.Entry, 4096),
		done:  make(chan struct{}),
	}
	if err := w.loadOffences(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *watcher) logf(format string, args ...any) {
	fmt.Fprintf(w.log, "banshee watch: "+format+"\n", args...)
}

// syncBans reads the active host blocks, so that sources already blocked
// (by an earlier run, the CLI or a restore) are skipped, not re-blocked.
func (w *watcher) syncBans(ctx context.Context) error {
	es, err := w.host.List(ctx)
	if err != nil {
		return fmt.Errorf("listing host blocks: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.bans)
	for _, e := range es {
		w.bans[e.Prefix] = e.ExpiresAt
	}
	w.stats.setActiveBans(len(w.bans))
	return nil
}

// activeBans counts the known blocks that have not expired.
func (w *watcher) activeBans(now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, exp := range w.bans {
		if !exp.IsZero() && !exp.After(now) {
			delete(w.bans, p)
		}
	}
	return len(w.bans)
}

// handleLine runs one line through detection and, when a source crosses
// its threshold, the policy. Host blocks are queued for the enforcer.
func (w *watcher) handleLine(b []byte) {
	w.stats.line()
	mt, ok := w.m.Match(b)
	if !ok {
		return
	}
	det := w.m.Detectors()[mt.Detector]
	w.stats.match(det.Name)
	now := w.now()
	if mt.Time.IsZero() || mt.Time.After(now) {
		mt.Time = now
	}
	trip, ok := w.tr.Observe(mt, now)
	if !ok {
		return
	}
	if trip.Last.Before(now.Add(-det.FindTime)) {
		return // a replayed old attack (--from-start): counted, not acted on
	}
	atk := detect.Attack(det, trip)
	src := atk.Sources[0]
	snap := policy.Snapshot{Now: now.UTC()}
	w.mu.Lock()
	if exp, ok := w.bans[src]; ok && (exp.IsZero() || exp.After(now)) {
		snap.Blocks = []policy.Block{{Target: src, Scope: policy.ScopeHost, ExpiresAt: exp}}
	}
	for _, o := range w.offences {
		if o.Source == src {
			snap.Offences = append(snap.Offences, o)
		}
	}
	w.mu.Unlock()
	for _, d := range w.eng.Decide(atk, snap) {
		w.stats.decision(string(d.Scope), string(d.Action))
		w.logf("%s %s (%s): %s %s; %s", d.Target.Addr(), det.Name, atk.Reason, d.Scope, d.Action, strings.Join(d.Reasons, "; "))
		if d.Action != policy.ActionBlock {
			continue
		}
		// VPC scope needs the NACL backend, which watch does not drive yet:
		// the host block is the fallback the policy names for it.
		w.mu.Lock()
		if d.TTL > 0 {
			w.bans[d.Target] = now.Add(d.TTL)
		} else {
			w.bans[d.Target] = time.Time{}
		}
		w.offences = append(w.offences, policy.Offence{Source: d.Target, At: now.UTC()})
		w.stats.setActiveBans(len(w.bans))
		w.mu.Unlock()
		w.queue <- hostfw.Entry{Prefix: d.Target, TTL: d.TTL, Reason: atk.Reason, Origin: string(policy.OriginWatch)}
	}
}

// enforce applies queued host blocks, batching what has piled up, until
// the queue is closed.
func (w *watcher) enforce(ctx context.Context) {
	defer close(w.done)
	for e := range w.queue {
		batch := []hostfw.Entry{e}
	drain:
		for len(batch) < 1024 {
			select {
			case e2, ok := <-w.queue:
				if !ok {
					break drain
				}
				batch = append(batch, e2)
			default:
				break drain
			}
		}
		if _, err := w.host.Block(ctx, batch); err != nil {
			err = fmt.Errorf("blocking %d source(s) on this host: %w", len(batch), err)
			w.stats.enforceError(err)
			w.logf("error: %v", err)
			// forget them, so the next trip tries again
			w.mu.Lock()
			for _, b := range batch {
				delete(w.bans, b.Prefix)
			}
			w.mu.Unlock()
			continue
		}
		names := make([]string, len(batch))
		for i, b := range batch {
			names[i] = b.Prefix.String()
		}
		w.logf("blocked on this host: %s", strings.Join(names, " "))
		if err := w.saveOffences(); err != nil {
			w.stats.enforceError(err)
			w.logf("error: %v", err)
		}
	}
}

// reload swaps the config: detectors, thresholds, allowlist and policy.
// Blocks are untouched; windows are kept when the detectors are the same.
func (w *watcher) reload(cfg policy.Config) error {
	m, err := detect.New(cfg.Watch, w.now)
	if err != nil {
		return err
	}
	if slices.Equal(m.Detectors(), w.m.Detectors()) {
		w.tr.SetDetectors(m.Detectors())
	} else {
		w.tr = detect.NewTracker(m.Detectors(), 0)
	}
	w.cfg, w.eng, w.m = cfg, policy.New(cfg), m
	w.stats.reload()
	return nil
}

func (w *watcher) offencesPath() string { return filepath.Join(w.stateDir, watchOffencesFile) }

func (w *watcher) loadOffences() error {
	data, err := os.ReadFile(w.offencesPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading past offences: %w", err)
	}
	if err := json.Unmarshal(data, &w.offences); err != nil {
		return fmt.Errorf("reading past offences %s: %w", w.offencesPath(), err)
	}
	return nil
}

// saveOffences keeps the offences within the repeat window.
func (w *watcher) saveOffences() error {
	w.mu.Lock()
	horizon := w.now().Add(-time.Duration(w.cfg.Policy.RepeatWindow))
	w.offences = slices.DeleteFunc(w.offences, func(o policy.Offence) bool { return o.At.Before(horizon) })
	data, err := json.Marshal(w.offences)
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding offences: %w", err)
	}
	tmp := w.offencesPath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("saving offences: %w", err)
	}
	if err := os.Rename(tmp, w.offencesPath()); err != nil {
		return fmt.Errorf("saving offences: %w", err)
	}
	return nil
}

// watchFlags are watch's own flags.
type watchFlags struct {
	logs        []string
	journal     bool
	fromStart   bool
	metricsAddr string
	maxSources  int
}

func newWatchCmd(a *app) *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [--log FILE]... [--journal] [--from-start]",
		Short: "Follow logs, detect attacks and block them (the daemon)",
		Long: `watch follows log files (inotify; rotation by rename and copytruncate), the
systemd journal (--journal) or standard input (--log -), runs every line through
the detectors, and when a source fails max_retry times within find_time asks
the policy (origin watch) and blocks it on this host. The allowlist and the
other protections of the policy always apply.

Blocks live in the kernel and the state directory and survive restarts;
failure counters start afresh. SIGHUP reloads the config (detectors,
thresholds, allowlist, policy) without touching blocks; SIGTERM stops cleanly.
Metrics for Prometheus are served on watch.metrics_addr (loopback only), and
the same numbers are written to watch-status.json in the state directory,
which banshee status shows.`,
		Example: `  banshee watch --log /var/log/auth.log --log /var/log/mail.log
  banshee watch --journal
  tail -F /var/log/nginx/access.log | banshee watch --log -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.watch(cmd.Context(), f, cmd.Flags().Changed("metrics-addr"))
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.logs, "log", nil, "log file to follow (repeatable; - for standard input)")
	fl.BoolVar(&f.journal, "journal", false, "follow the systemd journal (journalctl -f -o json)")
	fl.BoolVar(&f.fromStart, "from-start", false, "read what the files (or this boot's journal) already hold; recent failures count, older ones do not trigger")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this loopback address (default watch.metrics_addr; none disables)")
	fl.IntVar(&f.maxSources, "max-sources", detect.DefaultLimit, "most (source, detector) windows kept; the least recently seen are forgotten beyond it")
	return cmd
}

// checkMetricsAddr accepts only loopback listen addresses.
func checkMetricsAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("metrics address %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return usageErrorf("metrics address %q: must be a loopback address (127.0.0.1:PORT or [::1]:PORT)", addr)
	}
	return nil
}

type lineMsg struct{ b []byte }

func (a *app) watch(ctx context.Context, f watchFlags, metricsFlag bool) error {
	if len(f.logs) == 0 && !f.journal {
		return usageErrorf("watch: nothing to read (give --log FILE, --log - or --journal)")
	}
	if slices.Contains(f.logs, "-") && len(f.logs)+btoi(f.journal) > 1 {
		return usageErrorf("watch: --log - (standard input) cannot be combined with other sources")
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	metricsAddr := cfg.Watch.MetricsAddr
	if metricsFlag {
		metricsAddr = f.metricsAddr
	}
	if metricsAddr == "none" {
		metricsAddr = ""
	}
	if metricsAddr != "" {
		if err := checkMetricsAddr(metricsAddr); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(a.stateDir, 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	fw, err := a.firewall(ctx)
	if err != nil {
		return err
	}
	var sources []string
	for _, l := range f.logs {
		sources = append(sources, "file:"+l)
	}
	if f.journal {
		sources = append(sources, "journal")
	}
	stats := newWatchStats(sources, metricsAddr, time.Now())
	w, err := newWatcher(cfg, fw, stats, a.stateDir, a.stderr, time.Now, f.maxSources)
	if err != nil {
		return err
	}
	if err := w.syncBans(ctx); err != nil {
		return err
	}

	// metrics
	var srv *http.Server
	if metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(newWatchCollector(stats))
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		w.logf("metrics on http://%s/metrics", ln.Addr())
	}

	// sources
	rctx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	lines := make(chan lineMsg, 4096)
	errs := make(chan error, len(f.logs)+1)
	var ready, running sync.WaitGroup
	send := func(b []byte) {
		select {
		case lines <- lineMsg{b: slices.Clone(b)}:
		case <-rctx.Done():
		}
	}
	opts := tail.Options{FromStart: f.fromStart}
	for _, path := range f.logs {
		running.Add(1)
		if path == "-" {
			go func() {
				defer running.Done()
				cut, err := tail.ReadLines(a.stdin, send)
				stats.parseErrors(cut)
				errs <- err
			}()
			continue
		}
		ready.Add(1)
		o := opts
		var once sync.Once
		o.Ready = func() { once.Do(ready.Done) }
		o.OnRotate = func(how string) { w.logf("%s: rotated (%s)", path, how) }
		go func() {
			defer running.Done()
			err := tail.Follow(rctx, path, o, send)
			once.Do(ready.Done)
			errs <- err
		}()
	}
	if f.journal {
		running.Add(1)
		go func() {
			defer running.Done()
			errs <- tail.Journal(rctx, opts, send)
		}()
	}
	allDone := make(chan struct{})
	go func() { running.Wait(); close(allDone) }()

	go w.enforce(context.WithoutCancel(ctx))
	ready.Wait()
	w.logf("ready: reading %s", strings.Join(sources, ", "))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(watchStatusEvery)
	defer tick.Stop()
	syncEvery := 0
	writeStatus := func(running bool) {
		now := time.Now()
		stats.setTracked(w.tr.Len())
		stats.setActiveBans(w.activeBans(now))
		if err := stats.writeFile(a.stateDir, now, running); err != nil {
			w.logf("error: %v", err)
		}
	}
	writeStatus(true)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case m := <-lines:
			w.handleLine(m.b)
		case err := <-errs:
			if err != nil {
				runErr = err
				break loop
			}
		case <-allDone:
			// every source has ended (standard input at EOF): finish the
			// lines already read
			for {
				select {
				case m := <-lines:
					w.handleLine(m.b)
					continue
				default:
				}
				break
			}
			break loop
		case <-hup:
			a.cfg = nil
			cfg, err := a.config()
			if err == nil {
				err = w.reload(cfg)
			}
			if err != nil {
				w.logf("error: reload: %v (keeping the running config)", err)
				stats.enforceError(fmt.Errorf("reload: %w", err))
				continue
			}
			w.logf("config reloaded")
		case <-tick.C:
			if syncEvery++; syncEvery%6 == 0 {
				if err := w.syncBans(ctx); err != nil {
					w.logf("error: %v", err)
				}
			}
			writeStatus(true)
		}
	}
	stopSources()
	close(w.queue)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.logf("error: pending blocks not applied within 30s of shutdown")
	}
	writeStatus(false)
	w.logf("stopped")
	return runErr
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
