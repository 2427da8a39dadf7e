// Package remote is the host-firewall driver for instances the caller is not
// on: it asks banshee's own SSM document (provisioned by the Terraform
// module) to block or unblock addresses on EC2 instances through SSM Run
// Command, so the instance's local banshee applies them with hostfw.
//
// Every parameter is validated here against the same allowed patterns the
// document declares, and the document receives them as environment
// variables (interpolationType ENV_VAR). This package must never build a
// shell string, never pass text it has not validated (log data reaches it
// only as parsed addresses), never target an instance that does not carry
// the configured tag, and never send the same request twice for one key
// (at-least-once delivery of the event that caused it).
package remote
