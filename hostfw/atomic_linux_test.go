package hostfw

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// strictRuleset is a default-DROP ruleset that admits the test service.
func strictRuleset(port int) string {
	return fmt.Sprintf(`*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp -m tcp --dport %d -m comment --comment "service \"%d\" ü" -j ACCEPT
-A INPUT -p icmp -j ACCEPT
COMMIT
`, port, port)
}

// goodTraffic opens connections from peer to the victim's service at a
// steady pace until stop is closed (bounded in count and time) and counts
// the failures. A SYN dropped even once fails its connection, because the
// timeout is shorter than TCP's first retransmission (1 s).
func goodTraffic(t *testing.T, p *nstest.Peer, stop <-chan struct{}) (ok, failed *atomic.Int64, wait func()) {
	ok, failed = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Minute)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50_000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := p.Dial(p.VictimAddr4, testPort, 800*time.Millisecond); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return ok, failed, wg.Wait
}

// operations runs n firewall changes of mixed kinds.
type operations func(ctx context.Context, i int) error

func runUnderTraffic(t *testing.T, n *nstest.Net, count int, ops operations) (okN, failN int64) {
	t.Helper()
	stop := make(chan struct{})
	ok, failed, wait := goodTraffic(t, n.Peers["good"], stop)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	time.Sleep(100 * time.Millisecond)
	err := n.Victim.Do(func() error {
		for i := 0; i < count; i++ {
			if err := ops(ctx, i); err != nil {
				return fmt.Errorf("operation %d: %w", i, err)
			}
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	return ok.Load(), failed.Load()
}

func TestZeroLossUnderChanges(t *testing.T) {
	n := nstest.New(t, "good")
	n.Victim.Listen(t, testPort)
	dir := t.TempDir()
	var fw *Firewall
	err := n.Victim.Do(func() error {
		var err error
		if fw, err = New(context.Background(), Options{StateDir: dir}); err != nil {
			return err
		}
		_, err = fw.Apply(context.Background(), []Ruleset{{Family: V4, Text: strictRuleset(testPort)}}, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	addr := func() netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(256)), byte(rng.IntN(256))}), 32)
	}
	kinds := map[string]int{}
	okN, failN := runUnderTraffic(t, n, 1000, func(ctx context.Context, i int) error {
		var err error
		switch i % 10 {
		case 0, 1, 2:
			kinds["block"]++
			_, err = fw.Block(ctx, []Entry{{Prefix: addr(), TTL: time.Minute, Reason: "zero loss"}})
		case 3, 4:
			kinds["unblock"]++
			_, err = fw.Unblock(ctx, []netip.Prefix{addr()})
		case 5, 6:
			kinds["ratelimit add"]++
			_, err = fw.AddRateLimit(ctx, RateLimit{Name: fmt.Sprintf("r%d", i%7), Proto: "tcp", Port: 9000 + uint16(i%7), Hits: 10, Seconds: 60})
		case 7:
			kinds["ratelimit remove"]++
			_, err = fw.RemoveRateLimit(ctx, fmt.Sprintf("r%d", (i/10)%7))
		default:
			kinds["apply"]++
			_, err = fw.Apply(ctx, []Ruleset{{Family: V4, Text: strictRuleset(testPort)}}, 0)
		}
		return err
	})
	t.Logf("1000 operations %v; good connections: %d ok, %d failed", kinds, okN, failN)
	if okN < 100 {
		t.Fatalf("only %d good connections were made: the harness did not exercise anything", okN)
	}
	if failN != 0 {
		t.Fatalf("%d good connections failed while banshee changed the firewall", failN)
	}
}

// TestNaiveFlushAndReAddLoses proves the harness can fail: the same traffic
// against the usual flush-and-re-add script sees dropped connections.
func TestNaiveFlushAndReAddLoses(t *testing.T) {
	n := nstest.New(t, "good")
	n.Victim.Listen(t, testPort)
	ctx := context.Background()
	naive := [][]string{
		{"iptables", "-P", "INPUT", "DROP"},
		{"iptables", "-F", "INPUT"},
		{"iptables", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"},
		{"iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"iptables", "-A", "INPUT", "-s", "198.18.0.1", "-j", "DROP"},
		{"iptables", "-A", "INPUT", "-p", "tcp", "--dport", fmt.Sprint(testPort), "-j", "ACCEPT"},
	}
	for _, c := range naive {
		if out, err := n.Victim.Run(ctx, c[0], c[1:]...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	okN, failN := runUnderTraffic(t, n, 300, func(ctx context.Context, i int) error {
		for _, c := range naive[1:] {
			if out, err := n.Victim.Run(ctx, c[0], c[1:]...); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
		}
		return nil
	})
	t.Logf("naive script, 300 reloads: good connections %d ok, %d failed", okN, failN)
	if failN == 0 {
		t.Fatal("the naive flush-and-re-add script lost no connection: the zero-loss harness cannot tell")
	}
}

func TestConntrackKeepsEstablishedSession(t *testing.T) {
	n := nstest.New(t, "client")
	n.Victim.ListenEcho(t, testPort+1)
	cl := n.Peers["client"]
	dir := t.TempDir()
	// The host tracks connections before the switch, as any host with an
	// ESTABLISHED rule does (conntrack attaches to a namespace on demand; a
	// session it never saw would be picked up mid-stream as NEW).
	open := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n"
	inNS(t, n, BackendAuto, dir, func(ctx context.Context, fw *Firewall) error {
		_, err := fw.Apply(ctx, []Ruleset{{Family: V4, Text: open}}, 0)
		return err
	})
	conn, err := cl.DialConn(cl.VictimAddr4, testPort+1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	echo := func(msg string) error {
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := fmt.Fprintln(conn, msg); err != nil {
			return err
		}
		got, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if got != msg+"\n" {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	// Default DROP that admits nothing new, only ESTABLISHED,RELATED.
	rules := "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\nCOMMIT\n"
	inNS(t, n, BackendAuto, dir, func(ctx context.Context, fw *Firewall) error {
		_, err := fw.Apply(ctx, []Ruleset{{Family: V4, Text: rules}}, 0)
		return err
	})
	if err := echo("after"); err != nil {
		t.Fatalf("live session broken by the switch to default DROP: %v", err)
	}
	if err := cl.Dial(cl.VictimAddr4, testPort+1, 500*time.Millisecond); err == nil {
		t.Fatal("a new connection got through a default DROP ruleset")
	}
}

func TestRateLimitDropsTheNthConnection(t *testing.T) {
	n := nstest.New(t, "attacker", "other")
	n.Victim.Listen(t, testPort)
	att, other := n.Peers["attacker"], n.Peers["other"]
	inNS(t, n, BackendAuto, t.TempDir(), func(ctx context.Context, fw *Firewall) error {
		_, err := fw.AddRateLimit(ctx, RateLimit{Name: "pop3", Proto: "tcp", Port: testPort, Hits: 10, Seconds: 60})
		return err
	})
	for i := 1; i <= 9; i++ {
		if err := att.Dial(att.VictimAddr4, testPort, time.Second); err != nil {
			t.Fatalf("connection %d of 9 allowed ones failed: %v", i, err)
		}
	}
	if err := att.Dial(att.VictimAddr4, testPort, 700*time.Millisecond); err == nil {
		t.Fatal("the 10th new connection within 60 s got through")
	}
	for i := 1; i <= 3; i++ {
		if err := other.Dial(other.VictimAddr4, testPort, time.Second); err != nil {
			t.Fatalf("another source was hit by the attacker's rate limit: %v", err)
		}
	}
}

func TestHostileCommentsLeaveRulesetExact(t *testing.T) {
	n := nstest.New(t)
	hostile := []string{
		`x" -j ACCEPT`,
		`COMMIT`,
		`*filter`,
		`-A INPUT -j ACCEPT`,
		`back\slash \" and 'single'`,
		`ünïcödé 日本 ✓`,
		`# not a comment`,
	}
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			inNS(t, n, b, t.TempDir(), func(ctx context.Context, fw *Firewall) error {
				if err := fw.ResetPermissive(ctx); err != nil {
					return err
				}
				for i, c := range hostile {
					if _, err := fw.AddRateLimit(ctx, RateLimit{Name: fmt.Sprintf("h%d", i), Proto: "tcp", Port: uint16(1000 + i), Hits: 5, Seconds: 10, Comment: c}); err != nil {
						return fmt.Errorf("comment %q: %w", c, err)
					}
				}
				if _, err := fw.AddRateLimit(ctx, RateLimit{Name: "nl", Proto: "tcp", Port: 1, Hits: 5, Seconds: 10, Comment: "a\nCOMMIT"}); err == nil {
					return fmt.Errorf("a comment with a newline was accepted")
				}
				out, err := fw.r.run(ctx, nil, fw.t.save[V4])
				if err != nil {
					return err
				}
				chains, policies := parseFilter(string(out))
				if len(chains["INPUT"]) != 1 || strings.Join(chains["INPUT"][0], " ") != "-j BANSHEE" {
					return fmt.Errorf("INPUT is not just the jump: %q", chains["INPUT"])
				}
				if policies["INPUT"] != "ACCEPT" || len(chains["FORWARD"]) != 0 || len(chains["OUTPUT"]) != 0 {
					return fmt.Errorf("built-in chains changed:\n%s", out)
				}
				rules := chains["BANSHEE"]
				if len(rules) != 1+2*len(hostile) {
					return fmt.Errorf("BANSHEE has %d rules, want %d:\n%s", len(rules), 1+2*len(hostile), out)
				}
				for i, c := range hostile {
					for _, r := range rules[1+2*i : 3+2*i] {
						got := ""
						for j := range r {
							if r[j] == "--comment" && j+1 < len(r) {
								got = r[j+1]
							}
						}
						want := fmt.Sprintf("banshee ratelimit h%d: %s", i, c)
						if got != want {
							return fmt.Errorf("comment came back as %q, want %q", got, want)
						}
						if last := r[len(r)-1]; last == "ACCEPT" {
							return fmt.Errorf("a rule accepts: %q", r)
						}
					}
				}
				return nil
			})
		})
	}
}

func TestApplyRollbackAndConfirm(t *testing.T) {
	n := nstest.New(t, "admin")
	n.Victim.Listen(t, testPort)
	adm := n.Peers["admin"]
	dropAll := "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
	dir := t.TempDir()
	inNS(t, n, BackendAuto, dir, func(ctx context.Context, fw *Firewall) error {
		if _, err := fw.Block(ctx, []Entry{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), TTL: time.Hour}}); err != nil {
			return err
		}
		p, err := fw.Apply(ctx, []Ruleset{{Family: V4, Text: dropAll}}, time.Minute)
		if err != nil || p == nil {
			return fmt.Errorf("apply: %v %v", p, err)
		}
		if _, err := fw.Apply(ctx, []Ruleset{{Family: V4, Text: dropAll}}, time.Minute); err == nil {
			return fmt.Errorf("a second apply while one is pending was accepted")
		}
		out, _ := fw.r.run(ctx, nil, fw.t.save[V4])
		if !strings.Contains(string(out), "-A INPUT -j BANSHEE") || !strings.Contains(string(out), "--match-set banshee4") {
			return fmt.Errorf("apply lost banshee's chain:\n%s", out)
		}
		return nil
	})
	if err := adm.Dial(adm.VictimAddr4, testPort, 500*time.Millisecond); err == nil {
		t.Fatal("drop-all ruleset is not live")
	}
	inNS(t, n, BackendAuto, dir, func(ctx context.Context, fw *Firewall) error {
		if done, err := fw.Rollback(ctx, "not-the-token"); done || err != nil {
			return fmt.Errorf("rollback with a stale token acted: %v %v", done, err)
		}
		done, err := fw.Rollback(ctx, "")
		if !done || err != nil {
			return fmt.Errorf("rollback: %v %v", done, err)
		}
		if p, _ := fw.PendingApply(); p != nil {
			return fmt.Errorf("still pending after rollback: %+v", p)
		}
		return nil
	})
	if err := adm.Dial(adm.VictimAddr4, testPort, time.Second); err != nil {
		t.Fatalf("rollback did not bring the previous ruleset back: %v", err)
	}
	// A bad ruleset changes nothing and names its line.
	inNS(t, n, BackendAuto, dir, func(ctx context.Context, fw *Firewall) error {
		_, err := fw.Apply(ctx, []Ruleset{{Family: V4, Text: "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j NOSUCHTARGET\nCOMMIT\n"}}, time.Minute)
		if err == nil || !strings.Contains(err.Error(), "NOSUCHTARGET") || !strings.Contains(err.Error(), "nothing changed") {
			return fmt.Errorf("bad ruleset: %v", err)
		}
		if p, _ := fw.PendingApply(); p != nil {
			return fmt.Errorf("a failed apply left a pending change")
		}
		return nil
	})
	if err := adm.Dial(adm.VictimAddr4, testPort, time.Second); err != nil {
		t.Fatalf("a failed apply changed the firewall: %v", err)
	}
}

func TestSSHPeersSeesEstablishedSessions(t *testing.T) {
	n := nstest.New(t, "admin", "other")
	n.Victim.ListenEcho(t, 22)
	n.Victim.ListenEcho(t, 2222)
	adm, other := n.Peers["admin"], n.Peers["other"]
	c1, err := adm.DialConn(adm.VictimAddr4, 22, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := adm.DialConn(adm.VictimAddr6, 22, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c3, err := other.DialConn(other.VictimAddr4, 2222, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	var viaDiag, viaProc []netip.Addr
	err = n.Victim.Do(func() error {
		var err error
		if viaDiag, err = diagPeers([]uint16{22}); err != nil {
			return err
		}
		viaProc, err = procPeers([]uint16{22})
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]netip.Addr{"sock_diag": viaDiag, "/proc": viaProc} {
		slices.SortFunc(got, netip.Addr.Compare)
		want := []netip.Addr{adm.Addr4, adm.Addr6}
		if !slices.Equal(got, want) {
			t.Errorf("%s: SSH peers %v, want %v (the session to port 2222 is not SSH)", name, got, want)
		}
	}
}
