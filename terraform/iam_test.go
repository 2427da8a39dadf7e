package terraform

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// sdkServicePrefix is the import path prefix of aws-sdk-go-v2's service
// clients.
const sdkServicePrefix = "github.com/aws/aws-sdk-go-v2/service/"

// iamPrefix maps an aws-sdk-go-v2 service package to its IAM action prefix.
// A service the function's code imports that is missing here fails the test:
// add it with the prefix the IAM Service Authorization Reference gives.
var iamPrefix = map[string]string{
	"ec2":            "ec2",
	"cloudwatch":     "cloudwatch",
	"cloudwatchlogs": "logs",
	"ssm":            "ssm",
}

// runtimeActions are granted for the Lambda runtime itself, not for a call
// in banshee's code.
var runtimeActions = map[string]string{
	"logs:CreateLogStream": "the Lambda runtime creates the function's log streams in its own log group",
	"logs:PutLogEvents":    "the Lambda runtime writes the function's logs to its own log group",
}

// lambdaPackage is the Lambda function's main package, relative to the
// repository root.
const lambdaPackage = "cmd/banshee-lambda"

// derivedActions maps an IAM action to the places in the code that use it.
type derivedActions map[string][]string

// deriveActions finds the AWS API actions the Go code of the packages at
// starts (directories under root) can call: it walks the package's imports
// within modulePath transitively, parses every non-test .go file, and
// collects each aws-sdk-go-v2 operation whose <Op>Input or <Op>Output type
// (or <Op>APIClient interface, or New<Op>Paginator) is referenced through a
// service package import.
func deriveActions(root, modulePath string, starts ...string) (derivedActions, []string, error) {
	actions := derivedActions{}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	var queue []string
	for _, s := range starts {
		queue = append(queue, filepath.ToSlash(s))
	}
	var pkgs []string
	for len(queue) > 0 {
		rel := queue[0]
		queue = queue[1:]
		if seen[rel] {
			continue
		}
		seen[rel] = true
		pkgs = append(pkgs, rel)
		dir := filepath.Join(root, filepath.FromSlash(rel))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("reading package %s: %w", rel, err)
		}
		var files int
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			files++
			path := filepath.Join(dir, name)
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing %s: %w", path, err)
			}
			services := map[string]string{} // local import name → IAM prefix
			for _, imp := range f.Imports {
				ipath, _ := strconv.Unquote(imp.Path.Value)
				if ipath == modulePath || strings.HasPrefix(ipath, modulePath+"/") {
					queue = append(queue, strings.TrimPrefix(strings.TrimPrefix(ipath, modulePath), "/"))
					continue
				}
				svc, ok := strings.CutPrefix(ipath, sdkServicePrefix)
				if !ok || strings.Contains(svc, "/") {
					continue // not a service client (types, internal, ...)
				}
				prefix, ok := iamPrefix[svc]
				if !ok {
					return nil, nil, fmt.Errorf("%s imports %s: add its IAM action prefix to iamPrefix", fset.Position(imp.Pos()), ipath)
				}
				local := svc
				if imp.Name != nil {
					local = imp.Name.Name
				}
				switch local {
				case "_":
					continue
				case ".":
					return nil, nil, fmt.Errorf("%s: dot import of %s hides which operations are used", fset.Position(imp.Pos()), ipath)
				}
				services[local] = prefix
			}
			if len(services) == 0 {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				id, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				prefix, ok := services[id.Name]
				if !ok {
					return true
				}
				if op := operationOf(sel.Sel.Name); op != "" {
					action := prefix + ":" + op
					pos := fset.Position(sel.Pos())
					rp, _ := filepath.Rel(root, pos.Filename)
					actions[action] = append(actions[action], fmt.Sprintf("%s:%d", filepath.ToSlash(rp), pos.Line))
				}
				return true
			})
		}
		if files == 0 {
			return nil, nil, fmt.Errorf("package %s has no non-test Go files", rel)
		}
	}
	sort.Strings(pkgs)
	return actions, pkgs, nil
}

// operationOf returns the operation an identifier of a service package
// names, or "".
func operationOf(name string) string {
	for _, suffix := range []string{"Input", "Output", "APIClient"} {
		if op, ok := strings.CutSuffix(name, suffix); ok && op != "" {
			return op
		}
	}
	if op, ok := strings.CutPrefix(name, "New"); ok {
		if op, ok := strings.CutSuffix(op, "Paginator"); ok && op != "" {
			return op
		}
	}
	return ""
}

// modulePath reads the module path from go.mod.
func modulePath(t *testing.T, gomod string) string {
	t.Helper()
	f, err := os.Open(gomod)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(p), `"`)
		}
	}
	t.Fatalf("%s has no module line", gomod)
	return ""
}

func TestDeriveActionsFixture(t *testing.T) {
	root := filepath.Join("testdata", "iamderive")
	got, pkgs, err := deriveActions(root, "github.com/banshee-project/banshee", lambdaPackage)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cloudwatch:DescribeAlarms",  // aliased import, Output type only
		"ec2:CreateNetworkAclEntry",  // composite literal in an imported package
		"ec2:DescribeNetworkAcls",    // paginator constructor
		"ec2:DescribeSecurityGroups", // consumer-side interface method
		"logs:DescribeMetricFilters", // <Op>APIClient interface
		"logs:FilterLogEvents",       // cloudwatchlogs maps to logs
		"ssm:SendCommand",            // two packages away from main
	}
	if g := sortedKeys(got); strings.Join(g, " ") != strings.Join(want, " ") {
		t.Errorf("derived %v\nwant    %v\n(ec2:TerminateInstances is only in a test file, ec2:DeleteVpc only in a package the function does not import)", g, want)
	}
	wantPkgs := []string{"awsnacl", "cmd/banshee-lambda", "hostfw/remote", "policy"}
	if strings.Join(pkgs, " ") != strings.Join(wantPkgs, " ") {
		t.Errorf("walked packages %v, want %v", pkgs, wantPkgs)
	}

	_, _, err = deriveActions(filepath.Join("testdata", "iamderive-unknown"), "github.com/banshee-project/banshee", lambdaPackage)
	if err == nil || !strings.Contains(err.Error(), "service/sts") {
		t.Errorf("a service without IAM prefix: err = %v, want one naming service/sts", err)
	}
}

// policyStatement is one statement of an aws_iam_policy_document, with the
// iterators of the dynamic block it came from.
type policyStatement struct {
	doc       string
	body      *hclsyntax.Body
	iterators map[string]hclsyntax.Expression // iterator name → for_each
	actions   []string
}

// policyStatements returns the statements of a policy document data source,
// static and dynamic, with their literal actions.
func policyStatements(t *testing.T, m *tfModule, doc string) []policyStatement {
	t.Helper()
	b, ok := m.data["aws_iam_policy_document."+doc]
	if !ok {
		t.Fatalf("no data.aws_iam_policy_document.%s", doc)
	}
	var out []policyStatement
	add := func(body *hclsyntax.Body, iters map[string]hclsyntax.Expression) {
		st := policyStatement{doc: doc, body: body, iterators: iters}
		for _, forbidden := range []string{"not_actions", "not_resources", "not_principals"} {
			if a, ok := body.Attributes[forbidden]; ok {
				t.Errorf("%s: %s grants by exclusion; list what is granted", a.SrcRange, forbidden)
			}
		}
		if a, ok := body.Attributes["effect"]; ok {
			if v, diags := a.Expr.Value(nil); diags.HasErrors() || v.AsString() != "Allow" {
				t.Errorf("%s: only Allow statements (a Deny here hides what is granted)", a.SrcRange)
			}
		}
		a, ok := body.Attributes["actions"]
		if !ok {
			t.Errorf("%s: statement without actions", body.SrcRange)
			return
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || !v.CanIterateElements() {
			t.Errorf("%s: actions must be a literal list of strings", a.SrcRange)
			return
		}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.Type() != cty.String {
				t.Errorf("%s: actions must be strings", a.SrcRange)
				continue
			}
			st.actions = append(st.actions, e.AsString())
		}
		out = append(out, st)
	}
	for _, sb := range b.Body.Blocks {
		switch {
		case sb.Type == "statement":
			add(sb.Body, nil)
		case sb.Type == "dynamic" && sb.Labels[0] == "statement":
			iter := "statement"
			if a, ok := sb.Body.Attributes["iterator"]; ok {
				iter = hcl.ExprAsKeyword(a.Expr)
			}
			fe := sb.Body.Attributes["for_each"]
			for _, cb := range sb.Body.Blocks {
				if cb.Type == "content" {
					add(cb.Body, map[string]hclsyntax.Expression{iter: fe.Expr})
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("data.aws_iam_policy_document.%s has no statements", doc)
	}
	return out
}

// lambdaPackages returns the packages to derive the function's actions
// from: its main package, or, until that exists, every package under it.
func lambdaPackages(root string) ([]string, error) {
	var pkgs []string
	err := filepath.WalkDir(filepath.Join(root, lambdaPackage), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		files, _ := filepath.Glob(filepath.Join(p, "*.go"))
		for _, f := range files {
			if !strings.HasSuffix(f, "_test.go") {
				rel, _ := filepath.Rel(root, p)
				pkgs = append(pkgs, filepath.ToSlash(rel))
				break
			}
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil, nil
	}
	if len(pkgs) > 0 && pkgs[0] == lambdaPackage {
		return pkgs[:1], err
	}
	return pkgs, err
}

func TestIAMPolicyGrantsExactlyWhatTheCodeCalls(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	starts, err := lambdaPackages(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(starts) == 0 {
		t.Skipf("%s has no Go code yet: nothing to derive the IAM actions from", lambdaPackage)
	}
	derived, pkgs, err := deriveActions(root, modulePath(t, filepath.Join(root, "go.mod")), starts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("packages of the function: %v", pkgs)

	want := map[string]string{}
	for action, where := range derived {
		want[action] = "called at " + strings.Join(where, ", ")
	}
	for action, why := range runtimeActions {
		if _, dup := want[action]; dup {
			t.Errorf("%s is both called by the code and listed in runtimeActions; drop it from runtimeActions", action)
		}
		want[action] = why
	}

	m := loadModule(t, ".")
	granted := map[string]bool{}
	for _, st := range policyStatements(t, m, "function") {
		for _, a := range st.actions {
			granted[a] = true
		}
	}
	missing, unused := iamMismatches(want, granted)
	for _, action := range missing {
		t.Errorf("missing permission %s (%s): grant it in iam.tf, scoped as tightly as AWS allows", action, want[action])
	}
	for _, action := range unused {
		t.Errorf("unused permission %s: nothing in the function's code (%v) calls it; remove it from iam.tf", action, pkgs)
	}
}

// iamMismatches returns the wanted actions that are not granted and the
// granted actions that are not wanted, each sorted.
func iamMismatches(want map[string]string, granted map[string]bool) (missing, unused []string) {
	for _, action := range sortedKeys(want) {
		if !granted[action] {
			missing = append(missing, action)
		}
	}
	for _, action := range sortedKeys(granted) {
		if _, ok := want[action]; !ok {
			unused = append(unused, action)
		}
	}
	return missing, unused
}

func TestIAMMismatchesBothDirections(t *testing.T) {
	want := map[string]string{"ec2:CreateNetworkAclEntry": "called", "ssm:SendCommand": "called"}
	granted := map[string]bool{"ssm:SendCommand": true, "ec2:DeleteVpc": true}
	missing, unused := iamMismatches(want, granted)
	if strings.Join(missing, " ") != "ec2:CreateNetworkAclEntry" || strings.Join(unused, " ") != "ec2:DeleteVpc" {
		t.Errorf("missing %v, unused %v; want [ec2:CreateNetworkAclEntry], [ec2:DeleteVpc]", missing, unused)
	}
	if m, u := iamMismatches(want, map[string]bool{"ec2:CreateNetworkAclEntry": true, "ssm:SendCommand": true}); len(m)+len(u) != 0 {
		t.Errorf("equal sets: missing %v, unused %v", m, u)
	}
}

// readOnlyPrefixes are the operation name prefixes of reads; every other
// action counts as mutating and must never apply to resource "*".
var readOnlyPrefixes = []string{"Describe", "Get", "List", "Filter"}

func isMutating(action string) bool {
	_, op, _ := strings.Cut(action, ":")
	for _, p := range readOnlyPrefixes {
		if strings.HasPrefix(op, p) {
			return false
		}
	}
	return true
}

// literalStrings collects the string constants an expression can produce,
// following locals, conditionals, tuples, for expressions, function
// arguments and dynamic block iterators.
func literalStrings(m *tfModule, expr hclsyntax.Expression, iters map[string]hclsyntax.Expression, seen map[string]bool) []string {
	var out []string
	switch e := expr.(type) {
	case *hclsyntax.TemplateExpr:
		if e.IsStringLiteral() {
			v, _ := e.Value(nil)
			return []string{v.AsString()}
		}
		for _, p := range e.Parts {
			out = append(out, literalStrings(m, p, iters, seen)...)
		}
	case *hclsyntax.LiteralValueExpr:
		if e.Val.Type() == cty.String {
			return []string{e.Val.AsString()}
		}
	case *hclsyntax.TemplateWrapExpr:
		return literalStrings(m, e.Wrapped, iters, seen)
	case *hclsyntax.TupleConsExpr:
		for _, x := range e.Exprs {
			out = append(out, literalStrings(m, x, iters, seen)...)
		}
	case *hclsyntax.ConditionalExpr:
		out = append(out, literalStrings(m, e.TrueResult, iters, seen)...)
		out = append(out, literalStrings(m, e.FalseResult, iters, seen)...)
	case *hclsyntax.ForExpr:
		out = append(out, literalStrings(m, e.ValExpr, iters, seen)...)
		out = append(out, literalStrings(m, e.CollExpr, iters, seen)...)
	case *hclsyntax.FunctionCallExpr:
		for _, x := range e.Args {
			out = append(out, literalStrings(m, x, iters, seen)...)
		}
	case *hclsyntax.ScopeTraversalExpr:
		root := e.Traversal.RootName()
		switch {
		case root == "local":
			name := attrName(e.Traversal, 1)
			if a, ok := m.locals[name]; ok && !seen[name] {
				seen[name] = true
				out = append(out, literalStrings(m, a.Expr, iters, seen)...)
			}
		case iters[root] != nil:
			out = append(out, literalStrings(m, iters[root], nil, seen)...)
		}
	}
	return out
}

func TestIAMPoliciesHaveNoWildcards(t *testing.T) {
	m := loadModule(t, ".")
	var docs []string
	for key := range m.data {
		if name, ok := strings.CutPrefix(key, "aws_iam_policy_document."); ok {
			docs = append(docs, name)
		}
	}
	sort.Strings(docs)
	if len(docs) < 3 {
		t.Fatalf("found policy documents %v; want at least the function's, its trust policy and the flow logs'", docs)
	}
	for _, doc := range docs {
		for _, st := range policyStatements(t, m, doc) {
			var mutating []string
			for _, a := range st.actions {
				if strings.Contains(a, "*") {
					t.Errorf("%s: data.aws_iam_policy_document.%s grants %q: name each action", st.body.SrcRange, doc, a)
				}
				if !strings.Contains(a, ":") {
					t.Errorf("%s: %q is not an IAM action (service:Operation)", st.body.SrcRange, a)
				}
				if isMutating(a) {
					mutating = append(mutating, a)
				}
			}
			ra, ok := st.body.Attributes["resources"]
			if !ok {
				continue // trust policies name principals, not resources
			}
			for _, lit := range literalStrings(m, ra.Expr, st.iterators, map[string]bool{}) {
				if lit == "*" && len(mutating) > 0 {
					t.Errorf("%s: data.aws_iam_policy_document.%s grants %v on resource \"*\"", ra.SrcRange, doc, mutating)
				}
			}
		}
	}
}

// scopeRule says how a sensitive action of the function must be scoped: its
// statement's resources must refer to one of refs, or the statement must
// carry a condition on one of conditions.
type scopeRule struct {
	refs       []string
	conditions []string
	why        string
}

var functionScopes = map[string]scopeRule{
	"ec2:CreateNetworkAclEntry":  {refs: []string{"local.managed_network_acl_arns"}, why: "entries only of the managed network ACLs"},
	"ec2:DeleteNetworkAclEntry":  {refs: []string{"local.managed_network_acl_arns"}, why: "entries only of the managed network ACLs"},
	"ec2:ReplaceNetworkAclEntry": {refs: []string{"local.managed_network_acl_arns"}, why: "entries only of the managed network ACLs"},
	"ec2:CreateTags":             {refs: []string{"local.managed_network_acl_arns"}, why: "tags only of the managed network ACLs"},
	"ec2:DeleteTags":             {refs: []string{"local.managed_network_acl_arns"}, why: "tags only of the managed network ACLs"},
	"logs:FilterLogEvents":       {refs: []string{"local.watched_log_group_arns"}, why: "reads only of the configured log groups"},
	"logs:StartQuery":            {refs: []string{"local.watched_log_group_arns"}, why: "reads only of the configured log groups"},
	"logs:GetLogEvents":          {refs: []string{"local.watched_log_group_arns"}, why: "reads only of the configured log groups"},
	"ssm:SendCommand":            {refs: []string{"aws_ssm_document.host_block"}, conditions: []string{"ssm:resourceTag/"}, why: "banshee's document, on instances with the configured tag only"},
	"ssm:GetParameter":           {refs: []string{"aws_ssm_parameter.config"}, why: "the configuration parameter only"},
	"cloudwatch:DescribeAlarms":  {refs: []string{"local.alarm_arn_prefix"}, why: "the module's alarms only"},
	"logs:CreateLogStream":       {refs: []string{"aws_cloudwatch_log_group.function"}, why: "the function's own log group only"},
	"logs:PutLogEvents":          {refs: []string{"aws_cloudwatch_log_group.function"}, why: "the function's own log group only"},
}

func TestIAMFunctionPolicyScopes(t *testing.T) {
	m := loadModule(t, ".")
	var sendCommandOnInstances, sendCommandOnDocument bool
	for _, st := range policyStatements(t, m, "function") {
		var refs []string
		if ra, ok := st.body.Attributes["resources"]; ok {
			for _, tr := range ra.Expr.Variables() {
				refs = append(refs, traversalString(tr))
				if fe := st.iterators[tr.RootName()]; fe != nil {
					for _, ftr := range fe.Variables() {
						refs = append(refs, traversalString(ftr))
					}
				}
			}
		}
		var conds []string
		for _, cb := range st.body.Blocks {
			if cb.Type == "condition" {
				v, _ := cb.Body.Attributes["variable"].Expr.(*hclsyntax.TemplateExpr)
				if v != nil && len(v.Parts) > 0 {
					if lit, ok := v.Parts[0].(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type() == cty.String {
						conds = append(conds, lit.Val.AsString())
					}
				}
			}
		}
		for _, action := range st.actions {
			rule, ok := functionScopes[action]
			if !ok {
				if isMutating(action) {
					t.Errorf("%s: mutating action %s has no scope rule in functionScopes; add one", st.body.SrcRange, action)
				}
				continue
			}
			var okRef, okCond bool
			for _, r := range refs {
				for _, want := range rule.refs {
					if r == want || strings.HasPrefix(r, want+".") || strings.HasPrefix(r, want+"[") {
						okRef = true
					}
				}
			}
			for _, c := range conds {
				for _, want := range rule.conditions {
					if strings.HasPrefix(c, want) {
						okCond = true
					}
				}
			}
			if action == "ssm:SendCommand" {
				sendCommandOnDocument = sendCommandOnDocument || okRef
				sendCommandOnInstances = sendCommandOnInstances || okCond
			}
			if !okRef && !okCond {
				t.Errorf("%s: %s must be scoped to %s (resources referring to %v or a condition on %v); resources refer to %v", st.body.SrcRange, action, rule.why, rule.refs, rule.conditions, refs)
			}
		}
	}
	if !sendCommandOnDocument || !sendCommandOnInstances {
		t.Errorf("ssm:SendCommand needs one statement on the document and one on instances with an ssm:resourceTag condition (document %v, instances %v)", sendCommandOnDocument, sendCommandOnInstances)
	}
}

func TestIAMFunctionRoleHasOnlyItsPolicy(t *testing.T) {
	m := loadModule(t, ".")
	for key, b := range m.resources {
		typ, _, _ := strings.Cut(key, ".")
		switch typ {
		case "aws_iam_role_policy_attachment", "aws_iam_policy_attachment", "aws_iam_policy":
			t.Errorf("%s: %s: the module grants only through inline policy documents the tests check", b.DefRange(), key)
		case "aws_iam_role":
			for _, forbidden := range []string{"managed_policy_arns", "inline_policy"} {
				if _, ok := b.Body.Attributes[forbidden]; ok {
					t.Errorf("%s: %s.%s grants outside the checked policy documents", b.DefRange(), key, forbidden)
				}
			}
			for _, ib := range b.Body.Blocks {
				if ib.Type == "inline_policy" {
					t.Errorf("%s: %s has an inline_policy block", ib.DefRange(), key)
				}
			}
		case "aws_iam_role_policy":
			role := traversalsOf(b.Body.Attributes["role"].Expr)
			policy := traversalsOf(b.Body.Attributes["policy"].Expr)
			if strings.HasPrefix(role, "aws_iam_role.function.") && policy != "data.aws_iam_policy_document.function.json" {
				t.Errorf("%s: the function's role gets policy %s, want data.aws_iam_policy_document.function.json", b.DefRange(), policy)
			}
		}
	}
	if b, ok := m.resources["aws_lambda_function.this"]; !ok {
		t.Fatal("no aws_lambda_function.this")
	} else if got := traversalsOf(b.Body.Attributes["role"].Expr); got != "aws_iam_role.function.arn" {
		t.Errorf("the function's role is %s, want aws_iam_role.function.arn", got)
	}
}

// traversalsOf renders the references of an expression.
func traversalsOf(expr hclsyntax.Expression) string {
	var parts []string
	for _, tr := range expr.Variables() {
		parts = append(parts, traversalString(tr))
	}
	return strings.Join(parts, " ")
}
