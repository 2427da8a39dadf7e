package terraform

import (
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// evaluator evaluates a module's expressions that depend only on variables,
// locals, path.* and files: enough for validations, preconditions and the
// configuration the module writes. Resources and data sources are unknown
// values, never guesses.
type evaluator struct {
	m      *tfModule
	vars   map[string]cty.Value
	locals map[string]cty.Value
	busy   map[string]bool
	funcs  map[string]function.Function
}

// newEvaluator takes the variables' defaults, replaced by values (converted
// to the variables' types). A variable without default or value is unknown.
func (m *tfModule) newEvaluator(values map[string]cty.Value) (*evaluator, error) {
	e := &evaluator{
		m:      m,
		vars:   map[string]cty.Value{},
		locals: map[string]cty.Value{},
		busy:   map[string]bool{},
		funcs:  terraformFunctions(m.dir),
	}
	for name := range values {
		if _, ok := m.variables[name]; !ok {
			return nil, fmt.Errorf("value for undeclared variable %q", name)
		}
	}
	for name, b := range m.variables {
		if v, ok := values[name]; ok {
			cv, err := variableValue(b, v)
			if err != nil {
				return nil, err
			}
			e.vars[name] = cv
			continue
		}
		v, ok, err := variableDefault(b)
		if err != nil {
			return nil, err
		}
		if !ok {
			ty, _, err := variableType(b)
			if err != nil {
				return nil, err
			}
			v = cty.UnknownVal(ty)
		}
		e.vars[name] = v
	}
	return e, nil
}

// local evaluates local.<name>.
func (e *evaluator) local(name string) (cty.Value, error) {
	if v, ok := e.locals[name]; ok {
		return v, nil
	}
	a, ok := e.m.locals[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("no local %q", name)
	}
	if e.busy[name] {
		return cty.NilVal, fmt.Errorf("local %q depends on itself", name)
	}
	e.busy[name] = true
	defer delete(e.busy, name)
	v, err := e.eval(a.Expr)
	if err != nil {
		return cty.NilVal, fmt.Errorf("local.%s: %w", name, err)
	}
	e.locals[name] = v
	return v, nil
}

// eval evaluates an expression of the module.
func (e *evaluator) eval(expr hclsyntax.Expression) (cty.Value, error) {
	dir := e.m.dir
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"path": cty.ObjectVal(map[string]cty.Value{
				"module": cty.StringVal(dir),
				"root":   cty.StringVal(dir),
				"cwd":    cty.StringVal(dir),
			}),
		},
		Functions: e.funcs,
	}
	for _, tr := range expr.Variables() {
		switch root := tr.RootName(); root {
		case "var", "path":
		case "local":
			if _, err := e.local(attrName(tr, 1)); err != nil {
				return cty.NilVal, err
			}
		default:
			// Resources and data sources exist only in a plan: unknown, so
			// that whatever depends on them is unknown too, never guessed.
			ctx.Variables[root] = cty.DynamicVal
		}
	}
	ctx.Variables["var"] = cty.ObjectVal(e.vars)
	ctx.Variables["local"] = cty.ObjectVal(e.locals)
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("%s", diags.Error())
	}
	return v, nil
}

// evalBool evaluates a condition; it must be a known, non-null bool.
func (e *evaluator) evalBool(expr hclsyntax.Expression) (bool, error) {
	v, err := e.eval(expr)
	if err != nil {
		return false, err
	}
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.Bool {
		return false, fmt.Errorf("%s: condition is %#v, not a known bool", expr.Range(), v)
	}
	return v.True(), nil
}

// terraformFunctions implements the Terraform functions this module's
// evaluated expressions use, with Terraform's semantics. A function missing
// here fails the evaluation with "no function named ..."; add it rather than
// work around it.
func terraformFunctions(dir string) map[string]function.Function {
	return map[string]function.Function{
		"abs":         stdlib.AbsoluteFunc,
		"alltrue":     boolListFunc(true),
		"anytrue":     boolListFunc(false),
		"can":         tryfunc.CanFunc,
		"ceil":        stdlib.CeilFunc,
		"cidrhost":    cidrHostFunc,
		"coalesce":    stdlib.CoalesceFunc,
		"compact":     stdlib.CompactFunc,
		"concat":      stdlib.ConcatFunc,
		"contains":    stdlib.ContainsFunc,
		"distinct":    stdlib.DistinctFunc,
		"endswith":    stringPredicateFunc(strings.HasSuffix),
		"file":        fileFunc(dir),
		"flatten":     stdlib.FlattenFunc,
		"floor":       stdlib.FloorFunc,
		"format":      stdlib.FormatFunc,
		"join":        stdlib.JoinFunc,
		"jsondecode":  stdlib.JSONDecodeFunc,
		"jsonencode":  stdlib.JSONEncodeFunc,
		"keys":        stdlib.KeysFunc,
		"length":      lengthFunc,
		"lookup":      stdlib.LookupFunc,
		"lower":       stdlib.LowerFunc,
		"max":         stdlib.MaxFunc,
		"merge":       stdlib.MergeFunc,
		"min":         stdlib.MinFunc,
		"range":       stdlib.RangeFunc,
		"regex":       stdlib.RegexFunc,
		"split":       stdlib.SplitFunc,
		"startswith":  stringPredicateFunc(strings.HasPrefix),
		"strcontains": stringPredicateFunc(strings.Contains),
		"tolist":      stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tonumber":    stdlib.MakeToFunc(cty.Number),
		"toset":       stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":    stdlib.MakeToFunc(cty.String),
		"try":         tryfunc.TryFunc,
		"upper":       stdlib.UpperFunc,
		"values":      stdlib.ValuesFunc,
	}
}

// boolListFunc is alltrue (all) or anytrue (!all).
func boolListFunc(all bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			list := args[0]
			if !list.IsWhollyKnown() {
				return cty.UnknownVal(cty.Bool), nil
			}
			for it := list.ElementIterator(); it.Next(); {
				_, v := it.Element()
				truth := !v.IsNull() && v.True()
				if all && !truth {
					return cty.False, nil
				}
				if !all && truth {
					return cty.True, nil
				}
			}
			return cty.BoolVal(all), nil
		},
	})
}

// stringPredicateFunc is strcontains, startswith or endswith.
func stringPredicateFunc(pred func(s, sub string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "substr", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(pred(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

// lengthFunc is Terraform's length: collections and strings.
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		switch {
		case v.Type() == cty.String:
			return stdlib.Strlen(v)
		case v.Type().IsListType(), v.Type().IsSetType(), v.Type().IsMapType(), v.Type().IsTupleType(), v.Type().IsObjectType():
			return v.Length(), nil
		case !v.IsKnown():
			return cty.UnknownVal(cty.Number), nil
		default:
			return cty.NilVal, fmt.Errorf("argument must be a string, a collection type, or a structural type")
		}
	},
})

// fileFunc is Terraform's file: a UTF-8 file's contents, relative paths
// from the module directory.
func fileFunc(dir string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return cty.NilVal, fmt.Errorf("reading %s: %w", p, err)
			}
			if !utf8.Valid(data) {
				return cty.NilVal, fmt.Errorf("%s is not valid UTF-8", p)
			}
			return cty.StringVal(string(data)), nil
		},
	})
}

// cidrHostFunc is Terraform's cidrhost: the address at hostnum within the
// prefix (negative counts from the end), as net.IP prints it.
var cidrHostFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "prefix", Type: cty.String}, {Name: "hostnum", Type: cty.Number}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := netip.ParsePrefix(args[0].AsString())
		if err != nil || p.Addr().Zone() != "" {
			return cty.NilVal, fmt.Errorf("invalid CIDR expression: %q", args[0].AsString())
		}
		hostnum, acc := args[1].AsBigFloat().Int(nil)
		if acc != big.Exact {
			return cty.NilVal, fmt.Errorf("hostnum must be a whole number")
		}
		hostBits := p.Addr().BitLen() - p.Bits()
		size := new(big.Int).Lsh(big.NewInt(1), uint(hostBits))
		if hostnum.Sign() < 0 {
			hostnum.Add(hostnum, size)
		}
		if hostnum.Sign() < 0 || hostnum.Cmp(size) >= 0 {
			return cty.NilVal, fmt.Errorf("prefix of %d bits cannot accommodate a host numbered %s", p.Bits(), args[1].AsBigFloat().String())
		}
		base := p.Masked().Addr().AsSlice()
		n := new(big.Int).SetBytes(base)
		n.Add(n, hostnum)
		out := n.FillBytes(make([]byte, len(base)))
		addr, _ := netip.AddrFromSlice(out)
		if addr.Is6() && addr.Is4In6() {
			// net.IP prints v4-mapped addresses in dotted form.
			return cty.StringVal(addr.Unmap().String()), nil
		}
		return cty.StringVal(addr.String()), nil
	},
})
