package offenders

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/policy"
	"github.com/banshee-project/banshee/policy/detect"
)

// LogsAPI is the part of the CloudWatch Logs client the finder uses.
type LogsAPI interface {
	DescribeMetricFilters(ctx context.Context, params *cloudwatchlogs.DescribeMetricFiltersInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeMetricFiltersOutput, error)
	FilterLogEvents(ctx context.Context, params *cloudwatchlogs.FilterLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// EC2API is the part of the EC2 client the finder uses (flow logs name
// network interfaces, not instances).
type EC2API interface {
	DescribeNetworkInterfaces(ctx context.Context, params *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
}

// DefaultEvaluationPeriods is the number of periods searched when an event
// says neither how many periods the alarm evaluates nor where the evaluated
// range starts (EventBridge and alarm-action events carry the period of
// each metric only, and usually the range in the state's reason data).
const DefaultEvaluationPeriods = 5

// Limits bound what one alarm may read.
type Limits struct {
	FilterPages int // DescribeMetricFilters pages per metric
	LogPages    int // FilterLogEvents pages per metric filter
	Events      int // log events per alarm
	Sources     int // distinct sources tracked per alarm
}

// DefaultLimits are the limits New uses.
var DefaultLimits = Limits{FilterPages: 5, LogPages: 20, Events: 100_000, Sources: 10_000}

// Finder finds the offenders of an alarm.
type Finder struct {
	logs  LogsAPI
	ec2   EC2API
	watch policy.WatchConfig
	lim   Limits
}

// New returns a finder over the given clients. watch configures the
// detectors (user detectors included) and the thresholds.
func New(logs LogsAPI, ec2c EC2API, watch policy.WatchConfig, lim Limits) (*Finder, error) {
	if _, err := detect.New(watch, nil); err != nil {
		return nil, fmt.Errorf("build detectors: %w", err)
	}
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	return &Finder{logs: logs, ec2: ec2c, watch: watch, lim: lim}, nil
}

// Offender is one source seen in the alarm's window.
type Offender struct {
	Source netip.Prefix `json:"source"`
	// Count is, for a detector, the failures weighted as watch weighs
	// them (a probe counts less than an authentication failure); for flow
	// logs the records (REJECTs, probes).
	Count     int               `json:"count"`
	Lines     int               `json:"lines,omitempty"`     // a detector's failure lines
	Instances map[string]int    `json:"instances,omitempty"` // count per instance
	Subnets   map[string]string `json:"-"`                   // instance → subnet, when the logs say (flow logs)
	VPCs      map[string]string `json:"-"`                   // instance → VPC, when the logs say
	Port      policy.Port       `json:"port"`
	Kind      policy.Kind       `json:"kind"`
	Detector  string            `json:"detector"` // detector name, "flowlog" or "dimension"
	Threshold int               `json:"threshold"`
}

// Summary says what the source did: "<detector> N failures" (weighted;
// the lines when they differ, and the group when it stands for several
// addresses), or for flow logs "flowlog N refused or probing
// connections".
func (o Offender) Summary() string {
	if o.Detector == "flowlog" {
		return fmt.Sprintf("flowlog %d refused or probing connections", o.Count)
	}
	s := fmt.Sprintf("%s %d failures", o.Detector, o.Count)
	if o.Lines != 0 && o.Lines != o.Count {
		s += fmt.Sprintf(" (%d lines)", o.Lines)
	}
	if o.Source.Bits() < o.Source.Addr().BitLen() && o.Detector != "dimension" {
		s += " from addresses of " + o.Source.String()
	}
	return s
}

// Result is what Find saw.
type Result struct {
	Offenders []Offender `json:"offenders"`
	// Below counts sources seen fewer times than their threshold.
	Below      int       `json:"below_threshold"`
	Start      time.Time `json:"window_start"`
	End        time.Time `json:"window_end"`
	Filters    []string  `json:"metric_filters,omitempty"` // "log group: filter name"
	Events     int       `json:"events"`
	Truncated  bool      `json:"truncated,omitempty"` // a bound was reached; the counts are partial
	Unmatched  int       `json:"unmatched,omitempty"` // events no detector and no flow-log parser understood
	Unresolved []string  `json:"unresolved_interfaces,omitempty"`
	// AssumedPeriods is set when the event did not carry the alarm's
	// evaluation periods and DefaultEvaluationPeriods were searched.
	AssumedPeriods int `json:"assumed_periods,omitempty"`
}

// sourceDims are metric dimension names (lower case, without separators)
// whose value is the attacking source itself.
var sourceDims = map[string]bool{
	"sourceip": true, "sourceaddress": true, "sourceipaddress": true, "srcaddr": true,
	"srcip": true, "clientip": true, "remoteip": true, "remoteaddr": true, "remoteaddress": true,
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]`)

func dimKey(name string) string { return nonAlnum.ReplaceAllString(strings.ToLower(name), "") }

// instanceOfStream returns the instance id a log stream is named after:
// the CloudWatch agent names streams {instance_id} by default, sometimes
// with a suffix ("i-0abc/var/log/secure").
var streamInstanceRE = regexp.MustCompile(`^(i-[0-9a-f]{8,17})(?:$|[^0-9a-z])`)

func instanceOfStream(s string) string {
	if m := streamInstanceRE.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// tally accumulates offenders by source and detector.
type tally struct {
	by    map[string]*Offender // key: source|detector, or #ID of a detect.Tally sum
	order []string
	limit int
	full  bool
}

func (t *tally) add(k string, src netip.Prefix, detector string, kind policy.Kind, port policy.Port, threshold int, instance string, n int) {
	o := t.by[k]
	if o == nil {
		if len(t.by) >= t.limit {
			t.full = true
			return
		}
		o = &Offender{Source: src, Detector: detector, Kind: kind, Port: port, Threshold: threshold, Instances: map[string]int{}}
		t.by[k] = o
		t.order = append(t.order, k)
	}
	o.Count += n
	if o.Port != port {
		// Several ports (a scan): the offence is all traffic of the source.
		o.Port = policy.Port{}
	}
	if instance != "" {
		o.Instances[instance] += n
	}
}

// Find returns the offenders of a firing alarm.
func (f *Finder) Find(ctx context.Context, a *event.Alarm) (Result, error) {
	var res Result
	start, end, err := f.window(a, &res)
	if err != nil {
		return res, err
	}
	res.Start, res.End = start, end
	t := &tally{by: map[string]*Offender{}, limit: f.lim.Sources}
	eni := map[netip.Prefix]map[string]int{} // flow logs: source → interface → records

	// A dimension that names the source needs no log search.
	for _, m := range a.Metrics {
		for name, v := range m.Dimensions {
			if !sourceDims[dimKey(name)] {
				continue
			}
			src, err := policy.ParseTarget(v)
			if err != nil {
				return res, fmt.Errorf("find offenders of alarm %q: dimension %s: %w", a.Name, name, err)
			}
			inst := m.Dimensions["InstanceId"]
			if inst != "" && !streamInstanceRE.MatchString(inst) {
				inst = ""
			}
			t.add(src.String()+"|dimension", src, "dimension", policy.KindBruteforce, policy.Port{}, 1, inst, 1)
		}
	}
	// Detector matches are summed as watch sums them: weighted, and
	// grouped by watch.group_v6 (group_v4); the source of each sum is
	// known once every line is read.
	var sums *detect.Tally
	if len(t.by) == 0 {
		matcher, err := detect.New(f.watch, func() time.Time { return end })
		if err != nil {
			return res, fmt.Errorf("build detectors: %w", err)
		}
		dets := matcher.Detectors()
		sums = matcher.NewTally(f.lim.Sources)
		seen := map[string]bool{}
		for _, m := range a.Metrics {
			filters, err := f.metricFilters(ctx, m)
			if err != nil {
				return res, fmt.Errorf("find offenders of alarm %q: %w", a.Name, err)
			}
			for _, mf := range filters {
				id := aws.ToString(mf.LogGroupName) + ": " + aws.ToString(mf.FilterName)
				if seen[id] {
					continue
				}
				seen[id] = true
				res.Filters = append(res.Filters, id)
				err := f.events(ctx, mf, start, end, &res, func(stream, msg string) {
					if r, ok := parseFlow(msg); ok {
						src := policy.Canonical(netip.PrefixFrom(r.Src, r.Src.BitLen()))
						t.add(src.String()+"|flowlog", src, "flowlog", policy.KindScan, r.Port, max(f.watch.MaxRetry, 1), "", 1)
						if eni[src] == nil {
							eni[src] = map[string]int{}
						}
						eni[src][r.ENI]++
						return
					}
					mt, ok := matcher.Match([]byte(msg))
					if !ok || mt.Detector < 0 || mt.Detector >= len(dets) {
						res.Unmatched++
						return
					}
					d := dets[mt.Detector]
					id, ok := sums.Add(mt)
					if !ok {
						t.full = true
						return
					}
					t.add(fmt.Sprintf("#%d", id), netip.Prefix{}, d.Name, d.Kind, mt.Port, max(d.MaxRetry, 1), instanceOfStream(stream), mt.Count)
				})
				if err != nil {
					return res, fmt.Errorf("find offenders of alarm %q: %w", a.Name, err)
				}
			}
		}
	}
	if sums != nil {
		for id := range sums.Len() {
			o := t.by[fmt.Sprintf("#%d", id)]
			if o == nil {
				continue
			}
			sum := sums.At(id)
			o.Source, o.Lines, o.Count = policy.Canonical(sum.Source), o.Count, sum.Failures
		}
	}
	res.Truncated = res.Truncated || t.full
	if len(eni) > 0 {
		if err := f.resolveENIs(ctx, t, eni, &res); err != nil {
			return res, fmt.Errorf("find offenders of alarm %q: %w", a.Name, err)
		}
	}
	for _, k := range t.order {
		o := t.by[k]
		if o.Count < o.Threshold {
			res.Below++
			continue
		}
		res.Offenders = append(res.Offenders, *o)
	}
	return res, nil
}

// window is the alarm's evaluation window. When the event does not say how
// many periods the alarm evaluates, DefaultEvaluationPeriods periods are
// searched and Result.AssumedPeriods says so.
func (f *Finder) window(a *event.Alarm, res *Result) (time.Time, time.Time, error) {
	if s, e, ok := a.Window(); ok {
		return s, e, nil
	}
	b := *a
	b.Period = max(a.MaxPeriod(), time.Minute)
	b.EvaluationPeriods = DefaultEvaluationPeriods
	res.AssumedPeriods = DefaultEvaluationPeriods
	if s, e, ok := b.Window(); ok {
		return s, e, nil
	}
	return time.Time{}, time.Time{}, fmt.Errorf("evaluation window of alarm %q: no state change time", a.Name)
}

type metricFilter struct {
	LogGroupName, FilterName, FilterPattern *string
}

func (f *Finder) metricFilters(ctx context.Context, m event.Metric) ([]metricFilter, error) {
	in := &cloudwatchlogs.DescribeMetricFiltersInput{MetricName: aws.String(m.Name), MetricNamespace: aws.String(m.Namespace)}
	var out []metricFilter
	for page := 0; page < f.lim.FilterPages; page++ {
		o, err := f.logs.DescribeMetricFilters(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("metric filters of %s/%s: %w", m.Namespace, m.Name, err)
		}
		for _, mf := range o.MetricFilters {
			out = append(out, metricFilter{mf.LogGroupName, mf.FilterName, mf.FilterPattern})
		}
		if aws.ToString(o.NextToken) == "" {
			break
		}
		in.NextToken = o.NextToken
	}
	return out, nil
}

// events reads the log events of one metric filter in the window, bounded
// in pages and events, and hands each to fn.
func (f *Finder) events(ctx context.Context, mf metricFilter, start, end time.Time, res *Result, fn func(stream, msg string)) error {
	in := &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName: mf.LogGroupName,
		StartTime:    aws.Int64(start.UnixMilli()),
		EndTime:      aws.Int64(end.UnixMilli()),
		Limit:        aws.Int32(10000),
	}
	if p := aws.ToString(mf.FilterPattern); p != "" {
		in.FilterPattern = mf.FilterPattern
	}
	for page := 0; ; page++ {
		if page == f.lim.LogPages || res.Events >= f.lim.Events {
			res.Truncated = true
			return nil
		}
		o, err := f.logs.FilterLogEvents(ctx, in)
		if err != nil {
			return fmt.Errorf("log events of %s: %w", aws.ToString(mf.LogGroupName), err)
		}
		for _, e := range o.Events {
			if res.Events >= f.lim.Events {
				res.Truncated = true
				return nil
			}
			res.Events++
			fn(aws.ToString(e.LogStreamName), aws.ToString(e.Message))
		}
		if aws.ToString(o.NextToken) == "" || aws.ToString(o.NextToken) == aws.ToString(in.NextToken) {
			return nil
		}
		in.NextToken = o.NextToken
	}
}

// resolveENIs maps the network interfaces of flow-log records to their
// instances and subnets, in one DescribeNetworkInterfaces call per 200
// interfaces.
func (f *Finder) resolveENIs(ctx context.Context, t *tally, bySrc map[netip.Prefix]map[string]int, res *Result) error {
	set := map[string]bool{}
	for _, m := range bySrc {
		for id := range m {
			set[id] = true
		}
	}
	ids := slices.Sorted(maps.Keys(set))
	type att struct{ instance, subnet, vpc string }
	found := map[string]att{}
	for len(ids) > 0 {
		n := min(len(ids), 200)
		batch := ids[:n]
		ids = ids[n:]
		in := &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("network-interface-id"), Values: batch}}}
		for page := 0; page < 10; page++ {
			o, err := f.ec2.DescribeNetworkInterfaces(ctx, in)
			if err != nil {
				return fmt.Errorf("resolve flow-log interfaces: %w", err)
			}
			for _, ni := range o.NetworkInterfaces {
				a := att{subnet: aws.ToString(ni.SubnetId), vpc: aws.ToString(ni.VpcId)}
				if ni.Attachment != nil {
					a.instance = aws.ToString(ni.Attachment.InstanceId)
				}
				found[aws.ToString(ni.NetworkInterfaceId)] = a
			}
			if aws.ToString(o.NextToken) == "" {
				break
			}
			in.NextToken = o.NextToken
		}
	}
	for id := range set {
		if found[id].instance == "" {
			res.Unresolved = append(res.Unresolved, id)
		}
	}
	slices.Sort(res.Unresolved)
	for src, m := range bySrc {
		o := t.by[src.String()+"|flowlog"]
		if o == nil {
			continue
		}
		for id, n := range m {
			a := found[id]
			if a.instance == "" {
				continue
			}
			o.Instances[a.instance] += n
			if o.Subnets == nil {
				o.Subnets, o.VPCs = map[string]string{}, map[string]string{}
			}
			o.Subnets[a.instance], o.VPCs[a.instance] = a.subnet, a.vpc
		}
	}
	return nil
}

// Attacks turns the offenders into what the policy engine decides on:
// one attack per attacked port, kind and set of instances (and whether
// the sources flood, at floodRate: policy.flood_rate), origin lambda,
// those instances as targets, each source's count its volume (what an
// entry at the edge is worth when the range is placed, and what its
// metadata records). Every source that could share an entry at the edge
// is so decided in one call, and the placement sees them all at once:
// the heaviest prefixes take the edge (a /24 of enough sources becomes
// one entry) and the rest falls back to the hosts. A source found by
// several detectors of one group is one source, its counts summed.
// Sources come heaviest first, and attacks by their heaviest source (the
// engine decides them in order, each seeing what the earlier ones
// planned). Reasons gives each source's own reason.
func (r Result) Attacks(alarm string, floodRate float64) []policy.Attack {
	window := r.End.Sub(r.Start)
	secs := max(window.Seconds(), 1)
	type group struct {
		atk     policy.Attack
		idx     map[netip.Prefix]int // source → index in atk.Sources
		minRate float64
		maxRate float64
	}
	groups := map[string]*group{}
	var order []string
	for _, o := range r.Offenders {
		ids := slices.Sorted(maps.Keys(o.Instances))
		rate := float64(o.Count) / secs
		flood := floodRate > 0 && rate >= floodRate
		k := fmt.Sprintf("%s|%s|%s|%v", o.Port, o.Kind, strings.Join(ids, ","), flood)
		g := groups[k]
		if g == nil {
			g = &group{atk: policy.Attack{Port: o.Port, Window: window, Kind: o.Kind, Origin: policy.OriginLambda}, idx: map[netip.Prefix]int{}, minRate: rate}
			for _, id := range ids {
				g.atk.Targets = append(g.atk.Targets, policy.Target{InstanceID: id, SubnetID: o.Subnets[id], VPCID: o.VPCs[id]})
			}
			groups[k] = g
			order = append(order, k)
		}
		for i, t := range g.atk.Targets { // the subnets and VPCs any offender's logs named
			if t.SubnetID == "" && o.Subnets[t.InstanceID] != "" {
				g.atk.Targets[i].SubnetID, g.atk.Targets[i].VPCID = o.Subnets[t.InstanceID], o.VPCs[t.InstanceID]
			}
		}
		g.atk.Evidence += o.Count
		if i, ok := g.idx[o.Source]; ok {
			g.atk.Volume[i] += int64(max(o.Count, 1))
		} else {
			g.idx[o.Source] = len(g.atk.Sources)
			g.atk.Sources = append(g.atk.Sources, o.Source)
			g.atk.Volume = append(g.atk.Volume, int64(max(o.Count, 1)))
		}
		g.minRate, g.maxRate = min(g.minRate, rate), max(g.maxRate, rate)
	}
	reasons := r.Reasons(alarm)
	out := make([]policy.Attack, 0, len(order))
	for _, k := range order {
		g := groups[k]
		a := g.atk
		perm := make([]int, len(a.Sources))
		for i := range perm {
			perm[i] = i
		}
		slices.SortStableFunc(perm, func(x, y int) int { return cmp.Compare(a.Volume[y], a.Volume[x]) })
		srcs, vols := make([]netip.Prefix, len(perm)), make([]int64, len(perm))
		for i, j := range perm {
			srcs[i], vols[i] = a.Sources[j], a.Volume[j]
		}
		a.Sources, a.Volume = srcs, vols
		// The rate every source of the group is at or above (flooding), or
		// below (not): what the flood rule's reason may say of each.
		a.Rate = g.maxRate
		if strings.HasSuffix(k, "|true") {
			a.Rate = g.minRate
		}
		a.Reason = reasons[a.Sources[0]]
		if n := len(a.Sources); n > 1 {
			a.Reason = fmt.Sprintf("%s (and %d more sources)", a.Reason, n-1)
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b policy.Attack) int { return cmp.Compare(b.Volume[0], a.Volume[0]) })
	return out
}

// Reasons is each offender's reason, by source: "alarm NAME: <summary> in
// <window>" (the summaries of a source several detectors found joined
// with "; "). An alarm's VPC block records its source's reason, a
// source's own count and not its group's.
func (r Result) Reasons(alarm string) map[netip.Prefix]string {
	window := r.End.Sub(r.Start).Round(time.Second)
	sums := map[netip.Prefix][]string{}
	for _, o := range r.Offenders {
		sums[o.Source] = append(sums[o.Source], o.Summary())
	}
	out := make(map[netip.Prefix]string, len(sums))
	for src, ss := range sums {
		out[src] = fmt.Sprintf("alarm %s: %s in %s", alarm, strings.Join(ss, "; "), window)
	}
	return out
}
