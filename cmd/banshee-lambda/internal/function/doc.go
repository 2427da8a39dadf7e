// Package function is the Lambda function's logic: it takes one parsed
// event and turns it into decisions and enforcement with the same policy
// and backends as the CLI. An alarm that went into ALARM becomes attacks
// (package offenders), decisions (package policy) and blocks: VPC scope
// through awsnacl, host scope through SSM Run Command (hostfw/remote). An
// alarm's offenders are one attack per attacked port, kind and instance
// set, so the edge is placed for all of them at once. A scheduled event
// re-creates NACL denies someone else deleted before their expiry, then
// sweeps expired ones; a manual invoke blocks, unblocks or plans.
//
// Repeat offenders (TTL doubled per prior offence within the repeat
// window) are counted from banshee's ACL metadata in the snapshot and one
// bounded read of the SSM command history (offences.go), never from the
// event being handled, so a redelivery does not escalate.
//
// It changes only the network ACLs of its Scope (BANSHEE_NACL_IDS, else
// the ACLs of BANSHEE_VPC_ID): a VPC decision for another ACL falls back to
// host scope, and the scheduled sweep names exactly the managed ACLs.
//
// It must never act on anything but a transition into ALARM, never change
// anything for an event it could not parse, never enforce a decision the
// policy did not make, and never send the same host command twice for one
// alarm state change (deliveries are at least once). It logs structured
// JSON (log/slog) and CloudWatch embedded-metric-format lines; every error
// is returned to the runtime, not only logged.
package function
