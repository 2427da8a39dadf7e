package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go"
	"github.com/banshee-project/banshee/awsnacl"
)

// offEC2 makes this process look like a machine outside EC2 whose AWS
// environment holds only what the test sets, and returns how often the
// instance metadata service was asked anything.
func offEC2(t *testing.T, env map[string]string) *atomic.Int64 {
	t.Helper()
	var hits atomic.Int64
	imdsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(imdsSrv.Close)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_EC2_METADATA_DISABLED",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsSrv.URL)
	for k, v := range env {
		t.Setenv(k, v)
	}
	old, oldOn := localIdentity, onEC2
	localIdentity = func(context.Context, ...func(*imds.Options)) (awsnacl.Identity, error) {
		return awsnacl.Identity{}, awsnacl.ErrNotOnEC2
	}
	onEC2 = func() bool { return false }
	t.Cleanup(func() { localIdentity, onEC2 = old, oldOn })
	return &hits
}

func TestAWSErrorsInOneLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	for _, tc := range []struct {
		name string
		env  map[string]string
		code int
		want string
	}{
		{"credentials missing", map[string]string{"AWS_REGION": "us-east-1"}, exitFailure,
			"banshee: describing instances i-0123: EC2 DescribeInstances: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run on EC2 with an instance role\n"},
		{"region missing", map[string]string{"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}, exitUsage,
			"banshee: no AWS region: set AWS_REGION (and credentials), or run banshee on an EC2 instance\n"},
		{"endpoint unreachable", map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": closed}, exitFailure,
			"banshee: describing instances i-0123: EC2 DescribeInstances: endpoint " + closed + " unreachable (connection refused); check AWS_ENDPOINT_URL\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := offEC2(t, tc.env)
			// The default retries: a refused connection is not retried.
			_, stderr, code := runPlan(t, "", "", "plan", "203.0.113.7", "--instance", "i-0123")
			if code != tc.code || stderr != tc.want {
				t.Errorf("exit %d, stderr\n %q\nwant exit %d,\n %q", code, stderr, tc.code, tc.want)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("off EC2 the instance metadata service was asked %d time(s)", n)
			}
		})
	}
}

func TestExplainAWSAnswer(t *testing.T) {
	sdk := &smithy.OperationError{ServiceID: "EC2", OperationName: "CreateNetworkAclEntry",
		Err: &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}}
	err := explainAWS(fmt.Errorf("blocking 203.0.113.7: %w", sdk))
	want := "blocking 203.0.113.7: EC2 CreateNetworkAclEntry: AWS answered UnauthorizedOperation: You are not authorized to perform this operation."
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnauthorizedOperation" {
		t.Errorf("the SDK error is no longer in the chain: %v", err)
	}
	plain := errors.New("reading config: no such file")
	if explainAWS(plain) != plain {
		t.Errorf("a non-AWS error was rewritten")
	}
	// The exit code follows the wrapped chain: a refusal stays exit 3.
	if code := exitCode(explainAWS(fmt.Errorf("%w: %w", errRefused, sdk))); code != exitRefused {
		t.Errorf("exit %d, want 3", code)
	}
}
