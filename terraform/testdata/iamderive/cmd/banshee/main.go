// Fixture for TestDeriveActionsFixture: never compiled. The instance binary:
// AWS through awsnacl, and one call of its own outside awsnacl.
package main

import (
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/policy"
)

func main() {
	_ = policy.Decide
	_ = awsnacl.Block
	_ = &cloudwatch.PutMetricDataInput{}
}
