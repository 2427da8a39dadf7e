package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/banshee-project/banshee/policy"
)

func runConfigDefaults(t *testing.T, output string) string {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"config", "defaults", "-o", output}, strings.NewReader(""), &out, &errb)
	if code := report(err, &errb); code != 0 {
		t.Fatalf("config defaults -o %s: exit %d, stderr %q", output, code, errb.String())
	}
	return out.String()
}

func TestConfigDefaultsJSON(t *testing.T) {
	out := runConfigDefaults(t, "json")
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("want one JSON object on one line, got %q", out)
	}
	var got, want any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if err := json.Unmarshal(policy.DefaultJSON(), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config defaults -o json:\ngot  %v\nwant %v", got, want)
	}
	cfg, err := policy.ParseConfig([]byte(out))
	if err != nil {
		t.Fatalf("the printed defaults do not parse: %v", err)
	}
	if def := policy.Default(); cfg.Policy != def.Policy || !reflect.DeepEqual(cfg.Host, def.Host) || cfg.NACL != def.NACL || cfg.Watch.MaxRetry != def.Watch.MaxRetry || cfg.Watch.FindTime != def.Watch.FindTime {
		t.Errorf("parsed defaults differ from policy.Default(): %+v", cfg)
	}
}

func TestConfigDefaultsYAML(t *testing.T) {
	out := runConfigDefaults(t, "text")
	if strings.Contains(out, "{") || !strings.Contains(out, "policy:\n") {
		t.Errorf("want block-style YAML, got:\n%s", out)
	}
	cfg, err := policy.ParseConfig([]byte(out))
	if err != nil {
		t.Fatalf("the printed YAML does not parse: %v\n%s", err, out)
	}
	def := policy.Default()
	if len(cfg.Allowlist) != 0 || len(cfg.Watch.Detectors) != 0 {
		t.Errorf("defaults have lists: %+v", cfg)
	}
	cfg.Allowlist, cfg.Watch.Detectors = def.Allowlist, def.Watch.Detectors
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("parsed YAML defaults:\ngot  %+v\nwant %+v", cfg, def)
	}
}
