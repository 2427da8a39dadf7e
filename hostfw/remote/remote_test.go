package remote

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func TestFormatTTL(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Hour: "2h", 90 * time.Minute: "90m", 7201 * time.Second: "7201s",
		1500 * time.Millisecond: "2s", 30 * 24 * time.Hour: "720h",
	} {
		got := FormatTTL(d)
		if got != want {
			t.Errorf("FormatTTL(%v) = %q, want %q", d, got, want)
		}
		if !ttlRE().MatchString(got) {
			t.Errorf("FormatTTL(%v) = %q does not match %s", d, got, TTLPattern)
		}
		if back, err := time.ParseDuration(got); err != nil || back < d {
			t.Errorf("FormatTTL(%v) = %q parses back to %v, %v", d, got, back, err)
		}
	}
}

func TestCleanReason(t *testing.T) {
	for in, want := range map[string]string{
		"pop3 bruteforce":                      "pop3 bruteforce",
		`alarm "ssh"; rm -rf / $(id) ` + "`x`": "alarm _ssh__ rm -rf / _(id) _x_",
		"line\nbreak\x00":                      "line_break_",
		strings.Repeat("a", 300):               strings.Repeat("a", 256),
	} {
		got := CleanReason(in)
		if got != want {
			t.Errorf("CleanReason(%q) = %q, want %q", in, got, want)
		}
		if !reasonRE().MatchString(got) {
			t.Errorf("CleanReason(%q) = %q does not match %s", in, got, ReasonPattern)
		}
	}
}

func TestParameters(t *testing.T) {
	ts := []netip.Prefix{netip.MustParsePrefix("174.132.223.252/32"), netip.MustParsePrefix("2001:db8::/64")}
	p, err := Parameters(Block, ts, 2*time.Hour, "pop3 bruteforce")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"action": "block", "targets": "174.132.223.252/32 2001:db8::/64", "ttl": "2h", "reason": "pop3 bruteforce"}
	for k, v := range want {
		if len(p[k]) != 1 || p[k][0] != v {
			t.Errorf("parameter %s = %v, want [%s]", k, p[k], v)
		}
	}
	if len(p) != len(want) {
		t.Errorf("parameters %v, want exactly %v", p, want)
	}
	u, err := Parameters(Unblock, ts[:1], 0, "")
	if err != nil || u["ttl"][0] != "0s" || u["action"][0] != "unblock" {
		t.Errorf("unblock parameters %v, %v", u, err)
	}
	bad := []struct {
		name    string
		action  Action
		targets []netip.Prefix
		ttl     time.Duration
		reason  string
	}{
		{"action", "drop", ts, time.Hour, ""},
		{"no targets", Block, nil, time.Hour, ""},
		{"unmasked", Block, []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}, time.Hour, ""},
		{"everyone", Block, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, time.Hour, ""},
		{"zero ttl", Block, ts, 0, ""},
		{"reason shell", Block, ts, time.Hour, "x; reboot"},
		{"reason quote", Block, ts, time.Hour, `"`},
	}
	for _, b := range bad {
		if p, err := Parameters(b.action, b.targets, b.ttl, b.reason); err == nil {
			t.Errorf("%s: Parameters accepted %v", b.name, p)
		}
	}
}

func TestChunks(t *testing.T) {
	var ts []netip.Prefix
	for i := range 600 {
		ts = append(ts, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i), 14: byte(i >> 8), 13: 0xff}), 128))
	}
	cs := chunks(ts)
	var all []netip.Prefix
	for _, c := range cs {
		p, err := Parameters(Block, c, time.Hour, "")
		if err != nil {
			t.Fatalf("chunk of %d: %v", len(c), err)
		}
		if l := len(p["targets"][0]); l > MaxTargetsLen {
			t.Errorf("chunk targets %d bytes, max %d", l, MaxTargetsLen)
		}
		all = append(all, c...)
	}
	if len(cs) < 2 || !slices.Equal(all, ts) {
		t.Errorf("%d chunks holding %d of %d targets in order", len(cs), len(all), len(ts))
	}
}

func TestNewValidates(t *testing.T) {
	for _, c := range []Config{
		{Document: "banshee-host-block", InstanceTag: "banshee"},
		{Document: "x y", InstanceTag: "banshee=managed"},
		{Document: "banshee-host-block", InstanceTag: "=x"},
	} {
		if _, err := New(nil, nil, c); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}

// world is moto with a VPC, a subnet, and instances: two tagged, one not.
type world struct {
	ssm      *ssm.Client
	ec2      *ec2.Client
	tagged   []string
	untagged string
}

func newWorld(t *testing.T) *world {
	cfg := startMoto(t)
	ctx := context.Background()
	w := &world{ssm: ssm.NewFromConfig(cfg), ec2: ec2.NewFromConfig(cfg)}
	run := func(tags ...ec2types.Tag) string {
		in := &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
		if len(tags) > 0 {
			in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}}
		}
		out, err := w.ec2.RunInstances(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	tag := ec2types.Tag{Key: aws.String("banshee"), Value: aws.String("managed")}
	w.tagged = []string{run(tag), run(tag)}
	slices.Sort(w.tagged)
	w.untagged = run(ec2types.Tag{Key: aws.String("banshee"), Value: aws.String("no")})
	return w
}

func (w *world) commands(t *testing.T) []map[string]any {
	t.Helper()
	out, err := w.ssm.ListCommands(context.Background(), &ssm.ListCommandsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var cs []map[string]any
	for _, c := range out.Commands {
		ids := slices.Clone(c.InstanceIds)
		slices.Sort(ids)
		cs = append(cs, map[string]any{"doc": aws.ToString(c.DocumentName), "ids": ids, "params": c.Parameters, "comment": aws.ToString(c.Comment)})
	}
	return cs
}

// recordingSSM passes calls to moto and keeps the instance ids of each
// SendCommand: moto 5.2 stores every instance of the region on a command sent
// with InstanceIds (it adds the instances its empty Targets filter matches),
// so ListCommands cannot show which instances were asked for.
type recordingSSM struct {
	SSMAPI
	sent [][]string
}

func (r *recordingSSM) SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	r.sent = append(r.sent, slices.Clone(in.InstanceIds))
	return r.SSMAPI.SendCommand(ctx, in, optFns...)
}

func TestRunAgainstMoto(t *testing.T) {
	w := newWorld(t)
	rec := &recordingSSM{SSMAPI: w.ssm}
	d, err := New(rec, w.ec2, Config{Document: "banshee-host-block", InstanceTag: "banshee=managed"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := Request{
		Action: Block, TTL: 2 * time.Hour, Reason: CleanReason("alarm ssh-bruteforce"),
		Targets:   []netip.Prefix{netip.MustParsePrefix("198.51.100.9/32"), netip.MustParsePrefix("2001:db8::9/128")},
		Instances: append([]string{w.untagged}, w.tagged...),
		Key:       "00112233445566778899aabb", Since: time.Now().Add(-time.Minute),
	}
	res, err := d.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Untargeted, []string{w.untagged}) {
		t.Errorf("untargeted %v, want [%s]", res.Untargeted, w.untagged)
	}
	cs := w.commands(t)
	if len(cs) != 1 {
		t.Fatalf("commands in moto: %v, want one", cs)
	}
	c := cs[0]
	if c["doc"] != "banshee-host-block" || len(rec.sent) != 1 || !slices.Equal(rec.sent[0], w.tagged) {
		t.Errorf("command %v sent to %v, want document banshee-host-block on %v", c, rec.sent, w.tagged)
	}
	params := c["params"].(map[string][]string)
	if params["targets"][0] != "198.51.100.9/32 2001:db8::9/128" || params["ttl"][0] != "2h" || params["action"][0] != "block" || params["reason"][0] != "alarm ssh-bruteforce" {
		t.Errorf("parameters %v", params)
	}

	// The same request again (a redelivered event): nothing new is sent.
	again, err := d.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(w.commands(t)); n != 1 {
		t.Errorf("redelivery sent again: %d commands in moto", n)
	}
	if len(again.Sent) != 1 || !again.Sent[0].Duplicate || again.Sent[0].CommandID != res.Sent[0].CommandID {
		t.Errorf("redelivery result %+v, want the first command marked duplicate", again.Sent)
	}

	// Another key is another request.
	req.Key = "ffeeddccbbaa998877665544"
	if _, err := d.Run(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := len(w.commands(t)); n != 2 {
		t.Errorf("%d commands in moto after a new key, want 2", n)
	}

	// Only untagged instances: nothing is sent and the error says why.
	req.Key = "0123456789abcdef"
	req.Instances = []string{w.untagged}
	if _, err := d.Run(ctx, req); err == nil || !strings.Contains(err.Error(), "tag banshee=managed") {
		t.Errorf("untagged only: err %v, want one naming the tag", err)
	}
	if n := len(w.commands(t)); n != 2 {
		t.Errorf("%d commands in moto after an untagged-only request, want 2", n)
	}
}
