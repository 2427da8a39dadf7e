package hostfw

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// TestDiagFiltersInTheKernel: established sessions to three ports, both
// families. For every set of ports, the peers read through sock_diag with
// the kernel's state and port filter (both families in one dump, and one
// dump per family) are those /proc/net/tcp{,6} shows; the listening-only
// dump finds every listening port and no session.
func TestDiagFiltersInTheKernel(t *testing.T) {
	n := nstest.New(t, "a", "b")
	for _, p := range []int{22, 2222, 8080} {
		n.Victim.ListenEcho(t, p)
	}
	a, b := n.Peers["a"], n.Peers["b"]
	for _, c := range []struct {
		p    *nstest.Peer
		dst  netip.Addr
		port int
	}{{a, a.VictimAddr4, 22}, {a, a.VictimAddr6, 2222}, {b, b.VictimAddr6, 22}, {b, b.VictimAddr4, 8080}} {
		conn, err := c.p.DialConn(c.dst, c.port, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	for _, ports := range [][]uint16{{22}, {2222}, {8080}, {22, 2222}, {22, 2222, 8080}, {8080, 22}, {9}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2222}} {
		t.Run(fmt.Sprint(ports), func(t *testing.T) {
			var viaDiag, viaFamilies, viaProc []netip.Addr
			err := n.Victim.Do(func() error {
				var err error
				if viaDiag, err = diagPeers(ports); err != nil {
					return err
				}
				bc := portFilter(ports)
				// diagPeers would fall back to one dump per family
				// without complaint: the one-walk request must work.
				if _, err := diagTCPCompat(1<<tcpEstablished, bc); err != nil {
					return fmt.Errorf("both families in one dump: %w", err)
				}
				for _, fam := range []uint8{2, 10} { // AF_INET, AF_INET6
					socks, err := diagTCPFamily(fam, 1<<tcpEstablished, bc)
					if err != nil {
						return err
					}
					for _, s := range socks {
						if !slices.Contains(ports, s.sport) {
							return fmt.Errorf("the kernel's port filter let through a session to port %d", s.sport)
						}
						if !slices.Contains(viaFamilies, s.dst) {
							viaFamilies = append(viaFamilies, s.dst)
						}
					}
				}
				viaProc, err = procPeers(ports)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range [][]netip.Addr{viaDiag, viaFamilies, viaProc} {
				slices.SortFunc(s, netip.Addr.Compare)
			}
			if !slices.Equal(viaDiag, viaProc) || !slices.Equal(viaFamilies, viaProc) {
				t.Errorf("peers on %v: sock_diag %v, per family %v, /proc %v", ports, viaDiag, viaFamilies, viaProc)
			}
		})
	}
	var listen []uint16
	if err := n.Victim.Do(func() error {
		socks, err := diagTCP(1<<tcpListen, nil)
		for _, s := range socks {
			if s.state != tcpListen {
				return fmt.Errorf("a socket in state %d in a listening-only dump", s.state)
			}
			listen = append(listen, s.sport)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(listen)
	if want := []uint16{22, 2222, 8080}; !slices.Equal(listen, want) {
		t.Errorf("listening ports %v, want %v", listen, want)
	}
}
