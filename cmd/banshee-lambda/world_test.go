package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

func TestMain(m *testing.M) {
	code := mototest.Main(m)
	if buildOnce.dir != "" {
		os.RemoveAll(buildOnce.dir) // the bootstrap buildBootstrap built
	}
	os.Exit(code)
}

const (
	document    = "banshee-host-block"
	instanceTag = "banshee=managed"
	configParam = "/banshee/config"
	alarmName   = "ssh-bruteforce"
	alarmARN    = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:" + alarmName
)

// world is the AWS state of the end-to-end tests, in moto: a VPC with two
// subnets, three tagged instances behind a security group that admits SSH
// from anywhere, an auth log whose streams are named by instance id, the
// metric filter that feeds the alarm, the alarm, banshee's config parameter
// and SSM document.
type world struct {
	moto      string
	ec2       *ec2.Client
	ssm       *ssm.Client
	logs      *cloudwatchlogs.Client
	vpc       string
	subnetA   string
	subnetB   string
	naclA     string   // the VPC's default ACL, subnet A's: the one the function manages
	naclB     string   // subnet B's own ACL: not the function's
	inst      []string // i1, i2 in subnet A; i3 in subnet B
	namespace string
	metric    string
	now       time.Time
}

func newWorld(t testing.TB, offenders map[string]map[int]int) *world {
	t.Helper()
	srv := mototest.Shared(t)
	cfg := mototest.Config(srv.URL)
	ctx := context.Background()
	// now is the first state change: a few seconds ago, so that the state
	// changes a test sends at now+1s, now+2s are never later than the
	// function's clock (an offence dated after it is not counted).
	w := &world{moto: srv.URL, ec2: ec2.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg), now: time.Now().Add(-10 * time.Second).UTC().Truncate(time.Millisecond)}
	id := fmt.Sprint(time.Now().UnixNano())
	w.namespace, w.metric = "Banshee/E2E"+id, "AuthFailures"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	vpc, err := w.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.30.0.0/16")})
	must(err)
	sa, err := w.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.30.1.0/24")})
	must(err)
	sb, err := w.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.30.2.0/24")})
	must(err)
	w.subnetA, w.subnetB = aws.ToString(sa.Subnet.SubnetId), aws.ToString(sb.Subnet.SubnetId)
	w.vpc = aws.ToString(vpc.Vpc.VpcId)
	// Subnet B gets a NACL of its own (both start on the VPC's default).
	nacl, err := w.ec2.CreateNetworkAcl(ctx, &ec2.CreateNetworkAclInput{VpcId: vpc.Vpc.VpcId})
	must(err)
	cur, err := w.ec2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{w.subnetB}}}})
	must(err)
	w.naclB = aws.ToString(nacl.NetworkAcl.NetworkAclId)
	for _, n := range cur.NetworkAcls {
		w.naclA = aws.ToString(n.NetworkAclId)
		for _, a := range n.Associations {
			if aws.ToString(a.SubnetId) == w.subnetB {
				_, err = w.ec2.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{AssociationId: a.NetworkAclAssociationId, NetworkAclId: nacl.NetworkAcl.NetworkAclId})
				must(err)
			}
		}
	}
	sg, err := w.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("ssh-" + id), Description: aws.String("ssh from anywhere"), VpcId: vpc.Vpc.VpcId})
	must(err)
	_, err = w.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []ec2types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}},
	}}})
	must(err)
	k, v, _ := strings.Cut(instanceTag, "=")
	for _, s := range []*string{sa.Subnet.SubnetId, sa.Subnet.SubnetId, sb.Subnet.SubnetId} {
		out, err := w.ec2.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: s, SecurityGroupIds: []string{aws.ToString(sg.GroupId)},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}},
		})
		must(err)
		w.inst = append(w.inst, aws.ToString(out.Instances[0].InstanceId))
	}

	// Config: the whitelisted office network.
	_, err = w.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(configParam), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Value: aws.String(`{"allowlist": ["198.51.100.0/24"], "policy": {"default_ttl": "1h"}}`)})
	must(err)
	_, err = w.ssm.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String(document), DocumentType: ssmtypes.DocumentTypeCommand, DocumentFormat: ssmtypes.DocumentFormatJson,
		Content: aws.String(`{"schemaVersion":"2.2","description":"banshee host block","parameters":{"action":{"type":"String","allowedPattern":"^(block|unblock)$"},"targets":{"type":"String"},"ttl":{"type":"String","default":"0s"},"reason":{"type":"String","default":""}},"mainSteps":[{"action":"aws:runShellScript","name":"banshee","inputs":{"runCommand":["banshee \"$SSM_action\" --ttl \"$SSM_ttl\" -- $SSM_targets"]}}]}`)})
	if err != nil && !strings.Contains(err.Error(), "DocumentAlreadyExists") {
		t.Fatal(err)
	}

	// The auth log: lines per source per instance index.
	group := "/banshee/e2e/secure/" + id
	_, err = w.logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)})
	must(err)
	for i, inst := range w.inst {
		_, err = w.logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(inst)})
		must(err)
		var evs []logstypes.InputLogEvent
		n := 0
		for _, src := range sortedKeys(offenders) {
			for j := range offenders[src][i] {
				line := fmt.Sprintf("May  9 10:01:%02d ip-10-30-1-%d sshd[%d]: Failed password for invalid user admin from %s port %d ssh2", j%60, 10+i, 3000+n, src, 40000+n)
				evs = append(evs, logstypes.InputLogEvent{Message: aws.String(line), Timestamp: aws.Int64(w.now.Add(-2*time.Minute + time.Duration(n)*time.Millisecond).UnixMilli())})
				n++
			}
		}
		evs = append(evs, logstypes.InputLogEvent{Message: aws.String("May  9 10:01:59 host sshd[9]: Accepted publickey for ops from 192.0.2.200 port 2 ssh2"), Timestamp: aws.Int64(w.now.Add(-time.Minute).UnixMilli())})
		_, err = w.logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(inst), LogEvents: evs})
		must(err)
	}
	_, err = w.logs.PutMetricFilter(ctx, &cloudwatchlogs.PutMetricFilterInput{
		LogGroupName: aws.String(group), FilterName: aws.String("ssh-failures"), FilterPattern: aws.String(`"Failed password"`),
		MetricTransformations: []logstypes.MetricTransformation{{MetricName: aws.String(w.metric), MetricNamespace: aws.String(w.namespace), MetricValue: aws.String("1")}},
	})
	must(err)
	w.putAlarm(t)
	return w
}

// putAlarm creates the alarm in moto through the CloudWatch query protocol
// (moto 5.2 does not serve the CBOR protocol of the current SDK; the
// function itself never calls CloudWatch).
func (w *world) putAlarm(t testing.TB) {
	t.Helper()
	form := url.Values{"Action": {"PutMetricAlarm"}, "Version": {"2010-08-01"}, "AlarmName": {alarmName}, "MetricName": {w.metric}, "Namespace": {w.namespace},
		"Statistic": {"Sum"}, "Period": {"60"}, "EvaluationPeriods": {"5"}, "Threshold": {"5"}, "ComparisonOperator": {"GreaterThanOrEqualToThreshold"}}
	req, _ := http.NewRequest(http.MethodPost, w.moto+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260509/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PutMetricAlarm: %s", resp.Status)
	}
}

func (w *world) env(endpoint string) map[string]string {
	e := awsEnv(endpoint)
	e["BANSHEE_CONFIG_PARAMETER"] = configParam
	e["BANSHEE_SSM_DOCUMENT"] = document
	e["BANSHEE_INSTANCE_TAG"] = instanceTag
	e["BANSHEE_NACL_IDS"] = w.naclA
	e["BANSHEE_VPC_ID"] = w.vpc
	return e
}

// denies returns banshee's deny entries (rule numbers 1-19, ingress) of the
// subnet's NACL as "CIDR" strings.
func (w *world) denies(t testing.TB, subnet string) []string {
	t.Helper()
	out, err := w.ec2.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{subnet}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, n := range out.NetworkAcls {
		for _, e := range n.Entries {
			if aws.ToBool(e.Egress) || e.RuleAction != ec2types.RuleActionDeny || aws.ToInt32(e.RuleNumber) > 19 {
				continue
			}
			ds = append(ds, aws.ToString(e.CidrBlock)+aws.ToString(e.Ipv6CidrBlock))
		}
	}
	slices.Sort(ds)
	return ds
}

// command is an SSM command as moto keeps it.
type command struct {
	Document string
	Params   map[string]string
}

// commands lists the host commands of banshee's document sent to the
// world's instances.
func (w *world) commands(t testing.TB) []command {
	t.Helper()
	out, err := w.ssm.ListCommands(context.Background(), &ssm.ListCommandsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var cs []command
	for _, c := range out.Commands {
		// The server is shared: only the commands sent to this world's
		// instances are this test's.
		if aws.ToString(c.DocumentName) != document || !slices.ContainsFunc(c.InstanceIds, func(id string) bool { return slices.Contains(w.inst, id) }) {
			continue
		}
		p := map[string]string{}
		for k, v := range c.Parameters {
			p[k] = strings.Join(v, ",")
		}
		cs = append(cs, command{Document: aws.ToString(c.DocumentName), Params: p})
	}
	return cs
}

// fixture loads a testdata event as a generic JSON object.
func fixture(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const cwTime = "2006-01-02T15:04:05.000-0700"

// eventBridge is the documented EventBridge alarm event, pointed at the
// world's alarm and metric, changing state at 'at'.
func (w *world) eventBridge(t testing.TB, at time.Time, state string) []byte {
	e := fixture(t, "eventbridge-alarm-state-change.json")
	e["resources"] = []any{alarmARN}
	d := e["detail"].(map[string]any)
	d["alarmName"] = alarmName
	d["configuration"] = map[string]any{"metrics": []any{map[string]any{"id": "m1", "returnData": true,
		"metricStat": map[string]any{"metric": map[string]any{"name": w.metric, "namespace": w.namespace, "dimensions": map[string]any{}}, "period": 60, "stat": "Sum"}}}}
	st := d["state"].(map[string]any)
	st["value"] = state
	st["timestamp"] = at.Format(cwTime)
	st["reasonData"] = string(mustJSON(t, map[string]any{"version": "1.0", "startDate": at.Add(-5 * time.Minute).Format(cwTime), "period": 60}))
	return mustJSON(t, e)
}

// sns is the documented SNS alarm notification, pointed at the world.
func (w *world) sns(t testing.TB, at time.Time) []byte {
	e := fixture(t, "sns-alarm.json")
	rec := e["Records"].([]any)[0].(map[string]any)["Sns"].(map[string]any)
	var msg map[string]any
	if err := json.Unmarshal([]byte(rec["Message"].(string)), &msg); err != nil {
		t.Fatal(err)
	}
	msg["AlarmName"], msg["AlarmArn"], msg["StateChangeTime"] = alarmName, alarmARN, at.Format(cwTime)
	msg["Region"] = "US East (N. Virginia)"
	tr := msg["Trigger"].(map[string]any)
	tr["MetricName"], tr["Namespace"], tr["Period"], tr["EvaluationPeriods"] = w.metric, w.namespace, 60, 5
	rec["Message"] = string(mustJSON(t, msg))
	return mustJSON(t, e)
}

// alarmAction is the documented event of an alarm invoking the function.
func (w *world) alarmAction(t testing.TB, at time.Time) []byte {
	e := fixture(t, "cloudwatch-alarm-lambda-action.json")
	e["alarmArn"], e["accountId"] = alarmARN, "123456789012"
	d := e["alarmData"].(map[string]any)
	d["alarmName"] = alarmName
	d["state"].(map[string]any)["timestamp"] = at.Format(cwTime)
	d["configuration"] = map[string]any{"metrics": []any{map[string]any{"id": "m1", "returnData": true,
		"metricStat": map[string]any{"metric": map[string]any{"name": w.metric, "namespace": w.namespace}, "period": 60, "stat": "Sum"}}}}
	return mustJSON(t, e)
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// foreignBlock writes a VPC block with banshee's metadata into a subnet's
// ACL the way another banshee (the CLI, another installation) would.
func (w *world) foreignBlock(t testing.TB, subnet, cidr string, ttl time.Duration) {
	t.Helper()
	m := awsnacl.NewFromConfig(mototest.Config(w.moto), policy.Default().NACL)
	d := policy.Decision{Target: netip.MustParsePrefix(cidr), Scope: policy.ScopeVPC, Action: policy.ActionBlock, SubnetID: subnet, TTL: ttl}
	if _, err := m.Block(context.Background(), []policy.Decision{d}, awsnacl.Request{Origin: policy.OriginCLI, Reason: "another installation"}); err != nil {
		t.Fatalf("foreign block of %s in %s: %v", cidr, subnet, err)
	}
}

// blocks reads banshee's VPC blocks in a subnet's ACL, metadata decoded.
func (w *world) blocks(t testing.TB, subnet string) []policy.Block {
	t.Helper()
	bs, err := awsnacl.NewFromConfig(mototest.Config(w.moto), policy.Default().NACL).List(context.Background(), subnet)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// deleteDeny deletes the ingress deny of cidr from a network ACL behind
// banshee's back (as a Terraform apply of the ACL's rules would) and
// returns its rule number.
func (w *world) deleteDeny(t testing.TB, naclID, cidr string) int {
	t.Helper()
	ctx := context.Background()
	out, err := w.ec2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{naclID}})
	if err != nil || len(out.NetworkAcls) != 1 {
		t.Fatalf("reading %s: %v", naclID, err)
	}
	for _, e := range out.NetworkAcls[0].Entries {
		if !aws.ToBool(e.Egress) && e.RuleAction == ec2types.RuleActionDeny && aws.ToString(e.CidrBlock)+aws.ToString(e.Ipv6CidrBlock) == cidr {
			if _, err := w.ec2.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(naclID), RuleNumber: e.RuleNumber, Egress: aws.Bool(false)}); err != nil {
				t.Fatal(err)
			}
			return int(aws.ToInt32(e.RuleNumber))
		}
	}
	t.Fatalf("%s has no deny of %s", naclID, cidr)
	return 0
}
