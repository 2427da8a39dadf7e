package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/banshee-project/banshee/awsnacl/mototest"
)

// cloudWatch calls moto's CloudWatch through the Query protocol (the
// function's own client speaks it too; moto 5.2 does not serve CBOR).
func (w *world) cloudWatch(t testing.TB, form url.Values) {
	t.Helper()
	form.Set("Version", "2010-08-01")
	req, _ := http.NewRequest(http.MethodPost, w.moto+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260509/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CloudWatch %s: %s", form.Get("Action"), resp.Status)
	}
}

// alarmOnMetric creates an alarm on the world's metric (5 periods of 60s:
// the log lines' window) and sets its state.
func (w *world) alarmOnMetric(t testing.TB, name, state string) {
	t.Helper()
	w.cloudWatch(t, url.Values{"Action": {"PutMetricAlarm"}, "AlarmName": {name}, "MetricName": {w.metric}, "Namespace": {w.namespace},
		"Statistic": {"Sum"}, "Period": {"60"}, "EvaluationPeriods": {"5"}, "Threshold": {"5"}, "ComparisonOperator": {"GreaterThanOrEqualToThreshold"}})
	w.setAlarm(t, name, state)
}

func (w *world) setAlarm(t testing.TB, name, state string) {
	t.Helper()
	w.cloudWatch(t, url.Values{"Action": {"SetAlarmState"}, "AlarmName": {name}, "StateValue": {state}, "StateReason": {"test"}})
}

// authLines adds n failed SSH logins of src to the auth log stream of the
// world's instance i, a minute ago.
func (w *world) authLines(t testing.TB, i int, src string, n int) {
	t.Helper()
	ctx := context.Background()
	filters, err := w.logs.DescribeMetricFilters(ctx, &cloudwatchlogs.DescribeMetricFiltersInput{MetricName: aws.String(w.metric), MetricNamespace: aws.String(w.namespace)})
	if err != nil || len(filters.MetricFilters) != 1 {
		t.Fatalf("the world's metric filter: %v %+v", err, filters)
	}
	var evs []logstypes.InputLogEvent
	at := time.Now().Add(-time.Minute)
	for j := range n {
		line := fmt.Sprintf("May  9 10:02:%02d ip-10-30-1-%d sshd[%d]: Failed password for invalid user admin from %s port %d ssh2", j%60, 10+i, 5000+j, src, 41000+j)
		evs = append(evs, logstypes.InputLogEvent{Message: aws.String(line), Timestamp: aws.Int64(at.Add(time.Duration(j) * time.Millisecond).UnixMilli())})
	}
	_, err = w.logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: filters.MetricFilters[0].LogGroupName, LogStreamName: aws.String(w.inst[i]), LogEvents: evs})
	if err != nil {
		t.Fatal(err)
	}
}

type reevaluation struct {
	Alarm          string     `json:"alarm"`
	Ignored        string     `json:"ignored"`
	Decisions      []decision `json:"decisions"`
	AlreadyBlocked []string   `json:"already_blocked"`
}

func (r reevaluation) action(target string) string {
	return response{Decisions: r.Decisions}.action(target)
}

func (r reevaluation) blocked(target string) bool {
	return slices.ContainsFunc(r.AlreadyBlocked, func(s string) bool { return strings.HasPrefix(s, target+": ") })
}

// TestSustainedAttack: an alarm that stays in ALARM reaches the function
// through no event; the scheduled run finds it (DescribeAlarms, the
// installation's prefix only), blocks the offenders of its current window,
// and on the next run counts no source it already blocked, while a new
// attacker of the same alarm is blocked.
func TestSustainedAttack(t *testing.T) {
	if !mototest.Available() {
		t.Skip("moto_server not on PATH: install moto[server] to run the Lambda end-to-end test")
	}
	bin := buildBootstrap(t)
	// Sources of their own: the package's tests share one moto, and the
	// SSM command history with it.
	w := newWorld(t, map[string]map[int]int{
		"203.0.113.110": {0: 6, 1: 6}, // two instances of subnet A → VPC
		"203.0.113.120": {2: 7},       // one instance → host
	})
	prefix := fmt.Sprintf("sustain-%d.", time.Now().UnixNano())
	ours := prefix + "ssh-auth-failures"
	w.alarmOnMetric(t, ours, "ALARM")
	// Another installation's alarm on the same metric, in ALARM too.
	w.alarmOnMetric(t, "other-"+prefix+"ssh", "ALARM")

	cnt := newCounter(t, w.moto)
	rt := newRuntimeAPI(t)
	env := w.env(cnt.URL)
	env["BANSHEE_ALARM_PREFIX"] = prefix
	_, out := startBootstrap(t, bin, rt, env)
	defer func() {
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	}()
	before := len(w.commands(t))
	scheduled := mustJSON(t, fixture(t, "scheduled-event.json"))
	var recreated []string // what the last run's restore re-created
	run := func(step string) []reevaluation {
		t.Helper()
		res := rt.invoke(t, scheduled)
		if !res.ok {
			t.Fatalf("%s: scheduled run failed: %s", step, res.body)
		}
		var resp struct {
			Sweep       json.RawMessage `json:"sweep"`
			Reevaluated []reevaluation  `json:"reevaluated"`
			Recreated   []struct {
				Target string `json:"target"`
			} `json:"recreated"`
		}
		if err := json.Unmarshal(res.body, &resp); err != nil {
			t.Fatalf("%s: response %s: %v", step, res.body, err)
		}
		recreated = nil
		for _, b := range resp.Recreated {
			recreated = append(recreated, b.Target)
		}
		if len(resp.Sweep) == 0 {
			t.Errorf("%s: the scheduled run did not sweep: %s", step, res.body)
		}
		return resp.Reevaluated
	}
	state := func(step string, denies []string, cmds int) {
		t.Helper()
		if got := w.denies(t, w.subnetA); !slices.Equal(got, denies) {
			t.Errorf("%s: subnet A denies %v, want %v", step, got, denies)
		}
		if got := len(w.commands(t)) - before; got != cmds {
			t.Errorf("%s: %d new SSM commands, want %d", step, got, cmds)
		}
	}

	// 1. The alarm is in ALARM: its offenders are blocked as an alarm
	// event would have them blocked.
	re := run("first run")
	if len(re) != 1 || re[0].Alarm != ours {
		t.Fatalf("first run re-evaluated %+v, want only %s", re, ours)
	}
	for target, want := range map[string]string{"203.0.113.110/32": "block/vpc", "203.0.113.120/32": "block/host"} {
		if got := re[0].action(target); got != want {
			t.Errorf("first run: %s decided %q, want %q", target, got, want)
		}
	}
	state("first run", []string{"203.0.113.110/32"}, 1)
	tags := w.blocks(t, w.subnetA)

	// 2. Still in ALARM, the same lines in the window: both sources are
	// already blocked, no new offence: nothing decided, nothing sent, the
	// ACL entry's metadata (expiry, reason) unchanged.
	re = run("second run")
	if len(re) != 1 || len(re[0].Decisions) != 0 || !re[0].blocked("203.0.113.110/32") || !re[0].blocked("203.0.113.120/32") {
		t.Errorf("second run: %+v, want no decision and both sources already blocked", re)
	}
	state("second run", []string{"203.0.113.110/32"}, 1)
	if got := w.blocks(t, w.subnetA); fmt.Sprint(got) != fmt.Sprint(tags) {
		t.Errorf("second run changed the ACL's blocks:\n%+v\nwas\n%+v", got, tags)
	}

	// 3. A new attacker joins while the alarm stays in ALARM: blocked on
	// the next run, as a first offence; the others stay untouched.
	w.authLines(t, 0, "203.0.113.130", 6)
	w.authLines(t, 1, "203.0.113.130", 6)
	re = run("new attacker")
	if len(re) != 1 || re[0].action("203.0.113.130/32") != "block/vpc" || len(re[0].Decisions) != 1 {
		t.Errorf("new attacker: %+v, want exactly 203.0.113.130/32 blocked at VPC scope", re)
	} else if d := re[0].Decisions[0]; slices.ContainsFunc(d.Reasons, func(s string) bool { return strings.HasPrefix(s, "repeat offender") }) {
		t.Errorf("new attacker: counted as a repeat offender: %q", d.Reasons)
	}
	state("new attacker", []string{"203.0.113.110/32", "203.0.113.130/32"}, 1)

	// 4. Someone else deletes that entry (as a Terraform apply of the
	// ACL's inline rules would): the scheduled run re-creates it from its
	// tags before it sweeps, so the re-evaluation, the alarm still in
	// ALARM, finds the source blocked.
	for _, b := range w.blocks(t, w.subnetA) {
		if b.Target.String() != "203.0.113.130/32" {
			continue
		}
		if _, err := w.ec2.DeleteNetworkAclEntry(context.Background(), &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(w.naclA), RuleNumber: aws.Int32(int32(b.RuleNumber)), Egress: aws.Bool(false)}); err != nil {
			t.Fatal(err)
		}
	}
	state("entry deleted", []string{"203.0.113.110/32"}, 1)
	re = run("entry deleted")
	if !slices.Equal(recreated, []string{"203.0.113.130/32"}) || len(re) != 1 || !re[0].blocked("203.0.113.130/32") || len(re[0].Decisions) != 0 {
		t.Errorf("entry deleted: re-created %v, re-evaluated %+v; want 203.0.113.130/32 re-created, then found blocked", recreated, re)
	}
	if o := out.String(); !strings.Contains(o, "re-created a network ACL deny deleted before its expiry") || !strings.Contains(o, `"target":"203.0.113.130/32"`) {
		t.Errorf("entry deleted: the function's log does not name the re-created deny")
	}
	state("entry deleted", []string{"203.0.113.110/32", "203.0.113.130/32"}, 1)

	// 5. Back to OK: the schedule only sweeps.
	w.setAlarm(t, ours, "OK")
	if re = run("alarm ok"); len(re) != 0 {
		t.Errorf("alarm OK: re-evaluated %+v, want nothing", re)
	}
	state("alarm ok", []string{"203.0.113.110/32", "203.0.113.130/32"}, 1)
}
