package terraform

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// envNameRE matches the names of banshee's environment variables.
var envNameRE = regexp.MustCompile(`^BANSHEE_[A-Z0-9_]+$`)

// lambdaEnvironment returns the BANSHEE_* string constants in the
// function's own non-test Go code (everything under cmd/banshee-lambda).
func lambdaEnvironment(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, lambdaPackage), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envNameRE.MatchString(s) {
					seen[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	names := make([]string, 0, len(seen))
	for s := range seen {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

func TestFunctionEnvironmentMatchesTheCode(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	read := lambdaEnvironment(t, root)
	if len(read) == 0 {
		t.Skipf("%s names no BANSHEE_* variable yet", lambdaPackage)
	}
	set := functionEnvironment(t, loadModule(t, "."))
	if strings.Join(set, " ") != strings.Join(read, " ") {
		t.Errorf("the module sets %v (locals.tf, function_environment); the function's code reads %v", set, read)
	}
}
