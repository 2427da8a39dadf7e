package guard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFirewall is a stateful Resetter: its INPUT policy, and how often it
// was reset. A set fail makes the next reset fail without changing anything.
type fakeFirewall struct {
	mu     sync.Mutex
	input  string
	resets int
	fail   error
}

func (f *fakeFirewall) ResetPermissive(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.fail != nil {
		err := f.fail
		f.fail = nil
		return err
	}
	f.input = "ACCEPT"
	f.resets++
	return nil
}

func (f *fakeFirewall) state() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.input, f.resets
}

func (f *fakeFirewall) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.input = "DROP"
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

func newGuard(t *testing.T, fw *fakeFirewall, now *time.Time, logs io.Writer) *Guard {
	t.Helper()
	g, err := New(Options{Key: testKey, Resetter: fw, Now: func() time.Time { return *now },
		Logger: slog.New(slog.NewTextHandler(logs, nil)), LogBurst: 3, LogEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var peer = netip.MustParseAddrPort("10.99.10.2:40000")

func TestGuardResetsOnlyForValidKnocks(t *testing.T) {
	now := t0
	fw := &fakeFirewall{input: "DROP"}
	var logs logBuf
	g := newGuard(t, fw, &now, &logs)
	ctx := context.Background()

	_, wrong := knockAt(t, otherKey, t0)
	_, stale := knockAt(t, testKey, t0.Add(-time.Hour))
	k, valid := knockAt(t, testKey, t0)
	for _, bad := range [][]byte{wrong, stale, []byte("open sesame")} {
		if err := g.Handle(ctx, Packet{Src: peer, Payload: bad}); err == nil {
			t.Fatalf("bad knock %q accepted", bad)
		}
	}
	if in, n := fw.state(); in != "DROP" || n != 0 {
		t.Fatalf("after bad knocks: INPUT %s, %d resets", in, n)
	}
	if err := g.Handle(ctx, Packet{Src: peer, Payload: valid}); err != nil {
		t.Fatal(err)
	}
	if in, n := fw.state(); in != "ACCEPT" || n != 1 {
		t.Fatalf("after a valid knock: INPUT %s, %d resets", in, n)
	}
	fw.drop()
	now = now.Add(time.Second) // the log burst of 3 is spent; one more line per second
	if err := g.Handle(ctx, Packet{Src: peer, Payload: valid}); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed knock: %v", err)
	}
	if in, n := fw.state(); in != "DROP" || n != 1 {
		t.Fatalf("after a replay: INPUT %s, %d resets", in, n)
	}

	lines := logs.lines()
	if len(lines) != 5 {
		t.Fatalf("want 5 log lines (3 ignored, 1 reset, 1 replay), got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, want := range []string{`reason="bad MAC"`, "reason=stale", "reason=malformed", "firewall reset to permissive", "reason=replay"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("log line %d lacks %s: %s", i, want, lines[i])
		}
	}
	for _, want := range []string{"source=" + peer.String(), "nonce=" + k.NonceHex(), "timestamp=" + t0.UTC().Format(time.RFC3339)} {
		if !strings.Contains(lines[3], want) {
			t.Errorf("reset line lacks %s: %s", want, lines[3])
		}
	}
}

func TestGuardReportsFailedReset(t *testing.T) {
	now := t0
	fw := &fakeFirewall{input: "DROP", fail: errors.New("iptables-restore: exit status 4")}
	var logs logBuf
	g := newGuard(t, fw, &now, &logs)
	_, b := knockAt(t, testKey, t0)
	err := g.Handle(context.Background(), Packet{Src: peer, Payload: b})
	if err == nil || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("failed reset: %v", err)
	}
	if in, _ := fw.state(); in != "DROP" {
		t.Fatalf("INPUT %s after a failed reset", in)
	}
	if l := logs.lines(); len(l) != 1 || !strings.Contains(l[0], "level=ERROR") || !strings.Contains(l[0], "reset failed") {
		t.Fatalf("log: %q", l)
	}
}

func TestIgnoredKnockLogIsRateLimited(t *testing.T) {
	now := t0
	fw := &fakeFirewall{input: "DROP"}
	var logs logBuf
	g := newGuard(t, fw, &now, &logs) // burst 3, then 1/s
	ctx := context.Background()
	junk := []byte("flood")
	for range 10_000 {
		_ = g.Handle(ctx, Packet{Src: peer, Payload: junk})
	}
	if l := logs.lines(); len(l) != 3 {
		t.Fatalf("a flood of 10000 junk datagrams in one instant logged %d lines, want the burst of 3", len(l))
	}
	now = now.Add(time.Second)
	_ = g.Handle(ctx, Packet{Src: peer, Payload: junk})
	l := logs.lines()
	if len(l) != 4 || !strings.Contains(l[3], "suppressed=9997") {
		t.Fatalf("after a second: %d lines, last %q; want 4 with suppressed=9997", len(l), l[len(l)-1])
	}
	// A valid knock during a flood is acted on and logged regardless.
	_, b := knockAt(t, testKey, now)
	for range 100 {
		_ = g.Handle(ctx, Packet{Src: peer, Payload: junk})
	}
	if err := g.Handle(ctx, Packet{Src: peer, Payload: b}); err != nil {
		t.Fatal(err)
	}
	if l := logs.lines(); !strings.Contains(l[len(l)-1], "firewall reset to permissive") {
		t.Fatalf("reset during a flood not logged: %q", l[len(l)-1])
	}
	if in, n := fw.state(); in != "ACCEPT" || n != 1 {
		t.Fatalf("INPUT %s, %d resets", in, n)
	}
}

// chanSource is a Source fed by a channel.
type chanSource struct {
	ch     chan Packet
	closed chan struct{}
	once   sync.Once
}

func (s *chanSource) ReadPacket() (Packet, error) {
	select {
	case p := <-s.ch:
		return p, nil
	case <-s.closed:
		return Packet{}, errors.New("closed")
	}
}

func (s *chanSource) Close() error { s.once.Do(func() { close(s.closed) }); return nil }

func TestRunStopsWithContext(t *testing.T) {
	now := t0
	fw := &fakeFirewall{input: "DROP"}
	g := newGuard(t, fw, &now, io.Discard)
	src := &chanSource{ch: make(chan Packet), closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, src) }()
	_, b := knockAt(t, testKey, t0)
	src.ch <- Packet{Src: peer, Payload: b}
	src.ch <- Packet{Src: peer, Payload: []byte("x")} // the first one has been handled once this is taken
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if in, n := fw.state(); in != "ACCEPT" || n != 1 {
		t.Fatalf("INPUT %s, %d resets", in, n)
	}
}

func TestNewNeedsResetter(t *testing.T) {
	if _, err := New(Options{Key: testKey}); err == nil {
		t.Fatal("guard without a resetter accepted")
	}
}
