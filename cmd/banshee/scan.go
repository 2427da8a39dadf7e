package main

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
	"github.com/banshee-project/banshee/policy/detect/tail"
	"github.com/spf13/cobra"
)

func init() { register(newScanCmd) }

// scanOffender is one source seen in at least one failure line of one
// detector.
type scanOffender struct {
	Source           netip.Addr       `json:"source"`
	Detector         string           `json:"detector"`
	Port             string           `json:"port"`
	Count            int              `json:"count"`
	Trips            int              `json:"trips"`
	CrossesThreshold bool             `json:"crosses_threshold"`
	FirstSeen        time.Time        `json:"first_seen"`
	LastSeen         time.Time        `json:"last_seen"`
	Decision         *policy.Decision `json:"decision,omitempty"` // only for sources that cross the threshold
}

// scanOutput is the JSON shape of scan: {"offenders": [...]} and counts.
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
	return &scanner{m: m, tr: detect.NewTracker(m.Detectors(), maxSources)}, nil
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
	cut, err := tail.ReadLines(r, s.line)
	s.cut += cut
	return err
}

// offenders lists every source with its decision when it crossed the
// threshold, most active first.
func (s *scanner) offenders(eng *policy.Engine, snap policy.Snapshot) scanOutput {
	out := scanOutput{Offenders: []scanOffender{}, Lines: s.lines, FailureLines: s.failures, CutLines: s.cut, Evicted: s.tr.Evicted()}
	dets := s.m.Detectors()
	s.tr.Sources(func(src detect.Source) {
		d := dets[src.Detector]
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
		if o.CrossesThreshold && eng != nil {
			span := max(src.Last.Sub(src.First), time.Second)
			atk := detect.Attack(d, detect.Trip{
				Detector: src.Detector, Addr: src.Addr, Port: d.Port,
				Evidence: src.Count, Total: src.Count, First: src.First, Last: src.Last,
				Rate: float64(src.Count) / span.Seconds(),
			})
			atk.Reason = fmt.Sprintf("%s: %d failures, threshold %d within %s", d.Name, src.Count, d.MaxRetry, d.FindTime)
			if ds := eng.Decide(atk, snap); len(ds) == 1 {
				o.Decision = &ds[0]
			}
		}
		out.Offenders = append(out.Offenders, o)
	})
	slices.SortFunc(out.Offenders, func(a, b scanOffender) int {
		switch {
		case a.CrossesThreshold != b.CrossesThreshold:
			if a.CrossesThreshold {
				return -1
			}
			return 1
		case a.Count != b.Count:
			return b.Count - a.Count
		case a.Source != b.Source:
			return a.Source.Compare(b.Source)
		}
		return strings.Compare(a.Detector, b.Detector)
	})
	return out
}

func newScanCmd(a *app) *cobra.Command {
	var maxSources int
	cmd := &cobra.Command{
		Use:   "scan FILE... | -",
		Short: "Replay logs through the detectors offline, changing nothing",
		Long: `scan reads log files (- for standard input; .gz files are decompressed) through
the same detectors and windows as watch and prints every source seen in at
least one failure line: its detector, how many failure lines, whether it
crosses the threshold (max_retry within find_time, judged by the lines' own
timestamps), and for those that do, the decision the policy would take. It
changes nothing: for incident forensics, for tuning detectors, and for
benchmarking.`,
		Example: `  banshee scan /var/log/auth.log /var/log/auth.log.1
  zcat /var/log/mail.log.*.gz | banshee scan - -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("scan: no file given (want log files, or - for standard input)")
			}
			cfg, err := a.config()
			if err != nil {
				return err
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
			snap, err := loadSnapshot("", time.Now(), os.Getenv)
			if err != nil {
				return err
			}
			out := s.offenders(policy.New(cfg), snap)
			if out.Evicted > 0 {
				fmt.Fprintf(a.stderr, "banshee: warning: %d source windows were forgotten to stay within --max-sources %d; counts of the oldest sources are incomplete\n", out.Evicted, maxSources)
			}
			return a.emit(out, func(w io.Writer) { writeScan(w, out) })
		},
	}
	cmd.Flags().IntVar(&maxSources, "max-sources", detect.DefaultLimit, "most (source, detector) windows kept; the least recently seen are forgotten beyond it")
	return cmd
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

func writeScan(w io.Writer, out scanOutput) {
	crossing := 0
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tDETECTOR\tCOUNT\tTHRESHOLD\tDECISION")
	for _, o := range out.Offenders {
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
			if d.Action == policy.ActionBlock {
				decision += " for " + shortDuration(d.TTL)
			} else if len(d.Reasons) > 0 {
				decision += ": " + d.Reasons[0]
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", o.Source, o.Detector, o.Count, threshold, decision)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d lines, %d failure lines, %d offenders, %d crossing the threshold\n", out.Lines, out.FailureLines, len(out.Offenders), crossing)
}
