package detect_test

import (
	"bytes"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
	"github.com/banshee-project/banshee/policy/detect/loggen"
)

// BenchmarkMatch measures the parser alone over a generated mixed log
// (30% failures) held in memory.
func BenchmarkMatch(b *testing.B) {
	var buf bytes.Buffer
	if _, err := loggen.Write(&buf, loggen.Options{Lines: 100_000, Sources: 5000, FailureShare: 0.3, Seed: 7}); err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	m, err := detect.New(policy.WatchConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	n := 0
	for b.Loop() {
		for _, l := range lines {
			if _, ok := m.Match(l); ok {
				n++
			}
		}
	}
	b.ReportMetric(float64(b.N*len(lines))/b.Elapsed().Seconds(), "lines/s")
	if n == 0 {
		b.Fatal("nothing matched")
	}
}

// BenchmarkTracker100k measures the windows of 100,000 distinct sources and
// reports the heap they hold.
func BenchmarkTracker100k(b *testing.B) {
	m, err := detect.New(policy.WatchConfig{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = loggen.Source(i)
	}
	now := time.Now()
	var heap uint64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tr := detect.NewTracker(m.Detectors(), n)
		for i, a := range addrs {
			tr.Observe(detect.Match{Detector: i % 3, Addr: a, Count: 1}, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(tr)
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB/100k-sources")
}
