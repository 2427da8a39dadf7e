package policy

import (
	"strings"
	"testing"
	"time"
)

func TestParseDurationCountsDays(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"90s", 90 * time.Second},
		{"2h30m", 150 * time.Minute},
		{"2d", 48 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{" 30d ", 720 * time.Hour},
		{"1d1h1m1s", 25*time.Hour + time.Minute + time.Second},
		{"0", 0},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "d", "2 days", "7days", "-1d", "-5m", "1x", "2dd", "99999999999d"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v; want an error", in, got)
		}
	}
}

func TestFormatDurationRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{45 * time.Second, "45s"},
		{90 * time.Minute, "1h30m"},
		{48 * time.Hour, "2d"},
		{36 * time.Hour, "1d12h"},
		{720 * time.Hour, "30d"},
		{0, "0s"},
	} {
		got := FormatDuration(tc.d)
		if got != tc.want {
			t.Errorf("FormatDuration(%v) = %q; want %q", tc.d, got, tc.want)
		}
		back, err := ParseDuration(got)
		if err != nil || back != tc.d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tc.d, back, err)
		}
	}
}

func TestConfigDurationsCountDays(t *testing.T) {
	cfg, err := ParseConfig([]byte("policy:\n  default_ttl: 2d\n  max_ttl: 1d12h\n"))
	if err == nil {
		t.Fatalf("max_ttl below default_ttl accepted: %+v", cfg.Policy)
	}
	if !strings.Contains(err.Error(), "max_ttl") {
		t.Errorf("error %q does not name max_ttl", err)
	}
	cfg, err = ParseConfig([]byte("policy:\n  default_ttl: 1d12h\n  max_ttl: 20d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(cfg.Policy.DefaultTTL); got != 36*time.Hour {
		t.Errorf("default_ttl 1d12h = %v", got)
	}
	if got := time.Duration(cfg.Policy.MaxTTL); got != 20*Day {
		t.Errorf("max_ttl 20d = %v", got)
	}
}
