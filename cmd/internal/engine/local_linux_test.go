package engine

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// TestHostAddrsAgreesWithIP: in a namespace with two links, a
// point-to-point address, default routes of both families (one of them
// over two next hops) and a default route in another table, hostAddrs
// reads what "ip" shows: every address, and the gateways of the main
// table's default routes.
func TestHostAddrsAgreesWithIP(t *testing.T) {
	n := nstest.New(t, "a", "b")
	ctx := context.Background()
	a, b := n.Peers["a"], n.Peers["b"]
	ip := func(args ...string) {
		t.Helper()
		if out, err := n.Victim.Run(ctx, "ip", args...); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("addr", "add", "192.0.2.1", "peer", "192.0.2.2", "dev", "lo")
	ip("route", "add", "default", "nexthop", "via", a.Addr4.String(), "nexthop", "via", b.Addr4.String())
	ip("-6", "route", "add", "default", "via", a.Addr6.String(), "dev", a.VictimDev)
	ip("route", "add", "default", "via", b.Addr4.String(), "table", "100")

	var addrs []hostAddr
	var gws []netip.Addr
	if err := n.Victim.Do(func() error {
		var err error
		addrs, gws, err = hostAddrs()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range addrs {
		got = append(got, h.addr.String()+" "+h.dev)
	}
	out, err := n.Victim.Run(ctx, "ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l) // 1: lo    inet 127.0.0.1/8 scope host lo
		if len(f) < 4 {
			continue
		}
		want = append(want, strings.Split(f[3], "/")[0]+" "+f[1])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("addresses:\n got %q\nwant %q (ip -o addr)", got, want)
	}
	if !slices.Contains(got, "192.0.2.1 lo") || slices.Contains(got, "192.0.2.2 lo") {
		t.Errorf("point-to-point: want the local address 192.0.2.1 and not the peer: %q", got)
	}
	slices.SortFunc(gws, netip.Addr.Compare)
	wantGW := []netip.Addr{a.Addr4, b.Addr4, a.Addr6}
	slices.SortFunc(wantGW, netip.Addr.Compare)
	if !slices.Equal(gws, wantGW) {
		t.Errorf("gateways %v, want %v (main table only)", gws, wantGW)
	}
}
