package remote

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Allowed patterns of the SSM document's parameters. The Terraform module
// declares the same strings as the parameters' allowedPattern; SSM rejects a
// value that does not match, and so does Parameters, before any call.
const (
	ActionPattern  = `^(block|unblock)$`
	TargetsPattern = `^[0-9A-Fa-f:./, ]+$`
	TTLPattern     = `^([0-9]{1,7}[hms]){1,3}$`
	ReasonPattern  = `^[A-Za-z0-9 _.,:/@()+=#-]{0,256}$`
)

// Parameter names of the SSM document.
const (
	ParamAction  = "action"
	ParamTargets = "targets"
	ParamTTL     = "ttl"
	ParamReason  = "reason"
)

// MaxTargetsLen is the longest targets value one command carries (the
// document's maxChars for targets); longer lists are split over several
// commands.
const MaxTargetsLen = 4000

// The expressions are compiled on first use: compiled as package
// variables they cost every command of the binary megabytes and
// milliseconds at start (the bounded repetitions expand).
var (
	actionRE  = lazyRE(ActionPattern)
	targetsRE = lazyRE(TargetsPattern)
	ttlRE     = lazyRE(TTLPattern)
	reasonRE  = lazyRE(ReasonPattern)
	reasonBad = lazyRE(`[^A-Za-z0-9 _.,:/@()+=#-]`)
)

// Action is what the document does on the instance.
type Action string

// Actions of the document.
const (
	Block   Action = "block"
	Unblock Action = "unblock"
)

// FormatTTL writes a TTL as the shortest Go duration string the document
// accepts: whole hours, minutes or seconds (a fraction of a second is
// rounded up; a block of less than a second is still a block).
func FormatTTL(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	switch {
	case s <= 0:
		return "0s"
	case s%3600 == 0:
		return fmt.Sprintf("%dh", s/3600)
	case s%60 == 0:
		return fmt.Sprintf("%dm", s/60)
	}
	return fmt.Sprintf("%ds", s)
}

// CleanReason makes free text fit the reason parameter: characters outside
// the allowed set become '_' and it is cut to 256 bytes. Alarm names and
// operator text go through it; the result still passes ReasonPattern.
func CleanReason(s string) string {
	s = reasonBad().ReplaceAllString(s, "_")
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}

// Parameters returns the document parameters for one command, validated
// against the allowed patterns. Targets are written in canonical form,
// space separated.
func Parameters(action Action, targets []netip.Prefix, ttl time.Duration, reason string) (map[string][]string, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("build ssm parameters: no targets")
	}
	ts := make([]string, len(targets))
	for i, p := range targets {
		if !p.IsValid() || p.Bits() == 0 || p != p.Masked() {
			return nil, fmt.Errorf("build ssm parameters: target %q is not a canonical prefix", p)
		}
		ts[i] = p.String()
	}
	ttlText := "0s"
	if action == Block {
		if ttl <= 0 {
			return nil, fmt.Errorf("build ssm parameters: block needs a positive ttl, got %v", ttl)
		}
		ttlText = FormatTTL(ttl)
	}
	p := map[string][]string{
		ParamAction:  {string(action)},
		ParamTargets: {strings.Join(ts, " ")},
		ParamTTL:     {ttlText},
		ParamReason:  {reason},
	}
	if len(p[ParamTargets][0]) > MaxTargetsLen {
		return nil, fmt.Errorf("build ssm parameters: targets longer than %d characters", MaxTargetsLen)
	}
	for _, c := range []struct {
		name string
		re   *regexp.Regexp
	}{{ParamAction, actionRE()}, {ParamTargets, targetsRE()}, {ParamTTL, ttlRE()}, {ParamReason, reasonRE()}} {
		if v := p[c.name][0]; !c.re.MatchString(v) {
			return nil, fmt.Errorf("build ssm parameters: %s %q does not match %s", c.name, v, c.re)
		}
	}
	return p, nil
}

// chunks splits targets so that each chunk's targets value stays within
// MaxTargetsLen.
func chunks(targets []netip.Prefix) [][]netip.Prefix {
	var out [][]netip.Prefix
	var cur []netip.Prefix
	n := 0
	for _, p := range targets {
		l := len(p.String())
		if len(cur) > 0 && n+1+l > MaxTargetsLen {
			out = append(out, cur)
			cur, n = nil, 0
		}
		if len(cur) > 0 {
			n++
		}
		cur = append(cur, p)
		n += l
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// lazyRE compiles expr on first use.
func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
