package detect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

var t0 = time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)

// Probes count half by default: five failures trip, five probes do not,
// ten do.
func TestProbeWeight(t *testing.T) {
	m := newTestMatcher(t, policy.WatchConfig{MaxRetry: 5})
	probe := "Nov 21 05:53:%02d h sshd[1]: Did not receive identification string from 192.0.2.9 port 4000"
	fail := "Nov 21 05:53:%02d h sshd[1]: Failed password for root from 192.0.2.8 port 4000 ssh2"
	tr := m.NewTracker(0)
	run := func(format string, n int) (int, Trip) {
		for i := range n {
			mt, ok := m.Match(fmt.Appendf(nil, format, i))
			if !ok {
				t.Fatalf("no match: %s", fmt.Sprintf(format, i))
			}
			if tp, ok := tr.Observe(mt, time.Time{}); ok {
				return i + 1, tp
			}
		}
		return 0, Trip{}
	}
	if n, _ := run(fail, 10); n != 5 {
		t.Errorf("failures: tripped at line %d, want 5", n)
	}
	n, tp := run(probe, 20)
	if n != 10 {
		t.Errorf("probes: tripped at line %d, want 10", n)
	}
	if tp.Evidence != 5 || tp.Source != netip.MustParsePrefix("192.0.2.9/32") {
		t.Errorf("probe trip %+v", tp)
	}

	off := newTestMatcher(t, policy.WatchConfig{IgnoreProbes: true})
	if _, ok := off.Match(fmt.Appendf(nil, probe, 1)); ok {
		t.Error("ignore_probes: a probe matched")
	}
	if _, ok := off.Match(fmt.Appendf(nil, fail, 1)); !ok {
		t.Error("ignore_probes: a failure did not match")
	}
	for _, w := range []int{-1, 11} {
		if _, err := New(policy.WatchConfig{ProbeWeight: w}, fixedNow); err == nil {
			t.Errorf("probe_weight %d accepted", w)
		}
	}
}

// A half-weight probe older than find_time does not carry over.
func TestProbeCarryExpires(t *testing.T) {
	dets := []Detector{{Name: "a", Kind: policy.KindBruteforce, Port: tcp(22), MaxRetry: 1, FindTime: time.Minute}}
	tr := NewTracker(dets, 0)
	a := netip.MustParseAddr("192.0.2.1")
	if _, ok := tr.Observe(Match{Addr: a, Count: 1, Weight: 5, Time: t0}, time.Time{}); ok {
		t.Fatal("half a failure tripped")
	}
	if _, ok := tr.Observe(Match{Addr: a, Count: 1, Weight: 5, Time: t0.Add(2 * time.Minute)}, time.Time{}); ok {
		t.Fatal("two halves further apart than find_time tripped")
	}
	if _, ok := tr.Observe(Match{Addr: a, Count: 1, Weight: 5, Time: t0.Add(150 * time.Second)}, time.Time{}); !ok {
		t.Fatal("two halves within find_time did not trip")
	}
}

// One attempt every 15 minutes never crosses 5 in 10 minutes but crosses
// the long window (10 in 24h) at the tenth; one every three hours does not.
func TestLongWindow(t *testing.T) {
	m := newTestMatcher(t, policy.WatchConfig{})
	d := m.Detectors()[idSSHD]
	if d.LongMaxRetry != DefaultLongMaxRetry || d.LongFindTime != DefaultLongFindTime {
		t.Fatalf("sshd long window %d/%s", d.LongMaxRetry, d.LongFindTime)
	}
	a := netip.MustParseAddr("198.51.100.1")
	pace := func(every time.Duration, n int) (int, Trip) {
		tr := m.NewTracker(0)
		for i := range n {
			if tp, ok := tr.Observe(Match{Detector: idSSHD, Addr: a, Count: 1, Weight: FullWeight, Time: t0.Add(time.Duration(i) * every)}, time.Time{}); ok {
				return i + 1, tp
			}
		}
		return 0, Trip{}
	}
	n, tp := pace(15*time.Minute, 40)
	if n != 10 || tp.Window != 24*time.Hour || tp.Evidence != 10 {
		t.Errorf("every 15 min: trip at %d (%+v), want the 10th over 24h", n, tp)
	}
	if atk := Attack(d, tp); atk.Window != 24*time.Hour || atk.Reason != "sshd: 10 failures within 24h0m0s" {
		t.Errorf("attack %+v", atk)
	}
	if n, _ := pace(3*time.Hour, 40); n != 0 {
		t.Errorf("every 3 h: tripped at %d", n)
	}
	off := newTestMatcher(t, policy.WatchConfig{LongMaxRetry: -1})
	if d := off.Detectors()[idSSHD]; d.LongMaxRetry != 0 {
		t.Errorf("long_max_retry -1: %+v", d)
	}
	tuned := newTestMatcher(t, policy.WatchConfig{Detectors: []policy.DetectorConfig{{Name: "sshd", LongMaxRetry: 20, LongFindTime: policy.Duration(48 * time.Hour)}}})
	if d := tuned.Detectors()[idSSHD]; d.LongMaxRetry != 20 || d.LongFindTime != 48*time.Hour {
		t.Errorf("tuned long window %+v", d)
	}
}

// 500 addresses of one /64, 4 failures each (below max_retry 5), are
// blocked as the /64; a single address still trips as itself.
func TestSubnetRotation(t *testing.T) {
	m := newTestMatcher(t, policy.WatchConfig{})
	tr := m.NewTracker(0)
	d := m.Detectors()[idSSHD]
	var trips []Trip
	for i := range 500 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
		for j := range 4 {
			if tp, ok := tr.Observe(Match{Detector: idSSHD, Addr: a, Count: 1, Weight: FullWeight, Time: t0.Add(time.Duration(i*4+j) * time.Millisecond)}, time.Time{}); ok {
				trips = append(trips, tp)
			}
		}
	}
	if len(trips) == 0 {
		t.Fatal("no trip from 500 addresses of one /64")
	}
	want := netip.MustParsePrefix("2001:db8:1:2::/64")
	if trips[0].Source != want {
		t.Fatalf("first trip %v, want %v", trips[0].Source, want)
	}
	if atk := Attack(d, trips[0]); atk.Sources[0] != want {
		t.Errorf("attack sources %v", atk.Sources)
	}

	single := netip.MustParseAddr("2001:db8:9::7")
	for j := range 5 {
		tp, ok := tr.Observe(Match{Detector: idSSHD, Addr: single, Count: 1, Weight: FullWeight, Time: t0.Add(time.Duration(j) * time.Second)}, time.Time{})
		if ok != (j == 4) {
			t.Fatalf("single address: trip %v at %d", ok, j)
		}
		if ok && tp.Source != netip.PrefixFrom(single, 128) {
			t.Errorf("single address tripped as %v", tp.Source)
		}
	}
	// IPv4 stays per address unless group_v4 is set
	v4 := newTestMatcher(t, policy.WatchConfig{GroupV4: 24})
	tr4 := v4.NewTracker(0)
	var got netip.Prefix
	for i := range 5 {
		a := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
		if tp, ok := tr4.Observe(Match{Detector: idSSHD, Addr: a, Count: 1, Weight: FullWeight, Time: t0}, time.Time{}); ok {
			got = tp.Source
		}
	}
	if got != netip.MustParsePrefix("203.0.113.0/24") {
		t.Errorf("group_v4 24: tripped as %v", got)
	}
	for _, c := range []policy.WatchConfig{{GroupV4: 8}, {GroupV6: 48}, {GroupV6: 129}} {
		if _, err := New(c, fixedNow); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestGroupKeyRoundTrip(t *testing.T) {
	for _, s := range []string{"2001:db8:1:2:3:4:5:6", "192.0.2.77", "::1"} {
		a := netip.MustParseAddr(s)
		for _, bits := range [][2]int{{32, 128}, {24, 64}, {16, 64}} {
			k, member := keyOf(a, 0, bits[0], bits[1])
			if got := k.member(member); got != a {
				t.Errorf("%s /%v: member %v", s, bits, got)
			}
		}
	}
}

// A declarative detector with a program runs only on that program's lines,
// against the message, after its literal prefilter, with its weight.
func TestDeclarativeDetector(t *testing.T) {
	m := newTestMatcher(t, policy.WatchConfig{Detectors: []policy.DetectorConfig{{
		Name: "gitea", Program: "gitea", Prefilter: "Failed authentication attempt",
		Pattern: `^router: .* Failed authentication attempt for \S+ from (?P<addr>[0-9a-f.:]+):\d+$`,
		Port:    "3000/tcp", Weight: 5,
	}}})
	line := "Nov 21 05:53:09 git gitea[7]: router: x Failed authentication attempt for bob from 192.0.2.160:4000"
	got, ok := m.Match([]byte(line))
	if !ok || got.Addr != netip.MustParseAddr("192.0.2.160") || got.Weight != 5 || got.Port != tcp(3000) || m.Detectors()[got.Detector].Name != "gitea" {
		t.Fatalf("%+v %v", got, ok)
	}
	for _, l := range []string{
		// another program writing the same text
		"Nov 21 05:53:09 git logger[7]: router: x Failed authentication attempt for bob from 192.0.2.161:4000",
		// the pattern is anchored at the message, not the line
		"Nov 21 05:53:09 git gitea[7]: x router: y Failed authentication attempt for bob from 192.0.2.162:4000",
		// prefilter missing
		"Nov 21 05:53:09 git gitea[7]: router: x Failed auth attempt for bob from 192.0.2.163:4000",
	} {
		if got, ok := m.Match([]byte(l)); ok {
			t.Errorf("matched %v: %s", got.Addr, l)
		}
	}
	for _, dc := range []policy.DetectorConfig{
		{Name: "x", Pattern: `^(?P<addr>\S+)$`, Weight: 11},
		{Name: "x", Pattern: `^(?P<addr>\S+)$`, Weight: -1},
		{Name: "x", Pattern: `^(?P<addr>\S+)$`, Program: "a b"},
	} {
		if _, err := New(policy.WatchConfig{Detectors: []policy.DetectorConfig{dc}}, fixedNow); err == nil {
			t.Errorf("%+v accepted", dc)
		}
	}
}
