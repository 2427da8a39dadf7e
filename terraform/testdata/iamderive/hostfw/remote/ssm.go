// Fixture for TestDeriveActionsFixture: never compiled.
package remote

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
)

type ssmAPI interface {
	SendCommand(ctx context.Context, in *awsssm.SendCommandInput, opts ...func(*awsssm.Options)) (*awsssm.SendCommandOutput, error)
}

type logsAPI interface {
	cloudwatchlogs.DescribeMetricFiltersAPIClient
}

func Run(ctx context.Context, s ssmAPI, l logsAPI) {
	_ = &cloudwatchlogs.FilterLogEventsInput{}
}
