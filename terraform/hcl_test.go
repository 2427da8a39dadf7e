package terraform

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// tfFile is one parsed .tf file.
type tfFile struct {
	path string
	src  []byte
	body *hclsyntax.Body
}

// tfModule is a Terraform module directory: its files and its declarations
// by kind ("type.name" for resources and data sources).
type tfModule struct {
	dir       string
	files     []*tfFile
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]*hclsyntax.Block
	data      map[string]*hclsyntax.Block
	modules   map[string]*hclsyntax.Block
	outputs   map[string]*hclsyntax.Block
	providers map[string]*hclsyntax.Block
}

// loadModule parses every .tf file of dir and indexes the declarations.
// Parse errors and duplicate declarations fail the test.
func loadModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		t.Fatalf("listing .tf files of %s: %v", dir, err)
	}
	if len(paths) == 0 {
		t.Fatalf("no .tf files in %s", dir)
	}
	m := &tfModule{
		dir:       dir,
		variables: map[string]*hclsyntax.Block{},
		locals:    map[string]*hclsyntax.Attribute{},
		resources: map[string]*hclsyntax.Block{},
		data:      map[string]*hclsyntax.Block{},
		modules:   map[string]*hclsyntax.Block{},
		outputs:   map[string]*hclsyntax.Block{},
		providers: map[string]*hclsyntax.Block{},
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() || len(diags) > 0 {
			t.Errorf("parsing %s: %s", p, diags.Error())
			continue
		}
		body := f.Body.(*hclsyntax.Body)
		m.files = append(m.files, &tfFile{path: p, src: src, body: body})
		if len(body.Attributes) > 0 {
			for name, a := range body.Attributes {
				t.Errorf("%s: top-level attribute %q: Terraform files hold only blocks", a.SrcRange, name)
			}
		}
		for _, b := range body.Blocks {
			add := func(idx map[string]*hclsyntax.Block, key string) {
				if prev, dup := idx[key]; dup {
					t.Errorf("%s: %s %q declared again (first at %s)", b.DefRange(), b.Type, key, prev.DefRange())
					return
				}
				idx[key] = b
			}
			switch b.Type {
			case "variable":
				add(m.variables, b.Labels[0])
			case "output":
				add(m.outputs, b.Labels[0])
			case "module":
				add(m.modules, b.Labels[0])
			case "resource":
				add(m.resources, b.Labels[0]+"."+b.Labels[1])
			case "data":
				add(m.data, b.Labels[0]+"."+b.Labels[1])
			case "provider":
				alias := b.Labels[0]
				if a, ok := b.Body.Attributes["alias"]; ok {
					v, _ := a.Expr.Value(nil)
					if v.Type() == cty.String {
						alias += "." + v.AsString()
					}
				}
				add(m.providers, alias)
			case "locals":
				for name, a := range b.Body.Attributes {
					if prev, dup := m.locals[name]; dup {
						t.Errorf("%s: local %q declared again (first at %s)", a.SrcRange, name, prev.SrcRange)
						continue
					}
					m.locals[name] = a
				}
			case "terraform", "check", "moved", "import":
			default:
				t.Errorf("%s: unknown top-level block %q", b.DefRange(), b.Type)
			}
		}
	}
	return m
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// attrString evaluates a constant string attribute of a block ("" when absent).
func attrString(t *testing.T, b *hclsyntax.Block, name string) string {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
		t.Errorf("%s: %s must be a constant string", a.SrcRange, name)
		return ""
	}
	return v.AsString()
}

// variableType returns the type constraint and the optional-attribute
// defaults of a variable block.
func variableType(b *hclsyntax.Block) (cty.Type, *typeexpr.Defaults, error) {
	a, ok := b.Body.Attributes["type"]
	if !ok {
		return cty.NilType, nil, fmt.Errorf("variable %q has no type", b.Labels[0])
	}
	ty, defs, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
	if diags.HasErrors() {
		return cty.NilType, nil, fmt.Errorf("variable %q: type: %s", b.Labels[0], diags.Error())
	}
	return ty, defs, nil
}

// variableValue converts v to the variable's type as Terraform does
// (optional attribute defaults first).
func variableValue(b *hclsyntax.Block, v cty.Value) (cty.Value, error) {
	ty, defs, err := variableType(b)
	if err != nil {
		return cty.NilVal, err
	}
	if defs != nil {
		v = defs.Apply(v)
	}
	out, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("variable %q: value does not conform to its type: %w", b.Labels[0], err)
	}
	return out, nil
}

// variableDefault returns the converted default of a variable and whether it
// has one. A default must be a constant.
func variableDefault(b *hclsyntax.Block) (cty.Value, bool, error) {
	a, ok := b.Body.Attributes["default"]
	if !ok {
		return cty.NilVal, false, nil
	}
	if vars := a.Expr.Variables(); len(vars) > 0 {
		return cty.NilVal, true, fmt.Errorf("variable %q: default refers to %s; defaults must be constants", b.Labels[0], traversalString(vars[0]))
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{Functions: terraformFunctions("")})
	if diags.HasErrors() {
		return cty.NilVal, true, fmt.Errorf("variable %q: default: %s", b.Labels[0], diags.Error())
	}
	v, err := variableValue(b, v)
	return v, true, err
}

// traversalString renders a traversal as Terraform source would spell it.
func traversalString(tr hcl.Traversal) string {
	var sb strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			sb.WriteString(s.Name)
		case hcl.TraverseAttr:
			sb.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String {
				fmt.Fprintf(&sb, "[%q]", s.Key.AsString())
			} else if s.Key.Type() == cty.Number {
				fmt.Fprintf(&sb, "[%s]", s.Key.AsBigFloat().String())
			} else {
				sb.WriteString("[?]")
			}
		case hcl.TraverseSplat:
			sb.WriteString("[*]")
		}
	}
	return sb.String()
}

// attrName returns the name of the i-th step of a traversal when it is an
// attribute access, or "".
func attrName(tr hcl.Traversal, i int) string {
	if i >= len(tr) {
		return ""
	}
	if a, ok := tr[i].(hcl.TraverseAttr); ok {
		return a.Name
	}
	return ""
}

// walkScope is what a reference may name at one place in a module, beyond
// the module's own declarations.
type walkScope struct {
	count     bool            // inside a block with count
	each      bool            // inside a block with for_each
	self      bool            // inside a postcondition, provisioner or connection
	iterators map[string]bool // dynamic block iterators in scope
	onlyVar   string          // inside a variable validation: only var.<this>
}

func (s walkScope) with(iter string) walkScope {
	its := map[string]bool{iter: true}
	for k := range s.iterators {
		its[k] = true
	}
	s.iterators = its
	return s
}

// refVisitor receives every reference of a module with the scope it is in.
type refVisitor func(tr hcl.Traversal, sc walkScope)

// walkReferences calls visit for every traversal of every expression of the
// module, with the scope Terraform evaluates it in. Type expressions,
// provider references and lifecycle.ignore_changes are not references.
func (m *tfModule) walkReferences(visit refVisitor) {
	for _, f := range m.files {
		for _, b := range f.body.Blocks {
			switch b.Type {
			case "terraform":
				// required_version and required_providers hold no references.
			case "variable":
				name := b.Labels[0]
				for an, a := range b.Body.Attributes {
					if an == "type" {
						continue
					}
					visitExpr(a.Expr, walkScope{}, visit)
				}
				for _, vb := range b.Body.Blocks {
					for _, a := range vb.Body.Attributes {
						visitExpr(a.Expr, walkScope{onlyVar: name}, visit)
					}
				}
			case "resource", "data", "module", "output", "locals", "provider", "check":
				sc := walkScope{}
				_, sc.count = b.Body.Attributes["count"]
				_, sc.each = b.Body.Attributes["for_each"]
				visitBody(b.Body, sc, visit, b.Type == "module")
			}
		}
	}
}

func visitBody(body *hclsyntax.Body, sc walkScope, visit refVisitor, isModule bool) {
	for name, a := range body.Attributes {
		switch {
		case name == "provider":
			continue
		case isModule && (name == "source" || name == "version" || name == "providers"):
			continue
		}
		visitExpr(a.Expr, sc, visit)
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "dynamic":
			iter := b.Labels[0]
			if a, ok := b.Body.Attributes["iterator"]; ok {
				iter = hcl.ExprAsKeyword(a.Expr)
			}
			if a, ok := b.Body.Attributes["for_each"]; ok {
				visitExpr(a.Expr, sc, visit)
			}
			inner := sc.with(iter)
			if a, ok := b.Body.Attributes["labels"]; ok {
				visitExpr(a.Expr, inner, visit)
			}
			for _, cb := range b.Body.Blocks {
				if cb.Type == "content" {
					visitBody(cb.Body, inner, visit, false)
				}
			}
		case "lifecycle":
			for name, a := range b.Body.Attributes {
				if name == "ignore_changes" {
					continue
				}
				visitExpr(a.Expr, sc, visit)
			}
			for _, cb := range b.Body.Blocks {
				inner := sc
				inner.self = cb.Type == "postcondition"
				visitBody(cb.Body, inner, visit, false)
			}
		case "provisioner", "connection":
			inner := sc
			inner.self = true
			visitBody(b.Body, inner, visit, false)
		case "postcondition":
			inner := sc
			inner.self = true
			visitBody(b.Body, inner, visit, false)
		default:
			visitBody(b.Body, sc, visit, false)
		}
	}
}

func visitExpr(expr hclsyntax.Expression, sc walkScope, visit refVisitor) {
	for _, tr := range expr.Variables() {
		visit(tr, sc)
	}
}

// resolve reports why a reference does not resolve inside the module, or "".
// child returns the module called by a module block, when it can be loaded.
func (m *tfModule) resolve(tr hcl.Traversal, sc walkScope, child func(name string) *tfModule) string {
	root := tr.RootName()
	ref := traversalString(tr)
	if sc.onlyVar != "" && !(root == "var" && attrName(tr, 1) == sc.onlyVar) {
		return fmt.Sprintf("%s: a validation may refer only to var.%s (Terraform < 1.9)", ref, sc.onlyVar)
	}
	switch root {
	case "var":
		if _, ok := m.variables[attrName(tr, 1)]; !ok {
			return ref + ": no such variable"
		}
	case "local":
		if _, ok := m.locals[attrName(tr, 1)]; !ok {
			return ref + ": no such local"
		}
	case "data":
		if _, ok := m.data[attrName(tr, 1)+"."+attrName(tr, 2)]; !ok {
			return ref + ": no such data source"
		}
	case "module":
		name := attrName(tr, 1)
		if _, ok := m.modules[name]; !ok {
			return ref + ": no such module"
		}
		if out := attrName(tr, 2); out != "" && child != nil {
			if c := child(name); c != nil {
				if _, ok := c.outputs[out]; !ok {
					return fmt.Sprintf("%s: module %q has no output %q", ref, name, out)
				}
			}
		}
	case "path":
		switch attrName(tr, 1) {
		case "module", "root", "cwd":
		default:
			return ref + ": path has only module, root and cwd"
		}
	case "terraform":
		if attrName(tr, 1) != "workspace" {
			return ref + ": terraform has only workspace"
		}
	case "count":
		if !sc.count || attrName(tr, 1) != "index" {
			return ref + ": count.index outside a block with count"
		}
	case "each":
		if !sc.each || (attrName(tr, 1) != "key" && attrName(tr, 1) != "value") {
			return ref + ": each.key/each.value outside a block with for_each"
		}
	case "self":
		if !sc.self {
			return ref + ": self outside a postcondition, provisioner or connection"
		}
	default:
		if sc.iterators[root] {
			return ""
		}
		if _, ok := m.resources[root+"."+attrName(tr, 1)]; !ok {
			return ref + ": no such resource"
		}
	}
	return ""
}
