package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// sshgParser is where Debian's sshguard package installs its log parser.
const sshgParser = "/usr/libexec/sshguard/sshg-parser"

// BenchmarkScanVsSSHGuard is the detection benchmark of the issue: the same
// 1,000,000-line mixed log (30% failures from 5,000 sources, IPv4 and
// IPv6) through banshee's detectors and windows, all detectors enabled,
// and through sshguard's parser (sshg-parser, reading the file on its
// standard input, its output discarded), in one run. It reports both line
// rates, their ratio (target >= 5) and both peak RSS figures (sshg-parser's
// sampled every 20 ms from /proc).
func BenchmarkScanVsSSHGuard(b *testing.B) {
	if _, err := os.Stat(sshgParser); err != nil {
		b.Skipf("%s not installed (Debian package sshguard): no side-by-side figure", sshgParser)
	}
	const lines = 1_000_000
	path := benchLog(b, lines, 5000)
	cfg := policy.Default()
	var banshee, sshg time.Duration
	var peak, sshgRSS float64
	for b.Loop() {
		runtime.GC()
		read := peakRSS()
		prev := debug.SetMemoryLimit(scanMemoryLimit)
		start := time.Now()
		s, err := newScanner(cfg.Watch, scanMaxSources)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.readNamed(path, nil); err != nil {
			b.Fatal(err)
		}
		banshee += time.Since(start)
		if s.lines != lines || s.failures < lines/4 {
			b.Fatalf("%d lines, %d failure lines", s.lines, s.failures)
		}
		if read != nil {
			peak = max(peak, read())
		}
		debug.SetMemoryLimit(prev)

		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(sshgParser)
		cmd.Stdin = f
		start = time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatalf("%s: %v", sshgParser, err)
		}
		// The child's rusage would report this process's peak (Linux keeps
		// the high-water mark of the memory the child had before exec), so
		// its own VmHWM is sampled while it runs.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		tick := time.NewTicker(20 * time.Millisecond)
	wait:
		for range 1 << 20 { // bounded: 20 ms × 2^20 is far beyond any run
			select {
			case err = <-done:
				break wait
			case <-tick.C:
				if mb := vmHWM(status); mb > 0 {
					sshgRSS = max(sshgRSS, mb)
				}
			}
		}
		tick.Stop()
		sshg += time.Since(start)
		f.Close()
		if err != nil {
			b.Fatalf("%s: %v", sshgParser, err)
		}
	}
	bRate := float64(lines*b.N) / banshee.Seconds()
	sRate := float64(lines*b.N) / sshg.Seconds()
	b.ReportMetric(bRate, "banshee-lines/s")
	b.ReportMetric(sRate, "sshg-parser-lines/s")
	b.ReportMetric(bRate/sRate, "ratio")
	if peak > 0 {
		b.ReportMetric(peak, "banshee-peak-RSS-MB")
	}
	b.ReportMetric(sshgRSS, "sshg-parser-peak-RSS-MB")
}

// vmHWM reads the peak RSS in MB from a /proc/PID/status file (0 when the
// process is gone).
func vmHWM(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
