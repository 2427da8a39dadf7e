// Command floor is the least a Go program can do to make banshee's host
// block: open the host firewall through hostfw and write one entry with
// the TTL, reason and journal record a block writes, without the CLI, the
// policy, the offences record or AWS. BenchmarkHostBlockSingle times it
// next to "ipset add" and "banshee block" to show what a host block costs
// in Go before banshee adds anything.
//
//	floor STATE-DIR ADDRESS
package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/banshee-project/banshee/hostfw"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: floor STATE-DIR ADDRESS")
		os.Exit(2)
	}
	ctx := context.Background()
	addr, err := netip.ParseAddr(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fw, err := hostfw.New(ctx, hostfw.Options{StateDir: os.Args[1]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fw.Probe(ctx, hostfw.FamilyOf(netip.PrefixFrom(addr, addr.BitLen()))) // as block does; Block sets up what is missing
	e := hostfw.Entry{Prefix: netip.PrefixFrom(addr, addr.BitLen()), TTL: time.Hour, Reason: "bench", Origin: "cli"}
	if _, err := fw.Block(ctx, []hostfw.Entry{e}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
