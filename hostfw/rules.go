package hostfw

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file is the only place that knows the iptables-restore and ipset
// restore syntax. Everything that ends up in front of those parsers is built
// here and quoted here.

// maxComment is the longest comment ipset stores.
const maxComment = 255

// CheckText rejects text that must never reach a rule or set: control
// characters (a newline would start a new restore command) and invalid UTF-8.
// Call it at the edge, where a reason or name enters banshee.
func CheckText(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: not valid UTF-8", what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q: control characters are not allowed", what, s)
		}
	}
	return nil
}

// setComment renders origin and reason as an ipset comment. ipset forbids
// the double quote inside comments, so it becomes a single quote; the text is
// cut to what ipset stores, at a rune boundary.
func setComment(origin, reason string) string {
	var b strings.Builder
	if origin != "" {
		b.WriteString("[" + origin + "]")
		if reason != "" {
			b.WriteByte(' ')
		}
	}
	b.WriteString(reason)
	s := strings.ReplaceAll(b.String(), `"`, `'`)
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	for len(s) > maxComment {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// parseSetComment splits a comment written by setComment.
func parseSetComment(c string) (origin, reason string) {
	if strings.HasPrefix(c, "[") {
		if i := strings.IndexByte(c, ']'); i > 0 {
			return c[1:i], strings.TrimPrefix(c[i+1:], " ")
		}
	}
	return "", c
}

// timeoutSeconds converts a TTL into an ipset timeout (0 is permanent).
func timeoutSeconds(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	s := int64((ttl + time.Second - 1) / time.Second)
	if s > int64(MaxTimeout/time.Second) {
		s = int64(MaxTimeout / time.Second)
	}
	return s
}

// setCreateLine renders the create command of a blocklist set.
func setCreateLine(name string, fam Family, maxelem int) string {
	family := "inet"
	if fam == V6 {
		family = "inet6"
	}
	return fmt.Sprintf("create %s hash:net family %s hashsize 1024 maxelem %d timeout 0 comment\n", name, family, maxelem)
}

// appendSetAdd appends one "add" line for ipset restore.
func appendSetAdd(b []byte, set string, e Entry) []byte {
	b = append(b, "add "...)
	b = append(b, set...)
	b = append(b, ' ')
	b = appendPrefix(b, e.Prefix)
	b = append(b, " timeout "...)
	b = strconv.AppendInt(b, timeoutSeconds(e.TTL), 10)
	if c := setComment(e.Origin, e.Reason); c != "" {
		b = append(b, ` comment "`...)
		b = append(b, c...)
		b = append(b, '"')
	}
	return append(b, '\n')
}

// appendSetDel appends one "del" line for ipset restore.
func appendSetDel(b []byte, set string, p netip.Prefix) []byte {
	b = append(b, "del "...)
	b = append(b, set...)
	b = append(b, ' ')
	b = appendPrefix(b, p)
	return append(b, '\n')
}

// appendPrefix writes a prefix the way ipset prints it: a single address
// without its /32 or /128.
func appendPrefix(b []byte, p netip.Prefix) []byte {
	b = p.Addr().AppendTo(b)
	if p.Bits() != p.Addr().BitLen() {
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(p.Bits()), 10)
	}
	return b
}

// quoteArg quotes one argument for iptables-restore: inside double quotes
// only the double quote and the backslash need a backslash.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"\\'#") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Rule is one rule of a chain, as iptables arguments (without -A CHAIN).
type Rule []string

// restoreBuilder builds one iptables-restore payload for the filter table.
type restoreBuilder struct {
	b strings.Builder
}

func newRestore() *restoreBuilder {
	r := &restoreBuilder{}
	r.b.WriteString("*filter\n")
	return r
}

// declare declares (creates, or with --noflush empties) a chain.
func (r *restoreBuilder) declare(chain string) {
	fmt.Fprintf(&r.b, ":%s - [0:0]\n", chain)
}

// append adds "-A chain rule".
func (r *restoreBuilder) append(chain string, rule Rule) {
	r.b.WriteString("-A " + chain)
	for _, a := range rule {
		r.b.WriteString(" " + quoteArg(a))
	}
	r.b.WriteByte('\n')
}

// insert adds "-I chain pos rule".
func (r *restoreBuilder) insert(chain string, pos int, rule Rule) {
	fmt.Fprintf(&r.b, "-I %s %d", chain, pos)
	for _, a := range rule {
		r.b.WriteString(" " + quoteArg(a))
	}
	r.b.WriteByte('\n')
}

// String returns the payload with its COMMIT.
func (r *restoreBuilder) String() string {
	return r.b.String() + "COMMIT\n"
}
