// Package loggen writes synthetic mixed authentication logs for benchmarks
// and tests of banshee's detectors: ordinary lines of many programs with a
// share of failure lines, in every format the built-in detectors read,
// from a fixed set of IPv4 and IPv6 sources. It must never be used to
// decide anything: it only produces input.
package loggen
