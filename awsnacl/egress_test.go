package awsnacl

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/banshee-project/banshee/policy"
)

// With nacl.egress, a deny also blocks the replies, which leave to the
// attacker's ephemeral port: an egress allow of the ephemeral range below
// the reserved range shadows the egress deny even though it does not
// include the attacked port, and an egress allow of a low port does not.
func TestEgressShadowIsCheckedOnEphemeralPorts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int32
		shadowed bool
	}{
		{"the ephemeral range", 1024, 65535, true},
		{"part of it", 32768, 60999, true},
		{"https only", 443, 443, false},
		{"the attacked port only", 22, 22, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := ctxT(t)
			cfg := defaultNACL()
			cfg.RuleMin, cfg.RuleMax, cfg.Egress = 5, 19, true
			in := &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(w.nacl), RuleNumber: i32(3), Egress: aws.Bool(true), Protocol: aws.String("6"),
				RuleAction: types.RuleActionAllow, CidrBlock: aws.String("0.0.0.0/0"), PortRange: &types.PortRange{From: aws.Int32(tc.from), To: aws.Int32(tc.to)}}
			if _, err := w.raw.CreateNetworkAclEntry(ctx, in); err != nil {
				t.Fatal(err)
			}
			bs, err := w.manager(w.srv.URL, cfg).Block(ctx, []policy.Decision{w.vpcDecision("198.51.100.7", time.Hour)}, Request{Port: policy.Port{Proto: "tcp", From: 22, To: 22}})
			var se *ShadowError
			switch {
			case tc.shadowed && (!errors.As(err, &se) || se.Rule.RuleNumber != 3 || !se.Rule.Egress):
				t.Errorf("egress allow tcp %d-%d at 3: Block = %+v, %v; want a ShadowError naming egress rule 3", tc.from, tc.to, bs, err)
			case !tc.shadowed && (err != nil || len(bs) != 1):
				t.Errorf("egress allow tcp %d-%d at 3: Block = %+v, %v; want the block", tc.from, tc.to, bs, err)
			}
		})
	}
}
