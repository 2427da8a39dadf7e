package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// dialEventually connects within a few tries with a generous timeout: what
// must connect does, however loaded the machine.
func dialEventually(t *testing.T, p *nstest.Peer) error {
	t.Helper()
	var err error
	for range 5 {
		if err = p.Dial(p.VictimAddr4, port, 5*time.Second); err == nil {
			return nil
		}
	}
	return err
}

type listedJSON struct {
	Blocks []struct {
		Target    string    `json:"target"`
		Scope     string    `json:"scope"`
		ExpiresAt time.Time `json:"expires_at"`
		Reason    string    `json:"reason"`
		Drift     string    `json:"drift"`
	} `json:"blocks"`
	Problems []string `json:"problems"`
}

func (c *cli) list() listedJSON {
	c.t.Helper()
	var l listedJSON
	r := c.run("", "list", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		c.t.Fatalf("list -o json: %v: %q %q", err, r.stdout, r.stderr)
	}
	return l
}

// TestEngineSemanticsOnTheKernel drives the engine's semantics through the
// built binary against the real kernel: a re-block never shortens a block
// nor drops its reason, --replace does; the host's own networks are
// refused even with --force; --port on a host block is usage; unblock names
// the wider block that still covers an address; drift (a deleted jump, a
// deleted set entry, an entry added by hand) shows in list and status and
// reconcile repairs it.
func TestEngineSemanticsOnTheKernel(t *testing.T) {
	n := nstest.New(t, "attacker")
	n.Victim.Listen(t, port)
	att := n.Peers["attacker"]
	c := newCLI(t, n.Victim, "")
	a4 := att.Addr4.String()

	c.must("", "block", a4, "--ttl", "24h", "--reason", "keep me", "--scope", "host")
	c.must("", "block", a4, "--scope", "host")
	c.must("", "block", a4, "--ttl", "10m", "--reason", "later", "--scope", "host")
	l := c.list()
	if len(l.Blocks) != 1 || time.Until(l.Blocks[0].ExpiresAt) < 23*time.Hour || !strings.Contains(l.Blocks[0].Reason, "keep me") || !strings.HasPrefix(l.Blocks[0].Reason, "later") {
		t.Fatalf("after shorter re-blocks: %+v, want ~24h left and the reasons kept, newest first", l.Blocks)
	}
	c.must("", "block", a4, "--ttl", "10m", "--reason", "exact", "--scope", "host", "--replace")
	l = c.list()
	if left := time.Until(l.Blocks[0].ExpiresAt); left > 11*time.Minute || l.Blocks[0].Reason != "exact" {
		t.Errorf("after --replace: %+v, want 10m and the reason exact", l.Blocks)
	}

	// The host's own /24 (it holds the victim's address) and its address.
	for _, args := range [][]string{
		{"block", "10.99.10.0/24", "--force", "--scope", "host"},
		{"block", att.VictimAddr4.String(), "--force"},
	} {
		r := c.run("", args...)
		if r.code != 3 || !strings.Contains(r.stderr, "an address of this host") || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("banshee %v: exit %d, stdout %q, stderr %q: want 3 and one line naming the host's address", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := c.run("", "block", "203.0.113.9", "--port", "2222/tcp", "--scope", "host"); r.code != 2 || !strings.Contains(r.stderr, "tcp/2222") {
		t.Errorf("--port on a host block: exit %d %q, want 2 naming the port", r.code, r.stderr)
	}

	// unblock inside a wider block names it.
	c.must("", "block", "192.0.2.0/24", "--scope", "host")
	r := c.must("", "unblock", "192.0.2.5")
	if !strings.Contains(r.stdout, "covered by 192.0.2.0/24") || !strings.Contains(r.stdout, "banshee unblock 192.0.2.0/24") {
		t.Errorf("unblock inside a /24: %q", r.stdout)
	}

	// Drift: the jump goes, the attacker connects, list and status say so.
	if out, err := n.Victim.Run(t.Context(), "iptables", "-D", "INPUT", "-j", "BANSHEE"); err != nil {
		t.Fatalf("deleting the jump: %v %s", err, out)
	}
	if err := dialEventually(t, att); err != nil {
		t.Fatalf("with the jump deleted the attacker should connect: %v", err)
	}
	l = c.list()
	if len(l.Problems) == 0 || !hasDrift(l, a4, "not-hooked") {
		t.Errorf("list without the jump: %+v, want the block marked not-hooked and a problem", l)
	}
	if r := c.run("", "status"); r.code != 1 || !strings.Contains(r.stdout+r.stderr, "drift") {
		t.Errorf("status with drift: exit %d %q %q, want 1", r.code, r.stdout, r.stderr)
	}
	// A set entry deleted, another added by hand.
	if out, err := n.Victim.Run(t.Context(), "ipset", "del", "banshee4", "192.0.2.0/24"); err != nil {
		t.Fatalf("ipset del: %v %s", err, out)
	}
	if out, err := n.Victim.Run(t.Context(), "ipset", "add", "banshee4", "198.51.100.77", "timeout", "600"); err != nil {
		t.Fatalf("ipset add: %v %s", err, out)
	}
	l = c.list()
	if !hasDrift(l, "192.0.2.0/24", "missing") || !hasDrift(l, "198.51.100.77", "unrecorded") {
		t.Errorf("list: %+v, want 192.0.2.0/24 missing and 198.51.100.77 unrecorded", l)
	}
	c.must("", "reconcile")
	l = c.list()
	for _, b := range l.Blocks {
		if b.Drift != "" {
			t.Errorf("after reconcile %s is still %s", b.Target, b.Drift)
		}
	}
	if len(l.Blocks) != 3 || len(l.Problems) != 0 {
		t.Errorf("after reconcile: %+v, want 3 blocks and no problem", l)
	}
	if err := att.Dial(att.VictimAddr4, port, 700*time.Millisecond); err == nil {
		t.Errorf("after reconcile the attacker still connects")
	}
	c.must("", "status")

	// --ttl permanent: no timeout in the kernel and no expiry in list; a
	// later re-block with a TTL keeps it permanent (never shortened).
	c.must("", "block", "203.0.113.50", "--ttl", "permanent", "--scope", "host")
	c.must("", "block", "203.0.113.50", "--ttl", "2h", "--scope", "host")
	out, err := n.Victim.Run(t.Context(), "ipset", "list", "banshee4")
	if err != nil || !strings.Contains(string(out), "203.0.113.50 timeout 0 ") {
		t.Errorf("ipset list after --ttl permanent: %v\n%s\nwant 203.0.113.50 with timeout 0 (no expiry)", err, out)
	}
	found := false
	for _, b := range c.list().Blocks {
		if strings.TrimSuffix(b.Target, "/32") == "203.0.113.50" {
			found = true
			if !b.ExpiresAt.IsZero() {
				t.Errorf("list: permanent block expires at %s", b.ExpiresAt)
			}
		}
	}
	if !found {
		t.Errorf("list: the permanent block is missing")
	}
	if r := c.must("", "list"); !strings.Contains(r.stdout, "permanent") {
		t.Errorf("list text: %q, want the block shown as permanent", r.stdout)
	}
}

func hasDrift(l listedJSON, target, drift string) bool {
	for _, b := range l.Blocks {
		if (b.Target == target || strings.TrimSuffix(b.Target, "/32") == target) && b.Drift == drift {
			return true
		}
	}
	return false
}
