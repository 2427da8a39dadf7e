package terraform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/banshee-project/banshee/policy"
)

// testVPC is the value of the module's one required variable in evaluations.
var testVPC = map[string]cty.Value{"vpc_id": cty.StringVal("vpc-0123456789abcdef0")}

// hclValue parses and evaluates a constant HCL expression.
func hclValue(t *testing.T, src string) cty.Value {
	t.Helper()
	expr, diags := hclsyntax.ParseExpression([]byte(src), "test", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("parsing %s: %s", src, diags.Error())
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("evaluating %s: %s", src, diags.Error())
	}
	return v
}

// withVPC returns the values plus the required vpc_id.
func withVPC(values map[string]cty.Value) map[string]cty.Value {
	out := map[string]cty.Value{}
	for k, v := range testVPC {
		out[k] = v
	}
	for k, v := range values {
		out[k] = v
	}
	return out
}

// evalLocal evaluates local.<name> of the module with the given variables.
func evalLocal(t *testing.T, m *tfModule, name string, values map[string]cty.Value) cty.Value {
	t.Helper()
	e, err := m.newEvaluator(withVPC(values))
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.local(name)
	if err != nil {
		t.Fatal(err)
	}
	if !v.IsWhollyKnown() {
		t.Fatalf("local.%s is not known without a plan: %#v", name, v)
	}
	return v
}

func TestDefaultsJSONIsPolicyDefault(t *testing.T) {
	want := policy.DefaultJSON()
	if *update {
		if err := os.WriteFile("defaults.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("defaults.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("defaults.json differs from policy.Default() (run go test ./terraform -run TestDefaultsJSON -update): %s", firstDiff(got, want))
	}
}

// normalized clears empty slices, which JSON writes as [] and Go's zero
// value as null; both mean "none".
func normalized(c policy.Config) policy.Config {
	if len(c.Allowlist) == 0 {
		c.Allowlist = nil
	}
	if len(c.Watch.Detectors) == 0 {
		c.Watch.Detectors = nil
	}
	return c
}

// keyPaths lists the object keys of a JSON document as dotted paths.
func keyPaths(t *testing.T, data []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if obj, ok := v.(map[string]any); ok {
			for k, x := range obj {
				out = append(out, prefix+k)
				walk(prefix+k+".", x)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}

// moduleConfig evaluates the JSON the module writes to the configuration
// parameter, and parses it as the function does.
func moduleConfig(t *testing.T, m *tfModule, values map[string]cty.Value) ([]byte, policy.Config) {
	t.Helper()
	b, ok := m.resources["aws_ssm_parameter.config"]
	if !ok {
		t.Fatal("no aws_ssm_parameter.config")
	}
	if got := traversalsOf(b.Body.Attributes["value"].Expr); got != "local.config" {
		t.Fatalf("aws_ssm_parameter.config.value refers to %q, want jsonencode(local.config)", got)
	}
	e, err := m.newEvaluator(withVPC(values))
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.eval(b.Body.Attributes["value"].Expr)
	if err != nil {
		t.Fatal(err)
	}
	if !v.IsWhollyKnown() || v.Type() != cty.String {
		t.Fatalf("the parameter's value is not a known string: %#v", v)
	}
	data := []byte(v.AsString())
	cfg, err := policy.ParseConfig(data)
	if err != nil {
		t.Fatalf("policy.ParseConfig of the parameter's value: %v\n%s", err, data)
	}
	return data, cfg
}

func TestConfigParameterDefaultsEqualPolicyDefaults(t *testing.T) {
	m := loadModule(t, ".")
	data, got := moduleConfig(t, m, nil)
	if want := policy.Default(); !reflect.DeepEqual(normalized(got), normalized(want)) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("the module's default configuration differs from policy.Default():\nmodule %s\npolicy %s", g, w)
	}
	// Every key of the defaults is written, and no other: a field added to
	// policy.Config without defaults.json being regenerated fails here.
	def, _ := json.Marshal(policy.Default())
	if g, w := keyPaths(t, data), keyPaths(t, def); strings.Join(g, " ") != strings.Join(w, " ") {
		t.Errorf("configuration keys differ:\nmodule %v\npolicy %v", g, w)
	}
}

func TestConfigParameterAppliesOverrides(t *testing.T) {
	m := loadModule(t, ".")
	_, got := moduleConfig(t, m, map[string]cty.Value{
		"config_overrides": hclValue(t, `{ policy = { default_ttl = "2h", flood_rate = 50 }, watch = { max_retry = 3 } }`),
		"nacl_rule_range":  hclValue(t, `{ min = 1, max = 9 }`),
		"nacl_quota":       cty.NumberIntVal(40),
		"allowlist":        hclValue(t, `["10.0.0.0/8"]`),
		"admin_cidrs":      hclValue(t, `["198.51.100.0/24", "10.0.0.0/8"]`),
	})
	want := policy.Default()
	want.Policy.DefaultTTL = policy.Duration(2 * 3600 * 1e9)
	want.Policy.FloodRate = 50
	want.Watch.MaxRetry = 3
	want.NACL.RuleMin, want.NACL.RuleMax, want.NACL.Quota = 1, 9, 40
	for _, s := range []string{"10.0.0.0/8", "198.51.100.0/24"} {
		p, err := policy.ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		want.Allowlist = append(want.Allowlist, p)
	}
	if !reflect.DeepEqual(normalized(got), normalized(want)) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("with overrides:\ngot  %s\nwant %s", g, w)
	}
}

// preconditionRefs returns the references of the lifecycle preconditions of
// a resource ("type.name") or a data source ("data.type.name").
func preconditionRefs(t *testing.T, m *tfModule, resource string) []string {
	t.Helper()
	b, ok := m.resources[resource]
	if name, isData := strings.CutPrefix(resource, "data."); isData {
		b, ok = m.data[name]
	}
	if !ok {
		t.Fatalf("no %s", resource)
	}
	var refs []string
	for _, lb := range b.Body.Blocks {
		if lb.Type != "lifecycle" {
			continue
		}
		for _, pb := range lb.Body.Blocks {
			if pb.Type == "precondition" {
				refs = append(refs, traversalsOf(pb.Body.Attributes["condition"].Expr))
			}
		}
	}
	return refs
}

func TestConfigOverrideKeysAreChecked(t *testing.T) {
	m := loadModule(t, ".")
	if refs := preconditionRefs(t, m, "aws_ssm_parameter.config"); !contains(refs, "local.config_override_keys_known") {
		t.Errorf("aws_ssm_parameter.config preconditions %v do not check local.config_override_keys_known", refs)
	}
	for src, want := range map[string]bool{
		`{}`: true,
		`{ policy = { default_ttl = "2h" }, host = { hook_docker_user = true } }`: true,
		`{ policy = { default_tll = "2h" } }`:                                     false,
		`{ watch = { max_retry = 3, metrics = "x" } }`:                            false,
	} {
		got := evalLocal(t, m, "config_override_keys_known", map[string]cty.Value{"config_overrides": hclValue(t, src)})
		if got.True() != want {
			t.Errorf("config_overrides = %s: config_override_keys_known = %v, want %v", src, got.True(), want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rangeVal is a {min, max} rule-number range.
func rangeVal(lo, hi int) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"min": cty.NumberIntVal(int64(lo)), "max": cty.NumberIntVal(int64(hi))})
}

// defaultRange returns the default {min, max} of a range variable.
func defaultRange(t *testing.T, m *tfModule, name string) (int, int) {
	t.Helper()
	v, ok, err := variableDefault(m.variables[name])
	if err != nil || !ok {
		t.Fatalf("variable %s: default %v, %v", name, ok, err)
	}
	lo, _ := v.GetAttr("min").AsBigFloat().Int64()
	hi, _ := v.GetAttr("max").AsBigFloat().Int64()
	return int(lo), int(hi)
}

func TestRuleRangesNeverOverlap(t *testing.T) {
	m := loadModule(t, ".")
	def := policy.Default()

	fnLo, fnHi := defaultRange(t, m, "nacl_rule_range")
	if fnLo != def.NACL.RuleMin || fnHi != def.NACL.RuleMax {
		t.Errorf("nacl_rule_range defaults to %d-%d, policy.Default() to %d-%d", fnLo, fnHi, def.NACL.RuleMin, def.NACL.RuleMax)
	}
	if q, _, _ := variableDefault(m.variables["nacl_quota"]); !q.Equals(cty.NumberIntVal(int64(def.NACL.Quota))).True() {
		t.Errorf("nacl_quota defaults to %#v, policy.Default() to %d", q, def.NACL.Quota)
	}
	stLo, stHi := defaultRange(t, m, "static_blocklist_rule_range")
	if !(stHi < fnLo || fnHi < stLo) {
		t.Errorf("default ranges overlap: function %d-%d, static blocklist %d-%d", fnLo, fnHi, stLo, stHi)
	}
	if stHi >= 100 || fnHi >= 100 {
		t.Errorf("default ranges %d-%d and %d-%d must stay below the usual allow rule 100", fnLo, fnHi, stLo, stHi)
	}
	if !validates(t, m, "nacl_rule_range", rangeVal(fnLo, fnHi)) || !validates(t, m, "static_blocklist_rule_range", rangeVal(stLo, stHi)) {
		t.Error("the default ranges do not pass their own validations")
	}

	refs := preconditionRefs(t, m, "aws_lambda_function.this")
	for _, want := range []string{"local.rule_ranges_disjoint", "local.static_blocklist_fits", "local.static_blocklist_within_quota"} {
		if !contains(refs, want) {
			t.Errorf("aws_lambda_function.this preconditions %v do not check %s", refs, want)
		}
	}

	// Every pair of ranges over 1..5 that passes the variables' validations:
	// the precondition holds exactly when the ranges are disjoint.
	var checked int
	for a := 1; a <= 5; a++ {
		for b := a; b <= 5; b++ {
			for c := 1; c <= 5; c++ {
				for d := c; d <= 5; d++ {
					fn, st := rangeVal(a, b), rangeVal(c, d)
					if !validates(t, m, "nacl_rule_range", fn) || !validates(t, m, "static_blocklist_rule_range", st) {
						t.Fatalf("valid ranges %d-%d, %d-%d rejected by validation", a, b, c, d)
					}
					got := evalLocal(t, m, "rule_ranges_disjoint", map[string]cty.Value{"nacl_rule_range": fn, "static_blocklist_rule_range": st})
					if want := b < c || d < a; got.True() != want {
						t.Errorf("function %d-%d, static %d-%d: rule_ranges_disjoint = %v, want %v", a, b, c, d, got.True(), want)
					}
					checked++
				}
			}
		}
	}
	if checked != 225 {
		t.Errorf("checked %d range pairs, want 225", checked)
	}

	// Every blocklist number must lie in its range, and be its own.
	for src, want := range map[string]bool{
		`{}`: true,
		`{ "192.0.2.0/24" = 20, "198.51.100.0/24" = 22 }`:                        true,
		`{ "192.0.2.0/24" = 20, "198.51.100.0/24" = 21, "203.0.113.0/24" = 22 }`: true,
		`{ "192.0.2.0/24" = 19 }`:                                                false,
		`{ "192.0.2.0/24" = 23 }`:                                                false,
		`{ "192.0.2.0/24" = 21, "2001:db8::/32" = 21 }`:                          false,
	} {
		got := evalLocal(t, m, "static_blocklist_fits", map[string]cty.Value{"static_blocklist": hclValue(t, src), "static_blocklist_rule_range": rangeVal(20, 22)})
		if got.True() != want {
			t.Errorf("%s in 20-22: static_blocklist_fits = %v, want %v", src, got.True(), want)
		}
	}
}

func TestStaticBlocklistRules(t *testing.T) {
	m := loadModule(t, ".")
	rules := evalLocal(t, m, "static_blocklist_rules", map[string]cty.Value{
		"network_acl_ids":             hclValue(t, `["acl-0123456789abcdef0", "acl-0123456789abcdef1"]`),
		"static_blocklist":            hclValue(t, `{ "192.0.2.0/24" = 50, "2001:db8::/32" = 51, "203.0.113.7/32" = 52 }`),
		"static_blocklist_rule_range": rangeVal(50, 89),
	})
	type rule struct {
		acl    string
		number int64
		cidr   string
		ipv6   bool
	}
	got := map[string]rule{}
	for it := rules.ElementIterator(); it.Next(); {
		k, v := it.Element()
		n, _ := v.GetAttr("rule_number").AsBigFloat().Int64()
		got[k.AsString()] = rule{v.GetAttr("network_acl_id").AsString(), n, v.GetAttr("cidr").AsString(), v.GetAttr("ipv6").True()}
	}
	want := map[string]rule{
		"0/192.0.2.0/24":   {"acl-0123456789abcdef0", 50, "192.0.2.0/24", false},
		"0/2001:db8::/32":  {"acl-0123456789abcdef0", 51, "2001:db8::/32", true},
		"0/203.0.113.7/32": {"acl-0123456789abcdef0", 52, "203.0.113.7/32", false},
		"1/192.0.2.0/24":   {"acl-0123456789abcdef1", 50, "192.0.2.0/24", false},
		"1/2001:db8::/32":  {"acl-0123456789abcdef1", 51, "2001:db8::/32", true},
		"1/203.0.113.7/32": {"acl-0123456789abcdef1", 52, "203.0.113.7/32", false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("static blocklist rules:\ngot  %v\nwant %v", got, want)
	}

	// Removing an entry removes its rules and leaves every other rule, key
	// and number as it was: nothing is renumbered.
	fewer := evalLocal(t, m, "static_blocklist_rules", map[string]cty.Value{
		"network_acl_ids":             hclValue(t, `["acl-0123456789abcdef0", "acl-0123456789abcdef1"]`),
		"static_blocklist":            hclValue(t, `{ "2001:db8::/32" = 51, "203.0.113.7/32" = 52 }`),
		"static_blocklist_rule_range": rangeVal(50, 89),
	})
	for it := fewer.ElementIterator(); it.Next(); {
		k, v := it.Element()
		n, _ := v.GetAttr("rule_number").AsBigFloat().Int64()
		if w, ok := want[k.AsString()]; !ok || w.number != n || w.acl != v.GetAttr("network_acl_id").AsString() {
			t.Errorf("after removing 192.0.2.0/24: rule %s = %d in %s, before %v", k.AsString(), n, v.GetAttr("network_acl_id").AsString(), w)
		}
	}
	if fewer.LengthInt() != 4 {
		t.Errorf("after removing 192.0.2.0/24: %d rules, want 4", fewer.LengthInt())
	}

	// No blocklist: no rules (merge of nothing is an empty object).
	empty := evalLocal(t, m, "static_blocklist_rules", map[string]cty.Value{
		"network_acl_ids": hclValue(t, `["acl-0123456789abcdef0"]`),
	})
	if empty.LengthInt() != 0 {
		t.Errorf("static_blocklist_rules without a blocklist: %#v", empty)
	}

	// Without network_acl_ids the ACLs come from a data source: unknown
	// before a plan, never guessed.
	e, err := m.newEvaluator(withVPC(map[string]cty.Value{"static_blocklist": hclValue(t, `{ "192.0.2.0/24" = 50 }`)}))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.local("static_blocklist_rules"); err == nil && v.IsWhollyKnown() {
		t.Errorf("static_blocklist_rules without network_acl_ids is known before a plan: %#v", v)
	}
}

// validates reports whether value passes every validation of the variable.
// A condition that fails to evaluate fails the test: Terraform would show
// the user an evaluation error instead of the error_message.
func validates(t *testing.T, m *tfModule, name string, value cty.Value) bool {
	t.Helper()
	b := m.variables[name]
	e, err := m.newEvaluator(withVPC(map[string]cty.Value{name: value}))
	if err != nil {
		t.Fatalf("variable %s = %#v: %v", name, value, err)
	}
	ok := true
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		pass, err := e.evalBool(vb.Body.Attributes["condition"].Expr)
		if err != nil {
			t.Errorf("variable %s = %#v: validation at %s: %v", name, value, vb.DefRange(), err)
			return false
		}
		ok = ok && pass
	}
	return ok
}

// validationCases lists, per validated variable, values (HCL) its
// validations must accept and values they must reject.
var validationCases = map[string]struct{ good, bad []string }{
	"name":                           {good: []string{`"banshee"`, `"prod-eu-1"`, `"amz"`}, bad: []string{`"Banshee"`, `"a--b"`, `"-a"`, `"aws-prod"`, `"amazonx"`, `"amzn-web"`, `"with.dot"`, `""`, `"abcdefghijabcdefghijabcdefghijabc"`}},
	"vpc_id":                         {good: []string{`"vpc-0123abcd"`, `"vpc-0123456789abcdef0"`}, bad: []string{`"vpc-XYZ"`, `"subnet-0123abcd"`, `""`}},
	"network_acl_ids":                {good: []string{`[]`, `["acl-0123abcd", "acl-0123abce"]`}, bad: []string{`["acl-0123abcd", "acl-0123abcd"]`, `["vpc-0123abcd"]`}},
	"lambda_zip_path":                {good: []string{`null`, `"dist/banshee-lambda-arm64.zip"`}, bad: []string{`"bootstrap"`}},
	"lambda_timeout":                 {good: []string{`1`, `900`}, bad: []string{`0`, `901`, `1.5`}},
	"lambda_memory_size":             {good: []string{`128`, `10240`}, bad: []string{`64`, `10241`, `200.5`}},
	"reserved_concurrent_executions": {good: []string{`null`, `1`, `10`}, bad: []string{`0`, `-1`, `1.5`}},
	"log_retention_in_days":          {good: []string{`1`, `3653`}, bad: []string{`0`, `2`, `10000`}},
	"sweep_schedule":                 {good: []string{`"rate(5 minutes)"`, `"cron(0/5 * * * ? *)"`}, bad: []string{`"every minute"`, `"rate(0 minutes)"`, `"rate(1 fortnight)"`}},
	"alarm_trigger":                  {good: []string{`"alarm_action"`, `"sns"`}, bad: []string{`"SNS"`, `"email"`}},
	"alarm_actions":                  {good: []string{`["arn:aws:sns:eu-west-1:123456789012:oncall"]`}, bad: []string{`["oncall"]`}},
	"metric_namespace":               {good: []string{`null`, `"Security/Banshee"`}, bad: []string{`"AWS/EC2"`, `""`, `"a b"`}},
	"auth_log_group_name":            {good: []string{`null`, `"/ec2/auth"`}, bad: []string{`""`, `"a b"`, `"a:b"`}},
	"ssh_auth_failure_pattern":       {good: []string{`"Failed"`}, bad: []string{`""`}},
	"ssh_auth_failure_threshold":     {good: []string{`1`}, bad: []string{`0`, `2.5`}},
	"flow_log_group_name":            {good: []string{`null`, `"/vpc/flow"`}, bad: []string{`""`, `"a*b"`}},
	"flow_log_traffic_type":          {good: []string{`"ALL"`}, bad: []string{`"reject"`}},
	"rejected_connections_threshold": {good: []string{`1`}, bad: []string{`0`, `0.5`}},
	"alarm_period":                   {good: []string{`10`, `60`, `300`}, bad: []string{`15`, `90`, `0`}},
	"extra_log_group_names":          {good: []string{`[]`, `["/app/nginx"]`}, bad: []string{`["a b"]`}},
	"instance_tag":                   {good: []string{`{ key = "Role", value = "" }`, `{ key = "team/owner", value = "a=b" }`}, bad: []string{`{ key = "a=b", value = "x" }`, `{ key = "aws:x", value = "x" }`, `{ key = "", value = "x" }`, `{ key = "k", value = "x;y" }`}},
	"host_banshee_path":              {good: []string{`"/opt/banshee/bin/banshee"`}, bad: []string{`"banshee"`, `"/usr/bin/banshee; rm -rf /"`, `"/a b"`, `"/x'y"`}},
	"config_parameter_name":          {good: []string{`null`, `"/security/banshee/config"`}, bad: []string{`"banshee"`, `"/a//b"`, `"/a b"`}},
	"allowlist":                      {good: []string{`[]`, `["10.0.0.0/8", "2001:db8::/32"]`}, bad: []string{`["10.0.0.0"]`, `["example.com"]`}},
	"config_overrides":               {good: []string{`{}`, `{ policy = { default_ttl = "2h" } }`, `{ nacl = { egress = true } }`}, bad: []string{`{ policy2 = {} }`, `{ nacl = { rule_max = 9 } }`, `"x"`}},
	"nacl_rule_range":                {good: []string{`{ min = 1, max = 1 }`, `{ min = 100, max = 32766 }`}, bad: []string{`{ min = 0, max = 19 }`, `{ min = 20, max = 19 }`, `{ min = 1, max = 32767 }`, `{ min = 1.5, max = 19 }`}},
	"nacl_quota":                     {good: []string{`2`, `40`}, bad: []string{`1`, `41`, `20.5`}},
	"nacl_allow_rules":               {good: []string{`0`, `1`, `38`}, bad: []string{`-1`, `39`, `1.5`}},
	"static_blocklist":               {good: []string{`{}`, `{ "192.0.2.0/24" = 50, "2001:db8::/32" = 51, "203.0.113.7/32" = 89 }`, blocklistHCL(38, 38)}, bad: []string{`{ "192.0.2.1/24" = 50 }`, `{ "0.0.0.0/0" = 50 }`, `{ "::/0" = 50 }`, `{ "2001:DB8::/32" = 50 }`, `{ "192.0.2.0" = 50 }`, `{ "192.0.2.0/24" = 50, "198.51.100.0/24" = 50 }`, `{ "192.0.2.0/24" = 0 }`, `{ "192.0.2.0/24" = 50.5 }`, `{ "192.0.2.0/24" = 32767 }`, blocklistHCL(39, 0), blocklistHCL(0, 39)}},
	"static_blocklist_rule_range":    {good: []string{`{ min = 20, max = 49 }`}, bad: []string{`{ min = 0, max = 9 }`, `{ min = 50, max = 49 }`, `{ min = 1, max = 40000 }`}},
	"admin_cidrs":                    {good: []string{`[]`, `["198.51.100.0/24", "2001:db8::/48"]`}, bad: []string{`["0.0.0.0/0"]`, `["::/0"]`, `["office"]`}},
	"ssh_port":                       {good: []string{`22`, `2222`}, bad: []string{`0`, `65536`, `22.5`}},
	"instance_role_names":            {good: []string{`[]`, `["banshee-web", "app+ops=x,y.z@team_1"]`}, bad: []string{`["arn:aws:iam::123456789012:role/web"]`, `["web", "web"]`, `[""]`, `["a b"]`, `["abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde"]`}},
}

func TestVariableValidations(t *testing.T) {
	m := loadModule(t, ".")
	for _, name := range sortedKeys(m.variables) {
		b := m.variables[name]
		var n int
		for _, vb := range b.Body.Blocks {
			if vb.Type == "validation" {
				n++
			}
		}
		cases, listed := validationCases[name]
		switch {
		case n == 0 && listed:
			t.Errorf("validationCases lists %s, which has no validation", name)
			continue
		case n == 0:
			continue
		case !listed || len(cases.bad) == 0:
			t.Errorf("variable %s has validations but no bad values in validationCases", name)
			continue
		}
		if v, ok, err := variableDefault(b); err != nil {
			t.Error(err)
		} else if ok && !validates(t, m, name, v) {
			t.Errorf("variable %s: its default %#v fails its own validation", name, v)
		}
		for _, src := range cases.good {
			if !validates(t, m, name, hclValue(t, src)) {
				t.Errorf("variable %s = %s rejected, want accepted", name, src)
			}
		}
		for _, src := range cases.bad {
			if validates(t, m, name, hclValue(t, src)) {
				t.Errorf("variable %s = %s accepted, want rejected", name, src)
			}
		}
	}
	for name := range validationCases {
		if _, ok := m.variables[name]; !ok {
			t.Errorf("validationCases lists %s, which the module does not declare", name)
		}
	}
}

// blocklistHCL is a static blocklist of v4 IPv4 and v6 IPv6 networks, as
// HCL, numbered from 100 up.
func blocklistHCL(v4, v6 int) string {
	var es []string
	for i := range v4 {
		es = append(es, fmt.Sprintf("%q = %d", fmt.Sprintf("198.18.%d.0/24", i), 100+len(es)))
	}
	for i := range v6 {
		es = append(es, fmt.Sprintf("%q = %d", fmt.Sprintf("2001:db8:%x::/48", i+1), 100+len(es)))
	}
	return "{ " + strings.Join(es, ", ") + " }"
}

// The static blocklist's rules of one family, the ACL's own allow rules and
// the default rule must leave the function at least one rule of the quota;
// nacl_function_rules is what the function can use of its range.
func TestStaticBlocklistWithinQuota(t *testing.T) {
	m := loadModule(t, ".")
	for _, tc := range []struct {
		v4, v6  int
		allow   int
		fn      [2]int
		quota   int
		usable  int
		comment string
	}{
		{0, 0, 1, [2]int{1, 19}, 20, 18, "the defaults: 100 allow and the default rule leave 18"},
		{0, 0, 0, [2]int{1, 19}, 20, 19, "an ACL without allow rules"},
		{1, 0, 1, [2]int{1, 19}, 20, 17, "one static rule takes one"},
		{0, 1, 1, [2]int{1, 19}, 20, 17, "IPv6 counts as well"},
		{2, 1, 1, [2]int{1, 16}, 20, 16, "the complete example: 2 + 16 + 100 allow + default = 20"},
		{2, 2, 1, [2]int{1, 17}, 20, 16, "the families count apart"},
		{3, 0, 2, [2]int{1, 17}, 20, 14, "two allow rules"},
		{17, 0, 1, [2]int{1, 19}, 20, 1, "one rule left"},
		{18, 0, 1, [2]int{1, 19}, 20, 0, "nothing left"},
		{0, 18, 1, [2]int{1, 19}, 20, 0, "nothing left for IPv6"},
		{0, 0, 19, [2]int{1, 19}, 20, 0, "the ACL's own rules fill it"},
		{20, 0, 1, [2]int{1, 19}, 40, 18, "a raised quota"},
		{38, 38, 1, [2]int{1, 1}, 40, 0, "the most the variable allows, and one allow rule"},
		{38, 38, 0, [2]int{1, 1}, 40, 1, "the most the variable allows"},
	} {
		values := map[string]cty.Value{
			"static_blocklist": hclValue(t, blocklistHCL(tc.v4, tc.v6)),
			"nacl_rule_range":  rangeVal(tc.fn[0], tc.fn[1]),
			"nacl_quota":       cty.NumberIntVal(int64(tc.quota)),
			"nacl_allow_rules": cty.NumberIntVal(int64(tc.allow)),
			// Room for the longest list, away from the function's range.
			"static_blocklist_rule_range": rangeVal(100, 199),
		}
		for name, v := range values {
			if !validates(t, m, name, v) {
				t.Fatalf("%s: %s = %#v fails its own validation", tc.comment, name, v)
			}
		}
		got := evalLocal(t, m, "nacl_function_rules", values)
		if n, _ := got.AsBigFloat().Int64(); int(n) != tc.usable {
			t.Errorf("%s: %d IPv4 + %d IPv6 static, %d allow, range %d-%d, quota %d: nacl_function_rules = %d, want %d",
				tc.comment, tc.v4, tc.v6, tc.allow, tc.fn[0], tc.fn[1], tc.quota, n, tc.usable)
		}
		if ok := evalLocal(t, m, "static_blocklist_within_quota", values); ok.True() != (tc.usable > 0) {
			t.Errorf("%s: static_blocklist_within_quota = %v with %d rules left for the function", tc.comment, ok.True(), tc.usable)
		}
	}
}

// Each example's call of the module passes the preconditions on its rule
// ranges, blocklist and quota (evaluated with the example's own values).
func TestExamplesPassTheRulePreconditions(t *testing.T) {
	m := loadModule(t, ".")
	for _, dir := range exampleDirs(t) {
		ex := loadModule(t, dir)
		for _, name := range sortedKeys(ex.modules) {
			b := ex.modules[name]
			if filepath.Clean(filepath.Join(dir, attrString(t, b, "source"))) != "." {
				continue
			}
			values := map[string]cty.Value{}
			for _, arg := range []string{"static_blocklist", "static_blocklist_rule_range", "nacl_rule_range", "nacl_quota", "nacl_allow_rules"} {
				a, ok := b.Body.Attributes[arg]
				if !ok {
					continue
				}
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("%s: %s is not a constant: %s", a.SrcRange, arg, diags.Error())
				}
				values[arg] = v
			}
			for _, local := range []string{"rule_ranges_disjoint", "static_blocklist_fits", "static_blocklist_within_quota"} {
				if !evalLocal(t, m, local, values).True() {
					t.Errorf("%s: module %q fails the precondition local.%s", dir, name, local)
				}
			}
			// An example that sizes the function's range sizes it to what
			// the quota leaves: no rule number it cannot use.
			if _, ok := values["nacl_rule_range"]; ok {
				got, _ := evalLocal(t, m, "nacl_function_rules", values).AsBigFloat().Int64()
				r := values["nacl_rule_range"]
				lo, _ := r.GetAttr("min").AsBigFloat().Int64()
				hi, _ := r.GetAttr("max").AsBigFloat().Int64()
				if got != hi-lo+1 {
					t.Errorf("%s: module %q gives the function %d-%d, of which the quota leaves %d", dir, name, lo, hi, got)
				}
			}
		}
	}
}
