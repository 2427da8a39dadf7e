package main

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

func TestListJSONCarriesEveryContractField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks []policy.Block
		want   string
	}{
		{"empty", nil, `{"blocks":[]}`},
		{"bare block", []policy.Block{{Target: netip.MustParsePrefix("192.0.2.1/32"), Scope: policy.ScopeHost}},
			`{"blocks":[{"target":"192.0.2.1/32","scope":"host","expires_at":null,"reason":"","origin":""}]}`},
		{"full block", []policy.Block{{Target: netip.MustParsePrefix("198.51.100.0/24"), Scope: policy.ScopeVPC, NACLID: "acl-1", RuleNumber: 3,
			ExpiresAt: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), Reason: "pop3", Origin: policy.OriginLambda}},
			`{"blocks":[{"target":"198.51.100.0/24","scope":"vpc","nacl_id":"acl-1","rule_number":3,"expires_at":"2026-11-21T08:00:00Z","reason":"pop3","origin":"lambda"}]}`},
	} {
		got, err := json.Marshal(listOutput(tc.blocks))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
