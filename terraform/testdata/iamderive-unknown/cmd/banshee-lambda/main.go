// Fixture for TestDeriveActionsFixture: never compiled.
package main

import "github.com/aws/aws-sdk-go-v2/service/sts"

var _ = &sts.GetCallerIdentityInput{}

func main() {}
