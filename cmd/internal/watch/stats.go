package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// StatusFile is the file in the state directory where watch writes
// its counters every few seconds and on exit; `banshee status` reads it.
const StatusFile = "watch-status.json"

// Status is the JSON of watch-status.json: the same numbers the
// Prometheus endpoint serves.
type Status struct {
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

// Stats is the single source of the daemon's numbers: the Prometheus
// collector and the status file both read it.
type Stats struct {
	mu sync.Mutex
	st Status
}

func NewStats(sources []string, metricsAddr string, now time.Time) *Stats {
	return &Stats{st: Status{
		PID: os.Getpid(), StartedAt: now.UTC(), Running: true, Sources: sources, MetricsAddr: metricsAddr,
		Matches: map[string]int64{}, Decisions: map[string]int64{}, SkippedLines: map[string]int64{},
	}}
}

func (s *Stats) line()            { s.mu.Lock(); s.st.LinesRead++; s.mu.Unlock() }
func (s *Stats) match(det string) { s.mu.Lock(); s.st.Matches[det]++; s.mu.Unlock() }
func (s *Stats) Skipped(reason string, n int64) {
	s.mu.Lock()
	s.st.SkippedLines[reason] += n
	s.mu.Unlock()
}
func (s *Stats) reload()             { s.mu.Lock(); s.st.Reloads++; s.mu.Unlock() }
func (s *Stats) parseError()         { s.mu.Lock(); s.st.ParseErrors++; s.mu.Unlock() }
func (s *Stats) SetTracked(n int)    { s.mu.Lock(); s.st.TrackedSources = n; s.mu.Unlock() }
func (s *Stats) SetActiveBans(n int) { s.mu.Lock(); s.st.ActiveBans = n; s.mu.Unlock() }
func (s *Stats) decision(scope, action string) {
	s.mu.Lock()
	s.st.Decisions[scope+"/"+action]++
	s.mu.Unlock()
}

func (s *Stats) EnforceError(err error) {
	s.mu.Lock()
	s.st.EnforceErrors++
	s.st.LastError = err.Error()
	s.mu.Unlock()
}

// snapshot returns a deep copy.
func (s *Stats) Snapshot(now time.Time) Status {
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
func (s *Stats) WriteFile(dir string, now time.Time, running bool) error {
	st := s.Snapshot(now)
	st.Running = running
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the watch status: %w", err)
	}
	tmp, err := os.CreateTemp(dir, StatusFile+".*")
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
	if err := os.Rename(tmp.Name(), filepath.Join(dir, StatusFile)); err != nil {
		return fmt.Errorf("writing the watch status: %w", err)
	}
	return nil
}

// ReadStatus reads the status file of the watch daemon from the state
// directory. It returns nil, nil when watch has never run there.
func ReadStatus(stateDir string) (*Status, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, StatusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the watch status: %w", err)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("reading the watch status %s: %w", filepath.Join(stateDir, StatusFile), err)
	}
	return &st, nil
}
