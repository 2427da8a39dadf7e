package detect

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/banshee-project/banshee/policy"
)

// A Tally sums what a Tracker would trip on: the same weights, the same
// groups, the same source (the address alone, or its group once several
// of its addresses failed).
func TestTallyWeighsAndGroupsLikeTracker(t *testing.T) {
	m := newTestMatcher(t, policy.WatchConfig{MaxRetry: 5, GroupV4: 24})
	lines := []string{}
	// six addresses of one IPv6 /64, one failure each
	for i := range 6 {
		lines = append(lines, fmt.Sprintf("Nov 21 05:53:%02d h sshd[1]: Failed password for root from 2001:db8:5::%x port 4000 ssh2", i, i+1))
	}
	// ten probes of one address: half weight, five failures
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("Nov 21 05:54:%02d h sshd[1]: Did not receive identification string from 198.51.100.40 port %d", i, 4000+i))
	}
	// eight probes: four failures, under max_retry
	for i := range 8 {
		lines = append(lines, fmt.Sprintf("Nov 21 05:55:%02d h sshd[1]: Did not receive identification string from 203.0.113.41 port %d", i, 4000+i))
	}
	// Dovecot's line stands for 3 attempts; two addresses of one /24
	lines = append(lines,
		"Nov 21 05:56:00 mail dovecot: imap-login: Disconnected (auth failed, 3 attempts in 10 secs): user=<a>, method=PLAIN, rip=192.0.2.51, lip=10.0.0.5",
		"Nov 21 05:56:01 mail dovecot: imap-login: Disconnected (auth failed, 3 attempts in 10 secs): user=<a>, method=PLAIN, rip=192.0.2.52, lip=10.0.0.5")

	tally := m.NewTally(0)
	tr := m.NewTracker(0)
	trips := map[netip.Prefix]bool{}
	for _, l := range lines {
		mt, ok := m.Match([]byte(l))
		if !ok {
			t.Fatalf("no match: %s", l)
		}
		if _, ok := tally.Add(mt); !ok {
			t.Fatal("Add refused without a limit")
		}
		if tp, ok := tr.Observe(mt, t0); ok {
			trips[tp.Source] = true
		}
	}
	want := map[string]Sum{
		"2001:db8:5::/64":  {Failures: 6, Lines: 6, Over: true},
		"198.51.100.40/32": {Failures: 5, Lines: 10, Over: true},
		"203.0.113.41/32":  {Failures: 4, Lines: 8},
		"192.0.2.0/24":     {Failures: 6, Lines: 6, Over: true},
	}
	if tally.Len() != len(want) {
		t.Errorf("%d sums, want %d", tally.Len(), len(want))
	}
	for id := range tally.Len() {
		s := tally.At(id)
		w, ok := want[s.Source.String()]
		if !ok {
			t.Errorf("unexpected sum %+v", s)
			continue
		}
		if s.Failures != w.Failures || s.Lines != w.Lines || s.Over != w.Over {
			t.Errorf("%s: %+v, want %+v", s.Source, s, w)
		}
		if s.Over != trips[s.Source] {
			t.Errorf("%s: over %v, the tracker tripped %v (trips %v)", s.Source, s.Over, trips[s.Source], trips)
		}
	}

	// the bound: a new group beyond the limit is refused, a known one counted
	small := m.NewTally(1)
	a, _ := m.Match([]byte(lines[0]))
	b, _ := m.Match([]byte(lines[6]))
	if _, ok := small.Add(a); !ok {
		t.Fatal("first group refused")
	}
	if _, ok := small.Add(b); ok {
		t.Error("a second group accepted beyond the limit")
	}
	if id, ok := small.Add(a); !ok || small.At(id).Lines != 2 {
		t.Error("a known group refused at the limit")
	}
}
