package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// benchWorld is the load of the issue: 1,000 security-group rules, 10,000
// active blocks and an attack of 1,000 sources on 4 instances of one
// subnet whose NACL is nearly full (aggregation, eviction, fallback).
func benchWorld() *world {
	rng := rand.New(rand.NewPCG(1, 2))
	w := &world{cfg: Default()}
	w.cfg.Allowlist = Ps("192.0.2.0/24", "2001:db8:ffff::/48")
	addr4 := func(a byte) netip.Addr {
		return netip.AddrFrom4([4]byte{a, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	insts := []string{"i-1", "i-2", "i-3", "i-4"}
	w.s = Snapshot{Now: testNow, SGRules: map[string][]SGRule{}, VPCCIDRs: Ps("10.0.0.0/16")}
	for k := range 1000 {
		id := insts[k%len(insts)]
		r := SGRule{GroupID: fmt.Sprintf("sg-%d", k/50), Description: fmt.Sprintf("rule %d", k), Port: Port{Proto: "tcp", From: uint16(1000 + k), To: uint16(1000 + k)},
			Source: netip.PrefixFrom(addr4(172), 16+rng.IntN(17)).Masked()}
		if k%25 == 0 {
			r.Port, r.Source = pop3, P("0.0.0.0/0")
		}
		w.s.SGRules[id] = append(w.s.SGRules[id], r)
	}
	w.a = Attack{Port: pop3, Targets: hosts("subnet-a", insts...), Severity: 7}
	for range 1000 {
		w.a.Sources = append(w.a.Sources, netip.PrefixFrom(addr4(45), 32))
	}
	for k := range 10000 {
		b := Block{Scope: ScopeHost, InstanceID: insts[k%len(insts)], ExpiresAt: testNow.Add(time.Duration(1+rng.IntN(100)) * time.Minute)}
		if k%10 == 0 {
			b.Target = w.a.Sources[rng.IntN(len(w.a.Sources))] // some attackers are already dropped somewhere
		} else {
			b.Target = netip.PrefixFrom(addr4(byte(46+rng.IntN(50))), 24+rng.IntN(9)).Masked()
		}
		w.s.Blocks = append(w.s.Blocks, b)
	}
	for k := range 500 {
		w.s.Offences = append(w.s.Offences, Offence{Source: w.a.Sources[k*2], At: testNow.Add(-time.Duration(k) * time.Minute)})
	}
	w.s.NACLs = map[string]NACL{"subnet-a": {ID: "acl-a", SubnetIDs: []string{"subnet-a"}, Entries: stdEntries(fill(1, 12)...)}}
	return w
}

// BenchmarkDecide reports the time to decide one 1,000-source attack
// (target: under 5 ms) and the decisions per second that makes.
func BenchmarkDecide(b *testing.B) {
	w := benchWorld()
	e := New(w.cfg)
	ds := e.Decide(w.a, w.s)
	checkInvariants(b, w, ds)
	counts := map[string]int{}
	for _, d := range ds {
		counts[string(d.Scope)+"/"+string(d.Action)]++
	}
	b.Logf("decisions: %v", counts)
	b.ReportAllocs()
	cpu0, cpuOK := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		e.Decide(w.a, w.s)
	}
	b.StopTimer()
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(per/1e6, "ms/1000-sources")
	b.ReportMetric(float64(len(w.a.Sources))*1e9/per, "decisions/s")
	if cpu1, ok := cpuTime(); ok && cpuOK {
		// CPU time per attack (GC included): what a loaded machine does not inflate.
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/1e6, "cpu-ms/1000-sources")
	}
}
