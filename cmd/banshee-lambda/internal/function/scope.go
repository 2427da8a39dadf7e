package function

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/banshee-project/banshee/policy"
)

// ACLLister is the part of the EC2 client the scheduled sweep uses to find
// the network ACLs of the managed VPC.
type ACLLister interface {
	DescribeNetworkAcls(ctx context.Context, params *ec2.DescribeNetworkAclsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
}

// Scope is the set of network ACLs the function may change (the same set
// the Terraform module's IAM policy grants): the listed ACLs when there are
// any, else every ACL of one VPC, else (neither configured) the ACLs that
// carry banshee's tags.
type Scope struct {
	NACLIDs []string // BANSHEE_NACL_IDS
	VPCID   string   // BANSHEE_VPC_ID
}

var (
	naclIDRE = regexp.MustCompile(`^acl-[0-9a-f]{8,17}$`)
	vpcIDRE  = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
)

// ParseScope reads the values of BANSHEE_NACL_IDS (comma-separated, blanks
// ignored) and BANSHEE_VPC_ID.
func ParseScope(naclIDs, vpcID string) (Scope, error) {
	var s Scope
	for _, id := range strings.Split(naclIDs, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if !naclIDRE.MatchString(id) {
			return Scope{}, fmt.Errorf("read %s: %q is not a network ACL id", EnvNACLIDs, id)
		}
		if !slices.Contains(s.NACLIDs, id) {
			s.NACLIDs = append(s.NACLIDs, id)
		}
	}
	if vpcID = strings.TrimSpace(vpcID); vpcID != "" && !vpcIDRE.MatchString(vpcID) {
		return Scope{}, fmt.Errorf("read %s: %q is not a VPC id", EnvVPCID, vpcID)
	}
	s.VPCID = vpcID
	return s, nil
}

// Manages reports whether the function may change the network ACL naclID
// of VPC vpcID ("" when not known), and when not, why.
func (s Scope) Manages(naclID, vpcID string) (bool, string) {
	switch {
	case len(s.NACLIDs) > 0:
		if slices.Contains(s.NACLIDs, naclID) {
			return true, ""
		}
		return false, fmt.Sprintf("%s is not a network ACL this function manages (%s=%s)", naclID, EnvNACLIDs, strings.Join(s.NACLIDs, ","))
	case s.VPCID != "":
		if vpcID == s.VPCID {
			return true, ""
		}
		if vpcID == "" {
			return false, fmt.Sprintf("the VPC of %s is not known, and this function manages only the network ACLs of %s (%s)", naclID, s.VPCID, EnvVPCID)
		}
		return false, fmt.Sprintf("%s is in %s, and this function manages only the network ACLs of %s (%s)", naclID, vpcID, s.VPCID, EnvVPCID)
	}
	return true, ""
}

// maxACLPages bounds the listing of the managed VPC's network ACLs.
const maxACLPages = 10

// sweepIDs returns the network ACLs the scheduled sweep acts on: the
// configured ones; else the ACLs of the configured VPC that carry a
// banshee: tag (an ACL without one holds nothing of banshee's to sweep, and
// a deny in the reserved range of an untagged ACL is someone else's); else
// nil, which Sweep reads as "every ACL banshee manages". all is false when
// there is nothing to sweep (the VPC has no ACL of banshee's).
func (f *Function) sweepIDs(ctx context.Context) (ids []string, all bool, err error) {
	s := f.d.Scope
	switch {
	case len(s.NACLIDs) > 0:
		return slices.Clone(s.NACLIDs), false, nil
	case s.VPCID == "":
		return nil, true, nil
	case f.d.ACLs == nil:
		return nil, false, fmt.Errorf("list the network ACLs of %s: no EC2 client configured", s.VPCID)
	}
	in := &ec2.DescribeNetworkAclsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{s.VPCID}}}}
	for range maxACLPages {
		out, err := f.d.ACLs.DescribeNetworkAcls(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("list the network ACLs of %s: %w", s.VPCID, err)
		}
		for _, n := range out.NetworkAcls {
			if aws.ToString(n.VpcId) != s.VPCID {
				continue
			}
			if slices.ContainsFunc(n.Tags, func(t ec2types.Tag) bool { return strings.HasPrefix(aws.ToString(t.Key), "banshee:") }) {
				ids = append(ids, aws.ToString(n.NetworkAclId))
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return ids, false, nil
		}
		in.NextToken = out.NextToken
	}
	return nil, false, fmt.Errorf("list the network ACLs of %s: more than %d pages", s.VPCID, maxACLPages)
}

// confine marks the network ACLs of the snapshot the function may not
// change (Scope.Manages) as unmanaged, with the reason: the policy then
// falls back to the hosts for them, or refuses when the attack asked for
// VPC scope. It is a policy input, decided once, never a post-edit.
func (f *Function) confine(attacks []policy.Attack, snap *policy.Snapshot) {
	for subnet, n := range snap.NACLs {
		vpcID := ""
		for _, a := range attacks {
			for _, t := range a.Targets {
				if t.SubnetID == subnet && t.VPCID != "" {
					vpcID = t.VPCID
				}
			}
		}
		if ok, why := f.d.Scope.Manages(n.ID, vpcID); !ok {
			n.Unmanaged = why
			snap.NACLs[subnet] = n
		}
	}
}

// managed returns an error when the network ACL of a subnet (or an ACL id)
// is not one the function may change.
func (f *Function) managed(ctx context.Context, nacls NACLs, subnetOrNACL string) error {
	s := f.d.Scope
	if len(s.NACLIDs) == 0 && s.VPCID == "" {
		return nil
	}
	naclID, vpcID := subnetOrNACL, ""
	if strings.HasPrefix(subnetOrNACL, "subnet-") {
		n, err := nacls.NACLFor(ctx, subnetOrNACL)
		if err != nil {
			return err
		}
		naclID = n.ID
	}
	if len(s.NACLIDs) == 0 && strings.HasPrefix(subnetOrNACL, "subnet-") {
		ts, err := nacls.Resolve(ctx, nil, subnetOrNACL)
		if err != nil {
			return err
		}
		for _, t := range ts {
			vpcID = cmpOr(vpcID, t.VPCID)
		}
	}
	if ok, why := s.Manages(naclID, vpcID); !ok {
		return fmt.Errorf("not changed: %s", why)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
