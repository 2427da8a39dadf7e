package function

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/banshee-project/banshee/policy"
)

// params is a parameter store that keeps its values and counts reads.
type params struct {
	values map[string]string
	reads  int
}

func (p *params) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	p.reads++
	v, ok := p.values[aws.ToString(in.Name)]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v)}}, nil
}

func TestConfigSource(t *testing.T) {
	p := &params{values: map[string]string{"/ok": `{"allowlist":["198.51.100.0/24"]}`, "/bad": `{"allowlist":["not a cidr"]}`}}
	now := time.Date(2026, 5, 9, 0, 0, 0, 0, time.UTC)
	src := NewConfigSource(p, "/ok")
	src.now = func() time.Time { return now }
	cfg, err := src.Load(context.Background())
	if err != nil || len(cfg.Allowlist) != 1 || cfg.Allowlist[0].String() != "198.51.100.0/24" {
		t.Fatalf("Load = %+v, %v", cfg.Allowlist, err)
	}
	if _, err := src.Load(context.Background()); err != nil || p.reads != 1 {
		t.Errorf("second load within the TTL read the parameter again (%d reads), err %v", p.reads, err)
	}
	now = now.Add(ConfigTTL + time.Second)
	if _, err := src.Load(context.Background()); err != nil || p.reads != 2 {
		t.Errorf("load after the TTL: %d reads, err %v", p.reads, err)
	}
	if _, err := NewConfigSource(p, "/bad").Load(context.Background()); err == nil || !strings.Contains(err.Error(), "/bad") {
		t.Errorf("bad config: err %v, want one naming the parameter", err)
	}
	var nf *ssmtypes.ParameterNotFound
	if _, err := NewConfigSource(p, "/missing").Load(context.Background()); !errors.As(err, &nf) {
		t.Errorf("missing parameter: err %v, want ParameterNotFound", err)
	}
	if cfg, err := NewConfigSource(nil, "").Load(context.Background()); err != nil || cfg.Policy.DefaultTTL != policy.Default().Policy.DefaultTTL {
		t.Errorf("no parameter: %+v, %v; want the defaults", cfg.Policy, err)
	}
}

func fixture(t *testing.T, name string) []byte {
	b, err := os.ReadFile("../../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noAWS fails the test when the function reaches for configuration or AWS.
func noAWS(t *testing.T) Deps {
	return Deps{
		Config: func(context.Context) (policy.Config, error) {
			t.Error("configuration loaded")
			return policy.Config{}, errors.New("no")
		},
		NACLs:  func(policy.Config) NACLs { t.Error("NACLs used"); return nil },
		Finder: func(policy.Config) (Finder, error) { t.Error("finder used"); return nil, errors.New("no") },
		Region: "us-east-1",
	}
}

func TestHandleIgnoresAndRejects(t *testing.T) {
	var out bytes.Buffer
	d := noAWS(t)
	d.Metrics = &out
	f := New(d)
	resp, err := f.Handle(context.Background(), fixture(t, "sns-alarm-ok.json"))
	if err != nil || resp.Ignored == "" || resp.State != "OK" {
		t.Errorf("OK alarm: %+v, %v; want ignored", resp, err)
	}
	if _, err := f.Handle(context.Background(), []byte(`{"Records": [`)); err == nil {
		t.Errorf("truncated event accepted")
	}
	// An alarm of another region is an error, before any AWS call.
	if _, err := f.Handle(context.Background(), fixture(t, "sns-alarm.json")); err == nil || !strings.Contains(err.Error(), "eu-west-1") {
		t.Errorf("alarm in eu-west-1: err %v, want a region error", err)
	}
	// Every metric line is valid EMF.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("metric lines %q", lines)
	}
	for _, l := range lines {
		var m struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.AWS.Timestamp == 0 || len(m.AWS.CloudWatchMetrics) != 1 || m.AWS.CloudWatchMetrics[0].Namespace != Namespace {
			t.Errorf("not an EMF line: %s (%v)", l, err)
			continue
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(l), &raw)
		for _, mt := range m.AWS.CloudWatchMetrics[0].Metrics {
			if _, ok := raw[mt.Name].(float64); !ok {
				t.Errorf("EMF line %s lacks the value of %s", l, mt.Name)
			}
		}
		for _, ds := range m.AWS.CloudWatchMetrics[0].Dimensions {
			if ds == nil {
				t.Errorf("EMF line %s has a null dimension set", l)
			}
			for _, dn := range ds {
				if _, ok := raw[dn].(string); !ok {
					t.Errorf("EMF line %s lacks dimension %s", l, dn)
				}
			}
		}
	}
}
