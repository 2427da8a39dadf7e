package terraform

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// Each alarm_trigger creates the path it names and no other: the
// EventBridge rule with its target and permission, or the SNS topic with
// its policy, the function's subscription and the permission for
// sns.amazonaws.com scoped to the topic; alarm_action needs neither (the
// permission for alarms named with the prefix is always there).
func TestAlarmTriggerPaths(t *testing.T) {
	m := loadModule(t, ".")
	paths := map[string][]string{
		"eventbridge": {"aws_cloudwatch_event_rule.alarms", "aws_cloudwatch_event_target.alarms", "aws_lambda_permission.alarms_eventbridge"},
		"sns":         {"aws_sns_topic.alarms", "aws_sns_topic_policy.alarms", "aws_sns_topic_subscription.alarms", "aws_lambda_permission.alarms_sns", "data.aws_iam_policy_document.alarm_topic"},
	}
	for _, trigger := range []string{"eventbridge", "alarm_action", "sns"} {
		e, err := m.newEvaluator(withVPC(map[string]cty.Value{"alarm_trigger": cty.StringVal(trigger)}))
		if err != nil {
			t.Fatal(err)
		}
		for path, resources := range paths {
			for _, r := range resources {
				b, ok := m.resources[r]
				if name, isData := strings.CutPrefix(r, "data."); isData {
					b, ok = m.data[name]
				}
				if !ok {
					t.Fatalf("no %s", r)
				}
				v, err := e.eval(b.Body.Attributes["count"].Expr)
				if err != nil {
					t.Fatalf("%s count with alarm_trigger = %q: %v", r, trigger, err)
				}
				want := int64(0)
				if path == trigger {
					want = 1
				}
				if n, _ := v.AsBigFloat().Int64(); n != want {
					t.Errorf("alarm_trigger = %q: %s count %d, want %d", trigger, r, n, want)
				}
			}
		}
	}

	sub := m.resources["aws_sns_topic_subscription.alarms"]
	if p := attrString(t, sub, "protocol"); p != "lambda" {
		t.Errorf("the subscription's protocol is %q, want lambda", p)
	}
	if got := traversalsOf(sub.Body.Attributes["endpoint"].Expr); got != "aws_lambda_function.this.arn" {
		t.Errorf("the subscription's endpoint is %s, want aws_lambda_function.this.arn", got)
	}
	perm := m.resources["aws_lambda_permission.alarms_sns"]
	if p := attrString(t, perm, "principal"); p != "sns.amazonaws.com" {
		t.Errorf("the SNS permission's principal is %q", p)
	}
	if got := traversalsOf(perm.Body.Attributes["source_arn"].Expr); got != "aws_sns_topic.alarms[0].arn" {
		t.Errorf("the SNS permission is scoped to %s, want aws_sns_topic.alarms[0].arn", got)
	}
}
