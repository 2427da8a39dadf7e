package awsnacl

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/policy"
)

// FillSnapshot adds to snap what AWS knows about targets: the inbound
// security-group rules of each instance target (managed prefix lists
// expanded into one rule per CIDR), the CIDRs (IPv4 and IPv6) of their
// VPCs, the network ACL of each subnet with banshee's metadata merged in,
// and the VPC blocks of those NACLs. Calls: one DescribeInstances for
// instances Resolve did not see, one DescribeSecurityGroups, one
// GetManagedPrefixListEntries per prefix list, one DescribeNetworkAcls per
// subnet not read yet in this invocation, and one DescribeVpcs unless the
// NACLs read carry a trusted cache of the VPC's CIDRs (vpccache.go).
//
// Rules whose source is another security group are left out: they admit
// only that group's members, addresses inside the VPC (or a peer), never
// the Internet sources banshee blocks.
func (m *Manager) FillSnapshot(ctx context.Context, targets []policy.Target, snap *policy.Snapshot) error {
	var instIDs, subnets, vpcs []string
	for _, t := range targets {
		if t.InstanceID != "" && !slices.Contains(instIDs, t.InstanceID) {
			instIDs = append(instIDs, t.InstanceID)
		}
	}
	var insts []instance
	if len(instIDs) > 0 {
		var err error
		if insts, err = m.lookupInstances(ctx, instIDs); err != nil {
			return err
		}
	}
	for _, t := range targets {
		s, v := t.SubnetID, t.VPCID
		if t.InstanceID != "" {
			for _, in := range insts {
				if in.id == t.InstanceID {
					s, v = cmpOr(s, in.subnetID), cmpOr(v, in.vpcID)
				}
			}
		}
		if s != "" && !slices.Contains(subnets, s) {
			subnets = append(subnets, s)
		}
		if v != "" && !slices.Contains(vpcs, v) {
			vpcs = append(vpcs, v)
		}
	}

	// NACLs first: a bare subnet target learns its VPC from its NACL.
	if snap.NACLs == nil {
		snap.NACLs = map[string]policy.NACL{}
	}
	for _, s := range subnets {
		st, err := m.state(ctx, s, false)
		if err != nil {
			return err
		}
		if _, err := m.locked(st.id, func(st *naclState) ([]policy.Block, error) {
			snap.NACLs[s] = m.view(st)
			for _, b := range m.blocks(st) {
				if !slices.ContainsFunc(snap.Blocks, func(x policy.Block) bool { return x.NACLID == b.NACLID && x.RuleNumber == b.RuleNumber }) {
					snap.Blocks = append(snap.Blocks, b)
				}
			}
			if st.vpcID != "" && !slices.Contains(vpcs, st.vpcID) {
				vpcs = append(vpcs, st.vpcID)
			}
			return nil, nil
		}); err != nil {
			return err
		}
	}

	cidrs, err := m.vpcCIDRs(ctx, vpcs, insts)
	if err != nil {
		return err
	}
	for _, c := range cidrs {
		if !slices.Contains(snap.VPCCIDRs, c) {
			snap.VPCCIDRs = append(snap.VPCCIDRs, c)
		}
	}

	var groups []string
	for _, in := range insts {
		for _, g := range in.groups {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
	}
	if len(groups) == 0 {
		return nil
	}
	rules, err := m.groupRules(ctx, groups)
	if err != nil {
		return err
	}
	if snap.SGRules == nil {
		snap.SGRules = map[string][]policy.SGRule{}
	}
	for _, in := range insts {
		var rs []policy.SGRule
		for _, g := range in.groups {
			rs = append(rs, rules[g]...)
		}
		snap.SGRules[in.id] = rs
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// vpcCIDRs returns the associated IPv4 and IPv6 CIDRs of the VPCs: from
// this Manager's earlier read, else from the banshee:vpc-cidrs tag of a
// NACL it has read (vpccache.go) when that is trusted for insts, else one
// DescribeVpcs call for the rest.
func (m *Manager) vpcCIDRs(ctx context.Context, ids []string, insts []instance) ([]netip.Prefix, error) {
	var missing []string
	m.mu.Lock()
	for _, id := range ids {
		if v, ok := m.vpcs[id]; ok && m.trusted(v, insts) {
			continue
		}
		if v, ok := m.taggedVPC(id); ok && m.trusted(v, insts) {
			m.vpcs[id] = v
			continue
		}
		missing = append(missing, id)
	}
	m.mu.Unlock()
	if len(missing) > 0 {
		at := m.now()
		out, err := m.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: missing})
		if err != nil {
			return nil, classify("describing VPCs "+strings.Join(missing, ", "), strings.Join(missing, ", "), err)
		}
		m.mu.Lock()
		for _, v := range out.Vpcs {
			var ps []netip.Prefix
			add := func(s string) {
				if p, err := netip.ParsePrefix(s); err == nil && !slices.Contains(ps, p.Masked()) {
					ps = append(ps, p.Masked())
				}
			}
			add(aws.ToString(v.CidrBlock))
			for _, a := range v.CidrBlockAssociationSet {
				if a.CidrBlockState == nil || a.CidrBlockState.State == types.VpcCidrBlockStateCodeAssociated {
					add(aws.ToString(a.CidrBlock))
				}
			}
			for _, a := range v.Ipv6CidrBlockAssociationSet {
				if a.Ipv6CidrBlockState == nil || a.Ipv6CidrBlockState.State == types.VpcCidrBlockStateCodeAssociated {
					add(aws.ToString(a.Ipv6CidrBlock))
				}
			}
			id := aws.ToString(v.VpcId)
			m.vpcs[id] = vpcInfo{vpcID: id, cidrs: ps, at: at, fromAPI: true}
		}
		m.mu.Unlock()
	}
	var out []netip.Prefix
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		v, ok := m.vpcs[id]
		if !ok {
			return nil, fmt.Errorf("describing VPCs: %w", &NotFoundError{Kind: "VPC", ID: id})
		}
		out = append(out, v.cidrs...)
	}
	return out, nil
}

// groupRules returns the inbound rules of the groups, by group id.
func (m *Manager) groupRules(ctx context.Context, groups []string) (map[string][]policy.SGRule, error) {
	out := map[string][]policy.SGRule{}
	p := ec2.NewDescribeSecurityGroupsPaginator(m.ec2, &ec2.DescribeSecurityGroupsInput{GroupIds: groups})
	for i := 0; p.HasMorePages() && i < 100; i++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("describing security groups "+strings.Join(groups, ", "), strings.Join(groups, ", "), err)
		}
		for _, g := range page.SecurityGroups {
			gid := aws.ToString(g.GroupId)
			for _, perm := range g.IpPermissions {
				port := sgPort(perm)
				rule := func(src netip.Prefix, desc, pl string) {
					out[gid] = append(out[gid], policy.SGRule{GroupID: gid, Description: desc, Port: port, Source: src, PrefixListID: pl})
				}
				for _, r := range perm.IpRanges {
					if p, err := netip.ParsePrefix(aws.ToString(r.CidrIp)); err == nil {
						rule(p.Masked(), aws.ToString(r.Description), "")
					}
				}
				for _, r := range perm.Ipv6Ranges {
					if p, err := netip.ParsePrefix(aws.ToString(r.CidrIpv6)); err == nil {
						rule(p.Masked(), aws.ToString(r.Description), "")
					}
				}
				for _, pl := range perm.PrefixListIds {
					id := aws.ToString(pl.PrefixListId)
					cidrs, err := m.prefixList(ctx, id)
					if err != nil {
						return nil, err
					}
					for _, c := range cidrs {
						rule(c, aws.ToString(pl.Description), id)
					}
				}
			}
		}
	}
	return out, nil
}

// prefixList returns the CIDRs of a managed prefix list (cached).
func (m *Manager) prefixList(ctx context.Context, id string) ([]netip.Prefix, error) {
	m.mu.Lock()
	ps, ok := m.plists[id]
	m.mu.Unlock()
	if ok {
		return ps, nil
	}
	p := ec2.NewGetManagedPrefixListEntriesPaginator(m.ec2, &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String(id)})
	for i := 0; p.HasMorePages() && i < 100; i++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("reading managed prefix list "+id, id, err)
		}
		for _, e := range page.Entries {
			if c, err := netip.ParsePrefix(aws.ToString(e.Cidr)); err == nil {
				ps = append(ps, c.Masked())
			}
		}
	}
	m.mu.Lock()
	m.plists[id] = ps
	m.mu.Unlock()
	return ps, nil
}

// sgPort converts the protocol and ports of a security-group permission.
func sgPort(p types.IpPermission) policy.Port {
	out := policy.Port{Proto: protoName(aws.ToString(p.IpProtocol))}
	if out.Proto != "tcp" && out.Proto != "udp" {
		return out // every port (or none: icmp and other protocols)
	}
	from, to := aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort)
	if from < 0 || to < 0 || (from == 0 && to == 65535) {
		return out
	}
	out.From, out.To = uint16(from), uint16(to)
	return out
}
