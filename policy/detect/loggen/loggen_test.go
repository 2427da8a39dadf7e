package loggen

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
)

// TestEveryFailureLineMatches checks the generator against the detectors:
// exactly the failure lines match, with a generated source address.
func TestEveryFailureLineMatches(t *testing.T) {
	var buf bytes.Buffer
	nfail, err := Write(&buf, Options{Lines: 5000, Sources: 50, FailureShare: 0.3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if nfail < 1200 || nfail > 1800 {
		t.Fatalf("%d failures of 5000 at share 0.3", nfail)
	}
	m, err := detect.New(policy.WatchConfig{}, func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) })
	if err != nil {
		t.Fatal(err)
	}
	valid := map[string]bool{}
	for i := range 50 {
		valid[Source(i).String()] = true
	}
	sc := bufio.NewScanner(&buf)
	matched, lines, v6 := 0, 0, 0
	seen := map[string]bool{}
	for sc.Scan() {
		lines++
		mt, ok := m.Match(sc.Bytes())
		if !ok {
			continue
		}
		matched++
		if !valid[mt.Addr.String()] {
			t.Fatalf("matched %v, not a generated source: %s", mt.Addr, sc.Text())
		}
		if mt.Addr.Is6() {
			v6++
		}
		seen[m.Detectors()[mt.Detector].Name] = true
	}
	if lines != 5000 || matched != nfail {
		t.Errorf("%d lines, %d matched, want 5000 and %d", lines, matched, nfail)
	}
	if v6 == 0 || v6 == matched {
		t.Errorf("%d of %d matches IPv6: want both families", v6, matched)
	}
	if len(seen) < 7 {
		t.Errorf("detectors exercised: %v", seen)
	}
}
