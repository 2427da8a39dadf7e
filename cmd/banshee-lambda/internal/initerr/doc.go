// Package initerr reports a failed initialization to the Lambda Runtime
// API (POST /2018-06-01/runtime/init/error), which aws-lambda-go does not
// do itself, so a misconfigured function fails with its own message
// instead of a bare exit.
//
// It only ever talks to the address in AWS_LAMBDA_RUNTIME_API and must
// never be used after the function has started serving invocations.
package initerr
