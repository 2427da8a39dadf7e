package awsnacl

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/policy"
)

// naclState is one read of a network ACL: every entry, banshee's metadata
// tags and how many tags it has in all.
type naclState struct {
	id      string
	vpcID   string
	subnets []string
	entries []policy.NACLEntry
	tags    map[int]string // banshee:rule:N → raw value
	seen    map[int]string // banshee:seen:N → raw value (meta.go)
	nTags   int            // every user tag on the NACL
	vpcTag  string         // banshee:vpc-cidrs, the cached VPC CIDRs (vpccache.go)
	managed bool           // carries a banshee: tag: banshee manages it
	readAt  time.Time
}

// naclFromAWS converts a DescribeNetworkAcls result.
func naclFromAWS(n types.NetworkAcl, at time.Time) (*naclState, error) {
	st := &naclState{id: aws.ToString(n.NetworkAclId), vpcID: aws.ToString(n.VpcId), tags: map[int]string{}, seen: map[int]string{}, readAt: at}
	for _, a := range n.Associations {
		if s := aws.ToString(a.SubnetId); s != "" {
			st.subnets = append(st.subnets, s)
		}
	}
	slices.Sort(st.subnets)
	for _, e := range n.Entries {
		pe, err := entryFromAWS(e)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", st.id, err)
		}
		st.entries = append(st.entries, pe)
	}
	for _, t := range n.Tags {
		k := aws.ToString(t.Key)
		if len(k) >= 4 && k[:4] == "aws:" {
			continue
		}
		st.nTags++
		if strings.HasPrefix(k, managedPrefix) {
			st.managed = true
		}
		if num, ok := parseRuleKey(k); ok {
			st.tags[num] = aws.ToString(t.Value)
		}
		if num, ok := parseSeenKey(k); ok {
			st.seen[num] = aws.ToString(t.Value)
		}
		if k == vpcCIDRsKey {
			st.vpcTag = aws.ToString(t.Value)
		}
	}
	return st, nil
}

func entryFromAWS(e types.NetworkAclEntry) (policy.NACLEntry, error) {
	pe := policy.NACLEntry{
		RuleNumber: int(aws.ToInt32(e.RuleNumber)),
		Egress:     aws.ToBool(e.Egress),
		Allow:      e.RuleAction == types.RuleActionAllow,
	}
	cidr := aws.ToString(e.CidrBlock)
	if v6 := aws.ToString(e.Ipv6CidrBlock); v6 != "" {
		cidr = v6
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return policy.NACLEntry{}, fmt.Errorf("entry %d: bad CIDR %q", pe.RuleNumber, cidr)
	}
	pe.CIDR = p.Masked()
	pe.Port = portFromAWS(aws.ToString(e.Protocol), e.PortRange)
	return pe, nil
}

// portFromAWS converts a NACL protocol number and port range.
func portFromAWS(proto string, pr *types.PortRange) policy.Port {
	p := policy.Port{Proto: protoName(proto)}
	if pr != nil && (p.Proto == "tcp" || p.Proto == "udp") {
		p.From = uint16(aws.ToInt32(pr.From))
		p.To = uint16(aws.ToInt32(pr.To))
	}
	return p
}

// protoName turns an EC2 protocol (number or name) into policy's name;
// "" means every protocol.
func protoName(proto string) string {
	switch proto = strings.ToLower(proto); proto {
	case "-1", "", "all":
		return ""
	case "6", "tcp":
		return "tcp"
	case "17", "udp":
		return "udp"
	case "1", "icmp":
		return "icmp"
	case "58", "icmpv6":
		return "icmpv6"
	}
	return proto
}

// inRange reports whether rule number n is in the reserved range.
func (m *Manager) inRange(n int) bool { return n >= m.cfg.RuleMin && n <= m.cfg.RuleMax }

// ours reports whether e is one of banshee's entries: a deny in the range.
func (m *Manager) ours(e policy.NACLEntry) bool { return !e.Allow && m.inRange(e.RuleNumber) }

// ourAt reports whether rule n holds a block of ours: an ingress deny in
// the range, or with nacl.egress an egress one.
func (m *Manager) ourAt(st *naclState, n int) bool {
	for _, e := range st.entries {
		if e.RuleNumber == n && m.ours(e) && (!e.Egress || m.cfg.Egress) {
			return true
		}
	}
	return false
}

// entry returns the entry with number n in one direction.
func (st *naclState) entry(n int, egress bool) (policy.NACLEntry, bool) {
	for _, e := range st.entries {
		if e.RuleNumber == n && e.Egress == egress {
			return e, true
		}
	}
	return policy.NACLEntry{}, false
}

// used reports whether number n is taken in either direction.
func (st *naclState) used(n int) bool {
	for _, e := range st.entries {
		if e.RuleNumber == n {
			return true
		}
	}
	return false
}

func (st *naclState) removeEntry(n int, egress bool) {
	st.entries = slices.DeleteFunc(st.entries, func(e policy.NACLEntry) bool { return e.RuleNumber == n && e.Egress == egress })
}

func (st *naclState) putEntry(e policy.NACLEntry) {
	st.removeEntry(e.RuleNumber, e.Egress)
	st.entries = append(st.entries, e)
}

// meta returns the decoded metadata of rule n, if its tag exists, parses
// and names the CIDR the ingress entry holds.
func (st *naclState) meta(n int) (meta, bool) {
	v, ok := st.tags[n]
	if !ok {
		return meta{}, false
	}
	md, err := decodeMeta(v)
	if err != nil {
		return meta{}, false
	}
	e, ok := st.entry(n, false)
	if ok && e.CIDR != md.CIDR {
		return meta{}, false
	}
	return md, true
}

// view returns the NACL as the policy sees it, metadata merged in.
func (m *Manager) view(st *naclState) policy.NACL {
	out := policy.NACL{ID: st.id, SubnetIDs: slices.Clone(st.subnets)}
	for _, e := range st.entries {
		if m.ours(e) {
			if md, ok := st.meta(e.RuleNumber); ok {
				e.ExpiresAt, e.Reason, e.Origin, e.Severity = md.Exp, md.Reason, md.Origin, md.Severity
				e.Volume, e.LastSeen = md.Volume, md.At
			}
		}
		out.Entries = append(out.Entries, e)
	}
	slices.SortFunc(out.Entries, func(a, b policy.NACLEntry) int {
		if a.Egress != b.Egress {
			if a.Egress {
				return 1
			}
			return -1
		}
		return a.RuleNumber - b.RuleNumber
	})
	return out
}

// blocks returns the active blocks of a NACL (ingress entries of ours).
// Entries without metadata are listed with the reason saying so.
// NoMetadataReason is the reason of a listed deny in banshee's reserved
// range that has no banshee metadata (drift: a sweep adopts it).
const NoMetadataReason = "no banshee metadata (a sweep adopts it once seen so for the grace period)"

func (m *Manager) blocks(st *naclState) []policy.Block {
	var out []policy.Block
	for _, e := range st.entries {
		if e.Egress || !m.ours(e) {
			continue
		}
		b := policy.Block{Target: e.CIDR, Scope: policy.ScopeVPC, NACLID: st.id, RuleNumber: e.RuleNumber}
		if md, ok := st.meta(e.RuleNumber); ok {
			b.ExpiresAt, b.Reason, b.Origin, b.Severity = md.Exp, md.Reason, md.Origin, md.Severity
		} else {
			b.Reason = NoMetadataReason
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b policy.Block) int { return a.RuleNumber - b.RuleNumber })
	return out
}

// fetch runs DescribeNetworkAcls for one NACL id or subnet id and
// returns the NACL as read, or a *NotFoundError. It caches nothing.
func (m *Manager) fetch(ctx context.Context, naclID, subnetID string) (*naclState, error) {
	in := &ec2.DescribeNetworkAclsInput{}
	what, id := "network ACL", naclID
	if naclID != "" {
		in.NetworkAclIds = []string{naclID}
	} else {
		what, id = "subnet", subnetID
		in.Filters = []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{subnetID}}}
	}
	out, err := m.ec2.DescribeNetworkAcls(ctx, in)
	if err != nil {
		return nil, classify("describing the network ACL of "+what+" "+id, id, err)
	}
	if len(out.NetworkAcls) == 0 {
		return nil, fmt.Errorf("describing the network ACL of %s %s: %w", what, id, &NotFoundError{Kind: what, ID: id})
	}
	return naclFromAWS(out.NetworkAcls[0], m.now())
}

// naclRef names a cached NACL outside its write lock: what is needed to
// take the lock (locked) and the VPC, copied, never the shared state.
type naclRef struct{ id, vpcID string }

// describe reads one NACL (fetch) and installs the read in this
// Manager's cache. It must not be called under the NACL's write lock (it
// takes it); under the lock, use reread.
func (m *Manager) describe(ctx context.Context, naclID, subnetID string) (naclRef, error) {
	st, err := m.fetch(ctx, naclID, subnetID)
	if err != nil {
		return naclRef{}, err
	}
	return m.install(st), nil
}

// describeAll reads every NACL of the region that banshee manages (one
// carrying a banshee: tag; the tag-key filter asks EC2 for those only,
// and the tags are checked again here), paginated.
func (m *Manager) describeAll(ctx context.Context) ([]naclRef, error) {
	var out []naclRef
	p := ec2.NewDescribeNetworkAclsPaginator(m.ec2, &ec2.DescribeNetworkAclsInput{
		Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{managedPrefix + "*"}}},
	})
	for i := 0; p.HasMorePages() && i < 1000; i++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("listing network ACLs", "", err)
		}
		for _, n := range page.NetworkAcls {
			st, err := naclFromAWS(n, m.now())
			if err != nil {
				return nil, err
			}
			if !st.managed {
				continue
			}
			out = append(out, m.install(st))
		}
	}
	return out, nil
}

// install makes fresh this Manager's read of its NACL. The cached
// *naclState of a NACL id is updated in place, under the NACL's write
// lock, so a writer holding it never works on a copy the cache no longer
// holds.
func (m *Manager) install(fresh *naclState) naclRef {
	l := m.naclLock(fresh.id)
	l.Lock()
	defer l.Unlock()
	st := m.adopt(fresh, nil)
	return naclRef{id: st.id, vpcID: st.vpcID}
}

// reread reads st's NACL again and updates st, the cached state, in
// place. The caller holds the NACL's write lock.
func (m *Manager) reread(ctx context.Context, st *naclState) error {
	fresh, err := m.fetch(ctx, st.id, "")
	if err != nil {
		return err
	}
	m.adopt(fresh, st)
	return nil
}

// adopt copies fresh into the cached state of its NACL (into st when
// given, the state the caller holds) and returns that state. The caller
// holds the NACL's write lock.
func (m *Manager) adopt(fresh, st *naclState) *naclState {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st == nil {
		st = m.nacls[fresh.id]
	}
	if st == nil {
		st = fresh
	} else {
		*st = *fresh
	}
	m.nacls[st.id] = st
	for _, s := range st.subnets {
		m.bySubnet[s] = st.id
	}
	return st
}

func (m *Manager) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nacls, id)
}

// state returns the NACL of a subnet id ("subnet-…") or NACL id ("acl-…"),
// from this Manager's cache when read within maxAge, else read now. The
// state itself is only used through locked.
func (m *Manager) state(ctx context.Context, subnetOrNACL string, fresh bool) (naclRef, error) {
	naclID, subnetID := "", ""
	if isNACLID(subnetOrNACL) {
		naclID = subnetOrNACL
	} else {
		subnetID = subnetOrNACL
	}
	if !fresh {
		m.mu.Lock()
		id := naclID
		if id == "" {
			id = m.bySubnet[subnetID]
		}
		var ref naclRef
		st := m.nacls[id]
		ok := st != nil && m.now().Sub(st.readAt) < m.maxAge
		if ok {
			ref = naclRef{id: st.id, vpcID: st.vpcID}
		}
		m.mu.Unlock()
		if ok {
			return ref, nil
		}
	}
	return m.describe(ctx, naclID, subnetID)
}

func isNACLID(s string) bool { return len(s) > 4 && s[:4] == "acl-" }

// NACLFor returns the network ACL associated with a subnet, every entry
// included, banshee's metadata merged into its own entries.
func (m *Manager) NACLFor(ctx context.Context, subnetID string) (policy.NACL, error) {
	st, err := m.state(ctx, subnetID, false)
	if err != nil {
		return policy.NACL{}, err
	}
	var out policy.NACL
	_, err = m.locked(st.id, func(st *naclState) ([]policy.Block, error) {
		out = m.view(st)
		return nil, nil
	})
	return out, err
}

// i32 returns a pointer to n as the EC2 input types want it.
func i32(n int) *int32 { v := int32(n); return &v }
