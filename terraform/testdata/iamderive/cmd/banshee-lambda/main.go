// Fixture for TestDeriveActionsFixture: never compiled.
package main

import (
	"context"

	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	_ "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/policy"
)

func alarms(ctx context.Context, out *cw.DescribeAlarmsOutput) int { return len(out.MetricAlarms) }

func main() {
	_ = policy.Decide
	_ = awsnacl.Block
}
