package function

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/offenders"
	"github.com/banshee-project/banshee/policy"
)

// Sustained attacks. Alarm actions, SNS notifications and EventBridge
// alarm events fire on state transitions only: an alarm that stays in
// ALARM under a sustained attack reaches the function once, and attackers
// who join later would go unblocked. So every scheduled run (the sweep's
// schedule, 1 minute by default) also asks CloudWatch which of the
// installation's alarms (BANSHEE_ALARM_PREFIX) are in ALARM and handles
// each as a state change into ALARM at the time of the run: the offenders
// of the alarm's current evaluation window, through the same path as an
// alarm event.
//
// A source that is already blocked is not a new offence: the window still
// holds its log lines from before its block, and counting them again would
// double its TTL on every run. A re-evaluation therefore drops an offender
// that an active block in the managed network ACLs covers, or that a block
// of banshee's (an ACL entry or a host command) took at or after the start
// of the window.

// AlarmsAPI is the part of the CloudWatch client the scheduled run reads
// the installation's alarms with.
type AlarmsAPI interface {
	DescribeAlarms(ctx context.Context, params *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// maxAlarmPages bounds DescribeAlarms: at most this many pages of 100
// alarms per scheduled run.
const maxAlarmPages = 5

// Reevaluation is the handling of one alarm that stayed in ALARM.
type Reevaluation struct {
	Response
	// AlreadyBlocked are offenders of the window that were blocked before
	// (and so are no new offence), with why.
	AlreadyBlocked []string `json:"already_blocked,omitempty"`
}

// sustain re-evaluates the installation's alarms in ALARM. Each alarm is
// handled on its own; the errors of all are returned together.
func (f *Function) sustain(ctx context.Context, resp *Response) error {
	if f.d.Alarms == nil || f.d.AlarmPrefix == "" {
		return nil
	}
	now := f.d.Now().UTC().Truncate(time.Millisecond)
	alarms, err := f.alarmsInAlarm(ctx, now)
	if err != nil {
		return fmt.Errorf("re-evaluate alarms in ALARM: %w", err)
	}
	var errs []error
	for _, a := range alarms {
		re := Reevaluation{Response: Response{Shape: event.ShapeSchedule}}
		g := New(f.reevaluating(&re))
		err := g.alarm(ctx, a, &re.Response)
		f.d.Log.InfoContext(ctx, "alarm still in ALARM re-evaluated", "alarm", a.Name, "window_end", a.StateChangeTime,
			"decisions", len(re.Decisions), "vpc_blocks", len(re.VPCBlocks), "already_blocked", len(re.AlreadyBlocked))
		resp.Reevaluated = append(resp.Reevaluated, re)
		if err != nil {
			errs = append(errs, fmt.Errorf("re-evaluate alarm %s: %w", a.Name, err))
		}
	}
	return errors.Join(errs...)
}

// reevaluating returns f's dependencies with a finder that drops the
// offenders already blocked, recording them in re.
func (f *Function) reevaluating(re *Reevaluation) Deps {
	d := f.d
	d.Alarms = nil // a re-evaluation never re-evaluates
	d.Finder = func(cfg policy.Config) (Finder, error) {
		inner, err := f.d.Finder(cfg)
		if err != nil {
			return nil, err
		}
		return &freshFinder{f: f, cfg: cfg, inner: inner, re: re}, nil
	}
	return d
}

// alarmsInAlarm lists the metric alarms named with the prefix that are in
// ALARM, as alarm events whose state changed at now.
func (f *Function) alarmsInAlarm(ctx context.Context, now time.Time) ([]*event.Alarm, error) {
	in := &cloudwatch.DescribeAlarmsInput{
		AlarmNamePrefix: aws.String(f.d.AlarmPrefix),
		StateValue:      cwtypes.StateValueAlarm,
		AlarmTypes:      []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm},
		MaxRecords:      aws.Int32(100),
	}
	var out []*event.Alarm
	for page := 0; ; page++ {
		if page == maxAlarmPages {
			f.d.Log.WarnContext(ctx, "more alarms in ALARM than one run reads; the rest wait for the next", "pages", page)
			return out, nil
		}
		res, err := f.d.Alarms.DescribeAlarms(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list alarms %s* in ALARM: %w", f.d.AlarmPrefix, err)
		}
		for _, ma := range res.MetricAlarms {
			// The prefix and state are asked for; a server that ignores
			// a filter must not widen what the function acts on.
			if !strings.HasPrefix(aws.ToString(ma.AlarmName), f.d.AlarmPrefix) || ma.StateValue != cwtypes.StateValueAlarm {
				continue
			}
			if a, ok := f.alarmOf(ctx, ma, now); ok {
				out = append(out, a)
			}
		}
		if aws.ToString(res.NextToken) == "" {
			return out, nil
		}
		in.NextToken = res.NextToken
	}
}

// alarmOf converts a described metric alarm into the alarm event of a
// state change into ALARM at now (its window ends now). An alarm that
// reads no metric is logged and skipped.
func (f *Function) alarmOf(ctx context.Context, ma cwtypes.MetricAlarm, now time.Time) (*event.Alarm, bool) {
	a := &event.Alarm{
		Name:              aws.ToString(ma.AlarmName),
		ARN:               aws.ToString(ma.AlarmArn),
		Region:            f.d.Region,
		State:             event.StateAlarm,
		StateChangeTime:   now,
		Period:            time.Duration(aws.ToInt32(ma.Period)) * time.Second,
		EvaluationPeriods: int(aws.ToInt32(ma.EvaluationPeriods)),
	}
	// arn:PARTITION:cloudwatch:REGION:ACCOUNT:alarm:NAME
	if parts := strings.SplitN(a.ARN, ":", 7); len(parts) == 7 {
		a.Region, a.Account = parts[3], parts[4]
	}
	if ma.MetricName != nil {
		a.Metrics = append(a.Metrics, event.Metric{Name: aws.ToString(ma.MetricName), Namespace: aws.ToString(ma.Namespace), Dimensions: dimensions(ma.Dimensions), Period: a.Period})
	}
	for _, q := range ma.Metrics {
		if q.MetricStat == nil || q.MetricStat.Metric == nil {
			continue // metric math: the metrics it combines are listed too
		}
		m := q.MetricStat.Metric
		a.Metrics = append(a.Metrics, event.Metric{Name: aws.ToString(m.MetricName), Namespace: aws.ToString(m.Namespace), Dimensions: dimensions(m.Dimensions),
			Period: time.Duration(aws.ToInt32(q.MetricStat.Period)) * time.Second})
	}
	if len(a.Metrics) == 0 {
		f.d.Log.WarnContext(ctx, "alarm in ALARM reads no metric; not re-evaluated", "alarm", a.Name)
		return nil, false
	}
	return a, true
}

func dimensions(ds []cwtypes.Dimension) map[string]string {
	if len(ds) == 0 {
		return nil
	}
	m := make(map[string]string, len(ds))
	for _, d := range ds {
		m[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	return m
}

// freshFinder finds an alarm's offenders and drops those already blocked.
type freshFinder struct {
	f     *Function
	cfg   policy.Config
	inner Finder
	re    *Reevaluation
}

// Find implements Finder.
func (x *freshFinder) Find(ctx context.Context, a *event.Alarm) (offenders.Result, error) {
	res, err := x.inner.Find(ctx, a)
	if err != nil || len(res.Offenders) == 0 {
		return res, err
	}
	snap, err := x.f.snapshot(ctx, x.cfg, x.f.d.NACLs(x.cfg), alarmTrigger(a), res.Attacks(a.Name, x.cfg.Policy.FloodRate))
	if err != nil {
		return res, fmt.Errorf("read existing blocks: %w", err)
	}
	kept := res.Offenders[:0:0]
	for _, o := range res.Offenders {
		if why := alreadyBlocked(o.Source, snap, res.Start); why != "" {
			x.re.AlreadyBlocked = append(x.re.AlreadyBlocked, o.Source.String()+": "+why)
			continue
		}
		kept = append(kept, o)
	}
	res.Offenders = kept
	return res, nil
}

// alreadyBlocked says why src is no new offence: an active VPC block
// covers it, or a block of it was made at or after since. "" when neither.
func alreadyBlocked(src netip.Prefix, snap policy.Snapshot, since time.Time) string {
	for _, b := range snap.Blocks {
		if b.Target.Bits() <= src.Bits() && b.Target.Contains(src.Addr()) && (b.ExpiresAt.IsZero() || b.ExpiresAt.After(snap.Now)) {
			where := string(b.Scope)
			if b.NACLID != "" {
				where = fmt.Sprintf("%s rule %d", b.NACLID, b.RuleNumber)
			}
			return fmt.Sprintf("blocked as %s by %s", b.Target, where)
		}
	}
	for _, o := range snap.Offences {
		if o.Source.Overlaps(src) && !o.At.Before(since) {
			return fmt.Sprintf("blocked as %s at %s, within the window", o.Source, o.At.UTC().Format(time.RFC3339))
		}
	}
	return ""
}
