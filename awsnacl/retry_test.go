package awsnacl

import (
	"net"
	"testing"

	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/banshee-project/banshee/policy"
)

// timeoutErr is a network error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestRetryerGivesUpOnUnreachable: a refused connection (a real dial to a
// closed loopback port) and an unknown host are final, so the operator
// hears at once; a timeout is still retried.
func TestRetryerGivesUpOnUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := net.Dial("tcp", addr)
	if refused == nil {
		t.Skip("something listens on a port just closed")
	}
	r := NewRetryer(policy.NACLConfig{})
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, false},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "ec2.nowhere.invalid", IsNotFound: true}, false},
		{"timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, true},
	} {
		err := &smithyhttp.RequestSendError{Err: tc.err}
		if got := r.IsErrorRetryable(err); got != tc.want {
			t.Errorf("%s (%v): retryable %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
