package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// runtimeAPI is a local implementation of the Lambda Runtime API
// (2018-06-01): the next-invocation long poll, the response and error
// endpoints, and the init error endpoint.
type runtimeAPI struct {
	srv     *httptest.Server
	events  chan invocation
	results chan result
	initErr chan string
	first   chan time.Time // the time of the first next request
	once    sync.Once
	seq     int
	mu      sync.Mutex
}

type invocation struct {
	id      string
	payload []byte
}

type result struct {
	id      string
	ok      bool
	body    []byte
	errType string
}

func newRuntimeAPI(t testing.TB) *runtimeAPI {
	r := &runtimeAPI{events: make(chan invocation), results: make(chan result, 16), initErr: make(chan string, 1), first: make(chan time.Time, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, req *http.Request) {
		r.once.Do(func() { r.first <- time.Now() })
		select {
		case inv := <-r.events:
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(2*time.Minute).UnixMilli()))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:banshee")
			w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(inv.payload)
		case <-req.Context().Done():
		}
	})
	post := func(ok bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			b, _ := io.ReadAll(req.Body)
			r.results <- result{id: req.PathValue("id"), ok: ok, body: b, errType: req.Header.Get("Lambda-Runtime-Function-Error-Type")}
			w.WriteHeader(http.StatusAccepted)
		}
	}
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", post(true))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", post(false))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		select {
		case r.initErr <- string(b):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// addr is the host:port for AWS_LAMBDA_RUNTIME_API.
func (r *runtimeAPI) addr() string { u, _ := url.Parse(r.srv.URL); return u.Host }

// invoke hands the function one payload and waits for its answer.
func (r *runtimeAPI) invoke(t testing.TB, payload []byte) result {
	t.Helper()
	r.mu.Lock()
	r.seq++
	id := fmt.Sprintf("8476a536-e9f4-11e8-9739-2dfe598c%04d", r.seq)
	r.mu.Unlock()
	select {
	case r.events <- invocation{id: id, payload: payload}:
	case <-time.After(60 * time.Second):
		t.Fatalf("the function did not ask for invocation %s within 60s", id)
	}
	select {
	case res := <-r.results:
		if res.id != id {
			t.Fatalf("answer for %s, want %s", res.id, id)
		}
		return res
	case <-time.After(120 * time.Second):
		t.Fatalf("no answer to invocation %s within 120s", id)
	}
	return result{}
}

var buildOnce struct {
	sync.Once
	dir string
	bin string
	err error
}

// buildBootstrap builds the real bootstrap once per test binary, as
// `make lambda` does (lambda.norpc, trimpath, stripped).
func buildBootstrap(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildOnce.dir, buildOnce.err = os.MkdirTemp("", "banshee-lambda-")
		if buildOnce.err != nil {
			return
		}
		buildOnce.bin = filepath.Join(buildOnce.dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", buildOnce.bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.bin
}

// syncBuffer collects the function's output (JSON logs and EMF lines).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBootstrap runs the bootstrap against the runtime API with env.
func startBootstrap(t testing.TB, bin string, rt *runtimeAPI, env map[string]string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_RUNTIME_API=" + rt.addr(), "_HANDLER=bootstrap", "AWS_LAMBDA_FUNCTION_NAME=banshee", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd, out
}

// awsEnv is the environment that points the bootstrap's SDK at endpoint.
func awsEnv(endpoint string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
}

// counter is an HTTP proxy in front of moto that counts AWS calls by
// operation for every protocol (EC2 query Action, JSON X-Amz-Target, CBOR
// path) and keeps the bodies of SendCommand requests (moto 5.2 does not
// keep a command's instance ids, see hostfw/remote's tests).
type counter struct {
	URL      string
	upstream string
	mu       sync.Mutex
	counts   map[string]int
	sends    [][]byte
}

func newCounter(t testing.TB, upstream string) *counter {
	c := &counter{upstream: upstream, counts: map[string]int{}}
	client := &http.Client{Timeout: 60 * time.Second}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		op := operation(r, body)
		c.mu.Lock()
		c.counts[op]++
		if op == "SendCommand" {
			c.sends = append(c.sends, body)
		}
		c.mu.Unlock()
		req, err := http.NewRequestWithContext(r.Context(), r.Method, c.upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func operation(r *http.Request, body []byte) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		if i := strings.LastIndexByte(t, '.'); i >= 0 {
			return t[i+1:]
		}
		return t
	}
	if i := strings.Index(r.URL.Path, "/operation/"); i >= 0 {
		return r.URL.Path[i+len("/operation/"):]
	}
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
		return v.Get("Action")
	}
	return r.Method + " " + r.URL.Path
}

func (c *counter) snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	n := 0
	for k, v := range c.counts {
		out[k] = v
		n += v
	}
	return out, n
}

// sentInstances returns the InstanceIds of every SendCommand seen.
func (c *counter) sentInstances(t testing.TB) [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]string
	for _, b := range c.sends {
		var in struct{ InstanceIds []string }
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatalf("SendCommand body %s: %v", b, err)
		}
		out = append(out, in.InstanceIds)
	}
	return out
}
