package event

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// Shape names the wire format an event arrived in.
type Shape string

// Shapes the function accepts.
const (
	ShapeEventBridge Shape = "eventbridge-alarm" // EventBridge "CloudWatch Alarm State Change"
	ShapeSNS         Shape = "sns-alarm"         // SNS notification of a CloudWatch alarm
	ShapeAlarmAction Shape = "alarm-action"      // the alarm invoking the function directly
	ShapeSchedule    Shape = "schedule"          // EventBridge "Scheduled Event"
	ShapeManual      Shape = "manual"            // {"action": ...} from an operator
)

// Alarm states as CloudWatch spells them.
const (
	StateAlarm        = "ALARM"
	StateOK           = "OK"
	StateInsufficient = "INSUFFICIENT_DATA"
)

// MaxWindow bounds the evaluation window the function searches logs over,
// whatever the alarm says.
const MaxWindow = 24 * time.Hour

// Event is one parsed invocation. Exactly one of Alarm, Schedule and Manual
// is set, according to Shape.
type Event struct {
	Shape    Shape
	Alarm    *Alarm
	Schedule *Schedule
	Manual   *Manual
}

// Alarm is a CloudWatch metric alarm's state change, whatever delivered it.
type Alarm struct {
	Name            string
	ARN             string // empty when the shape does not carry it
	Region          string // region code, e.g. eu-west-1
	Account         string
	State           string
	PreviousState   string
	StateChangeTime time.Time
	// Metrics are the metrics the alarm reads (metric-math expressions are
	// dropped; the metrics they combine are kept).
	Metrics []Metric
	// Period and EvaluationPeriods are the alarm's, when the shape carries
	// them (SNS does; EventBridge and the alarm action carry Period per
	// metric and no evaluation periods).
	Period            time.Duration
	EvaluationPeriods int
	// EvaluatedFrom is the start of the evaluated range when the state's
	// reason data names it (startDate or the oldest evaluated datapoint).
	EvaluatedFrom time.Time
}

// Metric is one metric an alarm reads.
type Metric struct {
	Name       string
	Namespace  string
	Dimensions map[string]string
	Period     time.Duration
}

// Firing reports whether the alarm went into ALARM: the only transition
// the function acts on.
func (a *Alarm) Firing() bool { return a.State == StateAlarm && a.PreviousState != StateAlarm }

// Key identifies this state change of this alarm across deliveries and
// shapes (EventBridge, SNS and the alarm action all carry the same alarm and
// state-change time), for de-duplication under at-least-once delivery.
func (a *Alarm) Key() string {
	id := a.ARN
	if id == "" {
		id = a.Region + "/" + a.Name
	} else if i := strings.LastIndex(id, ":alarm:"); i >= 0 {
		id = a.Region + "/" + id[i+len(":alarm:"):]
	}
	sum := sha256.Sum256([]byte(id + "\x00" + a.StateChangeTime.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(sum[:12])
}

// MaxPeriod is the longest period of the alarm or its metrics.
func (a *Alarm) MaxPeriod() time.Duration {
	p := a.Period
	for _, m := range a.Metrics {
		p = max(p, m.Period)
	}
	return p
}

// Window returns the time range whose data made the alarm fire:
// StateChangeTime minus period × evaluation periods (or the start of the
// evaluated range the reason data names, if earlier), up to StateChangeTime,
// never longer than MaxWindow. ok is false when the event does not say how
// many periods were evaluated; the caller then asks CloudWatch.
func (a *Alarm) Window() (start, end time.Time, ok bool) {
	end = a.StateChangeTime
	if a.EvaluationPeriods > 0 && a.MaxPeriod() > 0 {
		start = end.Add(-a.MaxPeriod() * time.Duration(a.EvaluationPeriods))
		ok = true
	}
	if !a.EvaluatedFrom.IsZero() && (start.IsZero() || a.EvaluatedFrom.Before(start)) {
		start, ok = a.EvaluatedFrom, true
	}
	if ok && end.Sub(start) > MaxWindow {
		start = end.Add(-MaxWindow)
	}
	return start, end, ok
}

// Schedule is an EventBridge scheduled event: time to sweep expired blocks.
type Schedule struct {
	Time time.Time
	Rule string // the rule's ARN
}

// ManualAction is what an operator asks of the function.
type ManualAction string

// Manual actions.
const (
	ManualBlock   ManualAction = "block"
	ManualUnblock ManualAction = "unblock"
	ManualPlan    ManualAction = "plan"
)

// Manual is a manual invocation:
// {"action":"block","targets":[...],"ttl":"2h","reason":"...","subnet":"...","instances":[...]}.
type Manual struct {
	Action    ManualAction
	Targets   []netip.Prefix
	TTL       time.Duration // 0: the configured default
	Reason    string
	Subnet    string
	Instances []string
	Scope     policy.Scope
}

// Error is an event the function cannot act on: unknown shape, malformed
// or truncated JSON, a missing or invalid field. Nothing changes.
type Error struct {
	Shape Shape // empty when the shape itself is unknown
	Msg   string
	Err   error
}

func (e *Error) Error() string {
	s := "parse event"
	if e.Shape != "" {
		s += " (" + string(e.Shape) + ")"
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(shape Shape, format string, args ...any) error {
	return &Error{Shape: shape, Msg: fmt.Sprintf(format, args...)}
}

// probe holds the fields that tell the shapes apart.
type probe struct {
	Records    json.RawMessage `json:"Records"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	AlarmData  json.RawMessage `json:"alarmData"`
	Action     json.RawMessage `json:"action"`
}

// Parse parses one invocation payload.
func Parse(raw []byte) (Event, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Event{}, errorf("", "empty payload")
	}
	if raw[0] != '{' {
		return Event{}, errorf("", "payload is not a JSON object")
	}
	var p probe
	if err := json.Unmarshal(raw, &p); err != nil {
		return Event{}, &Error{Msg: "malformed JSON", Err: err}
	}
	switch {
	case p.Records != nil:
		a, err := parseSNS(raw)
		return Event{Shape: ShapeSNS, Alarm: a}, err
	case p.Source == "aws.cloudwatch" && p.DetailType == "CloudWatch Alarm State Change":
		a, err := parseEventBridge(raw)
		return Event{Shape: ShapeEventBridge, Alarm: a}, err
	case p.Source == "aws.cloudwatch" && p.AlarmData != nil:
		a, err := parseAlarmAction(raw)
		return Event{Shape: ShapeAlarmAction, Alarm: a}, err
	case p.Source == "aws.events" && p.DetailType == "Scheduled Event":
		s, err := parseSchedule(raw)
		return Event{Shape: ShapeSchedule, Schedule: s}, err
	case p.Action != nil:
		m, err := parseManual(raw)
		return Event{Shape: ShapeManual, Manual: m}, err
	case p.Source != "" || p.DetailType != "":
		return Event{}, errorf("", "unsupported event: source %q, detail-type %q", p.Source, p.DetailType)
	}
	return Event{}, errorf("", "unknown event shape (want a CloudWatch alarm via EventBridge, SNS or alarm action, a scheduled event, or {\"action\": ...})")
}

// timeLayouts are the timestamp spellings of CloudWatch and EventBridge.
var timeLayouts = []string{
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	time.RFC3339Nano,
}

func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a timestamp", s)
}

// arnRegion returns the region of an ARN (arn:partition:service:region:...).
func arnRegion(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return "", fmt.Errorf("%q is not an ARN", arn)
	}
	if !regionRE.MatchString(parts[3]) {
		return "", fmt.Errorf("ARN %q has no region code (got %q)", arn, parts[3])
	}
	return parts[3], nil
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)

func checkState(shape Shape, field, v string, required bool) error {
	switch v {
	case StateAlarm, StateOK, StateInsufficient:
		return nil
	case "":
		if !required {
			return nil
		}
		return errorf(shape, "%s is missing", field)
	}
	return errorf(shape, "%s: unknown alarm state %q", field, v)
}

// reasonData is the JSON string inside state.reasonData.
type reasonData struct {
	StartDate           string `json:"startDate"`
	EvaluatedDatapoints []struct {
		Timestamp string `json:"timestamp"`
	} `json:"evaluatedDatapoints"`
}

// evaluatedFrom reads the start of the evaluated range from reason data; a
// reason data it cannot read is not an error (it is informational text).
func evaluatedFrom(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	var rd reasonData
	if json.Unmarshal([]byte(s), &rd) != nil {
		return time.Time{}
	}
	var from time.Time
	if t, err := parseTime(rd.StartDate); err == nil {
		from = t
	}
	for _, d := range rd.EvaluatedDatapoints {
		if t, err := parseTime(d.Timestamp); err == nil && (from.IsZero() || t.Before(from)) {
			from = t
		}
	}
	return from
}

func decodeStrict(shape Shape, raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return &Error{Shape: shape, Msg: "malformed JSON", Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(shape, "trailing data after the JSON object")
	}
	return nil
}

func newStrictDecoder(raw []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec
}
