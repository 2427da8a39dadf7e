package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
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
		res := &engine.ListResult{Blocks: []engine.Listed{}}
		for _, b := range tc.blocks {
			res.Blocks = append(res.Blocks, engine.Listed{Block: b})
		}
		got, err := json.Marshal(listOutput(res))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestListSortsByAddressAndMarksDrift(t *testing.T) {
	res := &engine.ListResult{Blocks: []engine.Listed{
		{Block: policy.Block{Target: netip.MustParsePrefix("10.77.1.100/32"), Scope: policy.ScopeHost}},
		{Block: policy.Block{Target: netip.MustParsePrefix("2001:db8::1/128"), Scope: policy.ScopeHost}},
		{Block: policy.Block{Target: netip.MustParsePrefix("10.77.1.2/32"), Scope: policy.ScopeHost}, Drift: engine.DriftMissing},
		{Block: policy.Block{Target: netip.MustParsePrefix("10.77.1.0/24"), Scope: policy.ScopeHost}},
	}}
	sortListed(res.Blocks)
	var got []string
	for _, b := range res.Blocks {
		got = append(got, b.Target.String())
	}
	want := []string{"10.77.1.0/24", "10.77.1.2/32", "10.77.1.100/32", "2001:db8::1/128"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order %v, want %v", got, want)
	}
	var b strings.Builder
	writeListed(&b, res, time.Now(), 120)
	if !strings.Contains(b.String(), "DRIFT") || !strings.Contains(b.String(), engine.DriftMissing) {
		t.Errorf("table without the drift column:\n%s", b.String())
	}
}
