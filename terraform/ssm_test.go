package terraform

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/banshee-project/banshee/hostfw/remote"
)

// ssmDocument is the part of an SSM Command document the tests read.
type ssmDocument struct {
	SchemaVersion string `json:"schemaVersion"`
	Parameters    map[string]struct {
		Type              string   `json:"type"`
		AllowedPattern    string   `json:"allowedPattern"`
		AllowedValues     []string `json:"allowedValues"`
		MaxChars          int      `json:"maxChars"`
		InterpolationType string   `json:"interpolationType"`
		Default           *string  `json:"default"`
	} `json:"parameters"`
	MainSteps []struct {
		Action string `json:"action"`
		Inputs struct {
			RunCommand []string `json:"runCommand"`
		} `json:"inputs"`
	} `json:"mainSteps"`
}

// hostBlockDocument evaluates the module's SSM document.
func hostBlockDocument(t *testing.T, values map[string]cty.Value) ssmDocument {
	t.Helper()
	m := loadModule(t, ".")
	if got := traversalsOf(m.resources["aws_ssm_document.host_block"].Body.Attributes["content"].Expr); got != "local.host_block_document" {
		t.Fatalf("aws_ssm_document.host_block.content refers to %q, want jsonencode(local.host_block_document)", got)
	}
	v := evalLocal(t, m, "host_block_document", values)
	data, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		t.Fatal(err)
	}
	var doc ssmDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestSSMDocumentMatchesRemoteDriver(t *testing.T) {
	doc := hostBlockDocument(t, nil)
	if doc.SchemaVersion != "2.2" {
		t.Errorf("schemaVersion %q, want 2.2", doc.SchemaVersion)
	}
	if len(doc.MainSteps) != 1 || doc.MainSteps[0].Action != "aws:runShellScript" {
		t.Fatalf("want one aws:runShellScript step, got %+v", doc.MainSteps)
	}
	want := map[string]string{
		remote.ParamAction:  remote.ActionPattern,
		remote.ParamTargets: remote.TargetsPattern,
		remote.ParamTTL:     remote.TTLPattern,
		remote.ParamReason:  remote.ReasonPattern,
	}
	var names []string
	for name := range doc.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(sortedKeys(want), " ") {
		t.Errorf("document parameters %v, hostfw/remote sends %v", names, sortedKeys(want))
	}
	for name, pattern := range want {
		p := doc.Parameters[name]
		if p.AllowedPattern != pattern {
			t.Errorf("parameter %s: allowedPattern %q, hostfw/remote validates with %q", name, p.AllowedPattern, pattern)
		}
		if p.InterpolationType != "ENV_VAR" {
			t.Errorf("parameter %s: interpolationType %q, want ENV_VAR", name, p.InterpolationType)
		}
		if p.Type != "String" {
			t.Errorf("parameter %s: type %q, want String", name, p.Type)
		}
		if p.Default != nil && !regexp.MustCompile(pattern).MatchString(*p.Default) {
			t.Errorf("parameter %s: default %q does not match its own pattern", name, *p.Default)
		}
	}
	if got := doc.Parameters[remote.ParamTargets].MaxChars; got != remote.MaxTargetsLen {
		t.Errorf("targets maxChars %d, hostfw/remote splits at %d", got, remote.MaxTargetsLen)
	}

	// What the driver sends passes the document's patterns.
	targets := []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/64")}
	for _, action := range []remote.Action{remote.Block, remote.Unblock} {
		params, err := remote.Parameters(action, targets, 90*time.Minute, remote.CleanReason("alarm banshee.ssh-auth-failures (5 in 60s)"))
		if err != nil {
			t.Fatal(err)
		}
		for name, vals := range params {
			p := doc.Parameters[name]
			if len(vals) != 1 || !regexp.MustCompile(p.AllowedPattern).MatchString(vals[0]) {
				t.Errorf("%s: parameter %s = %q rejected by the document's pattern %q", action, name, vals, p.AllowedPattern)
			}
			if len(p.AllowedValues) > 0 && !contains(p.AllowedValues, vals[0]) {
				t.Errorf("%s: parameter %s = %q not among %v", action, name, vals[0], p.AllowedValues)
			}
		}
	}

	// No parameter is interpolated into the script text, and the script
	// reads every parameter from its environment variable.
	script := strings.Join(doc.MainSteps[0].Inputs.RunCommand, "\n")
	if strings.Contains(script, "{{") {
		t.Errorf("the script interpolates {{ }} into shell text:\n%s", script)
	}
	for name := range want {
		if !strings.Contains(script, `"$SSM_`+name+`"`) {
			t.Errorf("the script never reads \"$SSM_%s\" (quoted)", name)
		}
	}
}

// runDocument runs the document's script with bash, a fake banshee that
// records its arguments and standard input, and the given SSM_ variables.
func runDocument(t *testing.T, env map[string]string) (args, stdin string, out []byte, err error) {
	t.Helper()
	bash, lookErr := exec.LookPath("bash")
	if lookErr != nil {
		t.Skip("bash not on PATH")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "banshee")
	fakeSrc := "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\ncat > \"$0.stdin\"\n"
	if err := os.WriteFile(fake, []byte(fakeSrc), 0o755); err != nil {
		t.Fatal(err)
	}
	doc := hostBlockDocument(t, map[string]cty.Value{"host_banshee_path": cty.StringVal(fake)})
	cmd := exec.Command(bash, "-c", strings.Join(doc.MainSteps[0].Inputs.RunCommand, "\n"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err = cmd.CombinedOutput()
	for _, f := range []string{"pwned", "pwned2"} {
		if _, statErr := os.Stat(filepath.Join(dir, f)); statErr == nil {
			t.Errorf("a parameter value was executed as shell code (%s exists)", f)
		}
	}
	a, _ := os.ReadFile(fake + ".args")
	s, _ := os.ReadFile(fake + ".stdin")
	return string(a), string(s), out, err
}

func TestSSMDocumentScriptRunsBansheeWithParametersFromEnvironment(t *testing.T) {
	args, stdin, out, err := runDocument(t, map[string]string{
		"SSM_action":  "block",
		"SSM_targets": "192.0.2.7/32 2001:db8::/64,198.51.100.0/24",
		"SSM_ttl":     "2h",
		"SSM_reason":  `x"; touch pwned; echo "$(touch pwned2)`,
	})
	if err != nil {
		t.Fatalf("script failed: %v\n%s", err, out)
	}
	wantArgs := "block\n-\n--scope\nhost\n--ttl\n2h\n--reason\n" + `x"; touch pwned; echo "$(touch pwned2)` + "\n-o\njson\n"
	if args != wantArgs {
		t.Errorf("banshee got arguments %q, want %q", args, wantArgs)
	}
	var lines []string
	for _, l := range strings.Split(stdin, "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	if strings.Join(lines, " ") != "192.0.2.7/32 2001:db8::/64 198.51.100.0/24" {
		t.Errorf("banshee read targets %q", stdin)
	}

	args, _, out, err = runDocument(t, map[string]string{"SSM_action": "unblock", "SSM_targets": "192.0.2.7/32", "SSM_ttl": "0s", "SSM_reason": ""})
	if err != nil {
		t.Fatalf("unblock: %v\n%s", err, out)
	}
	if args != "unblock\n-\n--scope\nhost\n-o\njson\n" {
		t.Errorf("unblock: banshee got arguments %q", args)
	}

	// An agent too old for ENV_VAR leaves the variables unset: refuse.
	args, _, out, err = runDocument(t, nil)
	if err == nil || !strings.Contains(string(out), "SSM Agent") || args != "" {
		t.Errorf("without SSM_ variables: err %v, output %q, banshee args %q; want a refusal naming the SSM Agent", err, out, args)
	}
	args, _, _, err = runDocument(t, map[string]string{"SSM_action": "reboot", "SSM_targets": "192.0.2.7/32", "SSM_ttl": "1h", "SSM_reason": ""})
	if err == nil || args != "" {
		t.Errorf("action reboot: err %v, banshee args %q; want a refusal", err, args)
	}
}
