package hostfw

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

const testPort = 8110

var backends = []Backend{BackendNFT, BackendLegacy}

// inNS runs fn with a Firewall created inside the victim namespace.
func inNS(t *testing.T, n *nstest.Net, b Backend, stateDir string, fn func(ctx context.Context, fw *Firewall) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := n.Victim.Do(func() error {
		fw, err := New(ctx, Options{Backend: b, StateDir: stateDir})
		if err != nil {
			return err
		}
		return fn(ctx, fw)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func reach(t *testing.T, p *nstest.Peer, dst netip.Addr, want bool) {
	t.Helper()
	err := p.Dial(dst, testPort, 700*time.Millisecond)
	if want && err != nil {
		t.Fatalf("%s -> %s: want reachable, got %v", p.Addr4, dst, err)
	}
	if !want && err == nil {
		t.Fatalf("%s -> %s: want blocked, but the connection succeeded", p.Addr4, dst)
	}
}

func TestBlockUnblockRealPackets(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			n := nstest.New(t, "attacker", "good")
			n.Victim.Listen(t, testPort)
			att, good := n.Peers["attacker"], n.Peers["good"]
			for _, fam := range []struct {
				name     string
				src, dst func(p *nstest.Peer) netip.Addr
			}{
				{"ipv4", func(p *nstest.Peer) netip.Addr { return p.Addr4 }, func(p *nstest.Peer) netip.Addr { return p.VictimAddr4 }},
				{"ipv6", func(p *nstest.Peer) netip.Addr { return p.Addr6 }, func(p *nstest.Peer) netip.Addr { return p.VictimAddr6 }},
			} {
				t.Run(fam.name, func(t *testing.T) {
					reach(t, att, fam.dst(att), true)
					src := fam.src(att)
					target := netip.PrefixFrom(src, src.BitLen())
					inNS(t, n, b, t.TempDir(), func(ctx context.Context, fw *Firewall) error {
						if fw.Backend() != b {
							return fmt.Errorf("backend %s, want %s", fw.Backend(), b)
						}
						_, err := fw.Block(ctx, []Entry{{Prefix: target, TTL: time.Hour, Reason: "pop3 bruteforce", Origin: "cli"}})
						return err
					})
					reach(t, att, fam.dst(att), false)
					reach(t, good, fam.dst(good), true)
					inNS(t, n, b, "", func(ctx context.Context, fw *Firewall) error {
						absent, err := fw.Unblock(ctx, []netip.Prefix{target})
						if len(absent) != 0 {
							return fmt.Errorf("unblock says %v was absent", absent)
						}
						return err
					})
					reach(t, att, fam.dst(att), true)
				})
			}
		})
	}
}

func TestBlockIsIdempotentAndRefreshes(t *testing.T) {
	n := nstest.New(t, "attacker")
	p := netip.MustParsePrefix("203.0.113.7/32")
	inNS(t, n, BackendAuto, t.TempDir(), func(ctx context.Context, fw *Firewall) error {
		if _, err := fw.Block(ctx, []Entry{{Prefix: p, TTL: time.Minute, Reason: "first"}}); err != nil {
			return err
		}
		res, err := fw.Block(ctx, []Entry{{Prefix: p, TTL: time.Hour, Reason: `second "quoted" \ ü`, Origin: "cli"}})
		if err != nil {
			return err
		}
		if len(res.Refreshed) != 1 || res.Added != 0 {
			return fmt.Errorf("second block: %+v, want one refreshed", res)
		}
		es, err := fw.List(ctx)
		if err != nil {
			return err
		}
		if len(es) != 1 {
			return fmt.Errorf("list: %d entries, want 1: %+v", len(es), es)
		}
		e := es[0]
		if e.TTL < 59*time.Minute || e.Reason != `second 'quoted' \ ü` || e.Origin != "cli" {
			return fmt.Errorf("entry not refreshed: %+v", e)
		}
		// The chain and the jump exist once, however often we block.
		for i := 0; i < 3; i++ {
			if _, err := fw.Block(ctx, []Entry{{Prefix: p, TTL: time.Hour}}); err != nil {
				return err
			}
		}
		out, err := fw.r.run(ctx, nil, fw.t.save[V4])
		if err != nil {
			return err
		}
		if c := strings.Count(string(out), "-j BANSHEE"); c != 1 {
			return fmt.Errorf("%d jumps to BANSHEE, want 1:\n%s", c, out)
		}
		if c := strings.Count(string(out), "--match-set banshee4"); c != 1 {
			return fmt.Errorf("%d set rules, want 1:\n%s", c, out)
		}
		// Longer than ipset keeps an entry: cut to the kernel's limit, said so.
		long := netip.MustParsePrefix("198.51.100.77/32")
		res, err = fw.Block(ctx, []Entry{{Prefix: long, TTL: 30 * 24 * time.Hour}})
		if err != nil || len(res.Clamped) != 1 || res.Clamped[0] != long {
			return fmt.Errorf("30-day block: %+v %v, want it clamped", res, err)
		}
		es, err = fw.List(ctx)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Prefix == long && (e.TTL > MaxTimeout || e.TTL < MaxTimeout-time.Minute) {
				return fmt.Errorf("clamped entry has TTL %s in the kernel", e.TTL)
			}
		}
		absent, err := fw.Unblock(ctx, []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")})
		if err != nil || len(absent) != 1 {
			return fmt.Errorf("unblock of unknown: absent=%v err=%v", absent, err)
		}
		return nil
	})
}

func TestTTLExpiresInKernel(t *testing.T) {
	n := nstest.New(t, "attacker")
	n.Victim.Listen(t, testPort)
	att := n.Peers["attacker"]
	inNS(t, n, BackendAuto, "", func(ctx context.Context, fw *Firewall) error {
		_, err := fw.Block(ctx, []Entry{{Prefix: netip.PrefixFrom(att.Addr4, 32), TTL: 2 * time.Second}})
		return err
	})
	reach(t, att, att.VictimAddr4, false)
	deadline := time.Now().Add(6 * time.Second)
	for i := 0; ; i++ {
		if att.Dial(att.VictimAddr4, testPort, 300*time.Millisecond) == nil {
			break
		}
		if time.Now().After(deadline) || i > 60 {
			t.Fatal("block with a 2s TTL still drops packets after 6s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestSaveRestoreSurvivesReboot(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			n := nstest.New(t, "attacker")
			n.Victim.Listen(t, testPort)
			att := n.Peers["attacker"]
			dir := t.TempDir()
			inNS(t, n, b, dir, func(ctx context.Context, fw *Firewall) error {
				_, err := fw.Block(ctx, []Entry{
					{Prefix: netip.PrefixFrom(att.Addr4, 32), TTL: time.Hour, Reason: "saved", Origin: "cli"},
					{Prefix: netip.PrefixFrom(att.Addr6, 128), TTL: 0, Reason: "permanent"},
					{Prefix: netip.MustParsePrefix("192.0.2.0/24"), TTL: time.Hour},
				})
				if err != nil {
					return err
				}
				if _, err := fw.Save(ctx); err != nil {
					return err
				}
				// After the save, the journal carries a later change.
				if _, err := fw.Unblock(ctx, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}); err != nil {
					return err
				}
				return nil
			})
			// "Reboot": the kernel forgets everything.
			ctx := context.Background()
			for _, cmd := range [][]string{
				{iptablesBin(b, "iptables"), "-F"}, {iptablesBin(b, "iptables"), "-X"},
				{iptablesBin(b, "ip6tables"), "-F"}, {iptablesBin(b, "ip6tables"), "-X"},
				{"ipset", "destroy"},
			} {
				if out, err := n.Victim.Run(ctx, cmd[0], cmd[1:]...); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
			}
			reach(t, att, att.VictimAddr4, true)
			inNS(t, n, b, dir, func(ctx context.Context, fw *Firewall) error {
				res, err := fw.Restore(ctx, nil)
				if err != nil {
					return err
				}
				if res.Restored != 2 {
					return fmt.Errorf("restored %d, want 2", res.Restored)
				}
				es, err := fw.List(ctx)
				if err != nil {
					return err
				}
				got := map[netip.Prefix]Entry{}
				for _, e := range es {
					got[e.Prefix] = e
				}
				e4 := got[netip.PrefixFrom(att.Addr4, 32)]
				if e4.TTL <= 0 || e4.TTL > time.Hour || e4.Reason != "saved" || e4.Origin != "cli" {
					return fmt.Errorf("v4 entry after restore: %+v", e4)
				}
				if e6, ok := got[netip.PrefixFrom(att.Addr6, 128)]; !ok || e6.TTL != 0 {
					return fmt.Errorf("permanent v6 entry after restore: %+v (present %v)", e6, ok)
				}
				if _, ok := got[netip.MustParsePrefix("192.0.2.0/24")]; ok {
					return fmt.Errorf("unblocked entry came back")
				}
				return nil
			})
			reach(t, att, att.VictimAddr4, false)
			reach(t, att, att.VictimAddr6, false)
		})
	}
}

func TestStatusWarnsAboutOtherBackend(t *testing.T) {
	n := nstest.New(t)
	ctx := context.Background()
	if out, err := n.Victim.Run(ctx, "iptables-legacy", "-A", "INPUT", "-s", "192.0.2.1", "-j", "DROP"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	inNS(t, n, BackendNFT, "", func(ctx context.Context, fw *Firewall) error {
		if err := fw.Ensure(ctx, V4); err != nil {
			return err
		}
		st, err := fw.Status(ctx)
		if err != nil {
			return err
		}
		if st.Backend != BackendNFT || len(st.Families) != 2 || !st.Families[0].Chain || len(st.Families[0].Hooks) != 1 {
			return fmt.Errorf("status: %+v", st)
		}
		for _, w := range st.Warnings {
			if strings.Contains(w, "other iptables backend") {
				return nil
			}
		}
		return fmt.Errorf("no warning about legacy rules: %q", st.Warnings)
	})
}

func iptablesBin(b Backend, base string) string { return base + "-" + string(b) }

func TestHooksForwardAndDockerUser(t *testing.T) {
	n := nstest.New(t)
	ctx := context.Background()
	// Docker's chain exists for IPv4 only, as on a host running Docker.
	if out, err := n.Victim.Run(ctx, "iptables", "-N", "DOCKER-USER"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	err := n.Victim.Do(func() error {
		fw, err := New(ctx, Options{HookForward: true, HookDockerUser: true})
		if err != nil {
			return err
		}
		for _, fam := range []Family{V4, V6} {
			if err := fw.Ensure(ctx, fam); err != nil {
				return err
			}
			if err := fw.Ensure(ctx, fam); err != nil { // idempotent
				return err
			}
		}
		st, err := fw.Status(ctx)
		if err != nil {
			return err
		}
		if got := strings.Join(st.Families[0].Hooks, ","); got != "INPUT,FORWARD,DOCKER-USER" {
			return fmt.Errorf("ipv4 hooks %q", got)
		}
		if got := strings.Join(st.Families[1].Hooks, ","); got != "INPUT,FORWARD" {
			return fmt.Errorf("ipv6 hooks %q (no DOCKER-USER chain there)", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := n.Victim.Run(ctx, "iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	for _, hook := range []string{"INPUT", "FORWARD", "DOCKER-USER"} {
		if c := strings.Count(out, "-A "+hook+" -j BANSHEE"); c != 1 {
			t.Errorf("%d jumps from %s, want 1:\n%s", c, hook, out)
		}
	}
}
