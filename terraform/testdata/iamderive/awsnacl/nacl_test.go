// Fixture for TestDeriveActionsFixture: never compiled.
package awsnacl

import "github.com/aws/aws-sdk-go-v2/service/ec2"

var _ = &ec2.TerminateInstancesInput{}
