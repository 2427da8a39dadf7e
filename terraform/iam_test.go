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

// instancePackage is the main package of the banshee binary that runs on
// the instances (banshee watch and the CLI), relative to the repository
// root. Its actions are derived for the instance policy (iam_instance.tf).
const instancePackage = "cmd/banshee"

// instanceAWSPackage is the package through which the banshee binary calls
// AWS: awsnacl, for blocks at VPC scope. The instance policy grants what
// awsnacl and the packages it imports call, and the derivation from
// instancePackage must find nothing else. When this was written the
// binary's closure was cmd/banshee, awsnacl, hostfw, hostfw/guard, policy,
// policy/detect and cmd/internal/logsource, and only awsnacl called AWS: the
// binary reads no SSM parameter (its configuration is a local file, --config)
// and no CloudWatch Logs (it tails the local auth log), and never runs SSM
// commands (it is what those commands run). A call outside awsnacl fails
// the test, so that someone decides whether every instance running banshee
// should hold that permission and records the reason here, rather than the
// instance role growing by default.
const instanceAWSPackage = "awsnacl"

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

	// The instance binary: its own call plus everything awsnacl reaches
	// (here awsnacl imports hostfw/remote, so its SSM and logs calls count).
	inst, instPkgs, err := deriveActions(root, "github.com/banshee-project/banshee", instancePackage)
	if err != nil {
		t.Fatal(err)
	}
	viaNACL, _, err := deriveActions(root, "github.com/banshee-project/banshee", instanceAWSPackage)
	if err != nil {
		t.Fatal(err)
	}
	wantInst := []string{
		"cloudwatch:PutMetricData", // the main package's own call
		"ec2:CreateNetworkAclEntry",
		"ec2:DescribeNetworkAcls",
		"ec2:DescribeSecurityGroups",
		"logs:DescribeMetricFilters", // through awsnacl → hostfw/remote
		"logs:FilterLogEvents",
		"ssm:SendCommand",
	}
	if g := sortedKeys(inst); strings.Join(g, " ") != strings.Join(wantInst, " ") {
		t.Errorf("derived from %s %v\nwant %v", instancePackage, g, wantInst)
	}
	if g := actionsOutside(inst, viaNACL); strings.Join(g, " ") != "cloudwatch:PutMetricData" {
		t.Errorf("actions outside %s: %v, want [cloudwatch:PutMetricData] (the fixture's main package calls it itself)", instanceAWSPackage, g)
	}
	if g := actionsOutside(viaNACL, inst); len(g) != 0 {
		t.Errorf("actions of %s not reached from %s: %v", instanceAWSPackage, instancePackage, g)
	}
	wantInstPkgs := []string{"awsnacl", "cmd/banshee", "hostfw/remote", "policy"}
	if strings.Join(instPkgs, " ") != strings.Join(wantInstPkgs, " ") {
		t.Errorf("walked packages from %s %v, want %v", instancePackage, instPkgs, wantInstPkgs)
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

	missing, unused := iamMismatches(want, grantedActions(t, loadModule(t, "."), "function"))
	for _, action := range missing {
		t.Errorf("missing permission %s (%s): grant it in iam.tf, scoped as tightly as AWS allows", action, want[action])
	}
	for _, action := range unused {
		t.Errorf("unused permission %s: nothing in the function's code (%v) calls it; remove it from iam.tf", action, pkgs)
	}
}

// actionsOutside returns the actions of all that within does not have,
// sorted.
func actionsOutside(all, within derivedActions) []string {
	var out []string
	for _, action := range sortedKeys(all) {
		if _, ok := within[action]; !ok {
			out = append(out, action)
		}
	}
	return out
}

// grantedActions returns every action the statements of a policy document
// grant.
func grantedActions(t *testing.T, m *tfModule, doc string) map[string]bool {
	t.Helper()
	granted := map[string]bool{}
	for _, st := range policyStatements(t, m, doc) {
		for _, a := range st.actions {
			granted[a] = true
		}
	}
	return granted
}

func TestIAMInstancePolicyGrantsExactlyWhatTheBinaryCalls(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod := modulePath(t, filepath.Join(root, "go.mod"))
	derived, pkgs, err := deriveActions(root, mod, instancePackage)
	if err != nil {
		t.Fatal(err)
	}
	viaNACL, naclPkgs, err := deriveActions(root, mod, instanceAWSPackage)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("packages of the banshee binary: %v; of %s: %v", pkgs, instanceAWSPackage, naclPkgs)
	t.Logf("actions of the banshee binary: %v", sortedKeys(derived))
	if !contains(pkgs, instanceAWSPackage) {
		t.Errorf("%s no longer imports %s (walked %v): the instance policy has nothing to cover; rethink iam_instance.tf", instancePackage, instanceAWSPackage, pkgs)
	}
	if len(viaNACL) == 0 {
		t.Fatalf("no AWS action derived from %s: the derivation is broken", instanceAWSPackage)
	}
	for _, action := range actionsOutside(derived, viaNACL) {
		t.Errorf("%s calls %s at %s, outside %s: decide whether every instance running banshee should hold it; if so, grant it in iam_instance.tf and record why at instanceAWSPackage", instancePackage, action, strings.Join(derived[action], ", "), instanceAWSPackage)
	}

	want := map[string]string{}
	for action, where := range derived {
		want[action] = "called at " + strings.Join(where, ", ")
	}
	missing, unused := iamMismatches(want, grantedActions(t, loadModule(t, "."), "instance"))
	for _, action := range missing {
		t.Errorf("missing permission %s (%s): grant it in iam_instance.tf, scoped as tightly as AWS allows", action, want[action])
	}
	for _, action := range unused {
		t.Errorf("unused permission %s: nothing in the banshee binary (%v) calls it; remove it from iam_instance.tf", action, pkgs)
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

// scopeRule says how a sensitive action must be scoped: its statement's
// resources must refer to one of refs, or the statement must carry a
// condition on one of conditions.
type scopeRule struct {
	refs       []string
	conditions []string
	why        string
}

// actionScopes are the scope rules of every policy of the module that
// grants these actions (the function's and the instances').
var actionScopes = map[string]scopeRule{
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

// scopeHit says how the statements of a policy scoped one action: whether
// some statement did by a resource reference, whether some did by a
// condition.
type scopeHit struct{ ref, cond bool }

// checkScopes fails the test for every action of the policy document doc
// that its statement does not scope as rules say, and for every mutating
// action without a rule. It returns how each ruled action was scoped.
func checkScopes(t *testing.T, m *tfModule, doc string, rules map[string]scopeRule) map[string]scopeHit {
	t.Helper()
	hits := map[string]scopeHit{}
	for _, st := range policyStatements(t, m, doc) {
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
			rule, ok := rules[action]
			if !ok {
				if isMutating(action) {
					t.Errorf("%s: mutating action %s of data.aws_iam_policy_document.%s has no scope rule in actionScopes; add one", st.body.SrcRange, action, doc)
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
			h := hits[action]
			hits[action] = scopeHit{ref: h.ref || okRef, cond: h.cond || okCond}
			if !okRef && !okCond {
				t.Errorf("%s: %s must be scoped to %s (resources referring to %v or a condition on %v); resources refer to %v", st.body.SrcRange, action, rule.why, rule.refs, rule.conditions, refs)
			}
		}
	}
	return hits
}

func TestIAMFunctionPolicyScopes(t *testing.T) {
	hits := checkScopes(t, loadModule(t, "."), "function", actionScopes)
	if h := hits["ssm:SendCommand"]; !h.ref || !h.cond {
		t.Errorf("ssm:SendCommand needs one statement on the document and one on instances with an ssm:resourceTag condition (document %v, instances %v)", h.ref, h.cond)
	}
}

func TestIAMInstancePolicyScopes(t *testing.T) {
	if hits := checkScopes(t, loadModule(t, "."), "instance", actionScopes); len(hits) == 0 {
		t.Error("the instance policy grants no action that needs a scope: it cannot change a network ACL")
	}
}

// networkACLActions are the actions that change a network ACL; they must
// name the managed ACLs, or, when none are given, carry the ec2:Vpc
// condition.
var networkACLActions = []string{
	"ec2:CreateNetworkAclEntry",
	"ec2:CreateTags",
	"ec2:DeleteNetworkAclEntry",
	"ec2:DeleteTags",
	"ec2:ReplaceNetworkAclEntry",
}

// vpcConditions returns how many ec2:Vpc conditions on local.vpc_arn a
// statement carries once the module is evaluated with e's variables.
func vpcConditions(t *testing.T, e *evaluator, st policyStatement) int {
	t.Helper()
	isVPC := func(body *hclsyntax.Body) bool {
		v, diags := body.Attributes["variable"].Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String || v.AsString() != "ec2:Vpc" {
			return false
		}
		if tv, diags := body.Attributes["test"].Expr.Value(nil); diags.HasErrors() || tv.AsString() != "ArnEquals" {
			t.Errorf("%s: the ec2:Vpc condition must test ArnEquals", body.SrcRange)
		}
		return true
	}
	var n int
	for _, cb := range st.body.Blocks {
		switch {
		case cb.Type == "condition" && isVPC(cb.Body):
			if refs := traversalsOf(cb.Body.Attributes["values"].Expr); refs != "local.vpc_arn" {
				t.Errorf("%s: the ec2:Vpc condition's values refer to %q, want local.vpc_arn", cb.DefRange(), refs)
			}
			n++
		case cb.Type == "dynamic" && cb.Labels[0] == "condition":
			for _, content := range cb.Body.Blocks {
				if content.Type != "content" || !isVPC(content.Body) {
					continue
				}
				fe := cb.Body.Attributes["for_each"].Expr
				if refs := traversalsOf(fe); !strings.Contains(refs, "local.vpc_arn") {
					t.Errorf("%s: the ec2:Vpc condition iterates over %q, want local.vpc_arn", cb.DefRange(), refs)
				}
				v, err := e.eval(fe)
				if err != nil || !v.IsKnown() || !v.CanIterateElements() {
					t.Errorf("%s: for_each of the ec2:Vpc condition is not a known collection: %v %#v", cb.DefRange(), err, v)
					continue
				}
				n += v.LengthInt()
			}
		}
	}
	return n
}

func TestIAMNetworkACLChangesStayInTheManagedACLs(t *testing.T) {
	m := loadModule(t, ".")
	for _, doc := range []string{"function", "instance"} {
		var statements int
		for _, st := range policyStatements(t, m, doc) {
			var changes bool
			for _, a := range st.actions {
				changes = changes || contains(networkACLActions, a)
			}
			if !changes {
				continue
			}
			statements++
			for _, c := range []struct {
				ids        string
				resources  int
				conditions int
				what       string
			}{
				{`[]`, 1, 1, "every ACL of the VPC: one wildcard ARN narrowed by the ec2:Vpc condition"},
				{`["acl-0123abcd", "acl-0123abce"]`, 2, 0, "the given ACLs: one ARN each, no condition needed"},
			} {
				e, err := m.newEvaluator(withVPC(map[string]cty.Value{"network_acl_ids": hclValue(t, c.ids)}))
				if err != nil {
					t.Fatal(err)
				}
				v, err := e.eval(st.body.Attributes["resources"].Expr)
				if err != nil || !v.IsKnown() || !v.CanIterateElements() {
					t.Errorf("%s: resources are not a known list: %v %#v", st.body.SrcRange, err, v)
					continue
				}
				if got := v.LengthInt(); got != c.resources {
					t.Errorf("%s: data.aws_iam_policy_document.%s with network_acl_ids = %s names %d resources, want %d (%s)", st.body.SrcRange, doc, c.ids, got, c.resources, c.what)
				}
				if got := vpcConditions(t, e, st); got != c.conditions {
					t.Errorf("%s: data.aws_iam_policy_document.%s with network_acl_ids = %s has %d ec2:Vpc conditions, want %d (%s)", st.body.SrcRange, doc, c.ids, got, c.conditions, c.what)
				}
			}
		}
		if statements == 0 {
			t.Errorf("data.aws_iam_policy_document.%s changes no network ACL", doc)
		}
	}
}

// TestIAMGrantsOnlyThroughCheckedDocuments: the function's role gets its
// inline policy and nothing else; the one managed policy is the instances',
// built from its checked document and attached only to the roles named in
// instance_role_names.
func TestIAMGrantsOnlyThroughCheckedDocuments(t *testing.T) {
	m := loadModule(t, ".")
	for key, b := range m.resources {
		typ, _, _ := strings.Cut(key, ".")
		switch typ {
		case "aws_iam_policy":
			if key != "aws_iam_policy.instance" {
				t.Errorf("%s: %s: the module's one managed policy is aws_iam_policy.instance", b.DefRange(), key)
			} else if got := traversalsOf(b.Body.Attributes["policy"].Expr); got != "data.aws_iam_policy_document.instance.json" {
				t.Errorf("%s: the instance policy is %s, want data.aws_iam_policy_document.instance.json", b.DefRange(), got)
			}
		case "aws_iam_role_policy_attachment":
			if key != "aws_iam_role_policy_attachment.instance" {
				t.Errorf("%s: %s: the module attaches only the instance policy", b.DefRange(), key)
				continue
			}
			if got := traversalsOf(b.Body.Attributes["policy_arn"].Expr); got != "aws_iam_policy.instance[0].arn" {
				t.Errorf("%s: attaches %s, want aws_iam_policy.instance[0].arn", b.DefRange(), m.sourceText(b.Body.Attributes["policy_arn"].Expr.Range()))
			}
			if got := traversalsOf(b.Body.Attributes["role"].Expr); got != "each.value" {
				t.Errorf("%s: attaches to %s, want each.value of the instance_role_names", b.DefRange(), m.sourceText(b.Body.Attributes["role"].Expr.Range()))
			}
			if got := traversalsOf(b.Body.Attributes["for_each"].Expr); !strings.Contains(got, "var.instance_role_names") {
				t.Errorf("%s: iterates over %s, want var.instance_role_names", b.DefRange(), got)
			}
		case "aws_iam_policy_attachment":
			t.Errorf("%s: %s: aws_iam_policy_attachment owns every attachment of its policy account-wide; use aws_iam_role_policy_attachment", b.DefRange(), key)
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

func TestIAMInstancePolicyAttachments(t *testing.T) {
	m := loadModule(t, ".")
	if refs := preconditionRefs(t, m, "data.aws_iam_policy_document.instance"); !contains(refs, "local.instance_role_names_attachable") {
		t.Errorf("data.aws_iam_policy_document.instance preconditions %v do not check local.instance_role_names_attachable", refs)
	}
	policy, ok := m.resources["aws_iam_policy.instance"]
	if !ok {
		t.Fatal("no aws_iam_policy.instance")
	}
	attachment, ok := m.resources["aws_iam_role_policy_attachment.instance"]
	if !ok {
		t.Fatal("no aws_iam_role_policy_attachment.instance")
	}
	for _, c := range []struct {
		create, roles string
		policies      int
		attachments   int
		attachable    bool
	}{
		{`true`, `[]`, 1, 0, true},
		{`true`, `["web", "bastion"]`, 1, 2, true},
		{`false`, `[]`, 0, 0, true},
		{`false`, `["web"]`, 0, 0, false},
	} {
		values := map[string]cty.Value{"create_instance_policy": hclValue(t, c.create), "instance_role_names": hclValue(t, c.roles)}
		what := fmt.Sprintf("create_instance_policy = %s, instance_role_names = %s", c.create, c.roles)
		if got := evalLocal(t, m, "instance_role_names_attachable", values).True(); got != c.attachable {
			t.Errorf("%s: instance_role_names_attachable = %v, want %v", what, got, c.attachable)
		}
		e, err := m.newEvaluator(withVPC(values))
		if err != nil {
			t.Fatal(err)
		}
		count, err := e.eval(policy.Body.Attributes["count"].Expr)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := count.AsBigFloat().Int64(); int(n) != c.policies {
			t.Errorf("%s: %d instance policies, want %d", what, n, c.policies)
		}
		each, err := e.eval(attachment.Body.Attributes["for_each"].Expr)
		if err != nil {
			t.Fatal(err)
		}
		if !each.IsWhollyKnown() || each.LengthInt() != c.attachments {
			t.Errorf("%s: attachments for_each = %#v, want %d roles", what, each, c.attachments)
		}
	}
}
