package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// The host benchmarks run the real banshee binary inside a network namespace
// made for them and time it from process start to exit (the entry is in the
// kernel when block exits 0), next to a raw "ipset restore" of the same
// entries measured in the same run. Run them with make bench.

// benchRuns is how many runs each median is taken over.
const benchRuns = 7

// timeIn runs a command inside ns and returns its wall time.
func timeIn(b *testing.B, ns *nstest.NS, stdin []byte, name string, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var start time.Time
	if err := ns.Do(func() error { start = time.Now(); return cmd.Start() }); err != nil {
		b.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchAddrs returns n distinct IPv4 addresses in 100.64.0.0/10.
func benchAddrs(n int, offset int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		v := uint32(100<<24|64<<16) + uint32(offset+i)
		out[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return out
}

func rawRestore(addrs []netip.Addr) []byte {
	var b bytes.Buffer
	for _, a := range addrs {
		fmt.Fprintf(&b, "add banshee4 %s timeout 3600 comment \"[cli] bench\"\n", a)
	}
	return b.Bytes()
}

func targetList(addrs []netip.Addr) []byte {
	var b bytes.Buffer
	for _, a := range addrs {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func benchSetup(b *testing.B) (*nstest.Net, []string) {
	n := nstest.New(b)
	bin := bansheeBin(b)
	state := filepath.Join(b.TempDir(), "state")
	cfg := filepath.Join(b.TempDir(), "banshee.yaml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	return n, []string{bin, "--state-dir", state, "--config", cfg}
}

// BenchmarkHostBlockSingle: one "banshee block ADDR", with 0 and with
// 100,000 entries already in the set. Target: median under 10 ms.
func BenchmarkHostBlockSingle(b *testing.B) {
	for _, preload := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("preload=%d", preload), func(b *testing.B) {
			n, base := benchSetup(b)
			// Create chain and set the way any first block does.
			timeIn(b, n.Victim, nil, base[0], append(base[1:], "block", "198.18.0.1", "--scope", "host")...)
			if preload > 0 {
				timeIn(b, n.Victim, rawRestore(benchAddrs(preload, 0)), "ipset", "-exist", "restore")
			}
			fresh := benchAddrs(benchRuns, 1<<20)
			for b.Loop() {
				var ds []time.Duration
				for i := range benchRuns {
					ds = append(ds, timeIn(b, n.Victim, nil, base[0], append(base[1:], "block", fresh[i].String(), "--scope", "host", "--ttl", "1h", "--reason", "bench")...))
				}
				b.ReportMetric(ms(median(ds)), "median-ms")
			}
		})
	}
}

// BenchmarkHostBlockBulk: "banshee block -" with 10,000 and 100,000
// addresses on stdin, next to a raw "ipset restore" of the same entries.
// Target: within 1.5x of raw.
func BenchmarkHostBlockBulk(b *testing.B) {
	for _, count := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", count), func(b *testing.B) {
			n, base := benchSetup(b)
			timeIn(b, n.Victim, nil, base[0], append(base[1:], "block", "198.18.0.1", "--scope", "host")...)
			addrs := benchAddrs(count, 0)
			raw, list := rawRestore(addrs), targetList(addrs)
			runs := 5
			for b.Loop() {
				var rawT, ourT []time.Duration
				for range runs {
					timeIn(b, n.Victim, nil, "ipset", "flush", "banshee4")
					rawT = append(rawT, timeIn(b, n.Victim, raw, "ipset", "-exist", "restore"))
					timeIn(b, n.Victim, nil, "ipset", "flush", "banshee4")
					ourT = append(ourT, timeIn(b, n.Victim, list, base[0], append(base[1:], "block", "-", "--scope", "host", "--ttl", "1h", "--reason", "bench")...))
				}
				b.ReportMetric(ms(median(rawT)), "raw-ipset-restore-ms")
				b.ReportMetric(ms(median(ourT)), "banshee-ms")
				b.ReportMetric(float64(median(ourT))/float64(median(rawT)), "x-raw")
			}
		})
	}
}
