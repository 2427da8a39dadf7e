package policy

import (
	"net/netip"
	"testing"
	"time"
)

// gen draws values from fuzz input bytes; past the end it yields zeros.
type gen struct {
	b []byte
	i int
}

func (g *gen) byte() byte {
	if g.i >= len(g.b) {
		return 0
	}
	g.i++
	return g.b[g.i-1]
}

func (g *gen) n(k int) int { return int(g.byte()) % k }

func (g *gen) bool() bool { return g.byte()&1 == 1 }

// prefix draws from a small space so that overlaps are common: a few v4
// and v6 networks, the special addresses, v4-mapped forms, /0.
func (g *gen) prefix() netip.Prefix {
	switch g.n(10) {
	case 0:
		return []netip.Prefix{P("127.0.0.1"), P("169.254.169.254"), P("fd00:ec2::254"), P("0.0.0.0/0"), P("::/0"), P("10.0.1.2"), P("fe80::1"), P("::")}[g.n(8)]
	case 1, 2:
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, g.byte() & 3, 0, 0, 0, 0, 0, 0, 0, g.byte()})
		return netip.PrefixFrom(a, []int{128, 128, 127, 64, 60, 48, 32, 31}[g.n(8)]).Masked()
	case 3:
		a := netip.AddrFrom16(netip.AddrFrom4([4]byte{198, 51, 100 + g.byte()&3, g.byte()}).As16())
		return netip.PrefixFrom(a, []int{128, 120, 112}[g.n(3)]).Masked() // v4-mapped
	default:
		a := netip.AddrFrom4([4]byte{198, 51, 100 + g.byte()&3, g.byte()})
		return netip.PrefixFrom(a, []int{32, 32, 32, 31, 30, 28, 24, 22, 16, 15, 8}[g.n(11)]).Masked()
	}
}

func (g *gen) port() Port {
	switch g.n(5) {
	case 0:
		return Port{}
	case 1:
		return Port{Proto: "-1"}
	case 2:
		return Port{Proto: "udp", From: 53, To: 53}
	case 3:
		return Port{Proto: "tcp", From: 100, To: 120}
	}
	return pop3
}

func (g *gen) world() *world {
	w := &world{cfg: Default()}
	c := &w.cfg
	c.NACL.RuleMin = 1 + g.n(5)
	c.NACL.RuleMax = c.NACL.RuleMin + g.n(8)
	c.NACL.Quota = 2 + g.n(20)
	c.NACL.Egress = g.n(4) == 0
	c.Policy.NearlyFullFree = g.n(4)
	c.Policy.AggregateMinSources = g.n(4)
	c.Policy.VPCMinInstances = g.n(4)
	c.Policy.EscalateHosts = g.n(3)
	for range g.n(3) {
		c.Allowlist = append(c.Allowlist, g.prefix())
	}
	s := &w.s
	s.Now = testNow
	for range g.n(3) {
		s.Allowlist = append(s.Allowlist, g.prefix())
	}
	for range g.n(2) {
		s.VPCCIDRs = append(s.VPCCIDRs, g.prefix())
	}
	for range g.n(3) {
		s.Callers = append(s.Callers, g.prefix().Addr())
	}
	s.SGRules = map[string][]SGRule{}
	insts := []string{"i-1", "i-2", "i-3", "i-4"}
	for _, id := range insts {
		if g.n(5) == 0 {
			continue // unknown groups
		}
		rules := []SGRule{}
		for range g.n(5) {
			src := g.prefix()
			if g.n(3) == 0 {
				src = []netip.Prefix{P("0.0.0.0/0"), P("::/0")}[g.n(2)]
			}
			rules = append(rules, SGRule{GroupID: "sg-" + id, Port: g.port(), Source: src})
		}
		s.SGRules[id] = rules
	}
	s.NACLs = map[string]NACL{}
	for _, sn := range []string{"subnet-a", "subnet-b"} {
		if g.n(4) == 0 {
			continue
		}
		n := NACL{ID: "acl-" + sn[7:], SubnetIDs: []string{sn}}
		if g.bool() {
			n.Entries = stdEntries()
		}
		seen := map[[2]int]bool{} // AWS: one entry per direction and rule number
		for range g.n(24) {
			e := NACLEntry{RuleNumber: 1 + g.n(16), Egress: g.n(4) == 0, Allow: g.n(4) == 0, CIDR: g.prefix(), Port: g.port(), Severity: g.n(11)}
			if g.n(4) != 0 {
				e.ExpiresAt = testNow.Add(time.Duration(g.n(200)-20) * time.Minute)
			}
			dir := 0
			if e.Egress {
				dir = 1
			}
			if seen[[2]int{dir, e.RuleNumber}] {
				continue
			}
			seen[[2]int{dir, e.RuleNumber}] = true
			n.Entries = append(n.Entries, e)
		}
		s.NACLs[sn] = n
	}
	for range g.n(12) {
		b := Block{Target: g.prefix(), Scope: []Scope{ScopeHost, ScopeVPC}[g.n(2)], ExpiresAt: testNow.Add(time.Duration(g.n(200)-20) * time.Minute)}
		if b.Scope == ScopeHost {
			b.InstanceID = []string{"", "i-1", "i-2", "i-7"}[g.n(4)]
		} else {
			b.NACLID, b.RuleNumber = []string{"acl-a", "acl-b"}[g.n(2)], 1+g.n(16)
		}
		s.Blocks = append(s.Blocks, b)
	}
	for range g.n(8) {
		s.Offences = append(s.Offences, Offence{Source: g.prefix(), At: testNow.Add(-time.Duration(g.n(200)) * time.Hour)})
	}
	a := &w.a
	for range g.n(24) {
		a.Sources = append(a.Sources, g.prefix())
	}
	for _, id := range insts {
		switch g.n(4) {
		case 0:
			a.Targets = append(a.Targets, Target{InstanceID: id, SubnetID: "subnet-a"})
		case 1:
			a.Targets = append(a.Targets, Target{InstanceID: id, SubnetID: "subnet-b"})
		}
	}
	if g.n(6) == 0 {
		a.Targets = append(a.Targets, Target{SubnetID: []string{"subnet-a", "subnet-b", "subnet-z"}[g.n(3)]})
	}
	a.Port = g.port()
	a.Rate = float64(g.n(4) * 50)
	a.Severity = g.n(11)
	a.Scope = []Scope{ScopeAuto, ScopeAuto, ScopeHost, ScopeVPC}[g.n(4)]
	a.Force = g.n(3) == 0
	a.TTL = time.Duration(g.n(3)) * time.Hour
	return w
}

// protectedBy lists the networks no block may touch: all of them without
// --force, the hard ones with it. Computed the slow, obvious way.
func protectedBy(w *world, force bool) []netip.Prefix {
	out := Ps("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "169.254.169.254/32", "fd00:ec2::254/128", "0.0.0.0/32", "::/128")
	for _, c := range w.s.Callers {
		c = c.Unmap()
		out = append(out, netip.PrefixFrom(c, c.BitLen()))
	}
	if force {
		return out
	}
	out = append(out, w.cfg.Allowlist...)
	out = append(out, w.s.Allowlist...)
	out = append(out, w.s.VPCCIDRs...)
	targets := map[string]bool{}
	for _, t := range w.a.Targets {
		targets[t.InstanceID] = true
	}
	for id, rules := range w.s.SGRules {
		if len(w.a.Targets) > 0 && !targets[id] {
			continue
		}
		for _, r := range rules {
			if Canonical(r.Source).Bits() > 0 {
				out = append(out, r.Source)
			}
		}
	}
	return out
}

func checkInvariants(t testing.TB, w *world, ds []Decision) {
	t.Helper()
	if len(ds) != len(w.a.Sources) {
		t.Fatalf("%d decisions for %d sources", len(ds), len(w.a.Sources))
	}
	hard, all := protectedBy(w, true), protectedBy(w, false)
	entryOf := map[slot]netip.Prefix{}
	for i, d := range ds {
		if len(d.Reasons) == 0 {
			t.Errorf("decision %d (%s) has no reason", i, d.Target)
		}
		if d.Target != Canonical(w.a.Sources[i]) {
			t.Errorf("decision %d is for %s, source is %s", i, d.Target, w.a.Sources[i])
		}
		if !d.ExpiresAt.Equal(w.s.Now.Add(d.TTL)) || d.TTLSeconds != int64(d.TTL/time.Second) {
			t.Errorf("decision %d: ttl %s, ttl_seconds %d, expires %s", i, d.TTL, d.TTLSeconds, d.ExpiresAt)
		}
		if d.Action != ActionBlock {
			if d.Scope != ScopeNone || d.NACLID != "" {
				t.Errorf("decision %d: %s at scope %s nacl %q", i, d.Action, d.Scope, d.NACLID)
			}
			continue
		}
		for _, m := range d.Merges {
			for _, p := range all { // merges never cross a protected network, --force or not
				if overlaps(Canonical(p), m.Target) {
					t.Errorf("decision %d: merge %s overlaps protected %s", i, m.Target, p)
				}
			}
		}
		blocked := []netip.Prefix{d.Target}
		isSource := false
		for _, src := range w.a.Sources {
			isSource = isSource || (d.Aggregate != nil && Canonical(src) == *d.Aggregate)
		}
		if d.Aggregate != nil {
			blocked = append(blocked, *d.Aggregate)
		}
		if d.Aggregate != nil && !isSource {
			for _, p := range all { // aggregates never cross a protected network, --force or not
				if overlaps(Canonical(p), *d.Aggregate) {
					t.Errorf("decision %d: aggregate %s overlaps protected %s", i, d.Aggregate, p)
				}
			}
		}
		prot := all
		if w.a.Force {
			prot = hard
		}
		for _, b := range blocked {
			if b.Bits() == 0 {
				t.Errorf("decision %d blocks every address", i)
			}
			for _, p := range prot {
				if overlaps(Canonical(p), b) {
					t.Errorf("decision %d blocks %s, which overlaps protected %s (force %v)", i, b, p, w.a.Force)
				}
			}
		}
		if d.Scope == ScopeVPC {
			if d.RuleNumber < w.cfg.NACL.RuleMin || d.RuleNumber > w.cfg.NACL.RuleMax {
				t.Errorf("decision %d: rule %d outside the range %d-%d", i, d.RuleNumber, w.cfg.NACL.RuleMin, w.cfg.NACL.RuleMax)
			}
			entry := d.Target
			if d.Aggregate != nil {
				entry = *d.Aggregate
			}
			k := slot{d.NACLID, d.RuleNumber}
			if prev, ok := entryOf[k]; ok && prev != entry {
				t.Errorf("%s rule %d planned for both %s and %s", d.NACLID, d.RuleNumber, prev, entry)
			}
			entryOf[k] = entry
		}
	}

	// Per NACL and family: new entries fit the quota, reuse no taken number
	// unless they evict or refresh it.
	evicted := map[slot]bool{}
	for _, d := range ds {
		if d.Evicts != nil {
			evicted[slot{d.Evicts.NACLID, d.Evicts.RuleNumber}] = true
		}
	}
	for _, n := range w.s.NACLs {
		var cnt [2][2]int
		var dflt [2][2]bool
		taken := map[int]*NACLEntry{}    // ingress
		takenOut := map[int]*NACLEntry{} // egress
		for k := range n.Entries {
			e := &n.Entries[k]
			dir, f := 0, famOf(Canonical(e.CIDR))
			if e.Egress {
				dir = 1
			}
			cnt[dir][f]++
			dflt[dir][f] = dflt[dir][f] || e.RuleNumber == defaultRuleNumber
			if !e.Egress {
				taken[e.RuleNumber] = e
			} else if w.cfg.NACL.Egress {
				takenOut[e.RuleNumber] = e
			}
		}
		var added [2]int
		for k, p := range entryOf {
			if k.nacl != n.ID {
				continue
			}
			f := famOf(p)
			e := taken[k.n]
			if o := takenOut[k.n]; o != nil && Canonical(o.CIDR) != p && !evicted[k] {
				t.Errorf("%s egress rule %d is taken by %s, planned for %s", n.ID, k.n, o.CIDR, p)
			}
			switch {
			case e == nil && takenOut[k.n] == nil:
				added[f]++
			case e == nil:
			case evicted[k]:
				if famOf(Canonical(e.CIDR)) != f {
					t.Errorf("%s rule %d: evicts an entry of the other family", n.ID, k.n)
				}
			case Canonical(e.CIDR) != p && !mergedAway(entryOf, ds, n.ID, e, w.cfg.NACL):
				t.Errorf("%s rule %d is taken by %s, planned for %s", n.ID, k.n, e.CIDR, p)
			}
		}
		for f := range 2 {
			use := 0
			for dir := range 2 {
				if dir == 1 && !w.cfg.NACL.Egress {
					continue
				}
				c := cnt[dir][f]
				if !dflt[dir][f] {
					c++
				}
				use = max(use, c)
			}
			if added[f] > 0 && use+added[f] > w.cfg.NACL.Quota {
				t.Errorf("%s %s: %d entries + %d planned exceed the quota %d", n.ID, famName[f], use, added[f], w.cfg.NACL.Quota)
			}
		}
	}
}

// mergedAway reports whether entry e of NACL id is one of banshee's that
// the decisions re-place: it lies inside an entry planned there (written
// in place of it, or deleted once that entry is in force).
func mergedAway(entryOf map[slot]netip.Prefix, ds []Decision, id string, e *NACLEntry, cfg NACLConfig) bool {
	if e.Allow || e.ExpiresAt.IsZero() || e.RuleNumber < cfg.RuleMin || e.RuleNumber > cfg.RuleMax {
		return false
	}
	c := Canonical(e.CIDR)
	for k, p := range entryOf {
		if k.nacl == id && p.Bits() <= c.Bits() && overlaps(p, c) {
			return true
		}
	}
	for _, d := range ds {
		for _, m := range d.Merges {
			if m.NACLID == id && m.Target.Bits() <= c.Bits() && overlaps(m.Target, c) {
				return true
			}
		}
	}
	return false
}

type slot struct {
	nacl string
	n    int
}

func FuzzDecide(f *testing.F) {
	for _, seed := range []string{
		"",
		"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
		"banshee blocks attacking ip addresses at the right layer; never what the security groups allow",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0\xef\xee\xed\xec\xeb\xea\xe9\xe8",
	} {
		f.Add([]byte(seed))
	}
	for k := range 24 {
		b := make([]byte, 256)
		for j := range b {
			b[j] = byte((j*131 + k*37 + j*j*k) % 251)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{b: data}
		w := g.world()
		ds := New(w.cfg).Decide(w.a, w.s)
		checkInvariants(t, w, ds)
		if t.Failed() {
			for i, d := range ds {
				t.Logf("%d %s: %s %q", i, d.Target, summary(d), d.Reasons)
			}
		}
	})
}
