package awsnacl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The VPC's CIDR blocks are cached in one tag on each NACL banshee writes
// to, so that later blocks on that NACL need no DescribeVpcs call:
//
//	banshee:vpc-cidrs = at=1767225600;vpc=vpc-0abc;cidrs=10.1.0.0/16,2600:1f18:1234:5600::/56
//
// at is when DescribeVpcs returned them (Unix seconds), not when the tag
// was written, so rewriting the tag never extends how long one answer is
// trusted. The tag is written in the CreateTags call that writes rule
// metadata anyway, never in a call of its own.
const vpcCIDRsKey = "banshee:vpc-cidrs"

// vpcSkew is how far in the future a cache time may lie (clock skew
// between writers) before the tag is distrusted.
const vpcSkew = time.Minute

// vpcInfo is what is known of one VPC's CIDRs and since when.
type vpcInfo struct {
	vpcID   string
	cidrs   []netip.Prefix
	at      time.Time // when DescribeVpcs returned them
	fromAPI bool      // read by this Manager (not from a NACL's tag)
}

// encodeVPCTag returns the tag value, or false when it would not fit in a
// tag value (many secondary blocks): then there is no cache.
func encodeVPCTag(v vpcInfo) (string, bool) {
	parts := make([]string, len(v.cidrs))
	for i, c := range v.cidrs {
		parts[i] = c.String()
	}
	s := fmt.Sprintf("at=%d;vpc=%s;cidrs=%s", v.at.Unix(), v.vpcID, strings.Join(parts, ","))
	return s, len(s) <= maxTagValue && len(v.cidrs) > 0
}

// decodeVPCTag parses a value written by encodeVPCTag.
func decodeVPCTag(s string) (vpcInfo, error) {
	var v vpcInfo
	seen := 0
	for _, kv := range strings.Split(s, ";") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return vpcInfo{}, fmt.Errorf("%s %q: field %q without '='", vpcCIDRsKey, s, kv)
		}
		switch k {
		case "at":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return vpcInfo{}, fmt.Errorf("%s %q: bad at %q", vpcCIDRsKey, s, val)
			}
			v.at = time.Unix(n, 0).UTC()
			seen |= 1
		case "vpc":
			v.vpcID = val
			seen |= 2
		case "cidrs":
			for _, c := range strings.Split(val, ",") {
				p, err := netip.ParsePrefix(c)
				if err != nil || p != p.Masked() {
					return vpcInfo{}, fmt.Errorf("%s %q: bad CIDR %q", vpcCIDRsKey, s, c)
				}
				v.cidrs = append(v.cidrs, p)
			}
			seen |= 4
		}
	}
	if seen != 7 || len(v.cidrs) == 0 {
		return vpcInfo{}, fmt.Errorf("%s %q: at, vpc and cidrs are required", vpcCIDRsKey, s)
	}
	return v, nil
}

// trusted reports whether v may stand in for DescribeVpcs now: read
// within the allowed age (the cache's, or for this Manager's own read the
// longer of that and its read max age), not from the future, and covering
// every private address of the instances in that VPC the invocation knows
// (an instance in a secondary block added since shows the cache is stale).
func (m *Manager) trusted(v vpcInfo, insts []instance) bool {
	limit := m.cidrMaxAge
	if v.fromAPI {
		limit = max(limit, m.maxAge)
	}
	age := m.now().Sub(v.at)
	if age < -vpcSkew || age >= limit {
		return false
	}
	for _, in := range insts {
		if in.vpcID != v.vpcID {
			continue
		}
		for _, a := range in.private {
			if !containsAddr(v.cidrs, a) {
				return false
			}
		}
	}
	return true
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// taggedVPC returns the newest cache of a VPC's CIDRs among the NACLs this
// Manager has read.
func (m *Manager) taggedVPC(vpcID string) (vpcInfo, bool) {
	var best vpcInfo
	found := false
	for _, st := range m.nacls {
		if st.vpcID != vpcID || st.vpcTag == "" {
			continue
		}
		v, err := decodeVPCTag(st.vpcTag)
		if err != nil || v.vpcID != vpcID {
			continue
		}
		if !found || v.at.After(best.at) {
			best, found = v, true
		}
	}
	return best, found
}

// vpcTag returns the cache tag to write with st's metadata: only for CIDRs
// this Manager read from DescribeVpcs, newer than the NACL's cache, when
// the cache is enabled and the NACL has room for one more tag beyond
// extra new ones.
func (m *Manager) vpcTag(st *naclState, extra int) (types.Tag, bool) {
	if m.cidrMaxAge <= 0 || st.vpcID == "" {
		return types.Tag{}, false
	}
	m.mu.Lock()
	v, ok := m.vpcs[st.vpcID]
	m.mu.Unlock()
	if !ok || !v.fromAPI {
		return types.Tag{}, false
	}
	if cur, err := decodeVPCTag(st.vpcTag); err == nil && cur.vpcID == st.vpcID && !cur.at.Before(v.at) {
		return types.Tag{}, false
	}
	if st.vpcTag == "" && st.nTags+extra+1 > maxTags {
		return types.Tag{}, false
	}
	val, ok := encodeVPCTag(v)
	if !ok {
		return types.Tag{}, false
	}
	return types.Tag{Key: aws.String(vpcCIDRsKey), Value: aws.String(val)}, true
}
