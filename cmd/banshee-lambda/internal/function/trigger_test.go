package function

import (
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/policy"
)

func TestAlarmReasonNamesTheEvent(t *testing.T) {
	at := time.Date(2026, 5, 9, 10, 1, 2, 123456789, time.FixedZone("x", 3600))
	a := &event.Alarm{Name: "banshee.ssh at night", StateChangeTime: at}
	tr := alarmTrigger(a)
	atk := policy.Attack{Reason: "alarm banshee.ssh at night: sshd 12 failures in 5m0s"}
	got := tr.vpcReason(policy.Decision{Repeat: 2}, atk)
	if want := "alarm banshee.ssh at night at 2026-05-09T09:01:02.123Z, repeat 2: sshd 12 failures in 5m0s"; got != want {
		t.Fatalf("vpcReason = %q, want %q", got, want)
	}
	id, when, repeat, ok := parseAlarmReason(got)
	if !ok || id != tr.id || !when.Equal(at.Truncate(time.Millisecond)) || repeat != 2 {
		t.Errorf("parseAlarmReason(%q) = %s %s %d %v; want %s %s 2", got, id, when, repeat, ok, tr.id, at)
	}
	// Every delivery shape of the same state change has the same id; another
	// state change or another alarm has another.
	if alarmEvent(a.Name, at.UTC()) != tr.id || alarmEvent(a.Name, at.Add(time.Millisecond)) == tr.id || alarmEvent("other", at) == tr.id {
		t.Error("alarmEvent does not identify exactly one state change of one alarm")
	}
	if _, _, r, ok := parseAlarmReason(tr.vpcReason(policy.Decision{}, atk)); !ok || r != 0 {
		t.Errorf("a first offence parses as repeat %d, ok %v", r, ok)
	}
	for _, other := range []string{"", "manual invoke", "adopted by sweep: entry had no banshee metadata", "alarm x at 2026-05-09T09:01:02Z: no millis", "alarm banshee.ssh at 2026-05-09T09:01:02.123Z, rep"} {
		if _, _, _, ok := parseAlarmReason(other); ok {
			t.Errorf("parseAlarmReason(%q) accepted", other)
		}
	}
	// Host command keys start with the event id and pass the driver's check.
	if k := tr.hostKey("i-1|1h0m0s"); !strings.HasPrefix(k, tr.id) || len(k) != 24 || k == tr.hostKey("i-2|1h0m0s") {
		t.Errorf("hostKey = %q", k)
	}
	if m := (trigger{id: manualEvent("req"), reason: "pop3 bruteforce"}); m.requestReason() != "pop3 bruteforce" || m.vpcReason(policy.Decision{}, atk) != "pop3 bruteforce" || tr.requestReason() != "" {
		t.Error("a manual invoke's reason is not the request's; an alarm's is not per decision")
	}
}
