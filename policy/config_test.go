package policy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfigYAMLAndJSON(t *testing.T) {
	yml := `# banshee
allowlist:
  - 203.0.113.0/24
  - 198.51.100.7        # an address is a /32
  - "::ffff:192.0.2.9"  # v4-mapped becomes v4
policy:
  default_ttl: 2h
  max_ttl: 48h
  vpc_min_instances: 3
  flood_rate: 250.5
nacl:
  rule_min: 10
  rule_max: 29
watch:
  detectors:
    - name: pop3
      pattern: 'auth failed from (?P<addr>\S+)'
      port: 110/tcp
`
	want := Default()
	want.Allowlist = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("192.0.2.9/32")}
	want.Policy.DefaultTTL = Duration(2 * time.Hour)
	want.Policy.MaxTTL = Duration(48 * time.Hour)
	want.Policy.VPCMinInstances = 3
	want.Policy.FloodRate = 250.5
	want.NACL.RuleMin, want.NACL.RuleMax = 10, 29
	want.Watch.Detectors = []DetectorConfig{{Name: "pop3", Pattern: `auth failed from (?P<addr>\S+)`, Port: "110/tcp"}}
	got, err := ParseConfig([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("YAML:\n got %+v\nwant %+v", got, want)
	}

	js := "{\n\t\"allowlist\": [\"203.0.113.0/24\", \"198.51.100.7\", \"::ffff:192.0.2.9\"],\n\t\"policy\": {\"default_ttl\": \"2h\", \"max_ttl\": \"48h\", \"vpc_min_instances\": 3, \"flood_rate\": 250.5},\n" +
		"\t\"nacl\": {\"rule_min\": 10, \"rule_max\": 29},\n\t\"watch\": {\"detectors\": [{\"name\": \"pop3\", \"pattern\": \"auth failed from (?P<addr>\\\\S+)\", \"port\": \"110/tcp\"}]}\n}\n"
	got, err = ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON:\n got %+v\nwant %+v", got, want)
	}

	for _, empty := range []string{"", "# nothing\n", "{}"} {
		got, err := ParseConfig([]byte(empty))
		if err != nil || !reflect.DeepEqual(got, Default()) {
			t.Errorf("%q: got %+v, %v; want the defaults", empty, got, err)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
		value, msg string
	}{
		{"unknown top key", "policy:\n  default_ttl: 1h\nallowlsit: []\n", 3, "allowlsit", "unknown key in the top level"},
		{"unknown nested key", "policy:\n  default_ttl: 1h\n  vpc_min_instance: 2\n", 3, "vpc_min_instance", "unknown key in section policy"},
		{"unknown detector key", "watch:\n  detectors:\n    - name: a\n      regex: x\n", 4, "regex", "unknown key in section watch.detectors.0"},
		{"bad CIDR", "allowlist:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n", 3, "10.0.0.0/33", "not an IPv4/IPv6 address or CIDR"},
		{"bad address", "allowlist: [nonsense]\n", 1, "nonsense", "not an IPv4/IPv6 address or CIDR"},
		{"allow everything", "allowlist:\n  - ::/0\n", 2, "::/0", "allowlisting every address"},
		{"negative TTL", "policy:\n  default_ttl: -1h\n", 2, "-1h", "must not be negative"},
		{"bad duration", "policy:\n  repeat_window: 7days\n", 2, "7days", "not a duration"},
		{"negative TTL JSON", "{\n  \"policy\": {\n    \"max_ttl\": \"-5m\"\n  }\n}\n", 3, "-5m", "must not be negative"},
		{"wrong type", "nacl:\n  quota: many\n", 2, "config", "cannot unmarshal"},
		{"range", "nacl:\n  rule_min: 50\n  rule_max: 20\n", 3, "20", "nacl.rule_max must be nacl.rule_min (50)..32766"},
		{"quota", "nacl:\n  quota: 41\n", 2, "41", "nacl.quota must be 2..40"},
		{"prefix", "policy:\n\n  max_prefix_v4: 33\n", 3, "33", "policy.max_prefix_v4 must be 0..32"},
		{"max below default", "policy:\n  default_ttl: 2h\n  max_ttl: 1h\n", 3, "1h0m0s", "policy.max_ttl must be at least"},
		{"max_ttl beyond the bound", "policy:\n  max_ttl: 2562047h\n", 2, "2562047h0m0s", "policy.max_ttl must be at most 87600h0m0s"},
		{"max_entries beyond the bound", "host:\n  max_entries: 4294967296\n", 2, "4294967296", "host.max_entries must be 1..134217728"},
		{"ssh port out of range", "host:\n  ssh_ports: [2222, 70000]\n", 2, "70000", "host.ssh_ports.1 must be a TCP port"},
		{"max_entries zero", "host:\n  max_entries: 0\n", 2, "0", "host.max_entries must be 1..134217728"},
		{"severity", "policy:\n  default_severity: 0\n", 2, "0", "policy.default_severity must be 1..10"},
		{"negative threshold", "policy:\n  escalate_hosts: -1\n", 2, "-1", "must not be negative"},
		{"detector without addr", "watch:\n  detectors:\n    - name: a\n      pattern: 'from (\\S+)'\n      port: 22/tcp\n", 4, `from (\S+)`, "named group"},
		{"detector port", "watch:\n  detectors:\n    - name: a\n      pattern: '(?P<addr>\\S+)'\n      port: 22/sctp\n", 5, "22/sctp", "not a port"},
		{"chain of the kernel", "host:\n  chain: INPUT\n", 2, "INPUT", "a chain banshee does not own"},
		{"chain of docker", "host:\n  chain: docker-user\n", 2, "docker-user", "a chain banshee does not own"},
		{"chain with a space", "host:\n  chain: \"a b\"\n", 2, "a b", "letters, digits"},
		{"set with a space", "host:\n  set_v4: \"x y\"\n", 2, "x y", "host.set_v4 must be"},
		{"syntax", "policy:\n  default_ttl: 1h\n bad: [\n", -1, "config", ""}, // yaml.v3 places it on line 2 or 3
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.data))
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *InputError, got %v", err)
			}
			if tc.line < 0 && ie.Line > 0 {
				tc.line = ie.Line
			}
			if ie.Line != tc.line || ie.Value != tc.value || !strings.Contains(ie.Msg, tc.msg) {
				t.Errorf("got line %d value %q msg %q; want line %d value %q msg containing %q", ie.Line, ie.Value, ie.Msg, tc.line, tc.value, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestDefaultJSONRoundTrip(t *testing.T) {
	js := DefaultJSON()
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatalf("DefaultJSON is not JSON: %v", err)
	}
	pol := m["policy"].(map[string]any)
	if pol["default_ttl"] != "1h0m0s" || pol["max_prefix_v4"] != 16.0 || pol["aggregate_min_sources"] != 3.0 {
		t.Errorf("policy section: %v", pol)
	}
	if a, ok := m["allowlist"].([]any); !ok || len(a) != 0 {
		t.Errorf("allowlist: want [], got %v", m["allowlist"])
	}
	got, err := ParseConfig(js)
	if err != nil {
		t.Fatalf("ParseConfig(DefaultJSON()): %v", err)
	}
	want := Default()
	want.Allowlist = []netip.Prefix{}
	want.Watch.Detectors = []DetectorConfig{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	var viaJSON Config
	if err := json.Unmarshal(js, &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, want) {
		t.Errorf("encoding/json round trip: %v\n got %+v", err, viaJSON)
	}
	if def := Default(); def.Validate() != nil {
		err := def.Validate()
		t.Errorf("defaults do not validate: %v", err)
	}
}
