package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
)

var tableNow = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)

// list's table: by family, address and prefix length, both layers of an
// address together; columns as wide as their content; the reason cut to
// the width, whole with --wide; a block past its expiry still in force
// says the sweep is pending.
func TestListTable(t *testing.T) {
	long := strings.Repeat("pop3 bruteforce from a botnet, ", 10) // 310 characters
	p := netip.MustParsePrefix
	res := &engine.ListResult{}
	for _, b := range []policy.Block{
		{Target: p("2001:db8::7/128"), Scope: policy.ScopeHost, ExpiresAt: tableNow.Add(2 * time.Hour), Reason: "ssh", Origin: policy.OriginWatch},
		{Target: p("10.77.1.100/32"), Scope: policy.ScopeHost, ExpiresAt: tableNow.Add(36 * time.Hour), Reason: long, Origin: policy.OriginCLI},
		{Target: p("10.77.1.0/24"), Scope: policy.ScopeVPC, NACLID: "acl-0123", RuleNumber: 3, ExpiresAt: tableNow.Add(-6 * time.Second), Reason: "aggregate", Origin: policy.OriginLambda},
		{Target: p("10.77.1.2/32"), Scope: policy.ScopeVPC, NACLID: "acl-0123", RuleNumber: 1, ExpiresAt: tableNow.Add(90 * time.Minute), Origin: policy.OriginCLI},
		{Target: p("10.77.1.2/32"), Scope: policy.ScopeHost, ExpiresAt: tableNow.Add(time.Hour), Reason: "manual"},
	} {
		res.Blocks = append(res.Blocks, engine.Listed{Block: b})
	}
	sortListed(res.Blocks)
	var b strings.Builder
	writeListed(&b, res, tableNow, 100)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"TARGET        SCOPE  WHERE        EXPIRES IN               ORIGIN  REASON",
		"10.77.1.0/24  vpc    acl-0123 #3  expired (sweep pending)  lambda  aggregate",
		"10.77.1.2     host   this host    1h                       -       manual",
		"10.77.1.2     vpc    acl-0123 #1  1h30m                    cli",
		"10.77.1.100   host   this host    1d12h                    cli     pop3 bruteforce from a botnet, p…",
		"2001:db8::7   host   this host    2h                       watch   ssh",
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", b.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], want[i])
		}
		if n := utf8.RuneCountInString(lines[i]); n > 100 {
			t.Errorf("line %d is %d wide, over 100", i, n)
		}
	}
	b.Reset()
	writeListed(&b, res, tableNow, 0) // --wide
	if !strings.Contains(b.String(), strings.TrimSpace(long)+"\n") {
		t.Errorf("--wide cut the reason:\n%s", b.String())
	}
	js, err := json.Marshal(listOutput(res))
	if err != nil || !strings.Contains(string(js), `"reason":"`+long+`"`) {
		t.Errorf("-o json does not carry the whole reason: %s %v", js, err)
	}
}

func TestTerminalWidth(t *testing.T) {
	for _, tc := range []struct {
		columns string
		want    int
	}{{"", 120}, {"80", 80}, {"x", 120}, {"-3", 120}, {"200", 200}} {
		if got := terminalWidth(func(string) string { return tc.columns }); got != tc.want {
			t.Errorf("COLUMNS=%q: got %d, want %d", tc.columns, got, tc.want)
		}
	}
}
