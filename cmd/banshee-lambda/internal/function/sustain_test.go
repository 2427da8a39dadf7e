package function

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/banshee-project/banshee/policy"
)

// alarmStore keeps metric alarms and answers DescribeAlarms in pages of
// pageSize, honouring the name prefix and state filters unless lax (a
// server that ignores them).
type alarmStore struct {
	alarms   []cwtypes.MetricAlarm
	pageSize int
	lax      bool
	calls    int
}

func (s *alarmStore) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	s.calls++
	var match []cwtypes.MetricAlarm
	for _, a := range s.alarms {
		if s.lax || (strings.HasPrefix(aws.ToString(a.AlarmName), aws.ToString(in.AlarmNamePrefix)) && (in.StateValue == "" || a.StateValue == in.StateValue)) {
			match = append(match, a)
		}
	}
	start, _ := strconv.Atoi(aws.ToString(in.NextToken))
	end := min(start+s.pageSize, len(match))
	out := &cloudwatch.DescribeAlarmsOutput{MetricAlarms: match[start:end]}
	if end < len(match) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func metricAlarm(name string, state cwtypes.StateValue) cwtypes.MetricAlarm {
	return cwtypes.MetricAlarm{
		AlarmName: aws.String(name), AlarmArn: aws.String("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:" + name), StateValue: state,
		MetricName: aws.String("SshAuthFailures"), Namespace: aws.String("Banshee/prod"), Period: aws.Int32(60), EvaluationPeriods: aws.Int32(3),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String("i-0123456789abcdef0")}},
	}
}

func TestAlarmsInAlarm(t *testing.T) {
	now := time.Date(2026, 5, 9, 10, 0, 0, 0, time.UTC)
	store := &alarmStore{pageSize: 2, alarms: []cwtypes.MetricAlarm{
		metricAlarm("prod.ssh", cwtypes.StateValueAlarm),
		metricAlarm("prod.flow", cwtypes.StateValueOk),
		metricAlarm("prod-eu.ssh", cwtypes.StateValueAlarm), // another installation
		metricAlarm("prod.a", cwtypes.StateValueAlarm),
		metricAlarm("prod.b", cwtypes.StateValueAlarm),
		{AlarmName: aws.String("prod.math"), StateValue: cwtypes.StateValueAlarm, EvaluationPeriods: aws.Int32(2), Metrics: []cwtypes.MetricDataQuery{
			{Id: aws.String("e"), Expression: aws.String("m1+m2")},
			{Id: aws.String("m1"), MetricStat: &cwtypes.MetricStat{Metric: &cwtypes.Metric{MetricName: aws.String("X"), Namespace: aws.String("N")}, Period: aws.Int32(300)}},
		}},
		{AlarmName: aws.String("prod.nothing"), StateValue: cwtypes.StateValueAlarm},
	}}
	for _, lax := range []bool{false, true} {
		store.lax, store.calls = lax, 0
		f := New(Deps{Alarms: store, AlarmPrefix: "prod.", Region: "us-east-1"})
		got, err := f.alarmsInAlarm(context.Background(), now)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range got {
			names = append(names, a.Name)
			if !a.Firing() || !a.StateChangeTime.Equal(now) {
				t.Errorf("lax %v: %s: state %s from %q at %s, want a state change into ALARM at %s", lax, a.Name, a.State, a.PreviousState, a.StateChangeTime, now)
			}
		}
		if strings.Join(names, " ") != "prod.ssh prod.a prod.b prod.math" {
			t.Errorf("lax %v: alarms %v, want the prefix's in ALARM that read a metric", lax, names)
		}
		if want := map[bool]int{false: 3, true: 4}[lax]; store.calls != want {
			t.Errorf("lax %v: %d DescribeAlarms calls, want %d pages", lax, store.calls, want)
		}
		ssh := got[0]
		if s, e, ok := ssh.Window(); !ok || !e.Equal(now) || !s.Equal(now.Add(-3*time.Minute)) {
			t.Errorf("prod.ssh window %s-%s (%v), want the 3 periods up to now", s, e, ok)
		}
		if ssh.Region != "eu-west-1" || ssh.Account != "123456789012" || ssh.Metrics[0].Dimensions["InstanceId"] != "i-0123456789abcdef0" {
			t.Errorf("prod.ssh: %+v", ssh)
		}
		if m := got[3]; m.Region != "us-east-1" || len(m.Metrics) != 1 || m.Metrics[0].Period != 5*time.Minute {
			t.Errorf("prod.math (no ARN, metric math): %+v", m)
		}
	}

	// The pages are bounded.
	store = &alarmStore{pageSize: 1, lax: false}
	for i := range maxAlarmPages + 3 {
		store.alarms = append(store.alarms, metricAlarm("prod."+strconv.Itoa(i), cwtypes.StateValueAlarm))
	}
	got, err := New(Deps{Alarms: store, AlarmPrefix: "prod."}).alarmsInAlarm(context.Background(), now)
	if err != nil || len(got) != maxAlarmPages || store.calls != maxAlarmPages {
		t.Errorf("bounded: %d alarms in %d calls (%v), want %d", len(got), store.calls, err, maxAlarmPages)
	}
}

func TestAlreadyBlocked(t *testing.T) {
	now := time.Date(2026, 5, 9, 10, 0, 0, 0, time.UTC)
	since := now.Add(-5 * time.Minute)
	p := netip.MustParsePrefix
	snap := policy.Snapshot{
		Now: now,
		Blocks: []policy.Block{
			{Target: p("203.0.113.0/24"), Scope: policy.ScopeVPC, NACLID: "acl-1", RuleNumber: 3, ExpiresAt: now.Add(time.Hour)},
			{Target: p("198.51.100.7/32"), Scope: policy.ScopeVPC, NACLID: "acl-1", RuleNumber: 4, ExpiresAt: now.Add(-time.Second)}, // expired
		},
		Offences: []policy.Offence{
			{Source: p("192.0.2.9/32"), At: now.Add(-time.Minute)},      // host block within the window
			{Source: p("192.0.2.10/32"), At: since.Add(-time.Second)},   // before it
			{Source: p("2001:db8::/64"), At: since},                     // at its start
			{Source: p("198.51.100.7/32"), At: now.Add(-2 * time.Hour)}, // the expired block's offence
		},
	}
	for src, want := range map[string]string{
		"203.0.113.5/32":  "acl-1 rule 3",
		"198.51.100.7/32": "",
		"192.0.2.9/32":    "within the window",
		"192.0.2.10/32":   "",
		"2001:db8::1/128": "within the window",
		"203.0.112.0/23":  "", // wider than the block: not all of it is blocked
	} {
		got := alreadyBlocked(p(src), snap, since)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", src, got, want)
		}
	}
}
