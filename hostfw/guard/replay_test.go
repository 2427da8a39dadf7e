package guard

import (
	"testing"
	"time"
)

func nonce(i int) (n [NonceSize]byte) {
	n[0], n[1], n[2] = byte(i), byte(i>>8), byte(i>>16)
	return n
}

func TestReplayCacheExpires(t *testing.T) {
	c := NewReplayCache(time.Minute, 10)
	if c.Seen(nonce(1), t0) {
		t.Fatal("new nonce reported as seen")
	}
	if !c.Seen(nonce(1), t0.Add(time.Minute)) {
		t.Fatal("nonce forgotten before its time")
	}
	if c.Seen(nonce(1), t0.Add(time.Minute+time.Nanosecond)) {
		t.Fatal("nonce remembered after its time")
	}
	if n := c.Len(t0.Add(3 * time.Minute)); n != 0 {
		t.Fatalf("Len after expiry = %d, want 0", n)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	const max = 100
	c := NewReplayCache(time.Hour, max)
	now := t0
	for i := range 3 * max {
		now = now.Add(time.Millisecond)
		if c.Seen(nonce(i), now) {
			t.Fatalf("nonce %d reported as seen", i)
		}
		if n := c.Len(now); n > max {
			t.Fatalf("after %d nonces the cache holds %d, more than %d", i+1, n, max)
		}
	}
	if n, ev := c.Len(now), c.Evicted(); n != max || ev != 2*max {
		t.Fatalf("Len = %d, Evicted = %d; want %d, %d", n, ev, max, 2*max)
	}
	if len(c.expires) != max {
		t.Fatalf("map holds %d entries, want %d", len(c.expires), max)
	}
	// The newest max nonces are remembered, the oldest were evicted first.
	if !c.Seen(nonce(3*max-1), now) || !c.Seen(nonce(2*max), now) {
		t.Error("a recent nonce was evicted")
	}
	if c.Seen(nonce(0), now) {
		t.Error("the oldest nonce was kept")
	}
}

func TestReplayCacheExpiryMakesRoomBeforeEviction(t *testing.T) {
	c := NewReplayCache(time.Second, 3)
	for i := range 3 {
		c.Seen(nonce(i), t0)
	}
	later := t0.Add(2 * time.Second)
	c.Seen(nonce(10), later)
	if c.Evicted() != 0 {
		t.Fatalf("evicted %d live nonces although all others had expired", c.Evicted())
	}
	if n := c.Len(later); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
}
