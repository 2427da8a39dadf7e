package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// awsError is an AWS failure said in one line: what banshee was doing, the
// EC2 operation, and the cause an operator can act on (no credentials, the
// endpoint unreachable, what AWS answered). It wraps the SDK's error, so
// the exit code stays what the error chain says.
type awsError struct {
	msg string
	err error
}

func (e *awsError) Error() string { return e.msg }
func (e *awsError) Unwrap() error { return e.err }

// explainAWS rewrites an error that carries an SDK operation error into an
// *awsError; any other error comes back as it is.
func explainAWS(err error) error {
	var oe *smithy.OperationError
	if err == nil || !errors.As(err, &oe) {
		return err
	}
	var ae *awsError
	if errors.As(err, &ae) {
		return err
	}
	op := strings.TrimSpace(oe.ServiceID + " " + oe.OperationName)
	msg := op + ": " + awsCause(oe.Err)
	// What banshee was doing: the text its own wrapping put before the
	// SDK's "operation error ...".
	s := err.Error()
	if i := strings.Index(s, "operation error "); i > 0 {
		if doing := strings.TrimRight(strings.TrimSpace(s[:i]), ":"); doing != "" {
			msg = doing + ": " + msg
		}
	}
	return &awsError{msg: msg, err: err}
}

// awsCause names why an SDK call failed, in the operator's terms.
func awsCause(err error) string {
	attempts := ""
	var me *retry.MaxAttemptsError
	if errors.As(err, &me) {
		attempts = fmt.Sprintf(" (after %d attempts)", me.Attempt)
		if me.Attempt == 1 {
			attempts = " (after 1 attempt)"
		}
	}
	var ae smithy.APIError
	var ue *url.Error
	var dnsErr *net.DNSError
	switch {
	case strings.Contains(err.Error(), "get credentials"), strings.Contains(err.Error(), "retrieve credentials"):
		return "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run on EC2 with an instance role"
	case errors.As(err, &ae):
		return fmt.Sprintf("AWS answered %s: %s%s", ae.ErrorCode(), ae.ErrorMessage(), attempts)
	case errors.As(err, &ue):
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Scheme + "://" + u.Host
		}
		why := "unreachable"
		var se interface{ Timeout() bool }
		switch {
		case errors.As(err, &dnsErr):
			why = "unreachable (unknown host " + dnsErr.Name + ")"
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &se) && se.Timeout():
			why = "unreachable (no answer in time)"
		case errors.Is(err, syscall.ECONNREFUSED):
			why = "unreachable (connection refused)"
		}
		hint := ""
		if os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_EC2") != "" {
			hint = "; check AWS_ENDPOINT_URL"
		}
		return fmt.Sprintf("endpoint %s %s%s%s", host, why, attempts, hint)
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time" + attempts
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return oneLine(err.Error())
}
