package main

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/cobra"
)

func init() { register(newListCmd) }

func newListCmd(a *app) *cobra.Command {
	var scope string
	var subnets, nacls []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List active blocks",
		Long:  `list prints the active blocks with their scope, expiry, reason and origin.`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			blocks, err := a.listScopes(ctx, scope, subnets, nacls) // vpc.go
			if err != nil {
				return err
			}
			sortBlocks(blocks)
			return a.emit(listOutput(blocks), func(w io.Writer) { writeBlocks(w, blocks, time.Now()) })
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "all", "which blocks: all, host or vpc")
	cmd.Flags().StringArrayVar(&subnets, "subnet", nil, "vpc: the network ACL of this subnet (repeatable; default: every NACL banshee manages)")
	cmd.Flags().StringArrayVar(&nacls, "nacl", nil, "vpc: this network ACL (repeatable)")
	return cmd
}

// listedBlock is one block of list -o json: every contract field is
// always there (expires_at null for a block that never expires, reason
// and origin possibly empty).
type listedBlock struct {
	policy.Block
	ExpiresAt *time.Time    `json:"expires_at"`
	Reason    string        `json:"reason"`
	Origin    policy.Origin `json:"origin"`
}

// listOutput is the JSON shape of list: {"blocks": [...]}, never null.
func listOutput(bs []policy.Block) any {
	out := struct {
		Blocks []listedBlock `json:"blocks"`
	}{Blocks: make([]listedBlock, 0, len(bs))}
	for _, b := range bs {
		lb := listedBlock{Block: b, Reason: b.Reason, Origin: b.Origin}
		if !b.ExpiresAt.IsZero() {
			t := b.ExpiresAt.UTC()
			lb.ExpiresAt = &t
		}
		out.Blocks = append(out.Blocks, lb)
	}
	return out
}

func sortBlocks(bs []policy.Block) {
	sort.SliceStable(bs, func(i, j int) bool {
		if bs[i].Scope != bs[j].Scope {
			return bs[i].Scope < bs[j].Scope
		}
		return bs[i].Target.String() < bs[j].Target.String()
	})
}

// writeBlocks prints a table of blocks.
func writeBlocks(w io.Writer, bs []policy.Block, now time.Time) {
	if len(bs) == 0 {
		fmt.Fprintln(w, "no active blocks")
		return
	}
	fmt.Fprintf(w, "%-40s %-5s %-22s %-10s %-7s %s\n", "TARGET", "SCOPE", "WHERE", "EXPIRES IN", "ORIGIN", "REASON")
	for _, b := range bs {
		where := "this host"
		if b.NACLID != "" {
			where = fmt.Sprintf("%s #%d", b.NACLID, b.RuleNumber)
		} else if b.InstanceID != "" {
			where = b.InstanceID
		}
		left := "never"
		if !b.ExpiresAt.IsZero() {
			left = shortDuration(b.ExpiresAt.Sub(now).Round(time.Second))
		}
		origin := string(b.Origin)
		if origin == "" {
			origin = "-"
		}
		fmt.Fprintf(w, "%-40s %-5s %-22s %-10s %-7s %s\n", showPrefix(b.Target), b.Scope, where, left, origin, b.Reason)
	}
}
