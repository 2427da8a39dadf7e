package terraform

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// providerV6Gone lists, per resource type ("data." for data sources) and
// for the provider block, what version 6.0.0 of the hashicorp/aws
// provider removes or deprecates among what this module uses or is likely
// to (from the provider's "Version 6 Upgrade Guide"). versions.tf allows
// ">= 5.0, < 7.0" and only 5.100.0 can be run in the tests here, so the
// module stays clean for 6 by construction: it neither sets nor reads any
// of these. The replacement each needs that works on 5 as well is named.
var providerV6Gone = map[string]map[string]string{
	"data.aws_region":                       {"name": "id (region exists on 6 only)"},
	"data.aws_s3_bucket":                    {"region": "bucket_region"},
	"aws_flow_log":                          {"log_group_name": "log_destination"},
	"aws_instance":                          {"cpu_core_count": "cpu_options.core_count", "cpu_threads_per_core": "cpu_options.threads_per_core"},
	"aws_eip":                               {"vpc": "domain"},
	"aws_ssm_association":                   {"instance_id": "targets"},
	"aws_cloudformation_stack_set_instance": {"region": "stack_set_instance_region"},
	"aws_launch_template":                   {"elastic_gpu_specifications": "nothing (end of life)", "elastic_inference_accelerator": "nothing (end of life)"},
	"provider.aws": {
		"s3_us_east_1_regional_endpoint": "nothing (regional is the only behaviour left)",
		"endpoints.opsworks":             "nothing (service removed)",
		"endpoints.simpledb":             "nothing (service removed)",
		"endpoints.sdb":                  "nothing (service removed)",
		"endpoints.worklink":             "nothing (service removed)",
	},
}

// The module and every example neither set nor read what provider 6
// removes or deprecates: arguments in the blocks of those types (nested
// blocks as dotted paths), and references to their attributes.
func TestModuleCleanForProviderV6(t *testing.T) {
	root := "."
	dirs := []string{root}
	examples, _ := filepath.Glob(filepath.Join(root, "examples", "*"))
	dirs = append(dirs, examples...)
	checked := 0
	for _, dir := range dirs {
		m := loadModule(t, dir)
		blocks := map[string][]*hclsyntax.Block{}
		for key, b := range m.resources {
			blocks[strings.SplitN(key, ".", 2)[0]] = append(blocks[strings.SplitN(key, ".", 2)[0]], b)
		}
		for key, b := range m.data {
			typ := "data." + strings.SplitN(key, ".", 2)[0]
			blocks[typ] = append(blocks[typ], b)
		}
		for key, b := range m.providers {
			typ := "provider." + strings.SplitN(key, ".", 2)[0]
			blocks[typ] = append(blocks[typ], b)
		}
		for typ, bs := range blocks {
			gone := providerV6Gone[typ]
			for _, b := range bs {
				checked++
				for _, path := range argumentPaths(b.Body, "") {
					if use, bad := gone[path]; bad {
						t.Errorf("%s: %s sets %s, which provider 6 removes or deprecates; use %s", b.DefRange(), typ, path, use)
					}
				}
			}
		}
		m.walkReferences(func(tr hcl.Traversal, _ walkScope) {
			typ, attr := tr.RootName(), attrName(tr, 2)
			if typ == "data" {
				typ, attr = "data."+attrName(tr, 1), attrName(tr, 3)
			}
			if use, bad := providerV6Gone[typ][attr]; bad {
				t.Errorf("%s: %s reads %s, which provider 6 removes or deprecates; use %s", tr.SourceRange(), traversalString(tr), attr, use)
			}
		})
	}
	if checked == 0 {
		t.Fatal("no block was checked")
	}
}

// argumentPaths lists the arguments set in body and, dotted, in its
// nested blocks.
func argumentPaths(body *hclsyntax.Body, prefix string) []string {
	var out []string
	for name := range body.Attributes {
		out = append(out, prefix+name)
	}
	for _, b := range body.Blocks {
		out = append(out, prefix+b.Type)
		out = append(out, argumentPaths(b.Body, prefix+b.Type+".")...)
	}
	return out
}
