package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

func testDets() []Detector {
	return []Detector{
		{Name: "a", Kind: policy.KindBruteforce, Port: tcp(22), MaxRetry: 3, FindTime: time.Minute},
		{Name: "b", Kind: policy.KindScan, Port: tcp(80), MaxRetry: 2, FindTime: 10 * time.Second},
	}
}

func TestTrackerThreshold(t *testing.T) {
	tr := NewTracker(testDets(), 10)
	src := netip.MustParseAddr("192.0.2.1")
	t0 := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	obs := func(det int, at time.Duration) bool {
		_, ok := tr.Observe(Match{Detector: det, Addr: src, Count: 1, Time: t0.Add(at)}, time.Time{})
		return ok
	}
	// three failures, but spread over more than a minute: no trip
	if obs(0, 0) || obs(0, 40*time.Second) || obs(0, 80*time.Second) {
		t.Fatal("tripped across more than find_time")
	}
	// the third within a minute of the second oldest: trip
	if !obs(0, 90*time.Second) {
		t.Fatal("no trip with 3 failures within a minute")
	}
	// the window starts afresh after a trip
	if obs(0, 91*time.Second) || obs(0, 92*time.Second) {
		t.Fatal("tripped again before max_retry new failures")
	}
	if !obs(0, 93*time.Second) {
		t.Fatal("no second trip")
	}
	// detector b is counted separately
	if obs(1, 93*time.Second) {
		t.Fatal("b tripped on its first failure")
	}
	var got []Source
	tr.Sources(func(s Source) { got = append(got, s) })
	if len(got) != 2 {
		t.Fatalf("sources %+v", got)
	}
	if got[0].Detector != 1 || got[0].Count != 1 || got[0].Trips != 0 {
		t.Errorf("b: %+v", got[0])
	}
	if got[1].Detector != 0 || got[1].Count != 7 || got[1].Trips != 2 || !got[1].First.Equal(t0) {
		t.Errorf("a: %+v", got[1])
	}
}

func TestTrackerTripDetails(t *testing.T) {
	dets := testDets()
	tr := NewTracker(dets, 10)
	src := netip.MustParseAddr("2001:db8::1")
	now := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	// a repeated line counts as many failures; lines without a timestamp
	// use now
	trip, ok := tr.Observe(Match{Detector: 0, Addr: src, Port: tcp(2222), Count: 3}, now)
	if !ok {
		t.Fatal("Count 3 did not trip max_retry 3")
	}
	if trip.Evidence != 3 || trip.Total != 3 || trip.Addr != src || trip.Port != tcp(2222) || !trip.Last.Equal(now) || trip.Rate != 3 {
		t.Errorf("trip %+v", trip)
	}
	a := Attack(dets[0], trip)
	if len(a.Sources) != 1 || a.Sources[0] != netip.MustParsePrefix("2001:db8::1/128") || a.Origin != policy.OriginWatch ||
		a.Kind != policy.KindBruteforce || a.Evidence != 3 || a.Window != time.Minute || a.Port != tcp(2222) || a.Reason == "" {
		t.Errorf("attack %+v", a)
	}
	// rate over a span longer than a second
	src2 := netip.MustParseAddr("192.0.2.9")
	tr.Observe(Match{Detector: 1, Addr: src2, Time: now}, now)
	trip, ok = tr.Observe(Match{Detector: 1, Addr: src2, Time: now.Add(4 * time.Second)}, now)
	if !ok || trip.Rate != 0.5 || !trip.First.Equal(now) {
		t.Errorf("trip %+v %v", trip, ok)
	}
}

func TestTrackerEvictsLeastRecent(t *testing.T) {
	tr := NewTracker(testDets(), 3)
	now := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	for i := 1; i <= 3; i++ {
		tr.Observe(Match{Detector: 0, Addr: addr(i)}, now)
	}
	tr.Observe(Match{Detector: 0, Addr: addr(1)}, now) // 1 is now the most recent; 2 the least
	tr.Observe(Match{Detector: 0, Addr: addr(4)}, now) // evicts 2
	if tr.Len() != 3 || tr.Evicted() != 1 {
		t.Fatalf("len %d evicted %d", tr.Len(), tr.Evicted())
	}
	seen := map[netip.Addr]int{}
	tr.Sources(func(s Source) { seen[s.Addr] = s.Count })
	want := map[netip.Addr]int{addr(1): 2, addr(3): 1, addr(4): 1}
	if len(seen) != len(want) {
		t.Fatalf("sources %v, want %v", seen, want)
	}
	for a, c := range want {
		if seen[a] != c {
			t.Errorf("%v: count %d, want %d", a, seen[a], c)
		}
	}
	// 1 keeps its window: one more failure trips it (max_retry 3)
	if _, ok := tr.Observe(Match{Detector: 0, Addr: addr(1)}, now); !ok {
		t.Error("window of a kept source was lost")
	}
	// a forgotten source starts from zero
	if _, ok := tr.Observe(Match{Detector: 0, Addr: addr(2)}, now); ok {
		t.Error("evicted source tripped on its first failure after eviction")
	}
}

func TestTrackerMemoryBound(t *testing.T) {
	tr := NewTracker(testDets(), 1000)
	now := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	for i := range 5000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tr.Observe(Match{Detector: i % 2, Addr: a}, now)
	}
	if tr.Len() != 1000 || tr.n != 1000 || tr.Evicted() != 4000 {
		t.Errorf("len %d slots %d evicted %d", tr.Len(), tr.n, tr.Evicted())
	}
	n := 0
	tr.Sources(func(Source) { n++ })
	if n != 1000 {
		t.Errorf("recency list holds %d, index %d", n, tr.Len())
	}
}
