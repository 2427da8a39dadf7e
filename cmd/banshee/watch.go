package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
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

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/cmd/internal/logsource"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
	"github.com/spf13/cobra"
)

func init() { register(newWatchCmd) }

// watchStatusEvery is how often watch rewrites its status file.
const watchStatusEvery = 5 * time.Second

// watchOffencesFile keeps past watch blocks for repeat-offender escalation
// across restarts.
const watchOffencesFile = "watch-offences.json"

// hostBlocker is what watch needs of the host firewall (*hostfw.Firewall):
// the engine's host, through which watch's host blocks are written.
type hostBlocker = engine.Host

// subnetEdge is what watch needs to block at the subnet edge (*ec2Edge in
// vpc.go): block's VPC path for attacks on this instance.
type subnetEdge interface {
	world(ctx context.Context, cfg policy.Config) ([]policy.Target, policy.Snapshot, error)
	enforce(ctx context.Context, cfg policy.Config, atk policy.Attack, known policy.Snapshot) ([]policy.Decision, error)
}

// edgeWorld is what watch's own decisions know of EC2: this instance as
// the target, its subnet's NACL and the VPC's CIDRs. Security groups are
// left out on purpose: a source that fails in our logs got through them.
type edgeWorld struct {
	targets []policy.Target
	nacls   map[string]policy.NACL
	cidrs   []netip.Prefix
}

// watchJob is one block for the enforcer: a host entry, or (vpc set) an
// attack the policy scoped vpc, enforced through the edge with entry as
// its fallback.
type watchJob struct {
	entry hostfw.Entry
	vpc   *policy.Attack
	eng   *policy.Engine
	known policy.Snapshot // what watch knew: host blocks and past offences of the source
}

// watchWorldEvery is how often watch reads its EC2 world again (and,
// while AWS fails, tries again).
var watchWorldEvery = 30 * time.Minute

// watcher is the daemon's core: lines → detectors → windows → policy →
// host firewall, or the subnet edge when the policy scopes an attack vpc
// and AWS is reachable. handleLine runs on one goroutine; enforcement
// runs on another so that a slow firewall or EC2 call never stalls
// reading.
type watcher struct {
	stateDir string
	log      io.Writer
	now      func() time.Time
	stats    *watchStats
	host     hostBlocker
	// hosts writes host blocks the way every door does (re-blocks
	// never shorten a block nor drop its reason).
	hosts *engine.Engine

	// owned by the reading goroutine
	cfg policy.Config
	eng *policy.Engine
	m   *detect.Matcher
	tr  *detect.Tracker

	// callers returns the networks no block may cut off: the SSH peers,
	// addresses, gateways and DNS resolvers of this host (refreshed at
	// most every callersTTL).
	callers    func() []policy.Protected
	callersAt  time.Time
	callersVal []policy.Protected

	mu       sync.Mutex
	bans     map[netip.Prefix]time.Time // known host blocks → expiry (zero: permanent)
	offences []policy.Offence
	edge     subnetEdge // nil: no VPC scope, every block on this host
	world    *edgeWorld // nil until read
	edgeErr  string     // the last edge failure logged (each reason once)

	queue chan watchJob
	done  chan struct{} // closed when the enforcer has finished
}

func newWatcher(cfg policy.Config, host hostBlocker, stats *watchStats, stateDir string, log io.Writer, now func() time.Time, maxSources int) (*watcher, error) {
	m, err := detect.New(cfg.Watch, now)
	if err != nil {
		return nil, err
	}
	w := &watcher{
		stateDir: stateDir, log: log, now: now, stats: stats, host: host,
		callers: engine.Local(engine.LocalOptions{SSHPorts: sshPorts(cfg, log), Warn: func(err error) {
			fmt.Fprintf(log, "banshee watch: %v\n", err)
		}}),
		cfg: cfg, eng: policy.New(cfg), m: m, tr: m.NewTracker(maxSources),
		hosts: engine.New(engine.Deps{Config: cfg, Host: func(context.Context) (engine.Host, error) { return host, nil }, Now: now}),
		bans:  map[netip.Prefix]time.Time{},
		queue: make(chan watchJob, 4096),
		done:  make(chan struct{}),
	}
	if err := w.loadOffences(); err != nil {
		return nil, err
	}
	return w, nil
}

// callersTTL is how long watch trusts its list of SSH peers.
const callersTTL = 2 * time.Second

// protected returns the SSH peers of this host, so an operator whose
// session shares an address with failing logins is never cut off.
func (w *watcher) protected(now time.Time) []policy.Protected {
	if w.callers == nil {
		return nil
	}
	if w.callersAt.IsZero() || now.Sub(w.callersAt) > callersTTL || now.Before(w.callersAt) {
		w.callersVal, w.callersAt = w.callers(), now
	}
	return w.callersVal
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
		if sk := w.m.TakeSkipped(); sk != (detect.Skipped{}) {
			w.stats.skipped("ambiguous", sk.Ambiguous)
			w.stats.skipped("no_address", sk.NoAddress)
		}
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
	snap := policy.Snapshot{Now: now.UTC(), Protected: w.protected(now)}
	w.mu.Lock()
	if exp, ok := w.bans[src]; ok && (exp.IsZero() || exp.After(now)) {
		snap.Blocks = []policy.Block{{Target: src, Scope: policy.ScopeHost, ExpiresAt: exp}}
	}
	for _, o := range w.offences {
		if o.Source == src {
			snap.Offences = append(snap.Offences, o)
		}
	}
	edge := w.edge
	if ew := w.world; ew != nil && edge != nil {
		// This instance in its subnet: the policy can scope the attack
		// vpc; the enforcer decides again against a fresh read.
		atk.Targets, snap.NACLs, snap.VPCCIDRs = ew.targets, ew.nacls, ew.cidrs
	}
	w.mu.Unlock()
	for _, d := range w.eng.Decide(atk, snap) {
		w.stats.decision(string(d.Scope), string(d.Action))
		w.logf("%s %s (%s): %s %s; %s", d.Target.Addr(), det.Name, atk.Reason, d.Scope, d.Action, strings.Join(d.Reasons, "; "))
		if d.Action != policy.ActionBlock {
			continue
		}
		w.mu.Lock()
		if d.TTL > 0 {
			w.bans[d.Target] = now.Add(d.TTL)
		} else {
			w.bans[d.Target] = time.Time{}
		}
		w.offences = append(w.offences, policy.Offence{Source: d.Target, At: now.UTC()})
		w.stats.setActiveBans(len(w.bans))
		w.mu.Unlock()
		job := watchJob{entry: hostfw.Entry{Prefix: d.Target, TTL: d.TTL, Reason: atk.Reason, Origin: string(policy.OriginWatch)}}
		if d.Scope == policy.ScopeVPC && edge != nil {
			one := atk
			one.Sources, one.Targets = []netip.Prefix{d.Target}, nil
			job.vpc, job.eng = &one, w.eng
			job.known = policy.Snapshot{Blocks: snap.Blocks, Offences: snap.Offences, Protected: snap.Protected}
		}
		w.queue <- job
	}
}

// enforce applies queued blocks, batching what has piled up, until the
// queue is closed: attacks scoped vpc through the edge first (their host
// fallbacks join the batch), then one host firewall call.
func (w *watcher) enforce(ctx context.Context) {
	defer close(w.done)
	for job := range w.queue {
		batch := []watchJob{job}
	drain:
		for len(batch) < 1024 {
			select {
			case j2, ok := <-w.queue:
				if !ok {
					break drain
				}
				batch = append(batch, j2)
			default:
				break drain
			}
		}
		var host []hostfw.Entry
		var edgeJobs []watchJob
		for _, j := range batch {
			if j.vpc != nil {
				edgeJobs = append(edgeJobs, j)
			} else {
				host = append(host, j.entry)
			}
		}
		host = append(host, w.enforceEdge(ctx, edgeJobs)...)
		if len(host) > 0 {
			w.enforceHost(ctx, host)
		}
		if err := w.saveOffences(); err != nil {
			w.stats.enforceError(err)
			w.logf("error: %v", err)
		}
	}
}

// enforceHost blocks entries on this host through the engine; on failure
// it forgets them, so the next trip tries again.
func (w *watcher) enforceHost(ctx context.Context, batch []hostfw.Entry) {
	now := w.now().UTC()
	ds := make([]policy.Decision, len(batch))
	reasons := make(map[netip.Prefix]string, len(batch))
	for i, b := range batch {
		ds[i] = policy.Decision{Target: b.Prefix, Scope: policy.ScopeHost, Action: policy.ActionBlock, TTL: b.TTL, TTLSeconds: int64(b.TTL / time.Second)}
		if b.TTL > 0 {
			ds[i].ExpiresAt = now.Add(b.TTL)
		}
		reasons[b.Prefix] = b.Reason
	}
	res, err := w.hosts.EnforceHost(ctx, ds, reasons, policy.OriginWatch)
	if err != nil {
		err = fmt.Errorf("blocking %d source(s) on this host: %w", len(batch), err)
		w.stats.enforceError(err)
		w.logf("error: %v", err)
		w.mu.Lock()
		for _, b := range batch {
			delete(w.bans, b.Prefix)
		}
		w.mu.Unlock()
		return
	}
	names := make([]string, len(batch))
	w.mu.Lock()
	for i, d := range res.Decisions {
		names[i] = d.Target.String()
		w.bans[d.Target] = d.ExpiresAt // a block kept longer than asked says so
	}
	w.mu.Unlock()
	w.logf("blocked on this host: %s", strings.Join(names, " "))
}

// enforceEdge runs the attacks scoped vpc through the edge, grouped by
// engine, detector port and kind into one attack each (so many sources
// cost one read of the world and may aggregate), and returns the host
// blocks that remain: the policy's host decisions against the fresh
// world, the fallback of VPC blocks that found no room or failed, and,
// when AWS cannot be reached at all, every job's own host entry.
func (w *watcher) enforceEdge(ctx context.Context, jobs []watchJob) []hostfw.Entry {
	w.mu.Lock()
	edge := w.edge
	w.mu.Unlock()
	if len(jobs) == 0 || edge == nil {
		var host []hostfw.Entry
		for _, j := range jobs {
			host = append(host, j.entry)
		}
		return host
	}
	type key struct {
		eng  *policy.Engine
		port policy.Port
		kind policy.Kind
	}
	groups := map[key][]watchJob{}
	var order []key
	for _, j := range jobs {
		k := key{j.eng, j.vpc.Port, j.vpc.Kind}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], j)
	}
	var host []hostfw.Entry
	for _, k := range order {
		js := groups[k]
		atk := *js[0].vpc
		atk.Sources, atk.Volume = nil, nil
		snap := policy.Snapshot{Now: w.now().UTC(), Protected: js[0].known.Protected}
		for _, j := range js {
			snap.Blocks = append(snap.Blocks, j.known.Blocks...)
			snap.Offences = append(snap.Offences, j.known.Offences...)
			atk.Sources = append(atk.Sources, j.vpc.Sources...)
			atk.Volume = append(atk.Volume, sourceVolume(*j.vpc)...)
			atk.Rate = min(atk.Rate, j.vpc.Rate)
			atk.Evidence = max(atk.Evidence, j.vpc.Evidence)
		}
		if len(js) > 1 {
			atk.Reason = fmt.Sprintf("%s (and %d more sources)", atk.Reason, len(js)-1)
		}
		ds, err := edge.enforce(ctx, k.eng.Config(), atk, snap)
		if len(ds) == 0 {
			w.edgeFailed(fmt.Errorf("VPC scope unavailable, blocking %d source(s) on this host instead: %w", len(js), err))
			for _, j := range js {
				host = append(host, j.entry)
			}
			continue
		}
		if err != nil {
			w.edgeFailed(fmt.Errorf("VPC block failed, falling back to this host: %w", err))
		} else {
			w.edgeOK()
		}
		entry := map[netip.Prefix]hostfw.Entry{}
		for _, j := range js {
			entry[j.entry.Prefix] = j.entry
		}
		for _, d := range ds {
			switch {
			case d.Action == policy.ActionBlock && d.Scope == policy.ScopeVPC:
				w.logf("blocked at the subnet edge: %s in %s rule %d until %s", d.Target, d.NACLID, d.RuleNumber, d.ExpiresAt.UTC().Format(time.RFC3339))
				w.noteEdgeBlock(d)
			case d.Action == policy.ActionBlock && d.Scope == policy.ScopeHost:
				e := entry[d.Target]
				e.Prefix, e.TTL = d.Target, d.TTL
				host = append(host, e)
			default:
				w.logf("%s: %s %s against the fresh EC2 read; %s", d.Target, d.Scope, d.Action, strings.Join(d.Reasons, "; "))
				w.mu.Lock()
				delete(w.bans, d.Target)
				w.mu.Unlock()
			}
		}
	}
	return host
}

// sourceVolume is, per source of a detector's attack, what it was seen
// doing: its Volume when set, else its evidence (the weighted failures
// that tripped the detector), so a batch of many sources keeps each one's
// own weight when the edge is placed by value.
func sourceVolume(a policy.Attack) []int64 {
	if len(a.Volume) == len(a.Sources) {
		return a.Volume
	}
	v := make([]int64, len(a.Sources))
	for i := range v {
		v[i] = int64(max(a.Evidence/max(len(a.Sources), 1), 1))
	}
	return v
}

// edgeFailed counts an edge failure and logs it once per reason.
func (w *watcher) edgeFailed(err error) {
	w.stats.enforceError(err)
	w.mu.Lock()
	first := w.edgeErr != err.Error()
	w.edgeErr = err.Error()
	w.mu.Unlock()
	if first {
		w.logf("error: %v", err)
	}
}

func (w *watcher) edgeOK() {
	w.mu.Lock()
	w.edgeErr = ""
	w.mu.Unlock()
}

// noteEdgeBlock adds an enforced VPC block to the known NACL, so that the
// next trip of the same source is seen as already denied there.
func (w *watcher) noteEdgeBlock(d policy.Decision) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.world == nil {
		return
	}
	cidr := d.Target
	if d.Aggregate != nil {
		cidr = *d.Aggregate
	}
	nacls := maps.Clone(w.world.nacls)
	for sn, n := range nacls {
		if n.ID != d.NACLID {
			continue
		}
		n.Entries = slices.DeleteFunc(slices.Clone(n.Entries), func(e policy.NACLEntry) bool { return e.RuleNumber == d.RuleNumber && !e.Egress })
		n.Entries = append(n.Entries, policy.NACLEntry{RuleNumber: d.RuleNumber, CIDR: cidr, ExpiresAt: d.ExpiresAt, Origin: policy.OriginWatch})
		nacls[sn] = n
	}
	w.world = &edgeWorld{targets: w.world.targets, nacls: nacls, cidrs: w.world.cidrs}
}

// findEdge makes the edge when AWS can be used from here (on EC2, with a
// region) and reads the world once; when it cannot, it says why once and
// every block stays on this host. newEdge is newEC2Edge outside tests.
func (w *watcher) findEdge(ctx context.Context, newEdge func(context.Context) (*ec2Edge, error)) bool {
	e, err := newEdge(ctx)
	if err != nil {
		w.logf("VPC scope off (%v): every block is enforced on this host", err)
		return false
	}
	w.mu.Lock()
	w.edge = e
	w.mu.Unlock()
	return true
}

// readWorld reads the edge's world once; a failure is logged once per
// reason and leaves the last world (or none: host scope only) in place.
func (w *watcher) readWorld(ctx context.Context, cfg policy.NACLConfig) error {
	w.mu.Lock()
	edge, pc := w.edge, w.cfg
	w.mu.Unlock()
	if edge == nil {
		return nil
	}
	pc.NACL = cfg
	targets, snap, err := edge.world(ctx, pc)
	if err != nil {
		err = fmt.Errorf("reading this instance's EC2 world (VPC scope waits for it; blocks go to this host meanwhile): %w", err)
		w.edgeFailed(err)
		return err
	}
	w.mu.Lock()
	first := w.world == nil
	w.world = &edgeWorld{targets: targets, nacls: snap.NACLs, cidrs: snap.VPCCIDRs}
	w.edgeErr = ""
	w.mu.Unlock()
	if first && len(targets) > 0 {
		ids := make([]string, 0, len(snap.NACLs))
		for _, n := range snap.NACLs {
			ids = append(ids, n.ID)
		}
		w.logf("VPC scope on: %s in %s (network ACL %s)", targets[0].InstanceID, targets[0].SubnetID, strings.Join(ids, ", "))
	}
	return nil
}

// keepWorld reads the world now and then every watchWorldEvery until ctx
// ends.
func (w *watcher) keepWorld(ctx context.Context, cfg policy.NACLConfig) {
	t := time.NewTicker(watchWorldEvery)
	defer t.Stop()
	for {
		_ = w.readWorld(ctx, cfg)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
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
		w.tr = m.NewTracker(0)
	}
	// The enforcer reads cfg (saveOffences) under mu.
	w.mu.Lock()
	w.cfg, w.eng, w.m = cfg, policy.New(cfg), m
	w.mu.Unlock()
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
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(stats))
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
	opts := w.sourceOptions(f.fromStart)
	opts.JournalDirectory = f.journalDir
	for _, path := range f.logs {
		running.Add(1)
		if path == "-" {
			go func() {
				defer running.Done()
				cut, err := logsource.ReadLines(a.stdin, send)
				if cut > 0 {
					stats.skipped("too_long", int64(cut))
					w.logf("dropped %d lines longer than %d bytes unread", cut, logsource.DefaultMaxLine)
				}
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

	go w.enforce(context.WithoutCancel(ctx))
	// VPC scope through awsnacl when this is an EC2 instance with a region
	// and credentials; found (or not) without holding up reading.
	go func() {
		if w.findEdge(rctx, newEC2Edge) {
			w.keepWorld(rctx, cfg.NACL)
		}
	}()
	if eng, err := a.engine(); err == nil {
		go w.keepReconciled(rctx, eng)
	}
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

// sourceOptions are the options of watch's log sources: lines too long
// to read and journal entries that make no line are counted (and the
// first of each logged).
func (w *watcher) sourceOptions(fromStart bool) logsource.Options {
	var longOnce, badOnce sync.Once
	return logsource.Options{
		FromStart: fromStart,
		OnLong: func() {
			w.stats.skipped("too_long", 1)
			longOnce.Do(func() {
				w.logf("dropped a line longer than %d bytes unread (counted in banshee_watch_skipped_lines_total{reason=\"too_long\"}; further ones are only counted)", logsource.DefaultMaxLine)
			})
		},
		OnBad: func() {
			w.stats.parseError()
			badOnce.Do(func() {
				w.logf("skipped a journal entry that makes no line (not JSON, or no usable MESSAGE; counted in banshee_watch_parse_errors_total; further ones are only counted)")
			})
		},
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
