// Package mototest runs moto_server (the Python AWS emulator) for tests and
// puts a counting, fault-injecting HTTP proxy in front of it, so that code
// using the real aws-sdk-go-v2 EC2 client can be tested end to end: Start or
// Shared for the server, Server.Proxy for EC2 RequestLimitExceeded answers,
// bare 503s, stalled answers and per-action call counts.
//
// It is test support only: it must never be imported by production code,
// and it never talks to a real AWS endpoint (every URL it hands out is a
// loopback address; credentials are dummies).
package mototest
