package awsnacl

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// Metadata lives in tags on the network ACL, one per rule number:
//
//	banshee:rule:7 = exp=1767225600;origin=cli;cidr=203.0.113.7/32;sev=5;vol=40;at=1767222000;reason=pop3+bruteforce
//
// exp is Unix seconds (0: never); sev, vol (the attack volume the entry
// was blocked for, summed over its sources and re-blocks) and at (Unix
// seconds of the last write) are optional and weigh the entry when the
// range is placed again; reason is URL query-escaped and cut so the
// value stays within AWS's 256-character limit. One rule number holds the
// ingress entry and, with nacl.egress, the egress entry of the same block.
const (
	tagPrefix   = "banshee:rule:"
	maxTagValue = 256
	maxTags     = 50 // user tags per EC2 resource
	// managedPrefix starts every tag banshee writes: a NACL carrying one
	// is a NACL banshee manages.
	managedPrefix = "banshee:"
)

// An entry of the reserved range found without metadata is not adopted
// on first sight: Sweep records the sighting in a tag, and adopts the
// entry only when a later sweep, at least the grace period on, finds it
// still without metadata and unchanged:
//
//	banshee:seen:7 = at=1767225600;cidr=203.0.113.7/32;tag=0
//
// at is the sweep's time of the first sighting, cidr the entry's CIDR
// then, tag a hash of the metadata tag value the number carried then (0:
// none), so a tag that does not match its entry is only replaced when it
// has not changed for the whole grace period.
const seenPrefix = "banshee:seen:"

// seen is one recorded sighting of an entry without metadata.
type seen struct {
	At   time.Time
	CIDR netip.Prefix
	Tag  uint32
}

func seenKey(n int) string { return seenPrefix + strconv.Itoa(n) }

func (s seen) encode() string {
	return fmt.Sprintf("at=%d;cidr=%s;tag=%d", s.At.Unix(), s.CIDR, s.Tag)
}

// decodeSeen parses a value written by seen.encode.
func decodeSeen(v string) (seen, error) {
	var s seen
	got := 0
	for _, kv := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return seen{}, fmt.Errorf("sighting %q: field %q without '='", v, kv)
		}
		switch k {
		case "at":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return seen{}, fmt.Errorf("sighting %q: bad at %q", v, val)
			}
			s.At = time.Unix(n, 0).UTC()
			got |= 1
		case "cidr":
			p, err := netip.ParsePrefix(val)
			if err != nil {
				return seen{}, fmt.Errorf("sighting %q: bad cidr: %w", v, err)
			}
			s.CIDR = p
			got |= 2
		case "tag":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return seen{}, fmt.Errorf("sighting %q: bad tag %q", v, val)
			}
			s.Tag = uint32(n)
			got |= 4
		}
	}
	if got != 7 {
		return seen{}, fmt.Errorf("sighting %q: at, cidr and tag are required", v)
	}
	return s, nil
}

// tagHash identifies a metadata tag value in a sighting (0: no tag).
func tagHash(v string, ok bool) uint32 {
	if !ok {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(v))
	return max(h.Sum32(), 1)
}

// meta is the metadata of one block.
type meta struct {
	Exp      time.Time // zero: never expires
	Origin   policy.Origin
	CIDR     netip.Prefix
	Reason   string
	Severity int
	Volume   int64     // failures or packets seen from what the entry denies (0: unknown)
	At       time.Time // when the block was last written or extended (zero: unknown)
}

func ruleKey(n int) string { return tagPrefix + strconv.Itoa(n) }

// parseRuleKey returns the rule number of a metadata tag key.
func parseRuleKey(k string) (int, bool) { return parseNumKey(k, tagPrefix) }

// parseSeenKey returns the rule number of a sighting tag key.
func parseSeenKey(k string) (int, bool) { return parseNumKey(k, seenPrefix) }

func parseNumKey(k, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(k, prefix)
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
	if m.Volume > 0 {
		head += fmt.Sprintf("vol=%d;", m.Volume)
	}
	if !m.At.IsZero() {
		head += fmt.Sprintf("at=%d;", m.At.Unix())
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
		case "vol":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return meta{}, fmt.Errorf("metadata %q: bad vol %q", v, val)
			}
			m.Volume = n
		case "at":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return meta{}, fmt.Errorf("metadata %q: bad at %q", v, val)
			}
			m.At = time.Unix(n, 0).UTC()
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
