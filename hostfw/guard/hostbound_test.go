package guard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func hostGuard(t *testing.T, fw *fakeFirewall, now *time.Time, replay string) *Guard {
	t.Helper()
	g, err := New(Options{Key: testKey, HostIDs: []string{"10.99.10.1", "web-1"}, ReplayFile: replay,
		Resetter: fw, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestKnockIsBoundToItsHost: a knock sealed for another host (same key) or
// with the bare key resets nothing; one for any of the guard's identities
// does.
func TestKnockIsBoundToItsHost(t *testing.T) {
	now := t0
	fw := &fakeFirewall{input: "DROP"}
	g := hostGuard(t, fw, &now, "")
	ctx := context.Background()
	for _, key := range [][]byte{HostKey(testKey, "10.99.10.7"), testKey, HostKey(otherKey, "10.99.10.1")} {
		_, pl := knockAt(t, key, t0)
		if err := g.Handle(ctx, Packet{Src: peer, Payload: pl}); !errors.Is(err, ErrBadMAC) {
			t.Errorf("a knock for another host or key: %v, want bad MAC", err)
		}
	}
	if _, n := fw.state(); n != 0 {
		t.Fatalf("%d resets for knocks bound elsewhere", n)
	}
	for i, id := range []string{"10.99.10.1", "web-1"} {
		_, pl := knockAt(t, HostKey(testKey, id), t0)
		if err := g.Handle(ctx, Packet{Src: peer, Payload: pl}); err != nil {
			t.Fatalf("a knock bound to %s: %v", id, err)
		}
		if _, n := fw.state(); n != i+1 {
			t.Fatalf("a knock bound to %s: %d resets", id, n)
		}
	}
}

// TestReplayRefusedAfterRestart: the nonce of an accepted knock is on disk
// before the reset, so a guard restarted within the window refuses the same
// knock; a torn last line does not stop it from starting.
func TestReplayRefusedAfterRestart(t *testing.T) {
	now := t0
	path := filepath.Join(t.TempDir(), "guard", "nonces")
	fw := &fakeFirewall{input: "DROP"}
	g := hostGuard(t, fw, &now, path)
	_, pl := knockAt(t, HostKey(testKey, "10.99.10.1"), t0)
	if err := g.Handle(context.Background(), Packet{Src: peer, Payload: pl}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("0011223344") // a crash mid-append
	f.Close()

	now = t0.Add(20 * time.Second) // restarted, the knock still fresh
	g2 := hostGuard(t, fw, &now, path)
	if err := g2.Handle(context.Background(), Packet{Src: peer, Payload: pl}); !errors.Is(err, ErrReplay) {
		t.Fatalf("the same knock after a restart: %v, want replay", err)
	}
	if _, n := fw.state(); n != 1 {
		t.Fatalf("%d resets, want 1", n)
	}
	// Past the window the nonce is dropped from the file at the next start.
	now = t0.Add(2*DefaultMaxSkew + time.Second)
	g3 := hostGuard(t, fw, &now, path)
	if n := g3.v.seen.Len(now); n != 0 {
		t.Errorf("%d nonces kept past their window", n)
	}
}

func TestPersistentReplayCacheCompacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonces")
	c, err := OpenReplayCache(path, time.Minute, 8, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if c.Seen(nonce(i), t0) {
			t.Fatalf("nonce %d seen", i)
		}
	}
	if err := c.PersistErr(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	data, _ := os.ReadFile(path)
	if lines := len(splitLines(data)); lines > 16 {
		t.Errorf("the file holds %d records for a cache of 8", lines)
	}
	c2, err := OpenReplayCache(path, time.Minute, 8, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 32; i < 40; i++ {
		if !c2.Seen(nonce(i), t0) {
			t.Errorf("nonce %d, among the last 8, forgotten after a reopen", i)
		}
	}
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}
