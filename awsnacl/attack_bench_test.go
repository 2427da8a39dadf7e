package awsnacl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/policy"
)

// BenchmarkDistributedAttack replays one distributed attack (fixed seed)
// against moto three ways and reports, per strategy, where the attack
// traffic was stopped:
//
//   - banshee: the policy places the whole reserved range each time
//     (aggregation, widening, eviction by value) and what does not fit is
//     dropped on the attacked hosts (through SSM in production);
//   - host only: every offender dropped on the hosts it reached, as
//     fail2ban does, except those in the allowlist banshee is given
//     (fail2ban's ignoreip);
//   - NACL only, evict oldest: every offender a /32 (/128) deny, the
//     oldest entry deleted when the range is full, as the aws-samples NACL
//     function does.
//
// The attack: benchSources sources, three quarters in /24 botnets (some in
// adjacent /24s) and IPv6 /64s, the rest scattered; each botnet or single
// gets a Zipf(1.1) rank, its members that rank's weight per minute; every
// source arrives at a random minute of the first eight and attacks one,
// two or all three instances (two in one subnet, one in another, each
// subnet with its own NACL). Some sources lie in allowlisted networks.
// Each minute the traffic is scored against the blocks in force (the
// NACLs read back from moto), then what got through is detected, per set
// of instances reached, and the strategy acts once per set (one alarm or
// one CLI call). Host blocks are kept in the benchmark; SSM calls are
// counted as one Run Command per alarm that blocks anything on hosts (the
// Lambda's batching). EC2 calls are counted by a proxy in front of moto
// (for evict oldest, as the function makes them: see evictOldest).
//
// It fails when banshee misses its target: more of the traffic stopped at
// the edge than evict oldest, more stopped in total than either baseline,
// never more entries of a family than the quota leaves, and no protected
// address blocked.
func BenchmarkDistributedAttack(b *testing.B) {
	for i := 0; i < b.N; i++ {
		atk := genAttack(20261202, benchSources)
		var rows []simResult
		for _, s := range []string{"banshee", "host only", "NACL only, evict oldest"} {
			rows = append(rows, runSim(b, atk, s))
		}
		var t strings.Builder
		fmt.Fprintf(&t, "distributed attack: %d sources (%d in /24 or /64 botnets), %.0f traffic units, %d minutes\n", len(atk.srcs), atk.clustered, atk.total(), atk.ticks+simTail)
		fmt.Fprintf(&t, "%-24s %6s %6s %10s %12s %10s %9s %9s %12s %10s\n", "strategy", "edge", "hosts", "unblocked", "NACL max/nums", "host ent.", "EC2 calls", "SSM calls", "decide", "protected")
		for _, r := range rows {
			tot := r.edge + r.host + r.open
			fmt.Fprintf(&t, "%-24s %5.1f%% %5.1f%% %9.1f%% %6d/%-5d %10d %9d %9d %12s %10d\n", r.name, 100*r.edge/tot, 100*r.host/tot, 100*r.open/tot,
				r.naclMax, r.naclCap, r.hostEntries, r.ec2, r.ssm, r.decide.Round(time.Millisecond), r.protectedDenied)
		}
		b.Log("\n" + t.String())
		bs, ho, eo := rows[0], rows[1], rows[2]
		share := func(r simResult, v float64) float64 { return 100 * v / (r.edge + r.host + r.open) }
		b.ReportMetric(share(bs, bs.edge), "banshee-edge-%")
		b.ReportMetric(share(bs, bs.edge+bs.host), "banshee-stopped-%")
		b.ReportMetric(share(ho, ho.host), "host-only-stopped-%")
		b.ReportMetric(share(eo, eo.edge), "evict-oldest-edge-%")
		if bs.protectedDenied != 0 {
			b.Errorf("banshee blocked %d protected addresses", bs.protectedDenied)
		}
		if share(bs, bs.edge) <= share(eo, eo.edge) {
			b.Errorf("banshee stopped %.1f%% at the edge, evict oldest %.1f%%", share(bs, bs.edge), share(eo, eo.edge))
		}
		for _, r := range rows[1:] {
			if share(bs, bs.edge+bs.host) <= share(r, r.edge+r.host) {
				b.Errorf("banshee stopped %.1f%% in total, %s %.1f%%", share(bs, bs.edge+bs.host), r.name, share(r, r.edge+r.host))
			}
		}
		if bs.overQuota > 0 {
			b.Errorf("banshee held more entries of a family than the quota leaves in %d reads", bs.overQuota)
		}
	}
}

const simTail = 3 // minutes scored after the last arrival

type simSource struct {
	p         netip.Prefix
	weight    float64
	arrive    int
	hits      []int // instance indexes
	protected bool
}

type simAttack struct {
	srcs      []simSource
	allow     []netip.Prefix
	ticks     int
	clustered int
}

func (a *simAttack) total() float64 {
	t := 0.0
	for _, s := range a.srcs {
		t += s.weight * float64(len(s.hits)*(a.ticks+simTail-s.arrive))
	}
	return t
}

// genAttack builds the replayable attack of n sources.
func genAttack(seed uint64, n int) *simAttack {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	a := &simAttack{ticks: 8}
	seen := map[netip.Prefix]bool{}
	var units [][]netip.Prefix
	octet := func() int { // public-looking: 23-212, never 10/8, 127/8 (loopback, which banshee refuses) or 169.254
		o := 23 + rng.IntN(189)
		if o >= 127 {
			o++
		}
		return o
	}
	addUnit := func(ps []netip.Prefix) {
		var u []netip.Prefix
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				u = append(u, p)
			}
		}
		if len(u) > 0 {
			units = append(units, u)
		}
	}
	v4cluster := func(a1, a2, a3 int, size int) []netip.Prefix {
		var out []netip.Prefix
		for range size {
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a1), byte(a2), byte(a3), byte(1 + rng.IntN(254))}), 32))
		}
		return out
	}
	total := 0
	for k := 0; total < n*3/4-500; k++ {
		a1, a2, a3 := octet(), rng.IntN(256), rng.IntN(250)
		blocks := 1
		if k%4 == 0 {
			blocks = 3 // a botnet in three adjacent /24s
		}
		for j := range blocks {
			c := v4cluster(a1, a2, a3+j, 10+rng.IntN(30))
			total += len(c)
			addUnit(c)
		}
	}
	for k := 0; k < 20; k++ { // IPv6 /64 botnets
		var c []netip.Prefix
		net3 := byte(rng.IntN(256))
		for range 15 + rng.IntN(15) {
			var b16 [16]byte
			b16[0], b16[1], b16[2], b16[3] = 0x2a, 0x05, byte(k), net3
			for j := 8; j < 16; j++ {
				b16[j] = byte(rng.IntN(256))
			}
			c = append(c, netip.PrefixFrom(netip.AddrFrom16(b16), 128))
		}
		total += len(c)
		addUnit(c)
	}
	a.clustered = total
	for len(seen) < n {
		if rng.IntN(10) == 0 {
			var b16 [16]byte
			b16[0], b16[1] = 0x24, 0x0e
			for j := 2; j < 16; j++ {
				b16[j] = byte(rng.IntN(256))
			}
			addUnit([]netip.Prefix{netip.PrefixFrom(netip.AddrFrom16(b16), 128)})
			continue
		}
		addUnit([]netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(octet()), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))}), 32)})
	}
	// Allowlisted networks among the attackers: a /32 inside one botnet's
	// /24 (which must then never be aggregated), a whole /24 botnet, and
	// a /64.
	a.allow = []netip.Prefix{units[3][0], netip.PrefixFrom(units[7][0].Addr(), 24).Masked(), netip.PrefixFrom(units[len(units)-200][0].Addr(), 64).Masked()}
	for _, u := range units {
		if u[0].Addr().Is6() && len(u) > 1 {
			a.allow[2] = netip.PrefixFrom(u[0].Addr(), 64).Masked()
			break
		}
	}
	a.allow[0] = netip.PrefixFrom(a.allow[0].Addr().Next(), 32) // a neighbour, not an attacker itself
	rank := rng.Perm(len(units))
	for ui, u := range units {
		w := 1000 / math.Pow(float64(rank[ui]+1), 1.1)
		for _, p := range u {
			s := simSource{p: p, weight: w * (0.5 + rng.Float64()), arrive: rng.IntN(a.ticks)}
			switch r := rng.IntN(4); {
			case r < 2:
				s.hits = []int{0, 1, 2}
			case r == 2:
				s.hits = [][]int{{0, 1}, {0, 2}, {1, 2}}[rng.IntN(3)]
			default:
				s.hits = []int{rng.IntN(3)}
			}
			s.protected = slices.ContainsFunc(a.allow, func(q netip.Prefix) bool { return q.Overlaps(p) })
			a.srcs = append(a.srcs, s)
		}
	}
	return a
}

type simResult struct {
	name             string
	edge, host, open float64
	naclMax, naclCap int
	hostEntries      int
	ec2, ssm         int
	decide           time.Duration
	protectedDenied  int
	overQuota        int // reads of a NACL with more entries of one family than the quota leaves
}

// simEnv is one VPC for one strategy: two subnets, each with its own
// NACL (allow-all at 100, as AWS's default), three instances.
type simEnv struct {
	w       *world
	subnets [2]string
	nacls   [2]string
	insts   [3]string
	instSub [3]int
}

func newSimEnv(b *testing.B) *simEnv {
	w := newWorld(b)
	ctx := ctxT(b)
	e := &simEnv{w: w}
	e.subnets[0], e.nacls[0] = w.subnet, w.nacl
	a4 := w.vpcV4.Addr().As4()
	sub, err := w.raw.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(w.vpcID), CidrBlock: aws.String(fmt.Sprintf("%d.%d.2.0/24", a4[0], a4[1]))})
	if err != nil {
		b.Fatal(err)
	}
	e.subnets[1] = aws.ToString(sub.Subnet.SubnetId)
	acl, err := w.raw.CreateNetworkAcl(ctx, &ec2.CreateNetworkAclInput{VpcId: aws.String(w.vpcID)})
	if err != nil {
		b.Fatal(err)
	}
	e.nacls[1] = aws.ToString(acl.NetworkAcl.NetworkAclId)
	for _, c := range []string{"0.0.0.0/0", "::/0"} {
		in := &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(e.nacls[1]), RuleNumber: i32(100), Egress: aws.Bool(false), Protocol: aws.String("-1"), RuleAction: types.RuleActionAllow}
		setCIDR(&in.CidrBlock, &in.Ipv6CidrBlock, netip.MustParsePrefix(c))
		if c == "::/0" {
			in.RuleNumber = i32(101)
		}
		if _, err := w.raw.CreateNetworkAclEntry(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	na, err := w.raw.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{e.subnets[1]}}}})
	if err != nil || len(na.NetworkAcls) != 1 {
		b.Fatalf("finding the second subnet's association: %v", err)
	}
	for _, as := range na.NetworkAcls[0].Associations {
		if aws.ToString(as.SubnetId) == e.subnets[1] {
			if _, err := w.raw.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{AssociationId: as.NetworkAclAssociationId, NetworkAclId: aws.String(e.nacls[1])}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := w.raw.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(w.sg), IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}},
	}}); err != nil {
		b.Fatal(err)
	}
	e.insts[0], e.insts[1] = w.instance(), w.instance()
	w.subnet = e.subnets[1]
	e.insts[2] = w.instance()
	w.subnet = e.subnets[0]
	e.instSub = [3]int{0, 0, 1}
	return e
}

// denies reads the deny entries of the reserved range of both NACLs.
func (e *simEnv) denies(b *testing.B, cfg policy.NACLConfig) [2][]policy.NACLEntry {
	var out [2][]policy.NACLEntry
	for k, id := range e.nacls {
		o, err := e.w.raw.DescribeNetworkAcls(ctxT(b), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{id}})
		if err != nil {
			b.Fatal(err)
		}
		st, err := naclFromAWS(o.NetworkAcls[0], time.Now())
		if err != nil {
			b.Fatal(err)
		}
		out[k] = denies(st, cfg)
	}
	return out
}

func runSim(b *testing.B, atk *simAttack, strategy string) simResult {
	env := newSimEnv(b)
	cfg := policy.Default()
	cfg.Allowlist = atk.allow
	p := env.w.srv.Proxy(b, mototest.Faults{})
	res := simResult{name: strategy, naclCap: cfg.NACL.RuleMax - cfg.NACL.RuleMin + 1} // rule numbers of the range, both families
	host := make([]map[int]bool, 3)                                                    // instance → sources dropped there
	for k := range host {
		host[k] = map[int]bool{}
	}
	start := time.Now().UTC().Truncate(time.Minute)
	oldest := [2][]int{} // evict-oldest: rule numbers in creation order, per NACL
	for tick := 0; tick < atk.ticks+simTail; tick++ {
		now := start.Add(time.Duration(tick) * time.Minute)
		ds := env.denies(b, cfg.NACL)
		for k := range ds {
			res.naclMax = max(res.naclMax, len(ds[k]))
			var fam [2]int
			for _, e := range ds[k] {
				fam[b2i(e.CIDR.Addr().Is6())]++
			}
			for _, n := range fam {
				if n > cfg.NACL.Quota-2 { // each family's allow (100, 101) and default deny take two
					res.overQuota++
				}
			}
		}
		// Score this minute; collect what got through, per instance set.
		groups := map[string][]int{}
		var keys []string
		seenVol := map[int]float64{}
		for si, s := range atk.srcs {
			if s.arrive > tick {
				continue
			}
			var through []int
			for _, inst := range s.hits {
				switch {
				case deniedBy(ds[env.instSub[inst]], s.p.Addr()):
					res.edge += s.weight
				case host[inst][si]:
					res.host += s.weight
				default:
					res.open += s.weight
					through = append(through, inst)
				}
			}
			if len(through) == 0 {
				continue
			}
			key := fmt.Sprint(through)
			if _, ok := groups[key]; !ok {
				keys = append(keys, key)
			}
			groups[key] = append(groups[key], si)
			seenVol[si] = s.weight * float64(len(through))
		}
		slices.Sort(keys)
		for _, key := range keys {
			srcs := groups[key]
			insts := parseInts(key)
			switch strategy {
			case "host only":
				for _, si := range srcs {
					if atk.srcs[si].protected {
						continue // fail2ban's ignoreip: the same allowlist banshee is given
					}
					for _, inst := range insts {
						host[inst][si] = true
					}
				}
				res.ssm++
			case "NACL only, evict oldest":
				res.ec2 += evictOldest(b, env, cfg.NACL, atk, srcs, insts, &oldest)
			default:
				res.ssm += bansheeAct(b, env, p.URL, cfg, atk, srcs, insts, seenVol, host, now, &res.decide)
			}
		}
	}
	for k := range host {
		res.hostEntries += len(host[k])
	}
	res.ec2 += p.Total()
	ds := env.denies(b, cfg.NACL)
	for si, s := range atk.srcs {
		if !s.protected {
			continue
		}
		if deniedBy(ds[0], s.p.Addr()) || deniedBy(ds[1], s.p.Addr()) {
			res.protectedDenied++
		}
		for k := range host {
			if host[k][si] {
				res.protectedDenied++
				break
			}
		}
	}
	for k := range ds {
		for _, e := range ds[k] {
			for _, q := range atk.allow {
				if e.CIDR.Overlaps(q) && strategy == "banshee" {
					b.Errorf("%s rule %d denies %s over allowlisted %s", env.nacls[k], e.RuleNumber, e.CIDR, q)
				}
			}
		}
	}
	return res
}

func parseInts(key string) []int {
	var out []int
	for _, f := range strings.Fields(strings.Trim(key, "[]")) {
		var n int
		fmt.Sscan(f, &n)
		out = append(out, n)
	}
	return out
}

// bansheeAct is one alarm: the sources that got through to insts this
// minute, decided by the policy on a fresh snapshot and enforced; host
// decisions (and VPC writes that failed) become host drops. It returns
// the SSM Run Commands the alarm costs (0 or 1).
func bansheeAct(b *testing.B, env *simEnv, endpoint string, cfg policy.Config, atk *simAttack, srcs, insts []int, vol map[int]float64,
	host []map[int]bool, now time.Time, decide *time.Duration) int {
	ctx := ctxT(b)
	m := env.w.manager(endpoint, cfg.NACL, WithClock(func() time.Time { return now }))
	ids := make([]string, len(insts))
	for k, i := range insts {
		ids[k] = env.insts[i]
	}
	targets, err := m.Resolve(ctx, ids, "")
	if err != nil {
		b.Fatal(err)
	}
	snap := policy.Snapshot{Now: now}
	if err := m.FillSnapshot(ctx, targets, &snap); err != nil {
		b.Fatal(err)
	}
	a := policy.Attack{Targets: targets, Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Kind: policy.KindBruteforce, Origin: policy.OriginLambda,
		TTL: 24 * time.Hour, Reason: "sshd alarm"}
	instOf := map[string]int{}
	for k, id := range env.insts {
		instOf[id] = k
	}
	for _, si := range srcs {
		a.Sources = append(a.Sources, atk.srcs[si].p)
		a.Volume = append(a.Volume, max(int64(vol[si]), 1))
		for k := range host {
			if host[k][si] {
				snap.Blocks = append(snap.Blocks, policy.Block{Target: atk.srcs[si].p, Scope: policy.ScopeHost, InstanceID: env.insts[k], ExpiresAt: now.Add(24 * time.Hour)})
			}
		}
	}
	t0 := time.Now()
	ds := policy.New(cfg).Decide(a, snap)
	*decide += time.Since(t0)
	_, err = m.Block(ctx, ds, Request{Origin: policy.OriginLambda, Reason: a.Reason, Port: a.Port})
	failed := map[netip.Prefix]bool{}
	for _, te := range Failed(err) {
		failed[te.Target] = true
	}
	if err != nil && len(Failed(err)) == 0 && !errors.Is(err, ErrNoRoom) {
		b.Logf("block: %v", err)
	}
	ssm := 0
	for i, d := range ds {
		si := srcs[i]
		var on []string
		switch {
		case d.Action != policy.ActionBlock:
		case d.Scope == policy.ScopeHost, d.Scope == policy.ScopeVPC && failed[d.Target]:
			on = d.Instances
			if len(on) == 0 || d.Scope == policy.ScopeVPC {
				on = ids
			}
		case d.Scope == policy.ScopeVPC:
			on = d.Instances // outside the NACL's subnets
		}
		for _, id := range on {
			host[instOf[id]][si] = true
			ssm = 1
		}
	}
	return ssm
}

// evictOldest is the aws-samples approach: each offender a /32 (/128)
// deny in the NACL of every subnet it reached, the oldest deleted first
// when the range is full. It returns the EC2 calls the function makes
// for the alarm: one DescribeNetworkAcls per NACL, one
// CreateNetworkAclEntry per offender and one DeleteNetworkAclEntry per
// eviction. Within one alarm most of those entries are evicted again by
// later offenders of the same alarm, so the NACL it leaves is computed
// first and only the difference is written to moto (ReplaceNetworkAclEntry
// in place, or a create): the same NACL between alarms, where the traffic
// is scored, in a fraction of the calls, so that the attack can be large.
func evictOldest(b *testing.B, env *simEnv, cfg policy.NACLConfig, atk *simAttack, srcs, insts []int, oldest *[2][]int) int {
	c := env.w.raw
	subs := map[int]bool{}
	for _, i := range insts {
		subs[env.instSub[i]] = true
	}
	calls := 0
	for k := range 2 {
		if !subs[k] {
			continue
		}
		var o *ec2.DescribeNetworkAclsOutput
		if err := within(func(ctx context.Context) (err error) {
			o, err = c.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{env.nacls[k]}})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		calls++
		st, err := naclFromAWS(o.NetworkAcls[0], time.Now())
		if err != nil {
			b.Fatal(err)
		}
		es := denies(st, cfg)
		before := map[int]netip.Prefix{}
		for _, e := range es {
			before[e.RuleNumber] = e.CIDR
		}
		after := maps.Clone(before)
		for _, si := range srcs {
			p := atk.srcs[si].p
			if deniedBy(es, p.Addr()) {
				continue
			}
			n := 0
			for r := cfg.RuleMin; r <= cfg.RuleMax-1 && n == 0; r++ { // 18 of the 20: the allow and the default deny take two
				if _, taken := after[r]; !taken {
					n = r
				}
			}
			if n == 0 {
				n = oldest[k][0]
				oldest[k] = oldest[k][1:]
				calls++ // DeleteNetworkAclEntry
				es = slices.DeleteFunc(es, func(e policy.NACLEntry) bool { return e.RuleNumber == n })
			}
			calls++ // CreateNetworkAclEntry
			after[n] = p
			es = append(es, policy.NACLEntry{RuleNumber: n, CIDR: p})
			oldest[k] = append(oldest[k], n)
		}
		for _, n := range slices.Sorted(maps.Keys(after)) {
			p := after[n]
			was, had := before[n]
			switch {
			case had && was == p:
			case had:
				in := &ec2.ReplaceNetworkAclEntryInput{NetworkAclId: aws.String(env.nacls[k]), RuleNumber: i32(n), Egress: aws.Bool(false), Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny}
				setCIDR(&in.CidrBlock, &in.Ipv6CidrBlock, p)
				if err := within(func(ctx context.Context) error { _, err := c.ReplaceNetworkAclEntry(ctx, in); return err }); err != nil {
					b.Fatal(err)
				}
			default:
				in := &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(env.nacls[k]), RuleNumber: i32(n), Egress: aws.Bool(false), Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny}
				setCIDR(&in.CidrBlock, &in.Ipv6CidrBlock, p)
				if err := within(func(ctx context.Context) error { _, err := c.CreateNetworkAclEntry(ctx, in); return err }); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return calls
}

// within runs one EC2 call with a deadline of its own.
func within(f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return f(ctx)
}

// benchSources is the size of the replayed attack.
const benchSources = 5000

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
