package terraform

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

const (
	docsBegin = "<!-- BEGIN_TF_DOCS -->"
	docsEnd   = "<!-- END_TF_DOCS -->"
)

// sourceText returns the source of a range, on one line.
func (m *tfModule) sourceText(r hcl.Range) string {
	for _, f := range m.files {
		if f.path == r.Filename {
			return strings.Join(strings.Fields(string(f.src[r.Start.Byte:r.End.Byte])), " ")
		}
	}
	return ""
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

// docsTables renders the inputs and outputs tables of the module, as
// terraform-docs would.
func docsTables(t *testing.T, m *tfModule) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("## Inputs\n\n| Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n")
	var required, optional []string
	for _, name := range sortedKeys(m.variables) {
		if _, ok := m.variables[name].Body.Attributes["default"]; ok {
			optional = append(optional, name)
		} else {
			required = append(required, name)
		}
	}
	for _, name := range append(required, optional...) {
		v := m.variables[name]
		def, req := "n/a", "yes"
		if a, ok := v.Body.Attributes["default"]; ok {
			def, req = "`"+m.sourceText(a.Expr.Range())+"`", "no"
		}
		typ := m.sourceText(v.Body.Attributes["type"].Expr.Range())
		fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s |\n", "`"+name+"`", cell(attrString(t, v, "description")), cell(typ), cell(def), req)
	}
	b.WriteString("\n## Outputs\n\n| Name | Description |\n|------|-------------|\n")
	for _, name := range sortedKeys(m.outputs) {
		fmt.Fprintf(&b, "| `%s` | %s |\n", name, cell(attrString(t, m.outputs[name], "description")))
	}
	return b.String()
}

func TestReadmeDocumentsInputsOutputsAndEnvironment(t *testing.T) {
	m := loadModule(t, ".")
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	begin := bytes.Index(readme, []byte(docsBegin))
	end := bytes.Index(readme, []byte(docsEnd))
	if begin < 0 || end < begin {
		t.Fatalf("README.md lacks the %s ... %s section", docsBegin, docsEnd)
	}
	want := docsBegin + "\n" + docsTables(t, m) + docsEnd
	got := string(readme[begin : end+len(docsEnd)])
	if *update && got != want {
		out := append(append(append([]byte{}, readme[:begin]...), want...), readme[end+len(docsEnd):]...)
		if err := os.WriteFile("README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		got = want
	}
	if got != want {
		t.Errorf("README.md's tables are out of date (run go test ./terraform -run TestReadme -update): %s", firstDiff([]byte(got), []byte(want)))
	}

	// Every environment variable the function gets is documented.
	for _, key := range functionEnvironment(t, m) {
		if !bytes.Contains(readme[:begin], []byte("`"+key+"`")) {
			t.Errorf("README.md does not document the function's environment variable %s", key)
		}
	}
}

// functionEnvironment returns the names of the environment variables the
// module gives the function, sorted.
func functionEnvironment(t *testing.T, m *tfModule) []string {
	t.Helper()
	env, ok := m.locals["function_environment"]
	if !ok {
		t.Fatal("no local.function_environment")
	}
	obj, isObj := env.Expr.(*hclsyntax.ObjectConsExpr)
	if !isObj {
		t.Fatalf("%s: local.function_environment must be an object constructor", env.SrcRange)
	}
	var keys []string
	for _, kv := range obj.ExprMap() {
		key := hcl.ExprAsKeyword(kv.Key)
		if key == "" {
			t.Errorf("%s: environment variable names must be plain keys", kv.Key.Range())
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		t.Fatal("local.function_environment has no keys; the parser is broken")
	}
	sort.Strings(keys)
	return keys
}
