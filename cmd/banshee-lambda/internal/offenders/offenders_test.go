package offenders

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/policy"
)

func TestMain(m *testing.M) { os.Exit(mototest.Main(m)) }

func TestParseFlow(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		want flowRecord
	}{
		{"2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK", true,
			flowRecord{ENI: "eni-1235b8ca123456789", Src: netip.MustParseAddr("172.31.9.69"), Port: policy.Port{Proto: "tcp", From: 3389, To: 3389}, Packets: 20}},
		{"2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 REJECT OK", true,
			flowRecord{ENI: "eni-1235b8ca123456789", Src: netip.MustParseAddr("2001:db8:1234:a100:8d6e:3477:df66:f105"), Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Packets: 54}},
		{"2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 REJECT OK", true,
			flowRecord{ENI: "eni-1235b8ca123456789", Src: netip.MustParseAddr("203.0.113.12"), Port: policy.Port{Proto: "icmp"}, Packets: 4}},
		{"2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK", false, flowRecord{}},
		// Probes: TCP, 1 or 2 packets, to a port below the ephemeral range.
		{"2 123456789010 eni-1235b8ca123456789 198.51.100.9 172.31.16.21 51234 5432 6 1 44 1418530010 1418530070 ACCEPT OK", true,
			flowRecord{ENI: "eni-1235b8ca123456789", Src: netip.MustParseAddr("198.51.100.9"), Port: policy.Port{Proto: "tcp", From: 5432, To: 5432}, Packets: 1}},
		{"2 123456789010 eni-1235b8ca123456789 198.51.100.9 172.31.16.21 51234 22 6 2 84 1418530010 1418530070 ACCEPT OK", true,
			flowRecord{ENI: "eni-1235b8ca123456789", Src: netip.MustParseAddr("198.51.100.9"), Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Packets: 2}},
		{"2 123456789010 eni-1235b8ca123456789 198.51.100.9 172.31.16.21 51234 22 6 3 164 1418530010 1418530070 ACCEPT OK", false, flowRecord{}},
		{"2 123456789010 eni-1235b8ca123456789 198.51.100.9 172.31.16.21 53 53 17 1 76 1418530010 1418530070 ACCEPT OK", false, flowRecord{}},
		{"2 123456789010 eni-1235b8ca123456789 93.184.216.34 172.31.16.21 443 41234 6 1 40 1418530010 1418530070 ACCEPT OK", false, flowRecord{}}, // a reply to the instance's own connection
		{"2 123456789010 eni-1a2b3c4d - - - - - - - 1431280876 1431280934 - NODATA", false, flowRecord{}},
		{"May  9 10:00:01 host sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2", false, flowRecord{}},
	}
	for _, tt := range tests {
		got, ok := parseFlow(tt.line)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseFlow(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestInstanceOfStream(t *testing.T) {
	for s, want := range map[string]string{
		"i-0123456789abcdef0": "i-0123456789abcdef0", "i-12345678/var/log/secure": "i-12345678",
		"ip-10-0-0-5": "", "i-0123456789abcdef0x": "", "eni-1235b8ca-all": "",
	} {
		if got := instanceOfStream(s); got != want {
			t.Errorf("instanceOfStream(%q) = %q, want %q", s, got, want)
		}
	}
}

// env is moto with a VPC, a subnet, two instances, an ENI, an auth-log group
// and a flow-log group, each with a metric filter.
type env struct {
	logs    *cloudwatchlogs.Client
	ec2     *ec2.Client
	inst    []string
	eni     string
	subnet  string
	vpc     string
	now     time.Time
	ns      string
	authMet string
	flowMet string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := mototest.Shared(t)
	cfg := mototest.Config(srv.URL)
	ctx := context.Background()
	e := &env{logs: cloudwatchlogs.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg), now: time.Now().UTC().Truncate(time.Second)}
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	e.ns, e.authMet, e.flowMet = "Banshee/"+id, "AuthFailures", "Rejects"
	vpc, err := e.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	e.vpc = aws.ToString(vpc.Vpc.VpcId)
	sn, err := e.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.20.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	e.subnet = aws.ToString(sn.Subnet.SubnetId)
	run, err := e.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(2), MaxCount: aws.Int32(2), SubnetId: sn.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range run.Instances {
		e.inst = append(e.inst, aws.ToString(in.InstanceId))
		if e.eni == "" && len(in.NetworkInterfaces) > 0 {
			e.eni = aws.ToString(in.NetworkInterfaces[0].NetworkInterfaceId)
		}
	}
	slices.Sort(e.inst)
	if e.eni == "" {
		t.Fatal("moto gave the instance no network interface")
	}
	return e
}

func (e *env) group(t *testing.T, group, metric, pattern string, streams map[string][]string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	for stream, lines := range streams {
		if _, err := e.logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}); err != nil {
			t.Fatal(err)
		}
		var evs []logstypes.InputLogEvent
		for i, l := range lines {
			evs = append(evs, logstypes.InputLogEvent{Message: aws.String(l), Timestamp: aws.Int64(e.now.Add(-2*time.Minute + time.Duration(i)*time.Millisecond).UnixMilli())})
		}
		if _, err := e.logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: evs}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.logs.PutMetricFilter(ctx, &cloudwatchlogs.PutMetricFilterInput{
		LogGroupName: aws.String(group), FilterName: aws.String(metric), FilterPattern: aws.String(pattern),
		MetricTransformations: []logstypes.MetricTransformation{{MetricName: aws.String(metric), MetricNamespace: aws.String(e.ns), MetricValue: aws.String("1")}},
	}); err != nil {
		t.Fatal(err)
	}
}

func sshd(addr string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("May  9 10:00:%02d ip-10-20-1-5 sshd[%d]: Failed password for invalid user admin from %s port %d ssh2", i%60, 4000+i, addr, 50000+i))
	}
	return out
}

func (e *env) alarm(metric string) *event.Alarm {
	return &event.Alarm{
		Name: "ssh", Region: "us-east-1", State: event.StateAlarm, PreviousState: event.StateOK,
		StateChangeTime: e.now, Period: time.Minute, EvaluationPeriods: 5,
		Metrics: []event.Metric{{Name: metric, Namespace: e.ns, Period: time.Minute}},
	}
}

func TestFindAuthLog(t *testing.T) {
	e := newEnv(t)
	group := "/banshee/secure/" + e.ns
	// An injection attempt: the user name carries an address. It must count
	// for the real source only.
	inject := "May  9 10:00:59 ip-10-20-1-5 sshd[99]: Failed password for invalid user x from 10.9.9.9 port 22 ssh2 from 198.51.100.77 port 4444 ssh2"
	e.group(t, group, e.authMet, "Failed password", map[string][]string{
		e.inst[0]: append(append(sshd("203.0.113.7", 6), sshd("2001:db8::66", 5)...), append(sshd("198.51.100.1", 2), inject)...),
		e.inst[1]: append(sshd("203.0.113.7", 4), "May  9 10:00:01 ip-10-20-1-6 sshd[7]: Accepted publickey for ops from 192.0.2.1 port 2 ssh2"),
	})
	f, err := New(e.logs, e.ec2, policy.Default().Watch, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Find(context.Background(), e.alarm(e.authMet))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Offender{}
	for _, o := range res.Offenders {
		got[o.Source.String()] = o
	}
	a := got["203.0.113.7/32"]
	if a.Count != 10 || a.Instances[e.inst[0]] != 6 || a.Instances[e.inst[1]] != 4 || a.Detector != "sshd" || a.Port != (policy.Port{Proto: "tcp", From: 22, To: 22}) {
		t.Errorf("203.0.113.7: %+v", a)
	}
	if b := got["2001:db8::66/128"]; b.Count != 5 || b.Instances[e.inst[0]] != 5 {
		t.Errorf("2001:db8::66: %+v", b)
	}
	if len(got) != 2 {
		t.Errorf("offenders %v, want exactly 203.0.113.7 and 2001:db8::66", res.Offenders)
	}
	if _, bad := got["10.9.9.9/32"]; bad {
		t.Errorf("the address inside the user name was taken as a source")
	}
	// 198.51.100.1 (2 lines) and 198.51.100.77 (1 line) are under max_retry 5.
	if res.Below != 2 {
		t.Errorf("below threshold %d, want 2", res.Below)
	}
	if !res.Start.Equal(e.now.Add(-5*time.Minute)) || !res.End.Equal(e.now) || res.Truncated {
		t.Errorf("window %v..%v truncated %v", res.Start, res.End, res.Truncated)
	}
	atk := res.Attacks("ssh", 100)
	for _, x := range atk {
		if x.Origin != policy.OriginLambda || len(x.Sources) != 1 || x.Evidence == 0 || len(x.Targets) == 0 || !strings.Contains(x.Reason, "alarm ssh") ||
			len(x.Volume) != 1 || x.Volume[0] != int64(x.Evidence) {
			t.Errorf("attack %+v", x)
		}
	}
}

func TestFindFlowLog(t *testing.T) {
	e := newEnv(t)
	group := "/banshee/flow/" + e.ns
	var lines []string
	for i := range 7 {
		lines = append(lines, fmt.Sprintf("2 123456789010 %s 192.0.2.50 10.20.1.10 %d %d 6 1 40 1418530010 1418530070 REJECT OK", e.eni, 40000+i, 20+i))
	}
	lines = append(lines, fmt.Sprintf("2 123456789010 %s 192.0.2.51 10.20.1.10 40000 443 6 1 40 1418530010 1418530070 ACCEPT OK", e.eni))
	e.group(t, group, e.flowMet, `[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]`,
		map[string][]string{e.eni + "-all": lines})
	f, err := New(e.logs, e.ec2, policy.Default().Watch, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Find(context.Background(), e.alarm(e.flowMet))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Offenders) != 1 {
		t.Fatalf("offenders %+v, want 192.0.2.50 only", res.Offenders)
	}
	o := res.Offenders[0]
	var owner string
	for id := range o.Instances {
		owner = id
	}
	if o.Source.String() != "192.0.2.50/32" || o.Count != 7 || o.Port != (policy.Port{}) || o.Kind != policy.KindScan || len(o.Instances) != 1 || o.Subnets[owner] != e.subnet || o.VPCs[owner] != e.vpc {
		t.Errorf("offender %+v, want 192.0.2.50 x7 on all ports from one instance of %s", o, e.subnet)
	}
	atk := res.Attacks("scan", 100)
	if len(atk) != 1 || atk[0].Targets[0].SubnetID != e.subnet || atk[0].Kind != policy.KindScan || len(atk[0].Volume) != 1 || atk[0].Volume[0] != 7 {
		t.Errorf("attacks %+v", atk)
	}
}

func TestFindSourceDimension(t *testing.T) {
	f, err := New(nil, nil, policy.Default().Watch, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a := &event.Alarm{Name: "waf", StateChangeTime: time.Now(), Period: time.Minute, EvaluationPeriods: 1,
		Metrics: []event.Metric{{Name: "Blocked", Namespace: "Custom", Dimensions: map[string]string{"SourceIP": "198.51.100.23", "InstanceId": "i-0123456789abcdef0"}}}}
	res, err := f.Find(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Offenders) != 1 || res.Offenders[0].Source.String() != "198.51.100.23/32" || res.Offenders[0].Instances["i-0123456789abcdef0"] != 1 {
		t.Errorf("offenders %+v", res.Offenders)
	}
	a.Metrics[0].Dimensions["SourceIP"] = "not-an-address"
	if _, err := f.Find(context.Background(), a); err == nil {
		t.Errorf("a bad SourceIP dimension was accepted")
	}
}

func TestFindBounded(t *testing.T) {
	e := newEnv(t)
	group := "/banshee/big/" + e.ns
	e.group(t, group, e.authMet, "Failed password", map[string][]string{e.inst[0]: sshd("203.0.113.9", 50)})
	f, err := New(e.logs, e.ec2, policy.Default().Watch, Limits{FilterPages: 1, LogPages: 1, Events: 20, Sources: 10})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Find(context.Background(), e.alarm(e.authMet))
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 20 || !res.Truncated || len(res.Offenders) != 1 || res.Offenders[0].Count != 20 {
		t.Errorf("events %d truncated %v offenders %+v; want 20 events, truncated, one offender of 20", res.Events, res.Truncated, res.Offenders)
	}
}

func TestFindWindowAssumed(t *testing.T) {
	f, err := New(nil, nil, policy.Default().Watch, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 9, 10, 0, 0, 0, time.UTC)
	a := &event.Alarm{Name: "x", StateChangeTime: at, Metrics: []event.Metric{{Name: "m", Namespace: "n", Period: 2 * time.Minute}}}
	var res Result
	start, end, err := f.window(a, &res)
	if err != nil {
		t.Fatal(err)
	}
	if !end.Equal(at) || end.Sub(start) != 10*time.Minute || res.AssumedPeriods != DefaultEvaluationPeriods {
		t.Errorf("window %v..%v assumed %d, want 5 periods of 2m", start, end, res.AssumedPeriods)
	}
	a.EvaluatedFrom = at.Add(-3 * time.Minute)
	res = Result{}
	if start, _, _ = f.window(a, &res); !start.Equal(a.EvaluatedFrom) || res.AssumedPeriods != 0 {
		t.Errorf("window start %v assumed %d, want the evaluated range's start", start, res.AssumedPeriods)
	}
}

// TestFindWeightedAndGrouped: the Lambda sums as watch does. Probes count
// half (ten make five failures, eight stay under), a Dovecot line counts
// its attempts, and addresses of one IPv6 /64 (and, with group_v4 24, of
// one IPv4 /24) count together and are named as the network.
func TestFindWeightedAndGrouped(t *testing.T) {
	e := newEnv(t)
	group := "/banshee/weights/" + e.ns
	var a, b []string
	for i := range 6 {
		a = append(a, sshd(fmt.Sprintf("2001:db8:5::%x", i+1), 1)...)
	}
	for i := range 10 {
		// sshd.c: "Did not receive identification string from %s port %d"
		b = append(b, fmt.Sprintf("May  9 10:01:%02d ip-10-20-1-6 sshd[%d]: Did not receive identification string from 198.51.100.40 port %d", i, 5000+i, 40000+i))
	}
	for i := range 8 {
		b = append(b, fmt.Sprintf("May  9 10:02:%02d ip-10-20-1-6 sshd[%d]: Did not receive identification string from 203.0.113.41 port %d", i, 6000+i, 40000+i))
	}
	for _, rip := range []string{"192.0.2.51", "192.0.2.52"} {
		// Dovecot login process: "Disconnected (auth failed, %u attempts in %u secs): user=<%s>, method=%s, rip=%s, lip=%s"
		a = append(a, "May  9 10:03:00 ip-10-20-1-5 dovecot: imap-login: Disconnected (auth failed, 3 attempts in 10 secs): user=<a>, method=PLAIN, rip="+rip+", lip=10.20.1.5")
	}
	e.group(t, group, e.authMet, "", map[string][]string{e.inst[0]: a, e.inst[1]: b})
	watch := policy.Default().Watch
	watch.GroupV4 = 24
	f, err := New(e.logs, e.ec2, watch, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Find(context.Background(), e.alarm(e.authMet))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Offender{}
	for _, o := range res.Offenders {
		got[o.Source.String()] = o
	}
	want := map[string]struct {
		count, lines int
		det, inst    string
	}{
		"2001:db8:5::/64":  {6, 6, "sshd", e.inst[0]},
		"198.51.100.40/32": {5, 10, "sshd", e.inst[1]},
		"192.0.2.0/24":     {6, 6, "dovecot-imap", e.inst[0]},
	}
	if len(got) != len(want) || res.Below != 1 {
		t.Errorf("offenders %+v, below %d; want %d offenders and 203.0.113.41 (4 failures) below", res.Offenders, res.Below, len(want))
	}
	for src, w := range want {
		o := got[src]
		if o.Count != w.count || o.Lines != w.lines || o.Detector != w.det || o.Instances[w.inst] != w.lines || o.Threshold != 5 {
			t.Errorf("%s: %+v, want %d failures in %d lines of %s on %s", src, o, w.count, w.lines, w.det, w.inst)
		}
	}
	for _, atk := range res.Attacks("auth", 100) {
		if atk.Sources[0].String() == "2001:db8:5::/64" && !strings.Contains(atk.Reason, "sshd 6 failures from addresses of 2001:db8:5::/64") {
			t.Errorf("reason %q", atk.Reason)
		}
		if atk.Sources[0].String() == "198.51.100.40/32" && !strings.Contains(atk.Reason, "sshd 5 failures (10 lines)") {
			t.Errorf("reason %q", atk.Reason)
		}
	}
}

// An alarm's offenders are one attack per attacked port, kind, set of
// instances and flood class: the sources that could share an entry at the
// edge are decided together. Sources come heaviest first, each with its
// own count as its volume and its own reason; attacks by their heaviest
// source; a source two detectors of one group found is one source.
func TestAttacksGroupedHeaviestFirst(t *testing.T) {
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	res := Result{Start: now.Add(-5 * time.Minute), End: now}
	ssh := policy.Port{Proto: "tcp", From: 22, To: 22}
	add := func(src string, n int, det string, port policy.Port, insts ...string) {
		o := Offender{Source: netip.MustParsePrefix(src), Count: n, Instances: map[string]int{}, Detector: det, Kind: policy.KindBruteforce, Port: port}
		for _, id := range insts {
			o.Instances[id] = n
		}
		res.Offenders = append(res.Offenders, o)
	}
	i1, i2 := "i-00000000000000001", "i-00000000000000002"
	add("198.51.100.1/32", 30, "sshd", ssh, i1, i2)
	add("198.51.100.2/32", 500, "sshd", ssh, i1, i2)
	add("198.51.100.3/32", 30, "sshd", ssh, i1, i2)
	add("198.51.100.4/32", 90, "sshd", ssh, i1, i2)
	add("203.0.113.9/32", 700, "sshd", ssh, i1)           // another instance set
	add("198.51.100.3/32", 40, "custom-ssh", ssh, i1, i2) // a second detector: the same source
	add("192.0.2.8/32", 60, "dovecot-imap", policy.Port{Proto: "tcp", From: 143, To: 143}, i1, i2)
	add("192.0.2.9/32", 60_000, "sshd", ssh, i1, i2) // 200/s: floods at 100/s
	atks := res.Attacks("ssh", 100)
	var got []string
	for _, a := range atks {
		var ss []string
		for i, s := range a.Sources {
			ss = append(ss, fmt.Sprintf("%s=%d", s.Addr(), a.Volume[i]))
		}
		got = append(got, fmt.Sprintf("%s %d: %s", a.Port, len(a.Targets), strings.Join(ss, " ")))
	}
	want := []string{
		"tcp/22 2: 192.0.2.9=60000",
		"tcp/22 1: 203.0.113.9=700",
		"tcp/22 2: 198.51.100.2=500 198.51.100.4=90 198.51.100.3=70 198.51.100.1=30",
		"tcp/143 2: 192.0.2.8=60",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("attacks\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if a := atks[2]; a.Evidence != 690 || a.Rate != 500.0/300 || a.Origin != policy.OriginLambda || a.Window != 5*time.Minute ||
		a.Reason != "alarm ssh: sshd 500 failures in 5m0s (and 3 more sources)" {
		t.Errorf("grouped attack: evidence %d rate %g origin %s window %s reason %q", a.Evidence, a.Rate, a.Origin, a.Window, a.Reason)
	}
	if a := atks[0]; a.Rate != 200 {
		t.Errorf("flooding attack: rate %g, want 200 (at or above the threshold for every source)", a.Rate)
	}
	rs := res.Reasons("ssh")
	if r := rs[netip.MustParsePrefix("198.51.100.3/32")]; r != "alarm ssh: sshd 30 failures; custom-ssh 40 failures in 5m0s" {
		t.Errorf("reason of 198.51.100.3: %q", r)
	}
	if r := rs[netip.MustParsePrefix("198.51.100.4/32")]; r != "alarm ssh: sshd 90 failures in 5m0s" {
		t.Errorf("reason of 198.51.100.4: %q", r)
	}
}
