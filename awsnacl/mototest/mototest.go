package mototest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region is the region every helper of this package uses.
const Region = "us-east-1"

// Server is a running moto_server on a loopback port.
type Server struct {
	// URL is the server's endpoint, e.g. http://127.0.0.1:45123.
	URL string

	cmd  *exec.Cmd
	done chan struct{}
}

// Available reports whether moto_server is on PATH.
func Available() bool {
	_, err := exec.LookPath("moto_server")
	return err == nil
}

// skipMsg is the message tests skip with when moto_server is missing.
const skipMsg = "moto_server not on PATH: install moto[server] (pip install 'moto[server]') to run the EC2 tests"

// Start starts a dedicated moto_server for t and stops it in t.Cleanup. It
// skips t when moto_server is not on PATH.
func Start(t testing.TB) *Server {
	t.Helper()
	if !Available() {
		t.Skip(skipMsg)
	}
	s, err := start()
	if err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared struct {
	mu      sync.Mutex
	inMain  bool
	srv     *Server
	err     error
	started bool
}

// Main runs the tests of a package that uses Shared, then stops the shared
// server. Call it from TestMain: os.Exit(mototest.Main(m)).
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	shared.mu.Unlock()
	return code
}

// Shared returns the process-wide moto_server, starting it on first use.
// Tests share it and isolate themselves by creating their own VPC. The
// package's TestMain must call Main, which stops the server at the end;
// Shared fails the test otherwise. It skips t when moto_server is missing.
func Shared(t testing.TB) *Server {
	t.Helper()
	if !Available() {
		t.Skip(skipMsg)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("mototest.Shared needs TestMain to call mototest.Main(m)")
	}
	if !shared.started {
		shared.started = true
		shared.srv, shared.err = start()
	}
	if shared.err != nil {
		t.Fatalf("starting moto_server: %v", shared.err)
	}
	return shared.srv
}

func start() (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("moto_server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout = nil
	cmd.Stderr = nil
	cmd.Env = append(os.Environ(), "MOTO_ALLOW_NONEXISTENT_REGION=true")
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running moto_server: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	for i := 0; time.Now().Before(deadline) && i < 600; i++ {
		select {
		case <-s.done:
			return fmt.Errorf("moto_server exited before answering on %s", s.URL)
		default:
		}
		resp, err := c.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("moto_server did not answer on %s within %s", s.URL, limit)
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// Env sets the environment the SDK's default chain reads so that it talks
// to endpoint (the server's URL or a proxy's) with dummy credentials in
// Region, for tests that run code which loads its own aws.Config.
func Env(t testing.TB, endpoint string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_SESSION_TOKEN", "testing")
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_DEFAULT_REGION", Region)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_PROFILE", "")
}

// Config returns an aws.Config for endpoint with dummy credentials in
// Region and no retryer of its own (callers set theirs).
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", "testing"),
		BaseEndpoint: aws.String(endpoint),
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
