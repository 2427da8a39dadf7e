package function

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

// trigger is what an enforcement answers: one alarm state change, or one
// manual invoke. Every delivery of the same event has the same id.
type trigger struct {
	id     string       // 12 hex digits, see alarmEvent and manualEvent
	alarm  *event.Alarm // nil for a manual invoke
	reason string       // the manual invoke's reason; for alarms "alarm NAME"
	since  time.Time    // the earliest an earlier delivery's host command can have been sent
	// reasons are an alarm's reasons per source (offenders.Result.Reasons):
	// an attack stands for many sources, a VPC block's tag for its own.
	reasons map[netip.Prefix]string
}

// stampLayout writes an alarm's state change time in reasons: UTC, to the
// millisecond, as the events carry it.
const stampLayout = "2006-01-02T15:04:05.000Z"

// alarmEvent is the id of an alarm's state change. It is derived from what
// a VPC block's reason records (name and state change time), so that the
// block can be traced back to the event that made it.
func alarmEvent(name string, at time.Time) string {
	return hashKey("alarm", name, at.UTC().Format(stampLayout))[:12]
}

// manualEvent is the id of a manual invoke (its request id; a retry of the
// same invoke keeps it).
func manualEvent(requestID string) string { return hashKey("manual", requestID)[:12] }

func alarmTrigger(a *event.Alarm) trigger {
	return trigger{id: alarmEvent(a.Name, a.StateChangeTime), alarm: a, reason: "alarm " + a.Name, since: a.StateChangeTime.Add(-time.Minute)}
}

// hostKey is the de-duplication key of one host command group: the event
// id first, so that the command history says which event sent a command.
func (tr trigger) hostKey(group string) string { return tr.id + hashKey(tr.id, group)[:12] }

// hostReason is the reason host commands carry (the document's pattern).
func (tr trigger) hostReason() string { return remote.CleanReason(tr.reason) }

// requestReason is awsnacl.Request.Reason: the manual invoke's reason for
// every block; empty for an alarm, whose blocks each carry their own
// (vpcReason, as the decision's first reason), since the count and the
// repeat differ per source.
func (tr trigger) requestReason() string {
	if tr.alarm != nil {
		return ""
	}
	return tr.reason
}

// vpcReason is the reason a VPC block of an alarm records in the ACL's tag:
//
//	alarm ssh-bruteforce at 2026-05-09T10:01:02.123Z, repeat 1: sshd 12 failures in 5m0s
//
// naming the alarm, its state change (the event, for repeat-offender
// counting), the prior offences the TTL was doubled for, and what the
// source did (the source's own reason, else the attack's, without its
// "alarm NAME: " head).
func (tr trigger) vpcReason(d policy.Decision, atk policy.Attack) string {
	if tr.alarm == nil {
		return tr.reason
	}
	reason, ok := tr.reasons[d.Target]
	if !ok {
		reason = atk.Reason
	}
	detail := strings.TrimPrefix(reason, "alarm "+tr.alarm.Name+": ")
	return alarmReason(tr.alarm.Name, tr.alarm.StateChangeTime, d.Repeat, detail)
}

func alarmReason(name string, at time.Time, repeat int, detail string) string {
	s := "alarm " + name + " at " + at.UTC().Format(stampLayout)
	if repeat > 0 {
		s += fmt.Sprintf(", repeat %d", repeat)
	}
	return s + ": " + detail
}

var alarmReasonRE = regexp.MustCompile(`^alarm (.+) at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)(?:, repeat (\d{1,4}))?: `)

// parseAlarmReason reads a reason written by alarmReason: the event id, the
// state change time and the repeat count. ok is false for any other reason
// (the CLI's, a manual invoke's, or one cut short by the tag's length).
func parseAlarmReason(s string) (id string, at time.Time, repeat int, ok bool) {
	m := alarmReasonRE.FindStringSubmatch(s)
	if m == nil {
		return "", time.Time{}, 0, false
	}
	at, err := time.Parse(stampLayout, m[2])
	if err != nil {
		return "", time.Time{}, 0, false
	}
	if m[3] != "" {
		repeat, _ = strconv.Atoi(m[3])
	}
	return alarmEvent(m[1], at), at, repeat, true
}
