package function

import (
	"context"
	"fmt"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
)

// recreated reports the denies of the managed ACLs that someone else
// deleted before their expiry and the scheduled repair re-created from
// their metadata (engine.Reconcile, awsnacl.Manager.Restore), and those it
// left, with why.
func (f *Function) recreated(ctx context.Context, rr *engine.ReconcileResult, resp *Response) {
	resp.Recreated, resp.NotRecreated = rr.Recreated, rr.NotRecreated
	for _, b := range rr.Recreated {
		f.d.Log.InfoContext(ctx, "re-created a network ACL deny deleted before its expiry", "target", b.Target.String(), "nacl_id", b.NACLID, "rule_number", b.RuleNumber, "expires_at", b.ExpiresAt)
	}
	for _, n := range rr.NotRecreated {
		f.d.Log.WarnContext(ctx, "network ACL deny deleted before its expiry not re-created", "target", n.Target.String(), "nacl_id", n.NACLID, "rule_number", n.RuleNumber, "why", n.Why)
	}
	f.count(map[string]string{"Scope": string(policy.ScopeVPC)}, "Recreated", float64(len(rr.Recreated)))
}

// warnVanished logs the blocks whose NACL entries the sweep found deleted
// by someone else before they expired (awsnacl.Manager.Vanished): most
// often a Terraform apply of the ACL's inline rules, which wipes every
// deny banshee placed on each run.
func (f *Function) warnVanished(ctx context.Context, vanished []policy.Block) {
	if len(vanished) == 0 {
		return
	}
	var list []string
	for _, b := range vanished {
		list = append(list, fmt.Sprintf("%s rule %d %s (until %s)", b.NACLID, b.RuleNumber, b.Target, b.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")))
	}
	f.d.Log.WarnContext(ctx, "banshee's network ACL entries vanished before they expired, removed by something other than banshee (an aws_default_network_acl or an aws_network_acl with inline rules re-applied by Terraform?); the sources are no longer blocked at the subnet edge",
		"vanished", list)
	f.count(map[string]string{"Scope": string(policy.ScopeVPC)}, "Vanished", float64(len(vanished)))
}
