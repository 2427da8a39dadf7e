// Fixture for TestDeriveActionsFixture: never compiled.
package awsnacl

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

type ec2API interface {
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	ec2.DescribeNetworkAclsAPIClient
}

func Block(ctx context.Context, c ec2API, e ec2types.NetworkAclEntry) error {
	_ = ec2.NewDescribeNetworkAclsPaginator(c, nil)
	_ = &ec2.CreateNetworkAclEntryInput{CidrBlock: e.CidrBlock}
	_ = remote.Run
	_ = policy.Decide
	return nil
}
