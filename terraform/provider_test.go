package terraform

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/banshee-project/banshee/awsnacl/mototest"
)

// The tests in this file run the real terraform binary with the real
// hashicorp/aws provider, installed offline from a filesystem mirror, and
// apply against moto_server on a loopback port. They skip when any of the
// three is missing.

// envProviderMirror names the folder holding registry.terraform.io (a
// Terraform filesystem mirror with hashicorp/aws in it). Unset, the tests
// look for one.
const envProviderMirror = "BANSHEE_TF_PROVIDER_MIRROR"

// mirrorSearch bounds the search for a provider mirror.
const (
	mirrorSearchDepth = 8
	mirrorSearchFiles = 2_000_000
)

var providerMirror struct {
	once sync.Once
	dir  string
	err  error
}

// findProviderMirror returns the folder holding
// registry.terraform.io/hashicorp/aws/VERSION/OS_ARCH/terraform-provider-aws_*,
// from envProviderMirror or a bounded walk of the file system that skips
// /proc, /sys, /dev and /usr.
func findProviderMirror() (string, error) {
	providerMirror.once.Do(func() {
		if d := os.Getenv(envProviderMirror); d != "" {
			if _, err := os.Stat(filepath.Join(d, "registry.terraform.io", "hashicorp", "aws")); err != nil {
				providerMirror.err = fmt.Errorf("%s=%s holds no registry.terraform.io/hashicorp/aws: %w", envProviderMirror, d, err)
				return
			}
			providerMirror.dir = d
			return
		}
		providerMirror.dir, providerMirror.err = searchProviderMirror("/")
	})
	return providerMirror.dir, providerMirror.err
}

var errFound = errors.New("found")

func searchProviderMirror(root string) (string, error) {
	skip := map[string]bool{"/proc": true, "/sys": true, "/dev": true, "/usr": true}
	rootDepth := strings.Count(filepath.Clean(root), string(filepath.Separator))
	var found string
	var n int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir // unreadable: not ours to search
			}
			return nil
		}
		if n++; n > mirrorSearchFiles {
			return fmt.Errorf("searched %d files", mirrorSearchFiles)
		}
		if d.IsDir() {
			if skip[p] || strings.Count(p, string(filepath.Separator))-rootDepth >= mirrorSearchDepth {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(d.Name(), "terraform-provider-aws_") {
			return nil
		}
		// MIRROR/registry.terraform.io/hashicorp/aws/VERSION/OS_ARCH/file
		registry := p
		for range 5 {
			registry = filepath.Dir(registry)
		}
		if filepath.Base(registry) == "registry.terraform.io" {
			found = filepath.Dir(registry)
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return found, nil
	case err != nil:
		return "", fmt.Errorf("looking for a hashicorp/aws provider mirror under %s: %w", root, err)
	}
	return "", fmt.Errorf("no hashicorp/aws provider mirror (registry.terraform.io/hashicorp/aws/VERSION/OS_ARCH/terraform-provider-aws_*) within %d levels of %s; set %s", mirrorSearchDepth, root, envProviderMirror)
}

// tfRunner runs the terraform binary offline: a CLI configuration that
// installs hashicorp/aws only from the mirror, a plugin cache in the test's
// temporary directory, no AWS configuration from the machine.
type tfRunner struct {
	bin string
	env []string
}

// newTFRunner skips t when terraform or the provider mirror is missing.
func newTFRunner(t *testing.T) *tfRunner {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the real Terraform provider takes minutes")
	}
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform not on PATH: install Terraform (>= 1.5) to run the real-provider tests")
	}
	mirror, err := findProviderMirror()
	if err != nil {
		t.Skipf("no hashicorp/aws provider mirror: %v", err)
	}
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "plugin-cache")
	if err := os.Mkdir(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	cli := filepath.Join(tmp, "terraform.rc")
	rc := fmt.Sprintf(`plugin_cache_dir = %q

provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
`, cache, mirror)
	if err := os.WriteFile(cli, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TF_") || (strings.HasPrefix(k, "AWS_") && k != "AWS_CA_BUNDLE") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"TF_CLI_CONFIG_FILE="+cli,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"CHECKPOINT_DISABLE=1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
	)
	t.Logf("terraform %s, hashicorp/aws from the mirror %s", bin, mirror)
	return &tfRunner{bin: bin, env: env}
}

// run runs terraform in dir and returns its standard output; a failure
// fails the test with both outputs.
func (r *tfRunner) run(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	out, err := r.try(t, dir, args...)
	if err != nil {
		t.Fatalf("terraform %s in %s: %v", strings.Join(args, " "), dir, err)
	}
	return out
}

// try runs terraform in dir; the error carries the exit status and the
// standard error.
func (r *tfRunner) try(t *testing.T, dir string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// -no-color goes after the (sub)command: "state list -no-color".
	n := 1
	if args[0] == "state" {
		n = 2
	}
	argv := append(slices.Clone(args[:n]), "-no-color")
	cmd := exec.CommandContext(ctx, r.bin, append(argv, args[n:]...)...)
	cmd.Dir = dir
	cmd.Env = r.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("terraform %s in %s: %s", strings.Join(args, " "), filepath.Base(dir), time.Since(start).Round(time.Second))
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%w\nstdout:\n%s\nstderr:\n%s", err, tail(stdout.String(), 4000), tail(stderr.String(), 4000))
	}
	if w := warnings(args[0], stdout.String()+stderr.String()); len(w) > 0 {
		return stdout.Bytes(), fmt.Errorf("warnings %q:\nstdout:\n%s\nstderr:\n%s", w, tail(stdout.String(), 4000), tail(stderr.String(), 4000))
	}
	return stdout.Bytes(), nil
}

// initLockWarning is what init says of every provider installed from a
// mirror: the lock file holds this platform's checksum only. It is about
// the machine, not the module.
const initLockWarning = "Incomplete lock file information for providers"

// warnings returns the summaries of the warnings in a command's output,
// but for the lock file warning of init.
func warnings(command, out string) []string {
	var w []string
	for line := range strings.Lines(out) {
		_, summary, ok := strings.Cut(line, "Warning: ")
		if !ok {
			continue
		}
		if summary = strings.TrimSpace(summary); command == "init" && summary == initLockWarning {
			continue
		}
		w = append(w, summary)
	}
	return w
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// copyModule copies the module (its .tf files, defaults.json and the
// examples) into a fresh directory, so that nothing Terraform writes lands
// in the repository, and returns the copy's root. The examples' source
// "../.." then names the copy.
func copyModule(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "terraform")
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && p != "examples" && filepath.Dir(p) != "examples" {
				return fs.SkipDir // testdata, .terraform
			}
			return os.MkdirAll(filepath.Join(dst, p), 0o755)
		}
		if !strings.HasSuffix(p, ".tf") && p != "defaults.json" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, p), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// validateOutput is the part of `terraform validate -json` the test reads.
type validateOutput struct {
	Valid        bool `json:"valid"`
	ErrorCount   int  `json:"error_count"`
	WarningCount int  `json:"warning_count"`
	Diagnostics  []struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
		Range    *struct {
			Filename string `json:"filename"`
			Start    struct {
				Line int `json:"line"`
			} `json:"start"`
		} `json:"range"`
	} `json:"diagnostics"`
}

// validate runs validate in dir (initialized) and fails on any error or
// warning.
func (r *tfRunner) validate(t *testing.T, dir string) {
	t.Helper()
	out, _ := r.try(t, dir, "validate", "-json")
	var v validateOutput
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("terraform validate -json in %s: %v\n%s", dir, err, out)
	}
	for _, d := range v.Diagnostics {
		where := ""
		if d.Range != nil {
			where = fmt.Sprintf("%s:%d: ", d.Range.Filename, d.Range.Start.Line)
		}
		t.Errorf("terraform validate in %s: %s%s: %s: %s", dir, where, d.Severity, d.Summary, d.Detail)
	}
	if !v.Valid || v.ErrorCount+v.WarningCount != 0 {
		t.Errorf("terraform validate in %s: valid %v, %d errors, %d warnings", dir, v.Valid, v.ErrorCount, v.WarningCount)
	}
}

// applyBudget is the time the apply of the complete example needs at most.
const applyBudget = 20 * time.Minute

// TestTerraformProvider runs the module through the real terraform binary
// and provider: formatting, init and validate of the module and of every
// example without a warning, then the complete example against moto_server:
// apply, an empty re-plan, a change of the static blocklist that touches
// only its own rules, and destroy.
func TestTerraformProvider(t *testing.T) {
	tf := newTFRunner(t)
	if out, err := tf.try(t, ".", "fmt", "-check", "-recursive", "-diff"); err != nil {
		t.Errorf("terraform fmt -check: %v\n%s", err, out)
	}

	root := copyModule(t)
	dirs := []string{root}
	for _, ex := range exampleDirs(t) {
		dirs = append(dirs, filepath.Join(root, ex))
	}
	// One init at a time (they share the plugin cache); each validate
	// waits mostly for the provider to start: in parallel.
	for _, dir := range dirs {
		tf.run(t, dir, "init", "-backend=false")
	}
	t.Run("validate", func(t *testing.T) {
		for _, dir := range dirs {
			t.Run(filepath.Base(dir), func(t *testing.T) {
				t.Parallel()
				tf.validate(t, dir)
			})
		}
	})
	if t.Failed() {
		return
	}
	// Apply, re-plan, change and destroy take minutes on a loaded machine.
	if dl, ok := t.Deadline(); ok && time.Until(dl) < applyBudget {
		t.Skipf("less than %s left before the test binary's deadline: not applying (go test -timeout 40m, as make test runs it)", applyBudget)
	}

	if !mototest.Available() {
		t.Skip("moto_server not on PATH: install moto[server] to apply the complete example")
	}
	// AWS-managed policies (AmazonSSMManagedInstanceCore, …) exist in moto
	// only with this set; the example attaches two.
	t.Setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
	srv := mototest.Start(t)
	applyComplete(t, tf, root, srv.URL)
}

// motoOverride points the example's provider at moto. With
// skip_requesting_account_id the provider builds ARNs without an account
// id (as some users configure it); the module must not depend on them.
func motoOverride(endpoint string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `provider "aws" {
  region                      = %q
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true

  endpoints {
`, mototest.Region)
	for _, svc := range []string{"cloudwatch", "ec2", "events", "iam", "lambda", "logs", "sns", "ssm", "sts"} {
		fmt.Fprintf(&b, "    %-10s = %q\n", svc, endpoint)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

func applyComplete(t *testing.T, tf *tfRunner, root, endpoint string) {
	dir := filepath.Join(root, "examples", "complete")
	// The module deploys ../dist/banshee-lambda-arm64.zip by default; moto
	// stores the package without running it.
	writeZip(t, filepath.Join(filepath.Dir(root), "dist", "banshee-lambda-arm64.zip"))
	if err := os.WriteFile(filepath.Join(dir, "moto_override.tf"), []byte(motoOverride(endpoint)), 0o644); err != nil {
		t.Fatal(err)
	}
	tf.run(t, dir, "apply", "-auto-approve")
	if out, err := tf.try(t, dir, "plan", "-detailed-exitcode"); err != nil {
		t.Fatalf("the re-plan after apply is not empty (exit 2 means changes): %v\n%s", err, tail(string(out), 4000))
	}

	st := readState(t, dir)
	ec2c := ec2.NewFromConfig(mototest.Config(endpoint))
	acl := st.defaultACL(t, ec2c)
	want := map[int32]string{50: "192.0.2.0/24", 51: "203.0.113.0/24", 52: "2001:db8:dead::/48"}
	if got := staticDenies(t, ec2c, acl); !mapsEqual(got, want) {
		t.Errorf("static denies in %s after apply: %v, want %v", acl, got, want)
	}
	st.checkDocumentARN(t)

	// Drop the first entry, add one: exactly one rule goes and one comes,
	// every other keeps its number.
	change := `module "banshee" {
  static_blocklist = {
    "203.0.113.0/24"     = 51
    "2001:db8:dead::/48" = 52
    "198.18.0.0/15"      = 53
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "blocklist_override.tf"), []byte(change), 0o644); err != nil {
		t.Fatal(err)
	}
	got := plannedChanges(t, tf.run(t, dir, "plan", "-json", "-out=blocklist.tfplan"))
	wantChanges := []string{
		`create module.banshee.aws_network_acl_rule.static_blocklist["0/198.18.0.0/15"]`,
		`delete module.banshee.aws_network_acl_rule.static_blocklist["0/192.0.2.0/24"]`,
	}
	if !slices.Equal(got, wantChanges) {
		t.Fatalf("changing the static blocklist plans\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(wantChanges, "\n  "))
	}
	tf.run(t, dir, "apply", "blocklist.tfplan")
	want = map[int32]string{51: "203.0.113.0/24", 52: "2001:db8:dead::/48", 53: "198.18.0.0/15"}
	if got := staticDenies(t, ec2c, acl); !mapsEqual(got, want) {
		t.Errorf("static denies in %s after the change: %v, want %v", acl, got, want)
	}

	tf.run(t, dir, "destroy", "-auto-approve")
	if left := readState(t, dir).Resources; len(left) != 0 {
		t.Errorf("%d resources left in the state after destroy, the first %s.%s", len(left), left[0].Type, left[0].Name)
	}
}

// plannedChanges reads the machine-readable output of `terraform plan
// -json` and returns "ACTION ADDRESS" of every planned change, sorted.
func plannedChanges(t *testing.T, out []byte) []string {
	t.Helper()
	var got []string
	for line := range bytes.Lines(out) {
		var msg struct {
			Type   string `json:"type"`
			Change struct {
				Resource struct {
					Addr string `json:"addr"`
				} `json:"resource"`
				Action string `json:"action"`
			} `json:"change"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			t.Fatalf("terraform plan -json: %v: %s", err, line)
		}
		if msg.Type == "planned_change" {
			got = append(got, msg.Change.Action+" "+msg.Change.Resource.Addr)
		}
	}
	sort.Strings(got)
	return got
}

// tfState is the part of a local terraform.tfstate the test reads (read
// from the file: a command would start the provider once more).
type tfState struct {
	Resources []struct {
		Module    string `json:"module"`
		Mode      string `json:"mode"`
		Type      string `json:"type"`
		Name      string `json:"name"`
		Instances []struct {
			IndexKey   any            `json:"index_key"`
			Attributes map[string]any `json:"attributes"`
		} `json:"instances"`
	} `json:"resources"`
	Outputs map[string]struct {
		Value any `json:"value"`
	} `json:"outputs"`
}

func readState(t *testing.T, dir string) tfState {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	var st tfState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("terraform.tfstate: %v", err)
	}
	return st
}

// attribute returns an attribute of the first instance of a resource of
// module.banshee.
func (st tfState) attribute(t *testing.T, mode, typ, name, attr string) string {
	t.Helper()
	for _, r := range st.Resources {
		if r.Module == "module.banshee" && r.Mode == mode && r.Type == typ && r.Name == name && len(r.Instances) > 0 {
			if v, ok := r.Instances[0].Attributes[attr].(string); ok {
				return v
			}
		}
	}
	t.Fatalf("no %s %s.%s with a string attribute %s in module.banshee's state", mode, typ, name, attr)
	return ""
}

// defaultACL returns the network ACL of the static blocklist, which the
// example makes its VPC's default ACL.
func (st tfState) defaultACL(t *testing.T, ec2c *ec2.Client) string {
	t.Helper()
	id := st.attribute(t, "managed", "aws_network_acl_rule", "static_blocklist", "network_acl_id")
	out, err := ec2c.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{id}})
	if err != nil || len(out.NetworkAcls) != 1 || !aws.ToBool(out.NetworkAcls[0].IsDefault) {
		t.Fatalf("the static blocklist's network ACL %s is not the VPC's default ACL: %v", id, err)
	}
	return id
}

// checkDocumentARN checks that the function may run its document by an
// ARN with the account in it, although the provider (with
// skip_requesting_account_id) builds the document's own ARN without one.
func (st tfState) checkDocumentARN(t *testing.T) {
	t.Helper()
	account := st.attribute(t, "data", "aws_caller_identity", "current", "account_id")
	policy := st.attribute(t, "data", "aws_iam_policy_document", "function", "json")
	want := fmt.Sprintf("arn:aws:ssm:%s:%s:document/banshee-complete-host-block", mototest.Region, account)
	if account == "" || !strings.Contains(policy, `"`+want+`"`) {
		t.Errorf("the function's policy does not name the document as %s:\n%s", want, tail(policy, 3000))
	}
	t.Logf("the provider's own document ARN: %s", st.attribute(t, "managed", "aws_ssm_document", "host_block", "arn"))
}

// writeZip writes a deployment package holding a placeholder bootstrap.
func writeZip(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, CreatorVersion: 3 << 8, ExternalAttrs: 0o755 << 16})
	if err == nil {
		_, err = w.Write([]byte("#!/bin/sh\nexit 1\n"))
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = os.WriteFile(path, buf.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// staticDenies returns the inbound deny entries of acl below 100, by rule
// number.
func staticDenies(t *testing.T, ec2c *ec2.Client, acl string) map[int32]string {
	t.Helper()
	out, err := ec2c.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{acl}})
	if err != nil || len(out.NetworkAcls) != 1 {
		t.Fatalf("DescribeNetworkAcls %s: %v", acl, err)
	}
	got := map[int32]string{}
	for _, e := range out.NetworkAcls[0].Entries {
		if aws.ToBool(e.Egress) || e.RuleAction != "deny" || aws.ToInt32(e.RuleNumber) >= 100 {
			continue
		}
		got[aws.ToInt32(e.RuleNumber)] = aws.ToString(e.CidrBlock) + aws.ToString(e.Ipv6CidrBlock)
	}
	return got
}

func mapsEqual(a, b map[int32]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
