// Command banshee-lambda is the Lambda function's bootstrap (runtime
// provided.al2023): it wires package function from the environment and
// serves invocations through the Lambda Runtime API.
//
// main stays thin: parse the environment, wire, call. It must never hold
// logic of its own.
package main
