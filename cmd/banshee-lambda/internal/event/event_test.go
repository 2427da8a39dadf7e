package event

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTime(s string) time.Time {
	t, err := parseTime(s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseAlarmFixtures(t *testing.T) {
	tests := []struct {
		file    string
		shape   Shape
		name    string
		region  string
		state   string
		prev    string
		at      string
		firing  bool
		metrics []Metric
		from    string // expected window start
	}{
		{
			file: "eventbridge-alarm-state-change.json", shape: ShapeEventBridge,
			name: "ServerCpuTooHigh", region: "us-east-1", state: StateAlarm, prev: StateOK,
			at: "2019-10-02T17:04:40.989+0000", firing: true,
			metrics: []Metric{{Name: "CPUUtilization", Namespace: "AWS/EC2", Dimensions: map[string]string{"InstanceId": "i-12345678901234567"}, Period: 5 * time.Minute}},
			from:    "2019-10-02T16:59:00.000+0000",
		},
		{
			file: "eventbridge-alarm-state-change-metric-math.json", shape: ShapeEventBridge,
			name: "TotalNetworkTrafficTooHigh", region: "us-east-1", state: StateAlarm, prev: StateInsufficient,
			at: "2019-10-02T17:20:48.554+0000", firing: true,
			metrics: []Metric{
				{Name: "NetworkIn", Namespace: "AWS/EC2", Dimensions: map[string]string{"InstanceId": "i-12345678901234567"}, Period: 5 * time.Minute},
				{Name: "NetworkOut", Namespace: "AWS/EC2", Dimensions: map[string]string{"InstanceId": "i-12345678901234567"}, Period: 5 * time.Minute},
			},
			from: "2019-10-02T17:10:00.000+0000",
		},
		{
			file: "cloudwatch-alarm-lambda-action.json", shape: ShapeAlarmAction,
			name: "lambda-demo-metric-alarm", region: "us-east-1", state: StateAlarm, prev: StateInsufficient,
			at: "2023-08-04T12:36:15.490+0000", firing: true,
			metrics: []Metric{{Name: "CallCount", Namespace: "AWS/Logs", Dimensions: map[string]string{"InstanceId": "i-12345678"}, Period: time.Minute}},
		},
		{
			file: "sns-alarm.json", shape: ShapeSNS,
			name: "Example alarm name", region: "eu-west-1", state: StateAlarm, prev: StateOK,
			at: "2017-01-12T16:30:42.236+0000", firing: true,
			metrics: []Metric{{Name: "DeliveryErrors", Namespace: "ExampleNamespace", Period: 5 * time.Minute}},
			from:    "2017-01-12T16:25:42.236+0000",
		},
		{
			file: "sns-alarm-metric-math.json", shape: ShapeSNS,
			name: "EXAMPLE", region: "us-west-2", state: StateAlarm, prev: StateInsufficient,
			at: "2015-06-03T17:43:27.123+0000", firing: true,
			metrics: []Metric{{Name: "NetworkOut", Namespace: "AWS/EC2", Dimensions: map[string]string{"InstanceId": "TestInstance"}, Period: time.Minute}},
			from:    "2015-06-03T17:42:27.123+0000",
		},
		{
			file: "sns-alarm-ok.json", shape: ShapeSNS,
			name: "alarm-test", region: "us-east-1", state: StateOK, prev: StateInsufficient,
			at: "2012-03-23T00:01:43.726+0000", firing: false,
			metrics: []Metric{{Name: "ApproximateNumberOfMessagesVisible", Namespace: "AWS/SQS", Dimensions: map[string]string{"QueueName": "fault-handling-test"}, Period: time.Minute}},
			from:    "2012-03-23T00:00:43.726+0000",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := Parse(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Shape != tt.shape || ev.Alarm == nil || ev.Schedule != nil || ev.Manual != nil {
				t.Fatalf("shape %q alarm %v, want %q with only Alarm set", ev.Shape, ev.Alarm, tt.shape)
			}
			a := ev.Alarm
			if a.Name != tt.name || a.Region != tt.region || a.State != tt.state || a.PreviousState != tt.prev {
				t.Errorf("got name %q region %q state %q prev %q", a.Name, a.Region, a.State, a.PreviousState)
			}
			if !a.StateChangeTime.Equal(mustTime(tt.at)) {
				t.Errorf("state change time %v, want %s", a.StateChangeTime, tt.at)
			}
			if a.Firing() != tt.firing {
				t.Errorf("Firing() = %v, want %v", a.Firing(), tt.firing)
			}
			if len(a.Metrics) != len(tt.metrics) {
				t.Fatalf("metrics %+v, want %+v", a.Metrics, tt.metrics)
			}
			for i, m := range a.Metrics {
				w := tt.metrics[i]
				if m.Name != w.Name || m.Namespace != w.Namespace || m.Period != w.Period || len(m.Dimensions) != len(w.Dimensions) {
					t.Errorf("metric %d = %+v, want %+v", i, m, w)
				}
				for k, v := range w.Dimensions {
					if m.Dimensions[k] != v {
						t.Errorf("metric %d dimension %s = %q, want %q", i, k, m.Dimensions[k], v)
					}
				}
			}
			start, end, ok := a.Window()
			if tt.from == "" {
				if ok {
					t.Errorf("window %v..%v known, want unknown (no evaluation periods in the event)", start, end)
				}
				return
			}
			if !ok || !start.Equal(mustTime(tt.from)) || !end.Equal(a.StateChangeTime) {
				t.Errorf("window %v..%v ok=%v, want %s..%s", start, end, ok, tt.from, tt.at)
			}
		})
	}
}

func TestAlarmKeySameAcrossShapes(t *testing.T) {
	at := time.Date(2026, 5, 9, 10, 0, 0, 0, time.UTC)
	eb := &Alarm{Name: "ssh", ARN: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ssh", Region: "us-east-1", StateChangeTime: at}
	sns := &Alarm{Name: "ssh", ARN: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ssh", Region: "us-east-1", StateChangeTime: at.In(time.FixedZone("x", 3600))}
	if eb.Key() != sns.Key() {
		t.Errorf("same state change, different keys %s %s", eb.Key(), sns.Key())
	}
	later := *eb
	later.StateChangeTime = at.Add(time.Millisecond)
	if later.Key() == eb.Key() {
		t.Errorf("different state changes share key %s", eb.Key())
	}
}

func TestWindowBounded(t *testing.T) {
	a := &Alarm{StateChangeTime: time.Unix(1e9, 0), Period: time.Hour, EvaluationPeriods: 100}
	start, end, ok := a.Window()
	if !ok || end.Sub(start) != MaxWindow {
		t.Errorf("window %v long, want capped at %v", end.Sub(start), MaxWindow)
	}
}

func TestParseSchedule(t *testing.T) {
	ev, err := Parse(fixture(t, "scheduled-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Shape != ShapeSchedule || ev.Schedule == nil {
		t.Fatalf("got %+v", ev)
	}
	if !ev.Schedule.Time.Equal(time.Date(2015, 10, 8, 16, 53, 6, 0, time.UTC)) || ev.Schedule.Rule != "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule" {
		t.Errorf("got %+v", ev.Schedule)
	}
}

func TestParseManualFixtures(t *testing.T) {
	tests := []struct {
		file      string
		action    ManualAction
		targets   []string
		ttl       time.Duration
		subnet    string
		instances int
	}{
		{"manual-block.json", ManualBlock, []string{"174.132.223.252/32", "198.51.100.0/24"}, 2 * time.Hour, "subnet-0123456789abcdef0", 0},
		{"manual-block-instances.json", ManualBlock, []string{"2001:db8::7/128"}, 30 * time.Minute, "", 1},
		{"manual-unblock.json", ManualUnblock, []string{"174.132.223.252/32"}, 0, "subnet-0123456789abcdef0", 0},
		{"manual-plan.json", ManualPlan, []string{"203.0.113.7/32"}, 0, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := Parse(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			m := ev.Manual
			if ev.Shape != ShapeManual || m == nil {
				t.Fatalf("got %+v", ev)
			}
			if m.Action != tt.action || m.TTL != tt.ttl || m.Subnet != tt.subnet || len(m.Instances) != tt.instances {
				t.Errorf("got %+v", m)
			}
			var got []string
			for _, p := range m.Targets {
				got = append(got, p.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.targets, " ") {
				t.Errorf("targets %v, want %v", got, tt.targets)
			}
		})
	}
}

// TestParseRejects feeds malformed, truncated and unknown events: each is an
// *Error naming what is wrong, and no event comes back.
func TestParseRejects(t *testing.T) {
	eb := string(fixture(t, "eventbridge-alarm-state-change.json"))
	sns := string(fixture(t, "sns-alarm.json"))
	action := string(fixture(t, "cloudwatch-alarm-lambda-action.json"))
	tests := []struct {
		name, payload, want string
	}{
		{"empty", "", "empty payload"},
		{"array", `[1,2]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"unknown shape", `{"hello":"world"}`, "unknown event shape"},
		{"other service", `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}`, "unsupported event"},
		{"truncated eventbridge", eb[:len(eb)/2], "malformed JSON"},
		{"truncated sns", sns[:len(sns)-10], "malformed JSON"},
		{"truncated action", action[:200], "malformed JSON"},
		{"placeholder arn", string(fixture(t, "sns-alarm-placeholder-arn.json")), "no region code"},
		{"placeholder arn metric math", string(fixture(t, "sns-alarm-metric-math-placeholder-arn.json")), "no region code"},
		{"bad state", strings.Replace(eb, `"value": "ALARM"`, `"value": "ON_FIRE"`, 1), "unknown alarm state"},
		{"bad timestamp", strings.Replace(eb, `"2019-10-02T17:04:40.989+0000"`, `"yesterday"`, 1), "state.timestamp"},
		{"no metrics", strings.Replace(eb, `"metricStat"`, `"notMetricStat"`, 1), "neither metricStat nor expression"},
		{"sns message not json", strings.Replace(sns, `"Message": "{`, `"Message": "x{`, 1), "not a CloudWatch alarm notification"},
		{"sns two records", `{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{}"}},{"EventSource":"aws:sns","Sns":{"Message":"{}"}}]}`, "exactly one SNS record"},
		{"sns not sns", strings.Replace(sns, `"aws:sns"`, `"aws:sqs"`, 1), "not aws:sns"},
		{"sns no trigger", `{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{\"AlarmName\":\"a\",\"AlarmArn\":\"arn:aws:cloudwatch:us-east-1:1:alarm:a\",\"NewStateValue\":\"ALARM\",\"StateChangeTime\":\"2017-01-12T16:30:42.236+0000\"}"}}]}`, "Trigger is missing"},
		{"action no arn", strings.Replace(action, `"alarmArn"`, `"alarmArnX"`, 1), "alarmArn is missing"},
		{"composite", `{"source":"aws.cloudwatch","alarmArn":"arn:aws:cloudwatch:us-east-1:1:alarm:c","alarmData":{"alarmName":"c","state":{"value":"ALARM","timestamp":"2023-08-04T12:36:15.490+0000"},"configuration":{"alarmRule":"ALARM(a)"}}}`, "composite alarm"},
		{"manual bad action", `{"action":"nuke","targets":["1.2.3.4"],"subnet":"subnet-0123456789abcdef0"}`, "unknown action"},
		{"manual bad target", `{"action":"block","targets":["1.2.3.4; rm -rf /"],"subnet":"subnet-0123456789abcdef0"}`, "targets"},
		{"manual everyone", `{"action":"block","targets":["0.0.0.0/0"],"subnet":"subnet-0123456789abcdef0"}`, "every address"},
		{"manual bad ttl", `{"action":"block","targets":["1.2.3.4"],"ttl":"-2h","subnet":"subnet-0123456789abcdef0"}`, "not a positive duration"},
		{"manual bad subnet", `{"action":"block","targets":["1.2.3.4"],"subnet":"subnet-$(id)"}`, "not a subnet id"},
		{"manual bad instance", `{"action":"block","targets":["1.2.3.4"],"instances":["i-x"]}`, "not an instance id"},
		{"manual no place", `{"action":"block","targets":["1.2.3.4"]}`, "name the subnet or the instances"},
		{"manual unknown field", `{"action":"block","targets":["1.2.3.4"],"instance":"i-0123456789abcdef0"}`, "unknown field"},
		{"manual no targets", `{"action":"block","subnet":"subnet-0123456789abcdef0"}`, "targets is empty"},
		{"schedule bad time", `{"source":"aws.events","detail-type":"Scheduled Event","time":"soon","detail":{}}`, "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse([]byte(tt.payload))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %+v, %v; want *Error", ev, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if ev.Alarm != nil || ev.Schedule != nil || ev.Manual != nil {
				t.Errorf("an event came back with the error: %+v", ev)
			}
		})
	}
}

// FuzzParse checks that no input panics and that every accepted alarm has
// the fields the handler relies on.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"eventbridge-alarm-state-change.json", "sns-alarm.json", "cloudwatch-alarm-lambda-action.json", "scheduled-event.json", "manual-block.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Parse(b)
		if err != nil {
			return
		}
		switch {
		case ev.Alarm != nil:
			if ev.Alarm.Name == "" || ev.Alarm.StateChangeTime.IsZero() || len(ev.Alarm.Metrics) == 0 || !regionRE.MatchString(ev.Alarm.Region) {
				t.Errorf("accepted incomplete alarm %+v", ev.Alarm)
			}
		case ev.Manual != nil:
			for _, p := range ev.Manual.Targets {
				if p.Bits() == 0 || p != p.Masked() {
					t.Errorf("accepted target %v", p)
				}
			}
		case ev.Schedule != nil:
		default:
			t.Errorf("no error and no event for %q", b)
		}
	})
}

func TestParseManualTTLCountsDays(t *testing.T) {
	ev, err := Parse([]byte(`{"action":"block","targets":["198.51.100.7"],"ttl":"1d12h","subnet":"subnet-0123456789abcdef0"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Manual == nil || ev.Manual.TTL != 36*time.Hour {
		t.Errorf("ttl 1d12h: got %+v", ev.Manual)
	}
}
