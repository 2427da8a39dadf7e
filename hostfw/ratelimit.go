package hostfw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// RateLimit drops a source's new connections to a port once it opened Hits
// of them within Seconds, with the iptables "recent" module. It lives in
// banshee's chain, after the blocklist rule, and is saved and restored with
// the rest of banshee's state.
type RateLimit struct {
	Name    string `json:"name"`  // also the recent list, as bsh_NAME
	Proto   string `json:"proto"` // tcp or udp
	Port    uint16 `json:"port"`
	Hits    int    `json:"hits"`
	Seconds int    `json:"seconds"`
	Comment string `json:"comment,omitempty"` // free text, shown in iptables-save
}

// maxHits is the most packets xt_recent remembers per source by default
// (module parameter ip_pkt_list_tot).
const maxHits = 20

// Validate checks a rate limit before any rule is built from it.
func (r RateLimit) Validate() error {
	switch {
	case !validName(r.Name, 24, "_-"):
		return fmt.Errorf("rate limit name %q: want 1-24 letters, digits, _ or -", r.Name)
	case r.Proto != "tcp" && r.Proto != "udp":
		return fmt.Errorf("rate limit protocol %q: want tcp or udp", r.Proto)
	case r.Port == 0:
		return fmt.Errorf("rate limit port 0: want 1-65535")
	case r.Hits < 1 || r.Hits > maxHits:
		return fmt.Errorf("rate limit hits %d: want 1-%d (xt_recent remembers at most %d packets per source)", r.Hits, maxHits, maxHits)
	case r.Seconds < 1 || r.Seconds > 86400:
		return fmt.Errorf("rate limit seconds %d: want 1-86400", r.Seconds)
	case len(r.Comment) > 200:
		return fmt.Errorf("rate limit comment %q: longer than 200 bytes", r.Comment)
	}
	return CheckText("rate limit comment", r.Comment)
}

// rules renders the two rules of a rate limit: record every new connection,
// drop the one that reaches Hits within Seconds.
func (r RateLimit) rules() []Rule {
	match := Rule{"-p", r.Proto, "--dport", strconv.Itoa(int(r.Port)), "-m", "conntrack", "--ctstate", "NEW", "-m", "recent", "--name", "bsh_" + r.Name}
	text := "banshee ratelimit " + r.Name
	if r.Comment != "" {
		text += ": " + r.Comment
	}
	comment := Rule{"-m", "comment", "--comment", text}
	set := slices.Concat(match, Rule{"--set"}, comment)
	drop := slices.Concat(match, Rule{"--update", "--seconds", strconv.Itoa(r.Seconds), "--hitcount", strconv.Itoa(r.Hits)}, comment, Rule{"-j", "DROP"})
	return []Rule{set, drop}
}

const rateLimitFile = "ratelimits.json"

func (s *store) loadRateLimits() ([]RateLimit, error) {
	if s == nil {
		return nil, nil
	}
	data, err := os.ReadFile(s.path(rateLimitFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading rate limits: %w", err)
	}
	var rls []RateLimit
	if err := json.Unmarshal(data, &rls); err != nil {
		return nil, fmt.Errorf("reading rate limits %s: %w", s.path(rateLimitFile), err)
	}
	for _, r := range rls {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("reading rate limits %s: %w", s.path(rateLimitFile), err)
		}
	}
	return rls, nil
}

func (s *store) saveRateLimits(rls []RateLimit) error {
	if err := s.mkdir(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(rls, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path(rateLimitFile), append(data, '\n'))
}

// RateLimits lists the configured rate limits.
func (f *Firewall) RateLimits() ([]RateLimit, error) {
	if f.state == nil {
		return nil, ErrNoStateDir
	}
	return f.state.loadRateLimits()
}

// AddRateLimit adds (or replaces, by name) a rate limit and rebuilds
// banshee's chain in one transaction per family. It reports whether a rate
// limit of that name existed.
func (f *Firewall) AddRateLimit(ctx context.Context, r RateLimit) (replaced bool, err error) {
	if err := r.Validate(); err != nil {
		return false, err
	}
	return f.changeRateLimits(ctx, func(rls []RateLimit) ([]RateLimit, bool) {
		for i := range rls {
			if rls[i].Name == r.Name {
				rls[i] = r
				return rls, true
			}
		}
		return append(rls, r), false
	})
}

// RemoveRateLimit removes a rate limit by name; removing an unknown name
// is a no-op that reports false.
func (f *Firewall) RemoveRateLimit(ctx context.Context, name string) (bool, error) {
	return f.changeRateLimits(ctx, func(rls []RateLimit) ([]RateLimit, bool) {
		i := slices.IndexFunc(rls, func(r RateLimit) bool { return r.Name == name })
		if i < 0 {
			return rls, false
		}
		return slices.Delete(rls, i, i+1), true
	})
}

func (f *Firewall) changeRateLimits(ctx context.Context, change func([]RateLimit) ([]RateLimit, bool)) (bool, error) {
	unlock, err := f.lockState()
	if err != nil {
		return false, err
	}
	defer unlock()
	old, err := f.state.loadRateLimits()
	if err != nil {
		return false, err
	}
	next, hit := change(slices.Clone(old))
	f.rateLimits = next
	f.rateLimitsLoaded = true
	for _, fam := range []Family{V4, V6} {
		h, err := f.header(ctx, fam)
		if err != nil {
			return false, err
		}
		if err := f.setup(ctx, fam, h); err != nil {
			f.rateLimits = old
			return false, err
		}
	}
	if err := f.state.saveRateLimits(next); err != nil {
		return hit, fmt.Errorf("rate limits are live but saving them failed: %w", err)
	}
	return hit, nil
}

// rateLimitRules are the rate-limit rules of banshee's chain.
func (f *Firewall) rateLimitRules() ([]Rule, error) {
	if !f.rateLimitsLoaded {
		rls, err := f.state.loadRateLimits()
		if err != nil {
			return nil, err
		}
		f.rateLimits, f.rateLimitsLoaded = rls, true
	}
	var out []Rule
	for _, r := range f.rateLimits {
		out = append(out, r.rules()...)
	}
	return out, nil
}

// ParseRateLimitPort parses "110/tcp" (tcp when the protocol is left out).
func ParseRateLimitPort(s string) (proto string, port uint16, err error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("port %q: want PORT/tcp or PORT/udp with PORT 1-65535", s)
	}
	if proto != "tcp" && proto != "udp" {
		return "", 0, fmt.Errorf("port %q: protocol must be tcp or udp", s)
	}
	return proto, uint16(n), nil
}
