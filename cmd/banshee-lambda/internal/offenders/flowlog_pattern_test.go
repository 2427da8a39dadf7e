package offenders

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The Terraform module's flow-log metric filter and the function's reading
// of flow records must count the same records: the alarm fires on what the
// filter counts, the function then blocks what it reads. This reads the
// pattern out of the module, evaluates it on a grid of records around
// every bound (ports, packets, protocols, actions) and compares each
// verdict with parseFlow's.
func TestFlowLogPatternMatchesTheFunction(t *testing.T) {
	pattern := modulePattern(t, "aws_cloudwatch_log_metric_filter", "rejected_connections")
	fields, conds, err := parseSpacePattern(pattern)
	if err != nil {
		t.Fatalf("module pattern %q: %v", pattern, err)
	}
	// The default (version 2) record format, field by field: the pattern
	// must name them in this order, so its conditions fall on the fields
	// parseFlow reads.
	want := []string{"version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "action", "log_status"}
	if strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Fatalf("pattern fields %v, want the default format %v", fields, want)
	}
	n := 0
	for _, port := range []int{0, 1, 22, 443, probeMaxPort - 1, probeMaxPort, probeMaxPort + 1, 49152, 65535} {
		for _, packets := range []int{0, 1, probeMaxPackets - 1, probeMaxPackets, probeMaxPackets + 1, 10} {
			for _, proto := range []int{1, 6, 17, 58} {
				for _, action := range []string{"ACCEPT", "REJECT"} {
					rec := fmt.Sprintf("2 123456789010 eni-0a1b2c3d 198.51.100.7 10.20.1.10 40000 %d %d %d 120 1418530010 1418530070 %s OK", port, proto, packets, action)
					metric := matchSpacePattern(conds, strings.Fields(rec))
					_, read := parseFlow(rec)
					// parseFlow also reads REJECT records (a pattern counting
					// those parses too); the module counts probes only.
					function := read && action == "ACCEPT"
					if metric != function {
						t.Errorf("record %q: metric filter counts it %v, the function reads it as a probe %v", rec, metric, function)
					}
					if metric {
						n++
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no record of the grid matched the pattern: the comparison proves nothing")
	}
}

// modulePattern returns the pattern attribute of one resource of the
// module, a literal string.
func modulePattern(t *testing.T, typ, name string) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "terraform")
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no module files in %s: %v", dir, err)
	}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", p, diags)
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "resource" || len(b.Labels) != 2 || b.Labels[0] != typ || b.Labels[1] != name {
				continue
			}
			attr, ok := b.Body.Attributes["pattern"]
			if !ok {
				t.Fatalf("%s: resource %s.%s has no pattern", p, typ, name)
			}
			v, diags := attr.Expr.Value(nil)
			if diags.HasErrors() || v.Type() != cty.String {
				t.Fatalf("%s: the pattern of %s.%s is not a literal string: %v", p, typ, name, diags)
			}
			return v.AsString()
		}
	}
	t.Fatalf("resource %s.%s not found in %s", typ, name, dir)
	return ""
}

// spaceCond is one field of a space-delimited filter pattern: its
// position, and an optional comparison with a number or a string.
type spaceCond struct {
	op     string // "" (any value), =, !=, <, <=, >, >=
	num    float64
	str    string
	isText bool
}

// parseSpacePattern reads a CloudWatch Logs filter pattern for
// space-delimited events ("[f1, f2 op value, ...]"): named fields in
// order, each with at most one condition, numbers compared numerically,
// double-quoted strings by equality. It supports only what the module
// uses and refuses the rest (&&, ||, "...", wildcards).
func parseSpacePattern(p string) ([]string, []spaceCond, error) {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "[") || !strings.HasSuffix(p, "]") {
		return nil, nil, fmt.Errorf("not a space-delimited pattern")
	}
	var names []string
	var conds []spaceCond
	for _, f := range strings.Split(p[1:len(p)-1], ",") {
		f = strings.TrimSpace(f)
		if strings.Contains(f, "&&") || strings.Contains(f, "||") || f == "..." || strings.Contains(f, "*") {
			return nil, nil, fmt.Errorf("field %q: not supported by this reading", f)
		}
		var c spaceCond
		name := f
		for _, op := range []string{"<=", ">=", "!=", "=", "<", ">"} {
			if i := strings.Index(f, op); i >= 0 {
				name, c.op = strings.TrimSpace(f[:i]), op
				v := strings.TrimSpace(f[i+len(op):])
				if s, err := strconv.Unquote(v); err == nil {
					c.str, c.isText = s, true
				} else if n, err := strconv.ParseFloat(v, 64); err == nil {
					c.num = n
				} else {
					return nil, nil, fmt.Errorf("field %q: value %q is neither a number nor a quoted string", f, v)
				}
				break
			}
		}
		names = append(names, name)
		conds = append(conds, c)
	}
	return names, conds, nil
}

// matchSpacePattern reports whether an event's fields satisfy the
// pattern: as many fields as the pattern names, every condition true (a
// numeric condition on a field that is no number is false).
func matchSpacePattern(conds []spaceCond, fields []string) bool {
	if len(fields) != len(conds) {
		return false
	}
	for i, c := range conds {
		if c.op == "" {
			continue
		}
		if c.isText {
			if (c.op == "=") != (fields[i] == c.str) {
				return false
			}
			continue
		}
		n, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return false
		}
		ok := map[string]bool{"=": n == c.num, "!=": n != c.num, "<": n < c.num, "<=": n <= c.num, ">": n > c.num, ">=": n >= c.num}[c.op]
		if !ok {
			return false
		}
	}
	return true
}
