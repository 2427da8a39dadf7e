package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/watch"
)

// watchStatusText prints the watch status for `banshee status`.
func watchStatusText(w io.Writer, st *watch.Status, now time.Time) {
	if st == nil {
		fmt.Fprintln(w, "watch: not running (no status file)")
		return
	}
	state := "running"
	switch {
	case !st.Running:
		state = "stopped"
	case now.Sub(st.UpdatedAt) > 3*watch.StatusEvery:
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

// The metrics endpoint writes the Prometheus text exposition format
// (version 0.0.4) itself: a few families read from one snapshot do not need
// the client library, whose package initialisation (registering the Go and
// process collectors, protobuf descriptors) every banshee command would pay
// at start, watch or not.

// metricsContentType is the content type of the text exposition format.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// metricsHandler serves the watch numbers on /metrics.
func metricsHandler(s *watch.Stats) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var b bytes.Buffer
		writeMetrics(&b, s.Snapshot(time.Now()))
		w.Header().Set("Content-Type", metricsContentType)
		_, _ = w.Write(b.Bytes())
	})
}

// metricFamily is one metric family of the exposition.
type metricFamily struct {
	name, help, kind string // kind: counter or gauge
	labels           []string
	samples          []metricSample
}

type metricSample struct {
	values []string // one per label
	v      int64
}

// watchMetrics are the families of the watch numbers in st: labels sorted
// by name, samples by label values.
func watchMetrics(st watch.Status) []metricFamily {
	one := func(v int64) []metricSample { return []metricSample{{v: v}} }
	matches := make([]metricSample, 0, len(st.Matches))
	for _, det := range slices.Sorted(maps.Keys(st.Matches)) {
		matches = append(matches, metricSample{values: []string{det}, v: st.Matches[det]})
	}
	decisions := make([]metricSample, 0, len(st.Decisions))
	for _, k := range slices.Sorted(maps.Keys(st.Decisions)) {
		scope, action, _ := strings.Cut(k, "/")
		decisions = append(decisions, metricSample{values: []string{action, scope}, v: st.Decisions[k]})
	}
	skipped := make([]metricSample, 0, len(st.SkippedLines))
	for _, reason := range slices.Sorted(maps.Keys(st.SkippedLines)) {
		skipped = append(skipped, metricSample{values: []string{reason}, v: st.SkippedLines[reason]})
	}
	return []metricFamily{
		{"banshee_watch_lines_read_total", "Log lines read.", "counter", nil, one(st.LinesRead)},
		{"banshee_watch_matches_total", "Failure lines matched, by detector.", "counter", []string{"detector"}, matches},
		{"banshee_watch_decisions_total", "Policy decisions, by scope and action.", "counter", []string{"action", "scope"}, decisions},
		{"banshee_watch_active_bans", "Host blocks active now.", "gauge", nil, one(int64(st.ActiveBans))},
		{"banshee_watch_tracked_sources", "Source windows held.", "gauge", nil, one(int64(st.TrackedSources))},
		{"banshee_watch_parse_errors_total", "Journal entries that make no line (not JSON, or no usable MESSAGE); over-long lines are in banshee_watch_skipped_lines_total.", "counter", nil, one(st.ParseErrors)},
		{"banshee_watch_enforce_errors_total", "Blocks that could not be enforced.", "counter", nil, one(st.EnforceErrors)},
		{"banshee_watch_skipped_lines_total", "Lines not matched on purpose: too_long (over the line limit, dropped), ambiguous (a failure line naming two addresses), no_address.", "counter", []string{"reason"}, skipped},
	}
}

// writeMetrics writes st in the text exposition format.
func writeMetrics(w io.Writer, st watch.Status) {
	var b []byte
	for _, f := range watchMetrics(st) {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, metricEscaper(false).Replace(f.help)...)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.kind...)
		b = append(b, '\n')
		for _, s := range f.samples {
			b = append(b, f.name...)
			if len(f.labels) > 0 {
				b = append(b, '{')
				for i, l := range f.labels {
					if i > 0 {
						b = append(b, ',')
					}
					b = append(b, l...)
					b = append(b, `="`...)
					b = append(b, metricEscaper(true).Replace(s.values[i])...)
					b = append(b, '"')
				}
				b = append(b, '}')
			}
			b = append(b, ' ')
			b = strconv.AppendInt(b, s.v, 10)
			b = append(b, '\n')
		}
	}
	_, _ = w.Write(b)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// metricEscaper escapes HELP text (backslash, newline) or, for a label
// value, also the double quote.
func metricEscaper(label bool) *strings.Replacer {
	if label {
		return labelEscaper
	}
	return helpEscaper
}
