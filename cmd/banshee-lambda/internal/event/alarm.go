package event

import (
	"encoding/json"
	"time"
)

// cwState is the state object of EventBridge and alarm-action events.
type cwState struct {
	Value      string `json:"value"`
	Reason     string `json:"reason"`
	ReasonData string `json:"reasonData"`
	Timestamp  string `json:"timestamp"`
}

// cwMetricQuery is one entry of configuration.metrics (camelCase shapes).
type cwMetricQuery struct {
	ID         string `json:"id"`
	Expression string `json:"expression"`
	MetricStat *struct {
		Metric struct {
			Name       string            `json:"name"`
			Namespace  string            `json:"namespace"`
			Dimensions map[string]string `json:"dimensions"`
		} `json:"metric"`
		Period int64  `json:"period"`
		Stat   string `json:"stat"`
	} `json:"metricStat"`
	ReturnData bool `json:"returnData"`
}

type cwAlarmDetail struct {
	AlarmName     string   `json:"alarmName"`
	State         *cwState `json:"state"`
	PreviousState *cwState `json:"previousState"`
	Configuration *struct {
		Metrics   []cwMetricQuery `json:"metrics"`
		AlarmRule string          `json:"alarmRule"`
	} `json:"configuration"`
}

type eventBridgeAlarm struct {
	Source     string        `json:"source"`
	DetailType string        `json:"detail-type"`
	Account    string        `json:"account"`
	Time       string        `json:"time"`
	Region     string        `json:"region"`
	Resources  []string      `json:"resources"`
	Detail     cwAlarmDetail `json:"detail"`
}

func parseEventBridge(raw []byte) (*Alarm, error) {
	const shape = ShapeEventBridge
	var e eventBridgeAlarm
	if err := decodeStrict(shape, raw, &e); err != nil {
		return nil, err
	}
	var arn string
	if len(e.Resources) > 0 {
		arn = e.Resources[0]
	}
	return alarmFromDetail(shape, arn, e.Region, e.Account, &e.Detail)
}

type alarmAction struct {
	Source    string        `json:"source"`
	AlarmArn  string        `json:"alarmArn"`
	AccountID string        `json:"accountId"`
	Time      string        `json:"time"`
	Region    string        `json:"region"`
	AlarmData cwAlarmDetail `json:"alarmData"`
}

func parseAlarmAction(raw []byte) (*Alarm, error) {
	const shape = ShapeAlarmAction
	var e alarmAction
	if err := decodeStrict(shape, raw, &e); err != nil {
		return nil, err
	}
	if e.AlarmArn == "" {
		return nil, errorf(shape, "alarmArn is missing")
	}
	return alarmFromDetail(shape, e.AlarmArn, e.Region, e.AccountID, &e.AlarmData)
}

// alarmFromDetail validates the camelCase alarm detail shared by the
// EventBridge and alarm-action shapes.
func alarmFromDetail(shape Shape, arn, region, account string, d *cwAlarmDetail) (*Alarm, error) {
	if d.AlarmName == "" {
		return nil, errorf(shape, "alarm name is missing")
	}
	if d.State == nil {
		return nil, errorf(shape, "state is missing")
	}
	if err := checkState(shape, "state.value", d.State.Value, true); err != nil {
		return nil, err
	}
	a := &Alarm{Name: d.AlarmName, ARN: arn, Account: account, State: d.State.Value}
	if d.PreviousState != nil {
		if err := checkState(shape, "previousState.value", d.PreviousState.Value, false); err != nil {
			return nil, err
		}
		a.PreviousState = d.PreviousState.Value
	}
	t, err := parseTime(d.State.Timestamp)
	if err != nil {
		return nil, &Error{Shape: shape, Msg: "state.timestamp", Err: err}
	}
	a.StateChangeTime = t
	a.EvaluatedFrom = evaluatedFrom(d.State.ReasonData)
	if arn != "" {
		r, err := arnRegion(arn)
		if err != nil {
			return nil, &Error{Shape: shape, Msg: "alarm ARN", Err: err}
		}
		a.Region = r
	} else {
		a.Region = region
	}
	if !regionRE.MatchString(a.Region) {
		return nil, errorf(shape, "no region code in the event (got %q)", a.Region)
	}
	if d.Configuration == nil {
		return nil, errorf(shape, "configuration is missing")
	}
	if d.Configuration.AlarmRule != "" && len(d.Configuration.Metrics) == 0 {
		return nil, errorf(shape, "composite alarm %q has no metrics to investigate; point the function at its metric alarms", d.AlarmName)
	}
	for i, q := range d.Configuration.Metrics {
		if q.MetricStat == nil {
			if q.Expression == "" {
				return nil, errorf(shape, "configuration.metrics[%d] has neither metricStat nor expression", i)
			}
			continue
		}
		m := q.MetricStat.Metric
		if m.Name == "" || m.Namespace == "" {
			return nil, errorf(shape, "configuration.metrics[%d].metricStat.metric needs name and namespace", i)
		}
		if q.MetricStat.Period < 0 {
			return nil, errorf(shape, "configuration.metrics[%d].metricStat.period is negative", i)
		}
		a.Metrics = append(a.Metrics, Metric{
			Name: m.Name, Namespace: m.Namespace, Dimensions: m.Dimensions,
			Period: time.Duration(q.MetricStat.Period) * time.Second,
		})
	}
	if len(a.Metrics) == 0 {
		return nil, errorf(shape, "alarm %q reads no metric", d.AlarmName)
	}
	return a, nil
}

// snsEvent is the Lambda event of an SNS subscription.
type snsEvent struct {
	Records []struct {
		EventSource string `json:"EventSource"`
		Sns         struct {
			Type      string `json:"Type"`
			TopicArn  string `json:"TopicArn"`
			Message   string `json:"Message"`
			Timestamp string `json:"Timestamp"`
		} `json:"Sns"`
	} `json:"Records"`
}

type snsDimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// snsAlarm is the alarm notification inside Sns.Message (PascalCase).
type snsAlarm struct {
	AlarmName       string `json:"AlarmName"`
	AWSAccountID    string `json:"AWSAccountId"`
	NewStateValue   string `json:"NewStateValue"`
	OldStateValue   string `json:"OldStateValue"`
	StateChangeTime string `json:"StateChangeTime"`
	Region          string `json:"Region"` // a display name such as "EU - Ireland"
	AlarmArn        string `json:"AlarmArn"`
	Trigger         *struct {
		MetricName        string         `json:"MetricName"`
		Namespace         string         `json:"Namespace"`
		Dimensions        []snsDimension `json:"Dimensions"`
		Period            int64          `json:"Period"`
		EvaluationPeriods int            `json:"EvaluationPeriods"`
		Metrics           []struct {
			ID         string `json:"Id"`
			Expression string `json:"Expression"`
			MetricStat *struct {
				Metric struct {
					Dimensions []snsDimension `json:"Dimensions"`
					MetricName string         `json:"MetricName"`
					Namespace  string         `json:"Namespace"`
				} `json:"Metric"`
				Period int64 `json:"Period"`
			} `json:"MetricStat"`
		} `json:"Metrics"`
	} `json:"Trigger"`
}

func dims(ds []snsDimension) map[string]string {
	if len(ds) == 0 {
		return nil
	}
	m := make(map[string]string, len(ds))
	for _, d := range ds {
		m[d.Name] = d.Value
	}
	return m
}

func parseSNS(raw []byte) (*Alarm, error) {
	const shape = ShapeSNS
	var e snsEvent
	if err := decodeStrict(shape, raw, &e); err != nil {
		return nil, err
	}
	if len(e.Records) != 1 {
		return nil, errorf(shape, "want exactly one SNS record, got %d", len(e.Records))
	}
	r := e.Records[0]
	if r.EventSource != "aws:sns" {
		return nil, errorf(shape, "record source %q is not aws:sns", r.EventSource)
	}
	if r.Sns.Message == "" {
		return nil, errorf(shape, "Sns.Message is empty")
	}
	var m snsAlarm
	if err := json.Unmarshal([]byte(r.Sns.Message), &m); err != nil {
		return nil, &Error{Shape: shape, Msg: "Sns.Message is not a CloudWatch alarm notification", Err: err}
	}
	if m.AlarmName == "" || m.AlarmArn == "" {
		return nil, errorf(shape, "Sns.Message is not a CloudWatch alarm notification: AlarmName or AlarmArn missing")
	}
	if err := checkState(shape, "NewStateValue", m.NewStateValue, true); err != nil {
		return nil, err
	}
	if err := checkState(shape, "OldStateValue", m.OldStateValue, false); err != nil {
		return nil, err
	}
	region, err := arnRegion(m.AlarmArn)
	if err != nil {
		return nil, &Error{Shape: shape, Msg: "AlarmArn", Err: err}
	}
	t, err := parseTime(m.StateChangeTime)
	if err != nil {
		return nil, &Error{Shape: shape, Msg: "StateChangeTime", Err: err}
	}
	a := &Alarm{
		Name: m.AlarmName, ARN: m.AlarmArn, Region: region, Account: m.AWSAccountID,
		State: m.NewStateValue, PreviousState: m.OldStateValue, StateChangeTime: t,
	}
	tr := m.Trigger
	if tr == nil {
		return nil, errorf(shape, "Trigger is missing")
	}
	if tr.Period < 0 || tr.EvaluationPeriods < 0 {
		return nil, errorf(shape, "Trigger.Period and Trigger.EvaluationPeriods must not be negative")
	}
	a.Period = time.Duration(tr.Period) * time.Second
	a.EvaluationPeriods = tr.EvaluationPeriods
	if tr.MetricName != "" {
		if tr.Namespace == "" {
			return nil, errorf(shape, "Trigger.Namespace is missing")
		}
		a.Metrics = append(a.Metrics, Metric{Name: tr.MetricName, Namespace: tr.Namespace, Dimensions: dims(tr.Dimensions), Period: a.Period})
	}
	for i, q := range tr.Metrics {
		if q.MetricStat == nil {
			if q.Expression == "" {
				return nil, errorf(shape, "Trigger.Metrics[%d] has neither MetricStat nor Expression", i)
			}
			continue
		}
		mm := q.MetricStat.Metric
		if mm.MetricName == "" || mm.Namespace == "" {
			return nil, errorf(shape, "Trigger.Metrics[%d].MetricStat.Metric needs MetricName and Namespace", i)
		}
		a.Metrics = append(a.Metrics, Metric{
			Name: mm.MetricName, Namespace: mm.Namespace, Dimensions: dims(mm.Dimensions),
			Period: time.Duration(q.MetricStat.Period) * time.Second,
		})
	}
	if len(a.Metrics) == 0 {
		return nil, errorf(shape, "alarm %q reads no metric (Trigger has neither MetricName nor Metrics)", m.AlarmName)
	}
	return a, nil
}
