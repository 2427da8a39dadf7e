package awsnacl

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// Metadata lives in tags on the network ACL, one per rule number:
//
//	banshee:rule:7 = exp=1767225600;origin=cli;cidr=203.0.113.7/32;sev=5;reason=pop3+bruteforce
//
// exp is Unix seconds (0: never), sev is optional, reason is URL query-escaped and cut so the
// value stays within AWS's 256-character limit. One rule number holds the
// ingress entry and, with nacl.egress, the egress entry of the same block.
const (
	tagPrefix   = "banshee:rule:"
	maxTagValue = 256
	maxTags     = 50 // user tags per EC2 resource
)

// meta is the metadata of one block.
type meta struct {
	Exp      time.Time // zero: never expires
	Origin   policy.Origin
	CIDR     netip.Prefix
	Reason   string
	Severity int
}

func ruleKey(n int) string { return tagPrefix + strconv.Itoa(n) }

// parseRuleKey returns the rule number of a metadata tag key.
func parseRuleKey(k string) (int, bool) {
	s, ok := strings.CutPrefix(k, tagPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 32766 {
		return 0, false
	}
	return n, true
}

// encode writes the tag value, cutting the reason to fit.
func (m meta) encode() string {
	exp := int64(0)
	if !m.Exp.IsZero() {
		exp = m.Exp.Unix()
	}
	head := fmt.Sprintf("exp=%d;origin=%s;cidr=%s;", exp, url.QueryEscape(string(m.Origin)), m.CIDR)
	if m.Severity > 0 {
		head += fmt.Sprintf("sev=%d;", m.Severity)
	}
	head += "reason="
	reason := []rune(m.Reason)
	for len(reason) > 0 {
		esc := url.QueryEscape(string(reason))
		if len(head)+len(esc) <= maxTagValue {
			return head + esc
		}
		// Cut by the overshoot (at least one rune) and try again.
		over := len(head) + len(esc) - maxTagValue
		cut := max(1, over/3)
		if cut > len(reason) {
			cut = len(reason)
		}
		reason = reason[:len(reason)-cut]
	}
	return head
}

// decodeMeta parses a tag value written by encode.
func decodeMeta(v string) (meta, error) {
	var m meta
	var seen int
	for _, kv := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return meta{}, fmt.Errorf("metadata %q: field %q without '='", v, kv)
		}
		switch k {
		case "exp":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return meta{}, fmt.Errorf("metadata %q: bad exp %q", v, val)
			}
			if n > 0 {
				m.Exp = time.Unix(n, 0).UTC()
			}
			seen |= 1
		case "origin":
			o, err := url.QueryUnescape(val)
			if err != nil {
				return meta{}, fmt.Errorf("metadata %q: bad origin: %w", v, err)
			}
			m.Origin = policy.Origin(o)
		case "cidr":
			p, err := netip.ParsePrefix(val)
			if err != nil {
				return meta{}, fmt.Errorf("metadata %q: bad cidr: %w", v, err)
			}
			m.CIDR = p
			seen |= 2
		case "sev":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return meta{}, fmt.Errorf("metadata %q: bad sev %q", v, val)
			}
			m.Severity = n
		case "reason":
			r, err := url.QueryUnescape(val)
			if err != nil {
				return meta{}, fmt.Errorf("metadata %q: bad reason: %w", v, err)
			}
			m.Reason = r
		}
	}
	if seen != 3 {
		return meta{}, fmt.Errorf("metadata %q: exp and cidr are required", v)
	}
	return m, nil
}

// expired reports whether m has an expiry at or before now.
func (m meta) expired(now time.Time) bool { return !m.Exp.IsZero() && !m.Exp.After(now) }
