package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// watchStatusFile is the file in the state directory where watch writes
// its counters every few seconds and on exit; `banshee status` reads it.
const watchStatusFile = "watch-status.json"

// watchStatus is the JSON of watch-status.json: the same numbers the
// Prometheus endpoint serves.
type watchStatus struct {
	PID            int              `json:"pid"`
	StartedAt      time.Time        `json:"started_at"`
	UpdatedAt      time.Time        `json:"updated_at"`
	Running        bool             `json:"running"` // false once watch has exited
	Sources        []string         `json:"sources"`
	MetricsAddr    string           `json:"metrics_addr,omitempty"`
	LinesRead      int64            `json:"lines_read"`
	Matches        map[string]int64 `json:"matches"`   // by detector
	Decisions      map[string]int64 `json:"decisions"` // by "scope/action"
	ActiveBans     int              `json:"active_bans"`
	TrackedSources int              `json:"tracked_sources"`
	ParseErrors    int64            `json:"parse_errors"`
	SkippedLines   map[string]int64 `json:"skipped_lines"` // failure lines not acted on, by reason: too_long, ambiguous, no_address
	EnforceErrors  int64            `json:"enforce_errors"`
	Reloads        int64            `json:"reloads"`
	LastError      string           `json:"last_error,omitempty"`
}

// watchStats is the single source of the daemon's numbers: the Prometheus
// collector and the status file both read it.
type watchStats struct {
	mu sync.Mutex
	st watchStatus
}

func newWatchStats(sources []string, metricsAddr string, now time.Time) *watchStats {
	return &watchStats{st: watchStatus{
		PID: os.Getpid(), StartedAt: now.UTC(), Running: true, Sources: sources, MetricsAddr: metricsAddr,
		Matches: map[string]int64{}, Decisions: map[string]int64{}, SkippedLines: map[string]int64{},
	}}
}

func (s *watchStats) line()            { s.mu.Lock(); s.st.LinesRead++; s.mu.Unlock() }
func (s *watchStats) match(det string) { s.mu.Lock(); s.st.Matches[det]++; s.mu.Unlock() }
func (s *watchStats) skipped(reason string, n int64) {
	s.mu.Lock()
	s.st.SkippedLines[reason] += n
	s.mu.Unlock()
}
func (s *watchStats) reload()             { s.mu.Lock(); s.st.Reloads++; s.mu.Unlock() }
func (s *watchStats) setTracked(n int)    { s.mu.Lock(); s.st.TrackedSources = n; s.mu.Unlock() }
func (s *watchStats) setActiveBans(n int) { s.mu.Lock(); s.st.ActiveBans = n; s.mu.Unlock() }
func (s *watchStats) decision(scope, action string) {
	s.mu.Lock()
	s.st.Decisions[scope+"/"+action]++
	s.mu.Unlock()
}

func (s *watchStats) enforceError(err error) {
	s.mu.Lock()
	s.st.EnforceErrors++
	s.st.LastError = err.Error()
	s.mu.Unlock()
}

// snapshot returns a deep copy.
func (s *watchStats) snapshot(now time.Time) watchStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.UpdatedAt = now.UTC()
	st.Sources = slices.Clone(s.st.Sources)
	st.Matches = maps.Clone(s.st.Matches)
	st.Decisions = maps.Clone(s.st.Decisions)
	st.SkippedLines = maps.Clone(s.st.SkippedLines)
	return st
}

// writeFile writes the status atomically into dir.
func (s *watchStats) writeFile(dir string, now time.Time, running bool) error {
	st := s.snapshot(now)
	st.Running = running
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the watch status: %w", err)
	}
	tmp, err := os.CreateTemp(dir, watchStatusFile+".*")
	if err != nil {
		return fmt.Errorf("writing the watch status: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the watch status: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the watch status: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing the watch status: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, watchStatusFile)); err != nil {
		return fmt.Errorf("writing the watch status: %w", err)
	}
	return nil
}

// readWatchStatus reads the status file of the watch daemon from the state
// directory. It returns nil, nil when watch has never run there.
func readWatchStatus(stateDir string) (*watchStatus, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, watchStatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the watch status: %w", err)
	}
	var st watchStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("reading the watch status %s: %w", filepath.Join(stateDir, watchStatusFile), err)
	}
	return &st, nil
}

// watchStatusText prints the watch status for `banshee status`.
func watchStatusText(w io.Writer, st *watchStatus, now time.Time) {
	if st == nil {
		fmt.Fprintln(w, "watch: not running (no status file)")
		return
	}
	state := "running"
	switch {
	case !st.Running:
		state = "stopped"
	case now.Sub(st.UpdatedAt) > 3*watchStatusEvery:
		state = fmt.Sprintf("not updated since %s (stale)", st.UpdatedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "watch: %s, pid %d, since %s, reading %s\n", state, st.PID, st.StartedAt.Format(time.RFC3339), strings.Join(st.Sources, ", "))
	fmt.Fprintf(w, "watch: %d lines read, %d parse errors, %d tracked sources, %d active bans, %d enforcement errors\n",
		st.LinesRead, st.ParseErrors, st.TrackedSources, st.ActiveBans, st.EnforceErrors)
	for _, k := range slices.Sorted(maps.Keys(st.Matches)) {
		fmt.Fprintf(w, "watch: matches %s %d\n", k, st.Matches[k])
	}
	for _, k := range slices.Sorted(maps.Keys(st.Decisions)) {
		fmt.Fprintf(w, "watch: decisions %s %d\n", k, st.Decisions[k])
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "watch: last error: %s\n", st.LastError)
	}
}

// watchCollector exports watchStats to Prometheus.
type watchCollector struct {
	s                                                                   *watchStats
	lines, matches, decisions, bans, tracked, parseErr, enfErr, skipped *prometheus.Desc
}

func newWatchCollector(s *watchStats) *watchCollector {
	return &watchCollector{
		s:         s,
		lines:     prometheus.NewDesc("banshee_watch_lines_read_total", "Log lines read.", nil, nil),
		matches:   prometheus.NewDesc("banshee_watch_matches_total", "Failure lines matched, by detector.", []string{"detector"}, nil),
		decisions: prometheus.NewDesc("banshee_watch_decisions_total", "Policy decisions, by scope and action.", []string{"scope", "action"}, nil),
		bans:      prometheus.NewDesc("banshee_watch_active_bans", "Host blocks active now.", nil, nil),
		tracked:   prometheus.NewDesc("banshee_watch_tracked_sources", "Source windows held.", nil, nil),
		parseErr:  prometheus.NewDesc("banshee_watch_parse_errors_total", "Malformed input (journal entries that are not JSON); over-long lines are in banshee_watch_skipped_lines_total.", nil, nil),
		enfErr:    prometheus.NewDesc("banshee_watch_enforce_errors_total", "Blocks that could not be enforced.", nil, nil),
		skipped:   prometheus.NewDesc("banshee_watch_skipped_lines_total", "Lines not matched on purpose: too_long (over the line limit, dropped), ambiguous (a failure line naming two addresses), no_address.", []string{"reason"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *watchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lines, c.matches, c.decisions, c.bans, c.tracked, c.parseErr, c.enfErr, c.skipped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *watchCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.snapshot(time.Now())
	ch <- prometheus.MustNewConstMetric(c.lines, prometheus.CounterValue, float64(st.LinesRead))
	for det, n := range st.Matches {
		ch <- prometheus.MustNewConstMetric(c.matches, prometheus.CounterValue, float64(n), det)
	}
	for k, n := range st.Decisions {
		scope, action, _ := strings.Cut(k, "/")
		ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(n), scope, action)
	}
	ch <- prometheus.MustNewConstMetric(c.bans, prometheus.GaugeValue, float64(st.ActiveBans))
	ch <- prometheus.MustNewConstMetric(c.tracked, prometheus.GaugeValue, float64(st.TrackedSources))
	ch <- prometheus.MustNewConstMetric(c.parseErr, prometheus.CounterValue, float64(st.ParseErrors))
	ch <- prometheus.MustNewConstMetric(c.enfErr, prometheus.CounterValue, float64(st.EnforceErrors))
	for reason, n := range st.SkippedLines {
		ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(n), reason)
	}
}
