package function

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/offenders"
	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

// Environment variables the function reads (set by the Terraform module).
const (
	EnvConfigParameter = "BANSHEE_CONFIG_PARAMETER" // SSM parameter with the config (JSON); unset: defaults
	EnvSSMDocument     = "BANSHEE_SSM_DOCUMENT"     // SSM document for host blocks; unset: no host scope
	EnvInstanceTag     = "BANSHEE_INSTANCE_TAG"     // key=value every targeted instance carries
	EnvNACLIDs         = "BANSHEE_NACL_IDS"         // network ACL ids the function may change, comma-separated; unset: see EnvVPCID
	EnvVPCID           = "BANSHEE_VPC_ID"           // the VPC whose network ACLs the function may change; neither set: the ACLs banshee's tags mark
	EnvAlarmPrefix     = "BANSHEE_ALARM_PREFIX"     // the schedule re-evaluates alarms so named that stay in ALARM; unset: none
)

// FromEnv wires the function from the environment and the SDK's default
// chain (AWS_REGION, AWS_ENDPOINT_URL, credentials). It makes no AWS call:
// the configuration is loaded on the first invocation that needs it.
func FromEnv(ctx context.Context, getenv func(string) string, out io.Writer) (*Function, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("load AWS configuration: no region (AWS_REGION)")
	}
	scope, err := ParseScope(getenv(EnvNACLIDs), getenv(EnvVPCID))
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ssmc := ssm.NewFromConfig(awsCfg)
	ec2c := ec2.NewFromConfig(awsCfg)
	logs := cloudwatchlogs.NewFromConfig(awsCfg)
	d := Deps{
		Config: NewConfigSource(ssmc, getenv(EnvConfigParameter)).Load,
		NACLs: func(cfg policy.Config) NACLs {
			return awsnacl.NewFromConfig(awsCfg, cfg.NACL)
		},
		Finder: func(cfg policy.Config) (Finder, error) {
			return offenders.New(logs, ec2c, cfg.Watch, offenders.DefaultLimits)
		},
		Scope:   scope,
		ACLs:    ec2c,
		Log:     log,
		Metrics: out,
		Region:  awsCfg.Region,
		RequestID: func(ctx context.Context) string {
			if lc, ok := lambdacontext.FromContext(ctx); ok {
				return lc.AwsRequestID
			}
			return ""
		},
	}
	if prefix := getenv(EnvAlarmPrefix); prefix != "" {
		// CloudWatch's Query protocol: the service still serves it, and so
		// does moto, where the tests run the function.
		d.Alarms = cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
			o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
		})
		d.AlarmPrefix = prefix
	}
	if doc := getenv(EnvSSMDocument); doc != "" {
		h, err := remote.New(ssmc, ec2c, remote.Config{Document: doc, InstanceTag: getenv(EnvInstanceTag)})
		if err != nil {
			return nil, err
		}
		d.Hosts = h
		d.History, d.Document = ssmc, doc
	}
	return New(d), nil
}

// Invoke implements lambda.Handler: the raw payload in (so that even a
// truncated payload is rejected by event.Parse with its own message), the
// Response as JSON out.
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	resp, err := f.Handle(ctx, payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}
