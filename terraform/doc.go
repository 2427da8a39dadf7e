// Package terraform holds banshee's Terraform module (the *.tf files in this
// directory, with examples under examples/) and the Go tests that check it
// without a Terraform binary or a provider download: the files parse and are
// formatted as hclwrite formats them, every variable is typed, described and
// validated, every reference resolves, the examples use only what the module
// declares, the IAM policy grants exactly the AWS API actions that the Lambda
// function's Go code calls, the rule-number ranges of the static blocklist and
// of the function never overlap, and the configuration defaults written to SSM
// equal those of package policy.
//
// The package has no non-test code: nothing may import it, and its tests must
// never call AWS.
package terraform
