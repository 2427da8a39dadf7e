// Package watch is the core of the watch daemon: lines through the
// detectors, each source that crosses its threshold through the policy, and
// the blocks through the engine (host batches with EnforceHost, attacks the
// policy scopes vpc through the edge with Block), with the repeat-offender
// record, the status numbers and the periodic reconcile. The command
// (cmd/banshee watch) only parses, wires the sources and prints.
package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/cmd/internal/logsource"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
)

// StatusEvery is how often watch rewrites its status file.
const StatusEvery = 5 * time.Second

// OffencesFile keeps past watch blocks for repeat-offender escalation
// across restarts.
const OffencesFile = "watch-offences.json"

// HostBlocker is what watch needs of the host firewall (*hostfw.Firewall):
// the engine's host, through which watch's host blocks are written.
type HostBlocker = engine.Host

// Edge is what watch needs to block at the subnet edge (*ec2Edge in
// vpc.go): block's VPC path for attacks on this instance.
type Edge interface {
	World(ctx context.Context, cfg policy.Config) ([]policy.Target, policy.Snapshot, error)
	Enforce(ctx context.Context, cfg policy.Config, atk policy.Attack, known policy.Snapshot) ([]policy.Decision, error)
	// Engine is the engine on this edge, deciding with cfg on the clock
	// at (zero: the system clock): the periodic sweep reconciles through it.
	Engine(cfg policy.Config, at time.Time) *engine.Engine
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

// WorldEvery is how often watch reads its EC2 world again (and,
// while AWS fails, tries again).
var WorldEvery = 30 * time.Minute

// Watcher is the daemon's core: lines → detectors → windows → policy →
// host firewall, or the subnet edge when the policy scopes an attack vpc
// and AWS is reachable. handleLine runs on one goroutine; enforcement
// runs on another so that a slow firewall or EC2 call never stalls
// reading.
type Watcher struct {
	stateDir string
	log      io.Writer
	now      func() time.Time
	stats    *Stats
	host     HostBlocker
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
	edge     Edge       // nil: no VPC scope, every block on this host
	world    *edgeWorld // nil until read
	edgeErr  string     // the last edge failure logged (each reason once)

	queue chan watchJob
	done  chan struct{} // closed when the enforcer has finished
}

func New(cfg policy.Config, host HostBlocker, stats *Stats, stateDir string, log io.Writer, now func() time.Time, maxSources int, callers func() []policy.Protected) (*Watcher, error) {
	m, err := detect.New(cfg.Watch, now)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		stateDir: stateDir, log: log, now: now, stats: stats, host: host,
		callers: callers,
		cfg:     cfg, eng: policy.New(cfg), m: m, tr: m.NewTracker(maxSources),
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
func (w *Watcher) protected(now time.Time) []policy.Protected {
	if w.callers == nil {
		return nil
	}
	if w.callersAt.IsZero() || now.Sub(w.callersAt) > callersTTL || now.Before(w.callersAt) {
		w.callersVal, w.callersAt = w.callers(), now
	}
	return w.callersVal
}

func (w *Watcher) Logf(format string, args ...any) {
	fmt.Fprintf(w.log, "banshee watch: "+format+"\n", args...)
}

// syncBans reads the active host blocks, so that sources already blocked
// (by an earlier run, the CLI or a restore) are skipped, not re-blocked.
func (w *Watcher) SyncBans(ctx context.Context) error {
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
	w.stats.SetActiveBans(len(w.bans))
	return nil
}

// activeBans counts the known blocks that have not expired.
func (w *Watcher) ActiveBans(now time.Time) int {
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
func (w *Watcher) HandleLine(b []byte) {
	w.stats.line()
	mt, ok := w.m.Match(b)
	if !ok {
		if sk := w.m.TakeSkipped(); sk != (detect.Skipped{}) {
			w.stats.Skipped("ambiguous", sk.Ambiguous)
			w.stats.Skipped("no_address", sk.NoAddress)
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
		w.Logf("%s %s (%s): %s %s; %s", d.Target.Addr(), det.Name, atk.Reason, d.Scope, d.Action, strings.Join(d.Reasons, "; "))
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
		w.stats.SetActiveBans(len(w.bans))
		w.mu.Unlock()
		watchJob := watchJob{entry: hostfw.Entry{Prefix: d.Target, TTL: d.TTL, Reason: atk.Reason, Origin: string(policy.OriginWatch)}}
		if d.Scope == policy.ScopeVPC && edge != nil {
			one := atk
			one.Sources, one.Targets = []netip.Prefix{d.Target}, nil
			watchJob.vpc, watchJob.eng = &one, w.eng
			watchJob.known = policy.Snapshot{Blocks: snap.Blocks, Offences: snap.Offences, Protected: snap.Protected}
		}
		w.queue <- watchJob
	}
}

// enforce applies queued blocks, batching what has piled up, until the
// queue is closed: attacks scoped vpc through the edge first (their host
// fallbacks join the batch), then one host firewall call.
func (w *Watcher) Enforce(ctx context.Context) {
	defer close(w.done)
	for j0 := range w.queue {
		batch := []watchJob{j0}
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
			w.stats.EnforceError(err)
			w.Logf("error: %v", err)
		}
	}
}

// enforceHost blocks entries on this host through the engine; on failure
// it forgets them, so the next trip tries again.
func (w *Watcher) enforceHost(ctx context.Context, batch []hostfw.Entry) {
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
		w.stats.EnforceError(err)
		w.Logf("error: %v", err)
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
	w.Logf("blocked on this host: %s", strings.Join(names, " "))
}

// enforceEdge runs the attacks scoped vpc through the edge, grouped by
// engine, detector port and kind into one attack each (so many sources
// cost one read of the world and may aggregate), and returns the host
// blocks that remain: the policy's host decisions against the fresh
// world, the fallback of VPC blocks that found no room or failed, and,
// when AWS cannot be reached at all, every watchJob's own host entry.
func (w *Watcher) enforceEdge(ctx context.Context, jobs []watchJob) []hostfw.Entry {
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
		ds, err := edge.Enforce(ctx, k.eng.Config(), atk, snap)
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
				w.Logf("blocked at the subnet edge: %s in %s rule %d until %s", d.Target, d.NACLID, d.RuleNumber, d.ExpiresAt.UTC().Format(time.RFC3339))
				w.noteEdgeBlock(d)
			case d.Action == policy.ActionBlock && d.Scope == policy.ScopeHost:
				e := entry[d.Target]
				e.Prefix, e.TTL = d.Target, d.TTL
				host = append(host, e)
			default:
				w.Logf("%s: %s %s against the fresh EC2 read; %s", d.Target, d.Scope, d.Action, strings.Join(d.Reasons, "; "))
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
func (w *Watcher) edgeFailed(err error) {
	w.stats.EnforceError(err)
	w.mu.Lock()
	first := w.edgeErr != err.Error()
	w.edgeErr = err.Error()
	w.mu.Unlock()
	if first {
		w.Logf("error: %v", err)
	}
}

func (w *Watcher) edgeOK() {
	w.mu.Lock()
	w.edgeErr = ""
	w.mu.Unlock()
}

// noteEdgeBlock adds an enforced VPC block to the known NACL, so that the
// next trip of the same source is seen as already denied there.
func (w *Watcher) noteEdgeBlock(d policy.Decision) {
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
func (w *Watcher) FindEdge(ctx context.Context, newEdge func(context.Context) (Edge, error)) bool {
	e, err := newEdge(ctx)
	if err != nil {
		w.Logf("VPC scope off (%v): every block is enforced on this host", err)
		return false
	}
	w.mu.Lock()
	w.edge = e
	w.mu.Unlock()
	return true
}

// readWorld reads the edge's world once; a failure is logged once per
// reason and leaves the last world (or none: host scope only) in place.
func (w *Watcher) ReadWorld(ctx context.Context, cfg policy.NACLConfig) error {
	w.mu.Lock()
	edge, pc := w.edge, w.cfg
	w.mu.Unlock()
	if edge == nil {
		return nil
	}
	pc.NACL = cfg
	targets, snap, err := edge.World(ctx, pc)
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
		w.Logf("VPC scope on: %s in %s (network ACL %s)", targets[0].InstanceID, targets[0].SubnetID, strings.Join(ids, ", "))
	}
	return nil
}

// keepWorld reads the world now and then every WorldEvery until ctx
// ends.
func (w *Watcher) KeepWorld(ctx context.Context, cfg policy.NACLConfig) {
	t := time.NewTicker(WorldEvery)
	defer t.Stop()
	for {
		_ = w.ReadWorld(ctx, cfg)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reload swaps the config: detectors, thresholds, allowlist and policy.
// Blocks are untouched; windows are kept when the detectors are the same.
func (w *Watcher) Reload(cfg policy.Config) error {
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

func (w *Watcher) offencesPath() string { return filepath.Join(w.stateDir, OffencesFile) }

func (w *Watcher) loadOffences() error {
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
func (w *Watcher) saveOffences() error {
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

// sourceOptions are the options of watch's log sources: lines too long
// to read and journal entries that make no line are counted (and the
// first of each logged).
func (w *Watcher) SourceOptions(fromStart bool) logsource.Options {
	var longOnce, badOnce sync.Once
	return logsource.Options{
		FromStart: fromStart,
		OnLong: func() {
			w.stats.Skipped("too_long", 1)
			longOnce.Do(func() {
				w.Logf("dropped a line longer than %d bytes unread (counted in banshee_watch_skipped_lines_total{reason=\"too_long\"}; further ones are only counted)", logsource.DefaultMaxLine)
			})
		},
		OnBad: func() {
			w.stats.parseError()
			badOnce.Do(func() {
				w.Logf("skipped a journal entry that makes no line (not JSON, or no usable MESSAGE; counted in banshee_watch_parse_errors_total; further ones are only counted)")
			})
		},
	}
}

// ReconcileEvery is how often watch compares what it recorded with
// what is in force on this host (a deleted jump, a lost set entry) and
// repairs drift; the subnet edge is swept every SweepEvery.
var (
	ReconcileEvery = 10 * time.Second
	SweepEvery     = time.Minute
)

// keepReconciled runs the engine's level-triggered repair until ctx ends:
// the host when list finds drift, and (with the edge on) the network ACL
// of this instance's subnet, so expired VPC blocks go without a sweep.
func (w *Watcher) KeepReconciled(ctx context.Context, eng *engine.Engine) {
	t := time.NewTicker(ReconcileEvery)
	defer t.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if lr, err := eng.List(ctx, engine.ListRequest{Where: engine.HostOnly}); err != nil {
			w.Logf("error: checking for drift: %v", err)
		} else if lr.Drifted() {
			w.Logf("drift: %s; repairing", lr.StatusLine())
			if rr, err := eng.Reconcile(ctx, engine.HostOnly, nil); err != nil {
				w.stats.EnforceError(err)
				w.Logf("error: reconcile: %v", err)
			} else {
				w.Logf("reconciled: %d block(s) in force from the journal, %d recorded from the kernel", rr.Restored, rr.Adopted)
			}
		}
		if time.Since(lastSweep) < SweepEvery {
			continue
		}
		lastSweep = time.Now()
		w.mu.Lock()
		edge, world := w.edge, w.world
		cfg := w.cfg
		w.mu.Unlock()
		if edge == nil || world == nil || len(world.targets) == 0 {
			continue
		}
		subnet := world.targets[0].SubnetID
		rr, err := edge.Engine(cfg, time.Time{}).Reconcile(ctx, engine.VPCOnly, []string{subnet})
		if err != nil {
			w.Logf("error: sweeping %s: %v", subnet, err)
			continue
		}
		for _, b := range rr.Recreated {
			w.Logf("re-created %s in %s rule %d: someone else deleted it before its expiry", b.Target, b.NACLID, b.RuleNumber)
		}
		for _, n := range rr.NotRecreated {
			w.stats.EnforceError(fmt.Errorf("%s in %s rule %d was deleted by someone else and not re-created: %s", n.Target, n.NACLID, n.RuleNumber, n.Why))
			w.Logf("warning: %s in %s rule %d was deleted by someone else and not re-created: %s", n.Target, n.NACLID, n.RuleNumber, n.Why)
		}
		if rr.Sweep != nil && len(rr.Sweep.Removed) > 0 {
			w.Logf("swept %d expired network ACL block(s) of %s", len(rr.Sweep.Removed), subnet)
		}
	}
}

// Stats are the daemon's numbers (the status file and the metrics).
func (w *Watcher) Stats() *Stats { return w.stats }

// Tracked is how many (source, detector) windows are kept.
func (w *Watcher) Tracked() int { return w.tr.Len() }

// Close stops taking blocks and waits up to wait for Enforce to apply what
// is queued; false when it did not finish in time.
func (w *Watcher) Close(wait time.Duration) bool {
	close(w.queue)
	select {
	case <-w.done:
		return true
	case <-time.After(wait):
		return false
	}
}
