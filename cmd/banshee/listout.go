package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

// listedBlock is one block of list -o json: every contract field is always
// there (expires_at null for a block that never expires, reason and origin
// possibly empty), plus its drift.
type listedBlock struct {
	policy.Block
	ExpiresAt *time.Time    `json:"expires_at"`
	Reason    string        `json:"reason"`
	Origin    policy.Origin `json:"origin"`
	Drift     string        `json:"drift,omitempty"`
}

// listJSON is the JSON shape of list: {"blocks": [...]}, never null.
type listJSON struct {
	Blocks   []listedBlock `json:"blocks"`
	Problems []string      `json:"problems,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
}

func listOutput(res *engine.ListResult) listJSON {
	out := listJSON{Blocks: make([]listedBlock, 0, len(res.Blocks)), Problems: res.Problems, Notes: res.Notes}
	for _, b := range res.Blocks {
		lb := listedBlock{Block: b.Block, Reason: b.Reason, Origin: b.Origin, Drift: b.Drift}
		if !b.ExpiresAt.IsZero() {
			t := b.ExpiresAt.UTC()
			lb.ExpiresAt = &t
		}
		out.Blocks = append(out.Blocks, lb)
	}
	return out
}

// sortListed orders blocks as an operator scans them: IPv4 before IPv6,
// by address (10.0.0.2 before 10.0.0.100), the wider prefix first, then
// host before VPC, so both layers of one address sit together.
func sortListed(bs []engine.Listed) {
	slices.SortStableFunc(bs, func(x, y engine.Listed) int {
		if c := comparePrefix(x.Target, y.Target); c != 0 {
			return c
		}
		return strings.Compare(string(x.Scope), string(y.Scope))
	})
}

func comparePrefix(x, y netip.Prefix) int {
	if c := x.Addr().BitLen() - y.Addr().BitLen(); c != 0 {
		return c
	}
	if c := x.Addr().Compare(y.Addr()); c != 0 {
		return c
	}
	return x.Bits() - y.Bits()
}

// writeListed prints the blocks as a table, then drift that is not one
// block's and the notes. Reasons are cut to fit width (0: never cut).
func writeListed(w io.Writer, res *engine.ListResult, now time.Time, width int) {
	bs := make([]policy.Block, len(res.Blocks))
	drift := make([]string, len(res.Blocks))
	for i, b := range res.Blocks {
		bs[i], drift[i] = b.Block, b.Drift
	}
	writeBlockTable(w, bs, drift, now, width)
	for _, p := range res.Problems {
		fmt.Fprintf(w, "drift: %s\n", p)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// writeBlocks prints a table of blocks without drift (sweep's removed).
func writeBlocks(w io.Writer, bs []policy.Block, now time.Time) {
	writeBlockTable(w, bs, nil, now, terminalWidth(os.Getenv))
}

// defaultWidth is the table width when COLUMNS does not say.
const defaultWidth = 120

// terminalWidth is the width tables are fitted to: COLUMNS, else 120.
func terminalWidth(getenv func(string) string) int {
	if n, err := strconv.Atoi(strings.TrimSpace(getenv("COLUMNS"))); err == nil && n > 0 {
		return n
	}
	return defaultWidth
}

// cut shortens s to at most n runes, ending with … when it did.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// writeBlockTable prints blocks as a table with columns sized to their
// content; drift, when given, is a column of its own. The reason, last, is
// cut to fit width (0: never cut), and never below 20 characters.
func writeBlockTable(w io.Writer, bs []policy.Block, drift []string, now time.Time, width int) {
	if len(bs) == 0 {
		fmt.Fprintln(w, "no active blocks")
		return
	}
	rows := [][]string{{"TARGET", "SCOPE", "WHERE", "EXPIRES IN", "ORIGIN", "DRIFT", "REASON"}}
	hasDrift := false
	for i, b := range bs {
		where := "this host"
		if b.NACLID != "" {
			where = fmt.Sprintf("%s #%d", b.NACLID, b.RuleNumber)
		} else if b.InstanceID != "" {
			where = b.InstanceID
		}
		left := permanentWord
		if !b.ExpiresAt.IsZero() {
			if d := b.ExpiresAt.Sub(now).Round(time.Second); d > 0 {
				left = engine.ShortDuration(d)
			} else {
				left = "expired (sweep pending)"
			}
		}
		origin := string(b.Origin)
		if origin == "" {
			origin = "-"
		}
		d := ""
		if i < len(drift) {
			d = drift[i]
		}
		hasDrift = hasDrift || d != ""
		rows = append(rows, []string{engine.Show(b.Target), string(b.Scope), where, left, origin, d, b.Reason})
	}
	if !hasDrift {
		for i := range rows {
			rows[i] = slices.Delete(rows[i], 5, 6)
		}
	}
	cols := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			cols[i] = max(cols[i], utf8.RuneCountInString(c))
		}
	}
	room := 0 // what the reason may take
	if width > 0 {
		fixed := 0
		for _, n := range cols[:len(cols)-1] {
			fixed += n + 2
		}
		room = max(width-fixed, 20)
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				if room > 0 {
					c = cut(c, room)
				}
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", cols[i]-utf8.RuneCountInString(c)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// vpcIDs checks --subnet and --nacl ids.
func vpcIDs(subnets, nacls []string) ([]string, error) {
	var ids []string
	for _, s := range subnets {
		if s = strings.TrimSpace(s); !strings.HasPrefix(s, "subnet-") {
			return nil, fmt.Errorf("--subnet: %w", &policy.InputError{Value: s, Msg: "not a subnet id (subnet-...)"})
		}
		ids = append(ids, s)
	}
	for _, n := range nacls {
		if n = strings.TrimSpace(n); !strings.HasPrefix(n, "acl-") {
			return nil, fmt.Errorf("--nacl: %w", &policy.InputError{Value: n, Msg: "not a network ACL id (acl-...)"})
		}
		ids = append(ids, n)
	}
	return ids, nil
}

// completeBlocked offers this host's blocked targets to unblock, in
// list's order, leaving out those already on the line.
func (a *app) completeBlocked(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	fw, err := a.firewall(context.Background())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	es, err := fw.List(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	slices.SortFunc(es, func(x, y hostfw.Entry) int { return comparePrefix(x.Prefix, y.Prefix) })
	var out []string
	for _, e := range es {
		if s := engine.Show(e.Prefix); strings.HasPrefix(s, prefix) && !slices.Contains(args, s) {
			out = append(out, s+"\t"+e.Reason)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
