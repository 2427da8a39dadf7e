package terraform

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

var update = flag.Bool("update", false, "rewrite generated files (defaults.json, the README's tables) instead of comparing")

// exampleDirs lists the module's examples.
func exampleDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 2 {
		t.Fatalf("want examples/complete and examples/existing-vpc, found %v", dirs)
	}
	return dirs
}

func TestTerraformFilesParseAndAreFormatted(t *testing.T) {
	var paths []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".tf") || strings.HasSuffix(p, ".tfvars")) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 12 {
		t.Fatalf("found only %d Terraform files: %v", len(paths), paths)
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos); len(diags) > 0 {
			t.Errorf("%s: %s", p, diags.Error())
			continue
		}
		if formatted := hclwrite.Format(src); !bytes.Equal(formatted, src) {
			t.Errorf("%s is not formatted as hclwrite.Format (terraform fmt) formats it; first difference: %s", p, firstDiff(src, formatted))
		}
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gl, wl)
		}
	}
	return "none"
}

// errorMessageRE is the form Terraform has long required of a validation's
// error_message: a sentence, capitalized, ending with a period or question mark.
var errorMessageRE = regexp.MustCompile(`^[A-Z].*[.?]$`)

// unvalidated lists the variables that need no validation block, and why.
var unvalidated = map[string]string{
	"tags": "any map of strings is a valid tag set for the provider to check",
}

func TestVariablesAreTypedDescribedAndValidated(t *testing.T) {
	m := loadModule(t, ".")
	used := map[string]bool{}
	m.walkReferences(func(tr hcl.Traversal, sc walkScope) {
		if tr.RootName() == "var" && sc.onlyVar == "" {
			used[attrName(tr, 1)] = true
		}
	})
	for _, name := range sortedKeys(m.variables) {
		b := m.variables[name]
		if desc := attrString(t, b, "description"); len(desc) < 20 || !strings.HasSuffix(desc, ".") {
			t.Errorf("%s: variable %q needs a description of at least one sentence, got %q", b.DefRange(), name, desc)
		}
		ty, _, err := variableType(b)
		if err != nil {
			t.Errorf("%s: %v", b.DefRange(), err)
			continue
		}
		if _, _, err := variableDefault(b); err != nil {
			t.Errorf("%s: %v", b.DefRange(), err)
		}
		var validations int
		for _, vb := range b.Body.Blocks {
			if vb.Type != "validation" {
				continue
			}
			validations++
			if _, ok := vb.Body.Attributes["condition"]; !ok {
				t.Errorf("%s: validation without condition", vb.DefRange())
			}
			if msg := attrString(t, vb, "error_message"); !errorMessageRE.MatchString(msg) {
				t.Errorf("%s: error_message %q must be a sentence starting with a capital and ending with . or ?", vb.DefRange(), msg)
			}
		}
		_, exempt := unvalidated[name]
		if validations == 0 && ty != cty.Bool && !exempt {
			t.Errorf("%s: variable %q of type %s has no validation: add one, or list it in unvalidated with the reason", b.DefRange(), name, ty.FriendlyName())
		}
		if !used[name] {
			t.Errorf("%s: variable %q is declared but never used", b.DefRange(), name)
		}
	}
}

func TestModuleReferencesResolve(t *testing.T) {
	m := loadModule(t, ".")
	if len(m.modules) > 0 {
		t.Errorf("the module calls modules %v; keep it flat", sortedKeys(m.modules))
	}
	checkReferences(t, m, nil)

	usedLocals := map[string]bool{}
	m.walkReferences(func(tr hcl.Traversal, _ walkScope) {
		if tr.RootName() == "local" {
			usedLocals[attrName(tr, 1)] = true
		}
	})
	for _, name := range sortedKeys(m.locals) {
		if !usedLocals[name] {
			t.Errorf("%s: local %q is never used", m.locals[name].SrcRange, name)
		}
	}
	for _, name := range sortedKeys(m.outputs) {
		b := m.outputs[name]
		if desc := attrString(t, b, "description"); !strings.HasSuffix(desc, ".") && !strings.HasSuffix(desc, ")") {
			t.Errorf("%s: output %q needs a description sentence, got %q", b.DefRange(), name, desc)
		}
		if _, ok := b.Body.Attributes["value"]; !ok {
			t.Errorf("%s: output %q has no value", b.DefRange(), name)
		}
	}
}

// checkReferences fails the test for every reference of m that does not
// resolve inside m.
func checkReferences(t *testing.T, m *tfModule, child func(string) *tfModule) {
	t.Helper()
	errs, n := referenceErrors(m, child)
	for _, e := range errs {
		t.Error(e)
	}
	if n == 0 {
		t.Errorf("%s: no references at all; the walker is broken", m.dir)
	}
}

// referenceErrors returns a message per unresolved reference of m, and the
// number of references seen.
func referenceErrors(m *tfModule, child func(string) *tfModule) ([]string, int) {
	var errs []string
	var n int
	m.walkReferences(func(tr hcl.Traversal, sc walkScope) {
		n++
		if why := m.resolve(tr, sc, child); why != "" {
			errs = append(errs, fmt.Sprintf("%s: %s", tr.SourceRange(), why))
		}
	})
	sort.Strings(errs)
	return errs, n
}

func TestReferenceCheckerFindsBrokenReferences(t *testing.T) {
	broken := loadModule(t, filepath.Join("testdata", "broken"))
	module := loadModule(t, ".")
	errs, _ := referenceErrors(broken, func(name string) *tfModule {
		if name == "banshee" {
			return module
		}
		return nil
	})
	var got []string
	for _, e := range errs {
		_, msg, _ := strings.Cut(e, ": ")
		got = append(got, msg)
	}
	want := []string{
		"aws_s3_bucket.missing.arn: no such resource",
		"count.index: count.index outside a block with count",
		"data.aws_region.missing.name: no such data source",
		"each.value: each.key/each.value outside a block with for_each",
		"local.missing: no such local",
		"module.banshee.no_such_output: module \"banshee\" has no output \"no_such_output\"",
		"module.other.x: no such module",
		"path.nowhere: path has only module, root and cwd",
		"rule.value: no such resource",
		"var.missing: no such variable",
		"var.other: a validation may refer only to var.checked (Terraform < 1.9)",
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reference errors in testdata/broken:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// terraform15Functions are the built-in functions of Terraform 1.5, the
// oldest version the module supports.
var terraform15Functions = strings.Fields(`abs abspath alltrue anytrue base64decode base64encode base64gzip
base64sha256 base64sha512 basename bcrypt can ceil chomp chunklist cidrhost cidrnetmask cidrsubnet
cidrsubnets coalesce coalescelist compact concat contains csvdecode dirname distinct element endswith
file filebase64 filebase64sha256 filebase64sha512 fileexists filemd5 fileset filesha1 filesha256
filesha512 flatten floor format formatdate formatlist indent index join jsondecode jsonencode keys length
log lookup lower matchkeys max md5 merge min nonsensitive one parseint pathexpand plantimestamp pow
range regex regexall replace reverse rsadecrypt sensitive setintersection setproduct setsubtract
setunion sha1 sha256 sha512 signum slice sort split startswith strcontains strrev substr sum
templatefile textdecodebase64 textencodebase64 timeadd timecmp timestamp title tobool tolist tomap
tonumber toset tostring transpose trim trimprefix trimspace trimsuffix try upper urlencode uuid uuidv5
values yamldecode yamlencode zipmap`)

func TestOnlyTerraform15Functions(t *testing.T) {
	known := map[string]bool{}
	for _, f := range terraform15Functions {
		known[f] = true
	}
	dirs := append([]string{"."}, exampleDirs(t)...)
	var calls int
	for _, dir := range dirs {
		m := loadModule(t, dir)
		// Type constraints (list(string), object({...})) are not calls.
		var typeRanges []hcl.Range
		for _, b := range m.variables {
			if a, ok := b.Body.Attributes["type"]; ok {
				typeRanges = append(typeRanges, a.Expr.Range())
			}
		}
		inType := func(r hcl.Range) bool {
			for _, tr := range typeRanges {
				if tr.Filename == r.Filename && tr.ContainsOffset(r.Start.Byte) {
					return true
				}
			}
			return false
		}
		for _, f := range m.files {
			hclsyntax.VisitAll(f.body, func(n hclsyntax.Node) hcl.Diagnostics {
				call, ok := n.(*hclsyntax.FunctionCallExpr)
				if !ok || inType(call.Range()) {
					return nil
				}
				calls++
				if !known[call.Name] {
					t.Errorf("%s: %s() is not a Terraform 1.5 function", call.NameRange, call.Name)
				}
				return nil
			})
		}
	}
	if calls == 0 {
		t.Fatal("no function calls found; the walker is broken")
	}
}

func TestExamplesUseOnlyDeclaredVariables(t *testing.T) {
	module := loadModule(t, ".")
	for _, dir := range exampleDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ex := loadModule(t, dir)
			children := map[string]*tfModule{}
			var calls int
			for _, name := range sortedKeys(ex.modules) {
				b := ex.modules[name]
				src := attrString(t, b, "source")
				if filepath.Clean(filepath.Join(dir, src)) != "." {
					continue
				}
				calls++
				children[name] = module
				for arg, a := range b.Body.Attributes {
					switch arg {
					case "source", "version", "providers", "count", "for_each", "depends_on":
						continue
					}
					if _, ok := module.variables[arg]; !ok {
						t.Errorf("%s: module %q sets %q, which the module does not declare", a.SrcRange, name, arg)
					}
				}
				for _, v := range sortedKeys(module.variables) {
					if _, has := module.variables[v].Body.Attributes["default"]; has {
						continue
					}
					if _, ok := b.Body.Attributes[v]; !ok {
						t.Errorf("%s: module %q does not set the required variable %q", b.DefRange(), name, v)
					}
				}
			}
			if calls == 0 {
				t.Fatalf("%s calls no module with source ../.. (the banshee module)", dir)
			}
			checkReferences(t, ex, func(name string) *tfModule { return children[name] })
			for _, name := range sortedKeys(ex.variables) {
				b := ex.variables[name]
				if _, _, err := variableType(b); err != nil {
					t.Errorf("%s: %v", b.DefRange(), err)
				}
				if attrString(t, b, "description") == "" {
					t.Errorf("%s: variable %q has no description", b.DefRange(), name)
				}
			}
			if _, ok := ex.providers["aws"]; !ok {
				t.Errorf("%s configures no aws provider", dir)
			}
			var pinned bool
			for _, f := range ex.files {
				for _, b := range f.body.Blocks {
					if b.Type == "terraform" {
						_, pinned = b.Body.Attributes["required_version"]
					}
				}
			}
			if !pinned {
				t.Errorf("%s has no terraform { required_version = ... }", dir)
			}
		})
	}
}

func TestExamplesHaveNoCommentedOutCode(t *testing.T) {
	// A commented-out argument or block is a toggle the reader must guess at.
	code := regexp.MustCompile(`^\s*(#|//)\s*([a-z_]+\s*=\s*\S|(resource|module|data|variable|output)\s+")`)
	for _, dir := range exampleDirs(t) {
		m := loadModule(t, dir)
		for _, f := range m.files {
			for i, line := range strings.Split(string(f.src), "\n") {
				if code.MatchString(line) {
					t.Errorf("%s:%d: commented-out code: %q", f.path, i+1, line)
				}
			}
		}
	}
}

func TestVersionsArePinned(t *testing.T) {
	m := loadModule(t, ".")
	var found bool
	for _, f := range m.files {
		for _, b := range f.body.Blocks {
			if b.Type != "terraform" {
				continue
			}
			found = true
			if got := attrString(t, b, "required_version"); got != ">= 1.5.0" {
				t.Errorf("required_version = %q, want >= 1.5.0", got)
			}
			var aws bool
			for _, rb := range b.Body.Blocks {
				if rb.Type != "required_providers" {
					continue
				}
				a, ok := rb.Body.Attributes["aws"]
				if !ok {
					continue
				}
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("required_providers.aws: %s", diags.Error())
				}
				aws = true
				if src := v.GetAttr("source").AsString(); src != "hashicorp/aws" {
					t.Errorf("aws provider source %q", src)
				}
				if ver := v.GetAttr("version").AsString(); !strings.HasPrefix(ver, ">= 5.") || !strings.Contains(ver, "<") {
					t.Errorf("aws provider version %q: want >= 5.x with an upper bound", ver)
				}
			}
			if !aws {
				t.Error("no required_providers.aws")
			}
		}
	}
	if !found {
		t.Fatal("no terraform block (versions.tf)")
	}
}
