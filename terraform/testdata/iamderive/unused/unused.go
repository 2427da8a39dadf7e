// Fixture for TestDeriveActionsFixture: never compiled. Nothing imports it.
package unused

import "github.com/aws/aws-sdk-go-v2/service/ec2"

var _ = &ec2.DeleteVpcInput{}
