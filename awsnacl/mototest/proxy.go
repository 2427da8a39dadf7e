package mototest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// Faults says which requests a Proxy answers itself instead of moto. Shares
// are fractions in [0, 1] drawn from a generator seeded with Seed, so a run
// is repeatable for one order of requests.
type Faults struct {
	// Throttle is the share answered with EC2's RequestLimitExceeded (HTTP
	// 503 and the EC2 error XML), without forwarding.
	Throttle float64
	// Unavailable is the share answered with a bare HTTP 503, without
	// forwarding.
	Unavailable float64
	// Stall is the share forwarded to moto (so the change is applied) whose
	// answer is then held back for StallFor or until the client gives up:
	// the hard case of a timeout after the server acted.
	Stall float64
	// StallFor is how long a stalled answer is held (default 3s).
	StallFor time.Duration
	// Actions limits faults to these EC2 actions (all when empty).
	Actions []string
	// Limit caps the number of faults since SetFaults (0: no cap); after
	// it, every request passes.
	Limit int
	// Seed seeds the generator.
	Seed uint64
	// Respond, when set, may answer a request itself: it returns the status
	// and body and true, or false to let the request through.
	Respond func(action string, form url.Values) (status int, body string, ok bool)
	// Rewrite, when set, rewrites moto's answer to action before it is
	// returned.
	Rewrite func(action string, body []byte) []byte
}

// Proxy is an HTTP proxy in front of a Server that counts EC2 API calls by
// action and injects Faults.
type Proxy struct {
	// URL is the proxy's endpoint; point the SDK at it.
	URL string

	upstream string
	client   *http.Client

	mu      sync.Mutex
	faults  Faults
	rnd     *rand.Rand
	counts  map[string]int
	faulted int
}

// Proxy starts a proxy in front of s for t, closed in t.Cleanup.
func (s *Server) Proxy(t testing.TB, f Faults) *Proxy {
	t.Helper()
	p := &Proxy{
		upstream: s.URL,
		client:   &http.Client{Timeout: 60 * time.Second},
		counts:   map[string]int{},
	}
	p.SetFaults(f)
	hs := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

// SetFaults replaces the faults (and reseeds the generator).
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.StallFor == 0 {
		f.StallFor = 3 * time.Second
	}
	p.faults = f
	p.faulted = 0
	p.rnd = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
}

// Counts returns the number of requests seen per EC2 action, faulted ones
// and retries included.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Total returns the number of requests seen.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.counts {
		n += v
	}
	return n
}

// Faulted returns the number of requests answered with a fault or stalled.
func (p *Proxy) Faulted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faulted
}

type verdict int

const (
	pass verdict = iota
	throttle
	unavailable
	stall
)

func (p *Proxy) decide(action string) (verdict, Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[action]++
	f := p.faults
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) || f.Limit > 0 && p.faulted >= f.Limit {
		return pass, f
	}
	x := p.rnd.Float64()
	v := pass
	switch {
	case x < f.Throttle:
		v = throttle
	case x < f.Throttle+f.Unavailable:
		v = unavailable
	case x < f.Throttle+f.Unavailable+f.Stall:
		v = stall
	}
	if v != pass {
		p.faulted++
	}
	return v, f
}

// ThrottleXML is the body EC2 answers a throttled request with.
const ThrottleXML = `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>`

// ErrorXML returns an EC2 error body with code and message.
func ErrorXML(code, msg string) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>`, code, msg)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	if action == "" {
		action = r.Method + " " + r.URL.Path
	}
	v, f := p.decide(action)
	if f.Respond != nil {
		if status, b, ok := f.Respond(action, form); ok {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, b)
			return
		}
	}
	switch v {
	case throttle:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, ThrottleXML)
		return
	case unavailable:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "Service Unavailable")
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, "forwarding to moto: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "reading moto's answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	if action == "DeleteNetworkAclEntry" && resp.StatusCode == http.StatusInternalServerError {
		// moto answers 500 for an entry that does not exist; EC2 answers
		// 400 InvalidNetworkAclEntry.NotFound. Answer as EC2 does.
		resp.StatusCode = http.StatusBadRequest
		out = []byte(ErrorXML("InvalidNetworkAclEntry.NotFound", "The specified network ACL entry does not exist."))
	}
	if f.Rewrite != nil {
		out = f.Rewrite(action, out)
	}
	if v == stall {
		t := time.NewTimer(f.StallFor)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}
