package function

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/policy"
)

// region is a fake region of network ACLs: each with its VPC, its tags and
// banshee's blocks. It answers DescribeNetworkAcls (vpc-id filter, two per
// page) and sweeps like awsnacl: the named ACLs, or every tagged one.
type region struct {
	acls   []ec2types.NetworkAcl
	blocks map[string][]policy.Block // by ACL id
	pages  int
	// restores lists, per Restore call, the ACL ids it was asked about.
	restores [][]string
}

func (r *region) DescribeNetworkAcls(_ context.Context, in *ec2.DescribeNetworkAclsInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error) {
	r.pages++
	var match []ec2types.NetworkAcl
	for _, n := range r.acls {
		ok := true
		for _, f := range in.Filters {
			if aws.ToString(f.Name) != "vpc-id" {
				return nil, errors.New("unsupported filter " + aws.ToString(f.Name))
			}
			ok = ok && slices.Contains(f.Values, aws.ToString(n.VpcId))
		}
		if ok {
			match = append(match, n)
		}
	}
	start := 0
	if in.NextToken != nil {
		start = len(aws.ToString(in.NextToken))
	}
	end := min(start+2, len(match))
	out := &ec2.DescribeNetworkAclsOutput{NetworkAcls: match[start:end]}
	if end < len(match) {
		out.NextToken = aws.String(strings.Repeat("x", end))
	}
	return out, nil
}

func (r *region) tagged(id string) bool {
	for _, n := range r.acls {
		if aws.ToString(n.NetworkAclId) == id {
			return slices.ContainsFunc(n.Tags, func(t ec2types.Tag) bool { return strings.HasPrefix(aws.ToString(t.Key), "banshee:") })
		}
	}
	return false
}

func (r *region) Sweep(_ context.Context, now time.Time, ids ...string) (awsnacl.SweepResult, error) {
	res := awsnacl.SweepResult{}
	if len(ids) == 0 {
		for _, n := range r.acls {
			if id := aws.ToString(n.NetworkAclId); r.tagged(id) {
				ids = append(ids, id)
			}
		}
	}
	for _, id := range ids {
		r.blocks[id] = slices.DeleteFunc(r.blocks[id], func(b policy.Block) bool {
			if b.ExpiresAt.After(now) {
				return false
			}
			res.Removed = append(res.Removed, b)
			return true
		})
	}
	return res, nil
}

// Restore re-creates nothing: the region's blocks never vanish; the ACLs
// it is asked about are recorded.
func (r *region) Restore(_ context.Context, _ time.Time, _ func(policy.Block) error, ids ...string) (awsnacl.RestoreResult, error) {
	r.restores = append(r.restores, ids)
	return awsnacl.RestoreResult{}, nil
}

var errUnused = errors.New("not used by the sweep")

func (r *region) Resolve(context.Context, []string, string) ([]policy.Target, error) {
	return nil, errUnused
}
func (r *region) FillSnapshot(context.Context, []policy.Target, *policy.Snapshot) error {
	return errUnused
}
func (r *region) Block(context.Context, []policy.Decision, awsnacl.Request) ([]policy.Block, error) {
	return nil, errUnused
}
func (r *region) Unblock(context.Context, string, []netip.Prefix) ([]policy.Block, error) {
	return nil, errUnused
}
func (r *region) List(context.Context, ...string) ([]policy.Block, error) { return nil, nil }
func (r *region) Vanished(context.Context, time.Time, ...string) ([]policy.Block, error) {
	return nil, nil
}

func (r *region) NACLFor(context.Context, string) (policy.NACL, error) {
	return policy.NACL{}, errUnused
}

func acl(id, vpc string, tagged bool) ec2types.NetworkAcl {
	n := ec2types.NetworkAcl{NetworkAclId: aws.String(id), VpcId: aws.String(vpc)}
	n.Tags = []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String(id)}}
	if tagged {
		n.Tags = append(n.Tags, ec2types.Tag{Key: aws.String("banshee:rule:3"), Value: aws.String("exp=1;origin=cli;cidr=198.18.0.0/24;reason=")})
	}
	return n
}

func TestSweepKeepsToTheManagedACLs(t *testing.T) {
	const (
		ours1, ours2, untagged, foreign = "acl-00000000000000001", "acl-00000000000000002", "acl-00000000000000003", "acl-00000000000000009"
		vpc, otherVPC                   = "vpc-0000000000000000a", "vpc-0000000000000000b"
	)
	now := time.Date(2026, 5, 9, 12, 0, 0, 0, time.UTC)
	expired := func(cidr string) policy.Block {
		return policy.Block{Target: netip.MustParsePrefix(cidr), Scope: policy.ScopeVPC, ExpiresAt: now.Add(-time.Minute)}
	}
	for _, tc := range []struct {
		name  string
		scope Scope
		kept  []string // ACLs whose expired block must survive
		asked string   // the ACLs Restore is asked about first: the same as the sweep's
	}{
		{"nacl ids", Scope{NACLIDs: []string{ours2}, VPCID: vpc}, []string{ours1, untagged, foreign}, "[[" + ours2 + "]]"},
		{"vpc", Scope{VPCID: vpc}, []string{untagged, foreign}, "[[" + ours1 + " " + ours2 + "]]"},
		{"neither", Scope{}, []string{untagged}, "[[]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &region{
				acls: []ec2types.NetworkAcl{acl(ours1, vpc, true), acl(untagged, vpc, false), acl(ours2, vpc, true), acl(foreign, otherVPC, true)},
				blocks: map[string][]policy.Block{
					ours1: {expired("198.18.1.0/24")}, ours2: {expired("198.18.2.0/24")},
					untagged: {expired("198.18.3.0/24")}, foreign: {expired("198.18.9.0/24")},
				},
			}
			f := New(Deps{
				Config: func(context.Context) (policy.Config, error) { return policy.Default(), nil },
				NACLs:  func(policy.Config) NACLs { return r },
				Scope:  tc.scope, ACLs: r,
				Now: func() time.Time { return now },
			})
			var resp Response
			if err := f.sweep(context.Background(), &event.Schedule{}, &resp); err != nil {
				t.Fatal(err)
			}
			for id, bs := range r.blocks {
				if want := slices.Contains(tc.kept, id); (len(bs) == 1) != want {
					t.Errorf("ACL %s: blocks %v after the sweep; kept %v, want kept %v", id, bs, len(bs) == 1, want)
				}
			}
			if got := fmt.Sprint(r.restores); got != tc.asked {
				t.Errorf("Restore asked about %s, want %s", got, tc.asked)
			}
		})
	}
}

func TestScope(t *testing.T) {
	if _, err := ParseScope("acl-0123456789abcdef0, acl-x", ""); err == nil || !strings.Contains(err.Error(), EnvNACLIDs) {
		t.Errorf("bad ACL id: err %v, want one naming %s", err, EnvNACLIDs)
	}
	if _, err := ParseScope("", "vpc-"); err == nil || !strings.Contains(err.Error(), EnvVPCID) {
		t.Errorf("bad VPC id: err %v, want one naming %s", err, EnvVPCID)
	}
	s, err := ParseScope(" acl-0123456789abcdef0,,acl-0123456789abcdef0,acl-0123456789abcdef1", "vpc-0123456789abcdef0")
	if err != nil || !slices.Equal(s.NACLIDs, []string{"acl-0123456789abcdef0", "acl-0123456789abcdef1"}) || s.VPCID != "vpc-0123456789abcdef0" {
		t.Fatalf("ParseScope = %+v, %v", s, err)
	}
	for _, tc := range []struct {
		scope     Scope
		nacl, vpc string
		want      bool
	}{
		{s, "acl-0123456789abcdef1", "vpc-0000000000000000f", true}, // the ids win over the VPC
		{s, "acl-0000000000000000f", "vpc-0123456789abcdef0", false},
		{Scope{VPCID: s.VPCID}, "acl-0000000000000000f", "vpc-0123456789abcdef0", true},
		{Scope{VPCID: s.VPCID}, "acl-0000000000000000f", "vpc-0000000000000000f", false},
		{Scope{VPCID: s.VPCID}, "acl-0000000000000000f", "", false},
		{Scope{}, "acl-0000000000000000f", "", true},
	} {
		if got, why := tc.scope.Manages(tc.nacl, tc.vpc); got != tc.want || got == (why != "") {
			t.Errorf("%+v manages %s in %q = %v (%q), want %v", tc.scope, tc.nacl, tc.vpc, got, why, tc.want)
		}
	}
}

func TestConfineFallsBackOutsideTheScope(t *testing.T) {
	f := New(Deps{Scope: Scope{NACLIDs: []string{"acl-00000000000000001"}}})
	atk := policy.Attack{Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Targets: []policy.Target{
		{InstanceID: "i-0000000000000000a", SubnetID: "subnet-0000000000000000a"},
		{InstanceID: "i-0000000000000000c", SubnetID: "subnet-0000000000000000a"},
		{InstanceID: "i-0000000000000000b", SubnetID: "subnet-0000000000000000b"},
		{InstanceID: "i-0000000000000000d", SubnetID: "subnet-0000000000000000b"},
	}}
	deny := policy.NACLEntry{RuleNumber: 32767, CIDR: netip.MustParsePrefix("0.0.0.0/0")}
	snap := policy.Snapshot{Now: time.Unix(1_800_000_000, 0), NACLs: map[string]policy.NACL{
		"subnet-0000000000000000a": {ID: "acl-00000000000000001", SubnetIDs: []string{"subnet-0000000000000000a"}, Entries: []policy.NACLEntry{deny}},
		"subnet-0000000000000000b": {ID: "acl-00000000000000002", SubnetIDs: []string{"subnet-0000000000000000b"}, Entries: []policy.NACLEntry{deny}},
	}}
	f.confine([]policy.Attack{atk}, &snap)
	if n := snap.NACLs["subnet-0000000000000000a"]; n.Unmanaged != "" {
		t.Errorf("managed ACL marked unmanaged: %q", n.Unmanaged)
	}
	if n := snap.NACLs["subnet-0000000000000000b"]; !strings.Contains(n.Unmanaged, "acl-00000000000000002 is not a network ACL this function manages") {
		t.Errorf("other ACL: %q, want the reason", n.Unmanaged)
	}
	// Only subnet b reached: the policy falls back to the hosts, the
	// first reason naming the outcome, no NACL fields left.
	onB := atk
	onB.Targets = atk.Targets[2:]
	onB.Sources = []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32")}
	d := policy.New(policy.Default()).Decide(onB, snap)[0]
	if d.Scope != policy.ScopeHost || d.Action != policy.ActionBlock || d.NACLID != "" || d.RuleNumber != 0 || d.SubnetID != "" || d.Aggregate != nil || d.Evicts != nil ||
		!strings.HasPrefix(d.Reasons[0], "host: vpc wanted but acl-00000000000000002 is not a network ACL this function manages") {
		t.Errorf("decision on another ACL: %+v, want a host block saying why first", d)
	}
	onB.Scope = policy.ScopeVPC
	if d := policy.New(policy.Default()).Decide(onB, snap)[0]; d.Scope != policy.ScopeNone || d.Action != policy.ActionRefuse {
		t.Errorf("vpc scope requested on another ACL: %+v, want a refusal", d)
	}
}
