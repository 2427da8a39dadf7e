package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/cmd/internal/logsource"
	"github.com/banshee-project/banshee/cmd/internal/watch"
	"github.com/banshee-project/banshee/policy/detect"
	"github.com/spf13/cobra"
)

func init() { register(newWatchCmd) }

// watchFlags are watch's own flags.
type watchFlags struct {
	logs        []string
	journal     bool
	fromStart   bool
	journalDir  string
	metricsAddr string
	maxSources  int
}

func newWatchCmd(a *app) *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [--log FILE]... [--journal | --journal-directory DIR] [--from-start]",
		Short: "Follow logs, detect attacks and block them (the daemon)",
		Long: `watch follows log files (inotify; rotation by rename and copytruncate), the
systemd journal (--journal) or standard input (--log -), runs every line through
the detectors, and when a source fails max_retry times within find_time asks
the policy (origin watch) and blocks it on this host. The allowlist and the
other protections of the policy always apply.

On an EC2 instance with a region and credentials (the instance role), watch
also knows its subnet's network ACL and the VPC's CIDRs, so the policy can
scope an attack vpc (a flood at or above policy.flood_rate, say): that block
goes to the network ACL through the same path as block --scope vpc, with
metadata origin watch, decided again against a fresh EC2 read. Off EC2, or
when EC2 fails or the ACL has no room, watch blocks on this host instead and
logs the reason once.

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
	fl.StringVar(&f.journalDir, "journal-directory", "", "read the journal files in this directory (journalctl --directory) instead of the system journal; implies --journal")
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
	if f.journalDir != "" {
		st, err := os.Stat(f.journalDir)
		if err != nil || !st.IsDir() {
			return usageErrorf("watch: --journal-directory %q: not a directory", f.journalDir)
		}
		f.journal = true
	}
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
	switch {
	case f.journalDir != "":
		sources = append(sources, "journal:"+f.journalDir)
	case f.journal:
		sources = append(sources, "journal")
	}
	stats := watch.NewStats(sources, metricsAddr, time.Now())
	callers := engine.Local(engine.LocalOptions{SSHPorts: sshPorts(cfg, a.stderr), Warn: func(err error) {
		fmt.Fprintf(a.stderr, "banshee watch: %v\n", err)
	}})
	w, err := watch.New(cfg, fw, stats, a.stateDir, a.stderr, time.Now, f.maxSources, callers)
	if err != nil {
		return err
	}
	if err := w.SyncBans(ctx); err != nil {
		return err
	}

	// metrics
	var srv *http.Server
	if metricsAddr != "" {
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(stats))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		w.Logf("metrics on http://%s/metrics", ln.Addr())
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
	opts := w.SourceOptions(f.fromStart)
	opts.JournalDirectory = f.journalDir
	for _, path := range f.logs {
		running.Add(1)
		if path == "-" {
			go func() {
				defer running.Done()
				cut, err := logsource.ReadLines(a.stdin, send)
				if cut > 0 {
					stats.Skipped("too_long", int64(cut))
					w.Logf("dropped %d lines longer than %d bytes unread", cut, logsource.DefaultMaxLine)
				}
				errs <- err
			}()
			continue
		}
		ready.Add(1)
		o := opts
		var once sync.Once
		o.Ready = func() { once.Do(ready.Done) }
		o.OnRotate = func(how string) { w.Logf("%s: rotated (%s)", path, how) }
		go func() {
			defer running.Done()
			err := logsource.Follow(rctx, path, o, send)
			once.Do(ready.Done)
			errs <- err
		}()
	}
	if f.journal {
		running.Add(1)
		go func() {
			defer running.Done()
			errs <- logsource.Journal(rctx, opts, send)
		}()
	}
	allDone := make(chan struct{})
	go func() { running.Wait(); close(allDone) }()

	go w.Enforce(context.WithoutCancel(ctx))
	// VPC scope through awsnacl when this is an EC2 instance with a region
	// and credentials; found (or not) without holding up reading.
	go func() {
		if w.FindEdge(rctx, newWatchEdge) {
			w.KeepWorld(rctx, cfg.NACL)
		}
	}()
	if eng, err := a.engine(); err == nil {
		go w.KeepReconciled(rctx, eng)
	}
	ready.Wait()
	w.Logf("ready: reading %s", strings.Join(sources, ", "))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(watch.StatusEvery)
	defer tick.Stop()
	syncEvery := 0
	writeStatus := func(running bool) {
		now := time.Now()
		stats.SetTracked(w.Tracked())
		stats.SetActiveBans(w.ActiveBans(now))
		if err := stats.WriteFile(a.stateDir, now, running); err != nil {
			w.Logf("error: %v", err)
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
			w.HandleLine(m.b)
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
					w.HandleLine(m.b)
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
				err = w.Reload(cfg)
			}
			if err != nil {
				w.Logf("error: reload: %v (keeping the running config)", err)
				stats.EnforceError(fmt.Errorf("reload: %w", err))
				continue
			}
			w.Logf("config reloaded")
		case <-tick.C:
			if syncEvery++; syncEvery%6 == 0 {
				if err := w.SyncBans(ctx); err != nil {
					w.Logf("error: %v", err)
				}
			}
			writeStatus(true)
		}
	}
	stopSources()
	if !w.Close(30 * time.Second) {
		w.Logf("error: pending blocks not applied within 30s of shutdown")
	}
	writeStatus(false)
	w.Logf("stopped")
	return runErr
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
