package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/logsource"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
	"github.com/spf13/cobra"
)

func init() { register(newScanCmd) }

// scanMaxSources is scan's default window limit: every source of a large
// incident log is listed (about 150 bytes each).
const scanMaxSources = 1_000_000

// scanMemoryLimit is the soft memory limit scan sets unless GOMEMLIMIT
// is given: the garbage collector then keeps a replay of a big log within
// it instead of letting the heap double between collections.
const scanMemoryLimit = 48 << 20

// scanOffender is one source seen in at least one failure line of one
// detector.
type scanOffender struct {
	Source           netip.Addr       `json:"source"`
	Network          *netip.Prefix    `json:"network,omitempty"` // when several addresses of a group (watch.group_v4/v6) failed together
	Detector         string           `json:"detector"`
	Port             string           `json:"port"`
	Count            int              `json:"count"`
	Trips            int              `json:"trips"`
	CrossesThreshold bool             `json:"crosses_threshold"`
	FirstSeen        time.Time        `json:"first_seen"`
	LastSeen         time.Time        `json:"last_seen"`
	Decision         *policy.Decision `json:"decision,omitempty"` // what would follow; skip below the threshold
}

// scanOutput is the JSON shape of scan: {"offenders": [...]} and counts
// (written by writeJSON row by row; tests decode into it).
type scanOutput struct {
	Offenders    []scanOffender `json:"offenders"`
	Lines        int64          `json:"lines"`
	FailureLines int64          `json:"failure_lines"`
	CutLines     int            `json:"cut_lines,omitempty"`
	Evicted      int            `json:"evicted,omitempty"` // sources forgotten to stay within --max-sources
}

// scanner runs lines through the detectors and windows, as watch does,
// without deciding or enforcing anything.
type scanner struct {
	m        *detect.Matcher
	tr       *detect.Tracker
	lines    int64
	failures int64
	cut      int
	last     time.Time // timestamp of the last line that had one
}

func newScanner(cfg policy.WatchConfig, maxSources int) (*scanner, error) {
	m, err := detect.New(cfg, nil)
	if err != nil {
		return nil, err
	}
	return &scanner{m: m, tr: m.NewTracker(maxSources)}, nil
}

func (s *scanner) line(b []byte) {
	s.lines++
	mt, ok := s.m.Match(b)
	if !ok {
		return
	}
	s.failures++
	if !mt.Time.IsZero() {
		s.last = mt.Time
	}
	// lines without a timestamp count at the last one seen
	s.tr.Observe(mt, s.last)
}

func (s *scanner) read(r io.Reader) error {
	cut, err := logsource.ReadLines(r, s.line)
	s.cut += cut
	return err
}

// sorted returns the window ids in report order: sources crossing the
// threshold first, then by count, address and detector. Only the ids are
// held, so a replay of 100,000 sources does not copy them all.
func (s *scanner) sorted() []int32 {
	type sortKey struct {
		id      int32
		crossed bool
		count   int
		addr    netip.Addr
		det     string
	}
	dets := s.m.Detectors()
	ids := s.tr.IDs()
	keys := make([]sortKey, len(ids))
	for i, id := range ids {
		src := s.tr.At(id)
		keys[i] = sortKey{id: id, crossed: src.Trips > 0, count: src.Count, addr: src.Addr, det: dets[src.Detector].Name}
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		switch {
		case a.crossed != b.crossed:
			if a.crossed {
				return -1
			}
			return 1
		case a.count != b.count:
			return b.count - a.count
		case a.addr != b.addr:
			return a.addr.Compare(b.addr)
		}
		return strings.Compare(a.det, b.det)
	})
	for i, k := range keys {
		ids[i] = k.id
	}
	return ids
}

// offender builds the report row of one window, with the decision the
// policy would take when it crossed the threshold.
func (s *scanner) offender(id int32, decide func(policy.Attack) []policy.Decision) scanOffender {
	src := s.tr.At(id)
	d := s.m.Detectors()[src.Detector]
	o := scanOffender{
		Source:           src.Addr,
		Detector:         d.Name,
		Port:             d.Port.String(),
		Count:            src.Count,
		Trips:            src.Trips,
		CrossesThreshold: src.Trips > 0,
		FirstSeen:        src.First.UTC(),
		LastSeen:         src.Last.UTC(),
	}
	if src.Prefix.Bits() < src.Addr.BitLen() {
		o.Network = &src.Prefix
	}
	if o.CrossesThreshold && decide != nil {
		span := max(src.Last.Sub(src.First), time.Second)
		atk := detect.Attack(d, detect.Trip{
			Detector: src.Detector, Addr: src.Addr, Source: src.Prefix, Port: d.Port,
			Evidence: src.Count, Total: src.Count, First: src.First, Last: src.Last,
			Rate: float64(src.Count) / span.Seconds(),
		})
		atk.Reason = fmt.Sprintf("%s: %d failures, threshold %d within %s", d.Name, src.Count, d.MaxRetry, d.FindTime)
		if ds := decide(atk); len(ds) == 1 {
			o.Decision = &ds[0]
		}
	} else if decide != nil {
		// Below the threshold nothing would follow; the report says so.
		o.Decision = &policy.Decision{
			Target:  src.Prefix,
			Scope:   policy.ScopeNone,
			Action:  policy.ActionSkip,
			Reasons: []string{fmt.Sprintf("skip: below the threshold: %d of %d failures within %s", src.Count, d.MaxRetry, shortDuration(d.FindTime))},
		}
	}
	return o
}

// scanTail is the rest of scan's JSON object after the offenders.
type scanTail struct {
	Lines        int64 `json:"lines"`
	FailureLines int64 `json:"failure_lines"`
	CutLines     int   `json:"cut_lines,omitempty"`
	Evicted      int   `json:"evicted,omitempty"`
}

// writeJSON streams the report as one JSON object on one line, the shape
// of scanOutput, without holding every row in memory.
func (s *scanner) writeJSON(w io.Writer, decide func(policy.Attack) []policy.Decision) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var row bytes.Buffer
	enc := json.NewEncoder(&row)
	enc.SetEscapeHTML(false)
	bw.WriteString(`{"offenders":[`)
	for i, id := range s.sorted() {
		row.Reset()
		if err := enc.Encode(s.offender(id, decide)); err != nil {
			return fmt.Errorf("encoding the scan: %w", err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.Write(bytes.TrimSuffix(row.Bytes(), []byte("\n")))
	}
	tail, err := json.Marshal(scanTail{Lines: s.lines, FailureLines: s.failures, CutLines: s.cut, Evicted: s.tr.Evicted()})
	if err != nil {
		return fmt.Errorf("encoding the scan: %w", err)
	}
	bw.WriteString("],")
	bw.Write(tail[1:])
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the scan: %w", err)
	}
	return nil
}

// writeText prints one row per source and a summary.
func (s *scanner) writeText(w io.Writer, decide func(policy.Attack) []policy.Decision) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	crossing, n := 0, 0
	fmt.Fprintf(bw, "%-39s  %-14s  %7s  %-11s  %s\n", "SOURCE", "DETECTOR", "COUNT", "THRESHOLD", "DECISION")
	for _, id := range s.sorted() {
		o := s.offender(id, decide)
		n++
		threshold, decision := "below", "-"
		if o.CrossesThreshold {
			crossing++
			threshold = "crossed"
			if o.Trips > 1 {
				threshold = fmt.Sprintf("crossed %dx", o.Trips)
			}
		}
		if d := o.Decision; d != nil {
			decision = fmt.Sprintf("%s %s", d.Scope, d.Action)
			if d.Scope == policy.ScopeNone {
				decision = string(d.Action) // "skip: below the threshold", not "none skip: skip: ..."
			}
			if d.Action == policy.ActionBlock {
				decision += " for " + shortDuration(d.TTL)
			} else if len(d.Reasons) > 0 {
				decision += ": " + strings.TrimPrefix(strings.TrimPrefix(d.Reasons[0], string(d.Action)+": "), "refused: ")
			}
		}
		fmt.Fprintf(bw, "%-39s  %-14s  %7d  %-11s  %s\n", o.Source, o.Detector, o.Count, threshold, decision)
	}
	fmt.Fprintf(bw, "%d lines, %d failure lines, %d offenders, %d crossing the threshold\n", s.lines, s.failures, n, crossing)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the scan: %w", err)
	}
	return nil
}

func newScanCmd(a *app) *cobra.Command {
	var maxSources int
	var explain []string
	cmd := &cobra.Command{
		Use:   "scan FILE... | - | --explain LINE",
		Short: "Replay logs through the detectors offline, changing nothing",
		Long: `scan reads log files (- for standard input; .gz files are decompressed) through
the same detectors and windows as watch and prints every source seen in at
least one failure line: its detector, how many failure lines, whether it
crosses the threshold (max_retry within find_time, judged by the lines' own
timestamps), and for those that do, the decision the policy would take. It
changes nothing: for incident forensics, for tuning detectors, and for
benchmarking.

With --explain LINE (repeatable; - reads lines from standard input) scan
says for each line which detector and form matched and the source address,
or why nothing matched: the line has no header it knows, no detector reads
its program, no form matches, or the line is skipped on purpose (two
readings naming different addresses; a host name instead of an address).`,
		Example: `  banshee scan /var/log/auth.log /var/log/auth.log.1
  zcat /var/log/mail.log.*.gz | banshee scan - -o json
  banshee scan --explain 'Nov 21 05:53:09 web1 sshd[1]: Failed password for root from 192.0.2.7 port 4000 ssh2'
  grep sshd /var/log/auth.log | banshee scan --explain - -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(explain) > 0 {
				if len(args) > 0 {
					return usageErrorf("scan: give files or --explain, not both")
				}
				cfg, err := a.config()
				if err != nil {
					return err
				}
				m, err := detect.New(cfg.Watch, nil)
				if err != nil {
					return err
				}
				return explainLines(a, m, explain)
			}
			if len(args) == 0 {
				return usageErrorf("scan: no file given (want log files, or - for standard input)")
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(scanMemoryLimit)
			}
			s, err := newScanner(cfg.Watch, maxSources)
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := s.readNamed(name, a.stdin); err != nil {
					return err
				}
			}
			if n := s.tr.Evicted(); n > 0 {
				fmt.Fprintf(a.stderr, "banshee: warning: %d source windows were forgotten to stay within --max-sources %d; counts of the oldest sources are incomplete\n", n, maxSources)
			}
			// The decisions plan would make without EC2: the same
			// engine, the caller's session and this host's networks.
			eng, err := a.engine()
			if err != nil {
				return err
			}
			decide := eng.Offline()
			if a.output == "json" {
				return s.writeJSON(a.stdout, decide)
			}
			return s.writeText(a.stdout, decide)
		},
	}
	cmd.Flags().IntVar(&maxSources, "max-sources", scanMaxSources, "most (source, detector) windows kept; the least recently seen are forgotten beyond it")
	cmd.Flags().StringArrayVar(&explain, "explain", nil, "explain what the detectors make of LINE (- reads lines from standard input)")
	return cmd
}

// explainLines prints detect's explanation of every line: as text, or one
// JSON object a line with -o json.
func explainLines(a *app, m *detect.Matcher, lines []string) error {
	bw := bufio.NewWriter(a.stdout)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	one := func(line []byte) {
		ex := m.Explain(line)
		if a.output == "json" {
			enc.Encode(ex)
			return
		}
		fmt.Fprintf(bw, "line:     %s\n", ex.Line)
		if ex.Program != "" {
			fmt.Fprintf(bw, "program:  %s\n", ex.Program)
		}
		if ex.Matched {
			fmt.Fprintf(bw, "match:    detector %s, form %s, source %s, %d failure(s) weighing %d/%d each\n", ex.Detector, ex.Form, ex.Source, ex.Count, ex.Weight, detect.FullWeight)
		} else {
			what := "no match"
			if ex.Form != "" {
				what = "skipped"
				fmt.Fprintf(bw, "form:     %s %s\n", ex.Detector, ex.Form)
			}
			fmt.Fprintf(bw, "%-9s %s\n", what+":", ex.Reason)
		}
		if ex.Matched {
			fmt.Fprintf(bw, "why:      %s\n", ex.Reason)
		}
		bw.WriteString("\n")
	}
	for _, l := range lines {
		if l != "-" {
			one([]byte(l))
			continue
		}
		if _, err := logsource.ReadLines(a.stdin, one); err != nil {
			return fmt.Errorf("explaining standard input: %w", err)
		}
	}
	return bw.Flush()
}

func (s *scanner) readNamed(name string, stdin io.Reader) error {
	if name == "-" {
		if err := s.read(stdin); err != nil {
			return fmt.Errorf("scanning standard input: %w", err)
		}
		return nil
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return usageErrorf("scan: %v", err)
	}
	if err != nil {
		return fmt.Errorf("scanning %s: %w", name, err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("scanning %s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	}
	if err := s.read(r); err != nil {
		return fmt.Errorf("scanning %s: %w", name, err)
	}
	return nil
}
