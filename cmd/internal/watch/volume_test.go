package watch

import (
	"context"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
)

// recordingEdge keeps the attacks watch hands to the edge and answers each
// source with a host decision (the edge had no room).
type recordingEdge struct{ attacks []policy.Attack }

func (e *recordingEdge) Engine(policy.Config, time.Time) *engine.Engine { return nil }

func (e *recordingEdge) World(context.Context, policy.Config) ([]policy.Target, policy.Snapshot, error) {
	return nil, policy.Snapshot{}, nil
}

func (e *recordingEdge) Enforce(_ context.Context, _ policy.Config, atk policy.Attack, _ policy.Snapshot) ([]policy.Decision, error) {
	e.attacks = append(e.attacks, atk)
	var ds []policy.Decision
	for _, s := range atk.Sources {
		ds = append(ds, policy.Decision{Target: s, Scope: policy.ScopeHost, Action: policy.ActionBlock, TTL: time.Hour})
	}
	return ds, nil
}

// Sources batched into one attack for the edge keep their own volume (the
// evidence each tripped its detector with), so the placement weighs them
// one by one, not the largest evidence spread evenly.
func TestWatchEdgeBatchKeepsEachVolume(t *testing.T) {
	edge := &recordingEdge{}
	w := &Watcher{log: io.Discard, now: func() time.Time { return time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC) }, edge: edge, bans: map[netip.Prefix]time.Time{}}
	eng := policy.New(policy.Default())
	var jobs []watchJob
	for i, ev := range []int{400, 50, 10} {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{45, 33, 1, byte(i + 1)}), 32)
		atk := policy.Attack{Sources: []netip.Prefix{p}, Evidence: ev, Port: policy.Port{Proto: "tcp", From: 22, To: 22}, Kind: policy.KindBruteforce, Origin: policy.OriginWatch}
		jobs = append(jobs, watchJob{entry: hostfw.Entry{Prefix: p, TTL: time.Hour}, vpc: &atk, eng: eng})
	}
	host := w.enforceEdge(context.Background(), jobs)
	if len(edge.attacks) != 1 || len(host) != 3 {
		t.Fatalf("%d attacks to the edge, %d host entries back; want one attack, 3 entries", len(edge.attacks), len(host))
	}
	if a := edge.attacks[0]; len(a.Sources) != 3 || !slices.Equal(a.Volume, []int64{400, 50, 10}) {
		t.Errorf("attack sources %v volume %v; want each source's evidence, 400 50 10", a.Sources, a.Volume)
	}
}
