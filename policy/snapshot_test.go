package policy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestReadSnapshot(t *testing.T) {
	s, err := ReadSnapshot(strings.NewReader(`{
  "now": "2026-01-02T03:04:05Z",
  "allowlist": ["192.0.2.0/24"],
  "callers": ["198.51.100.20"],
  "sg_rules": {"i-1": [{"group_id": "sg-1", "port": {"proto": "tcp", "from": 22, "to": 22}, "source": "203.0.113.0/24", "description": "office"}]},
  "nacls": {"subnet-a": {"id": "acl-a", "entries": [{"rule_number": 3, "cidr": "198.51.100.0/24", "expires_at": "2026-01-02T05:00:00Z", "severity": 7}]}},
  "blocks": [{"target": "198.51.100.9/32", "scope": "host", "instance_id": "i-1"}],
  "offences": [{"source": "198.51.100.9/32", "at": "2026-01-01T00:00:00Z"}]
}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Now.Equal(testNow) || s.Allowlist[0] != P("192.0.2.0/24") || s.Callers[0] != netip.MustParseAddr("198.51.100.20") ||
		s.SGRules["i-1"][0].Description != "office" || s.NACLs["subnet-a"].Entries[0].Severity != 7 ||
		!s.NACLs["subnet-a"].Entries[0].ExpiresAt.Equal(testNow.Add(2*time.Hour-4*time.Minute-5*time.Second)) ||
		s.Blocks[0].Scope != ScopeHost || len(s.Offences) != 1 {
		t.Errorf("snapshot: %+v", s)
	}

	for _, tc := range []struct {
		name, data string
		line       int
	}{
		{"unknown field", "{\n  \"now\": \"2026-01-02T03:04:05Z\",\n  \"nacl\": {}\n}", 3},
		{"bad CIDR", "{\n  \"allowlist\": [\n    \"192.0.2.0/33\"\n  ]\n}", 3},
		{"wrong type", "{\n\n  \"blocks\": 7\n}", 3},
		{"syntax", "{\n  \"now\": \n}", 3},
		{"empty", "", 0},
		{"trailing", "{}\n{}", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSnapshot(strings.NewReader(tc.data))
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *InputError, got %v", err)
			}
			if ie.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", ie.Line, tc.line, err)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]string{
		"22/tcp": "tcp/22", "tcp/22": "tcp/22", "22": "tcp/22", "1000-2000/udp": "udp/1000-2000",
		"icmp": "icmp", "all": "all traffic", "": "all traffic", "UDP/53": "udp/53", "tcp": "tcp",
	} {
		p, err := ParsePort(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"22/sctp", "0/tcp", "70000", "2000-1000/tcp", "icmp/8", "x"} {
		if _, err := ParsePort(in); err == nil {
			t.Errorf("ParsePort(%q): no error", in)
		}
	}
	tcp22 := Port{Proto: "tcp", From: 22, To: 22}
	for _, tc := range []struct {
		p, q             Port
		overlaps, covers bool
	}{
		{Port{}, tcp22, true, true},
		{Port{Proto: "-1"}, tcp22, true, true},
		{tcp22, Port{}, true, false},
		{Port{Proto: "6", From: 20, To: 25}, tcp22, true, true},
		{Port{Proto: "tcp", From: 0, To: 65535}, tcp22, true, true},
		{Port{Proto: "udp", From: 22, To: 22}, tcp22, false, false},
		{Port{Proto: "tcp", From: 23, To: 30}, tcp22, false, false},
		{Port{Proto: "tcp", From: 20, To: 22}, Port{Proto: "tcp", From: 22, To: 25}, true, false},
	} {
		if got := tc.p.Overlaps(tc.q); got != tc.overlaps {
			t.Errorf("%v overlaps %v: got %v", tc.p, tc.q, got)
		}
		if got := tc.p.Covers(tc.q); got != tc.covers {
			t.Errorf("%v covers %v: got %v", tc.p, tc.q, got)
		}
	}
}
