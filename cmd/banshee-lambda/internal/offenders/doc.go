// Package offenders finds the sources behind a CloudWatch alarm: from the
// alarm's metric to the CloudWatch Logs metric filter that feeds it, to the
// log events of the alarm's evaluation window, to the source addresses
// those events name, counted per source and per instance. It reads auth
// logs with the daemon's own detectors (policy/detect) and sums them as
// watch does (detect.Tally: weighted, a probe counting less than an
// authentication failure, and grouped by watch.group_v6/group_v4, a group
// named as the network once several of its addresses failed), VPC flow
// logs by
// the default format's field positions (REJECT records, and the ACCEPT
// records of probes: flowlog.go), and takes a
// metric dimension that already names the source as it is.
//
// It only reads: it must never change anything in AWS, and never take an
// address from a position of a log line that the remote side controls (the
// detectors and the flow-log field positions fix where the address is).
// Every read is bounded in pages and events.
package offenders
