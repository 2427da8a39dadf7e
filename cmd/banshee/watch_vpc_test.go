package main

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/awsnacl/mototest"
)

// onInstance makes IMDS name the world's instance, as on EC2.
func onInstance(w *awsWorld) {
	onEC2 = func() bool { return true }
	localIdentity = func(context.Context, ...func(*imds.Options)) (awsnacl.Identity, error) {
		return awsnacl.Identity{InstanceID: w.ins, Region: mototest.Region}, nil
	}
}

// naclTags returns the NACL's tags as moto has them.
func (w *awsWorld) naclTags(t *testing.T) map[string]string {
	t.Helper()
	out, err := w.raw.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{NetworkAclIds: []string{w.nacl}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range out.NetworkAcls[0].Tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

// spread feeds n failure lines from addr, the clock moving gap between
// them (a slow attack: below the flood rate).
func (e *watchEnv) spread(addr string, n int, gap time.Duration) {
	for range n {
		e.w.HandleLine([]byte(e.sshFail("root", addr)))
		e.clock.add(gap)
	}
}

const watchVPCConfig = "watch: {max_retry: 5}\npolicy: {flood_rate: 1}\nnacl: {max_backoff: 10ms, max_attempts: 2}\n"

// TestWatchVPCScope: on an EC2 instance with AWS reachable, a flood (rate
// at or above policy.flood_rate) is blocked at the subnet edge through
// awsnacl with origin watch, a slow attack on this host, and a VPC address
// nowhere.
func TestWatchVPCScope(t *testing.T) {
	w := newAWSWorld(t)
	onInstance(w)
	cfg := testWatchConfig(t, watchVPCConfig)
	env := newWatchEnv(t, cfg, "", nil, nil)
	ctx := context.Background()
	if !env.w.FindEdge(ctx, newWatchEdge) {
		t.Fatalf("no edge on the instance; log:\n%s", env.log)
	}
	if err := env.w.ReadWorld(ctx, cfg.NACL); err != nil {
		t.Fatal(err)
	}
	env.spread("198.51.100.77", 5, 0)             // flood: 5 failures within a second
	env.spread("203.0.113.44", 5, 30*time.Second) // slow: 5 in two minutes
	env.spread("10.20.1.9", 5, 0)                 // a flood from inside the VPC
	env.stop()

	denies := w.denies(t)
	n, ok := denies["198.51.100.77/32"]
	if !ok {
		t.Fatalf("no NACL entry for the flood source: %v; log:\n%s", denies, env.log)
	}
	tag := w.naclTags(t)["banshee:rule:"+strconv.Itoa(n)]
	if !strings.Contains(tag, "origin=watch") || !strings.Contains(tag, "sshd") {
		t.Errorf("metadata of rule %d = %q, want origin watch and the detector's reason", n, tag)
	}
	if _, ok := env.host.Get(netip.MustParsePrefix("198.51.100.77/32")); ok {
		t.Errorf("the flood source was blocked on the host too")
	}
	if e, ok := env.host.Get(netip.MustParsePrefix("203.0.113.44/32")); !ok || e.Origin != "watch" {
		t.Errorf("slow attack: host entry %+v %v, want a host block", e, ok)
	}
	if _, ok := denies["203.0.113.44/32"]; ok {
		t.Errorf("slow attack in the NACL")
	}
	if _, ok := env.host.Get(netip.MustParsePrefix("10.20.1.9/32")); ok {
		t.Errorf("a VPC address was blocked on the host")
	}
	if _, ok := denies["10.20.1.9/32"]; ok {
		t.Errorf("a VPC address was denied in the NACL")
	}
	log := env.log.String()
	if !strings.Contains(log, "VPC scope on: "+w.ins) || !strings.Contains(log, "blocked at the subnet edge: 198.51.100.77/32 in "+w.nacl) {
		t.Errorf("log:\n%s", log)
	}
	st := env.w.Stats().Snapshot(env.clock.now())
	if st.Decisions["vpc/block"] != 1 || st.Decisions["host/block"] != 1 || st.EnforceErrors != 0 {
		t.Errorf("stats %+v", st)
	}
	// A second trip of the flood source (a restart, a repeat offender)
	// extends the same entry: no second entry, nothing on the host.
	env2 := newWatchEnv(t, cfg, env.dir, env.host, env.clock)
	if !env2.w.FindEdge(ctx, newWatchEdge) || env2.w.ReadWorld(ctx, cfg.NACL) != nil {
		t.Fatalf("the second watcher found no edge; log:\n%s", env2.log)
	}
	env2.spread("198.51.100.77", 5, 0)
	env2.stop()
	if got := w.denies(t); len(got) != 1 || got["198.51.100.77/32"] != n {
		t.Errorf("entries after a second trip: %v, want only rule %d", got, n)
	}
	if _, ok := env.host.Get(netip.MustParsePrefix("198.51.100.77/32")); ok {
		t.Errorf("second trip blocked on the host")
	}
	if exp1, exp2 := tagExp(t, tag), tagExp(t, w.naclTags(t)["banshee:rule:"+strconv.Itoa(n)]); exp2-exp1 < 3600 {
		t.Errorf("second trip moved the expiry from %d to %d, want at least an hour more (repeat offender, TTL doubled); log:\n%s", exp1, exp2, env2.log)
	}
}

// tagExp returns the exp field of a rule's metadata.
func tagExp(t *testing.T, v string) int64 {
	t.Helper()
	for _, kv := range strings.Split(v, ";") {
		if s, ok := strings.CutPrefix(kv, "exp="); ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("metadata %q without exp", v)
	return 0
}

// TestWatchVPCUnavailable: without AWS, watch keeps blocking on the host
// and says why once, not per line or per block.
func TestWatchVPCUnavailable(t *testing.T) {
	w := newAWSWorld(t)
	cfg := testWatchConfig(t, watchVPCConfig)

	// Off EC2: no edge at all.
	env := newWatchEnv(t, cfg, "", nil, nil)
	if env.w.FindEdge(context.Background(), newWatchEdge) {
		t.Fatal("an edge off EC2")
	}
	env.spread("198.51.100.1", 5, 0)
	env.spread("198.51.100.2", 5, 0)
	env.stop()
	for _, a := range []string{"198.51.100.1/32", "198.51.100.2/32"} {
		if _, ok := env.host.Get(netip.MustParsePrefix(a)); !ok {
			t.Errorf("%s not blocked on the host; log:\n%s", a, env.log)
		}
	}
	if n := strings.Count(env.log.String(), "VPC scope off"); n != 1 {
		t.Errorf("reason logged %d times, want once:\n%s", n, env.log)
	}

	// On EC2, but EC2 stops answering after the world was read: each flood
	// falls back to the host, the reason logged once.
	onInstance(w)
	p := (&mototest.Server{URL: os.Getenv("AWS_ENDPOINT_URL")}).Proxy(t, mototest.Faults{})
	mototest.Env(t, p.URL)
	env2 := newWatchEnv(t, cfg, "", nil, nil)
	ctx := context.Background()
	if !env2.w.FindEdge(ctx, newWatchEdge) || env2.w.ReadWorld(ctx, cfg.NACL) != nil {
		t.Fatalf("no edge; log:\n%s", env2.log)
	}
	p.SetFaults(mototest.Faults{Unavailable: 1})
	env2.spread("198.51.100.3", 5, 0)
	env2.spread("198.51.100.4", 5, 0)
	env2.stop()
	for _, a := range []string{"198.51.100.3/32", "198.51.100.4/32"} {
		if _, ok := env2.host.Get(netip.MustParsePrefix(a)); !ok {
			t.Errorf("%s not blocked on the host with EC2 down; log:\n%s", a, env2.log)
		}
	}
	if got := w.denies(t); len(got) != 0 {
		t.Errorf("NACL entries with EC2 down: %v", got)
	}
	if n := strings.Count(env2.log.String(), "VPC scope unavailable"); n != 1 {
		t.Errorf("EC2 failure logged %d times, want once:\n%s", n, env2.log)
	}
	if st := env2.w.Stats().Snapshot(env2.clock.now()); st.EnforceErrors == 0 {
		t.Errorf("EC2 failures not counted: %+v", st)
	}
}
