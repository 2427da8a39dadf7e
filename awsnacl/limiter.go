package awsnacl

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket for mutating EC2 calls: EC2 meters them per
// account and region (a bucket of about 50 refilled at about 5 per second),
// and a batch must leave room for everyone else in the account.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	burst  float64
	rate   float64 // tokens per second
	last   time.Time
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
}

func newBucket(rate float64, burst int, now func() time.Time) *bucket {
	return &bucket{tokens: float64(burst), burst: float64(burst), rate: rate, now: now, sleep: sleepCtx}
}

// reserve takes one token and returns how long the caller must wait for it.
func (b *bucket) reserve() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// wait blocks until a token is available or ctx ends.
func (b *bucket) wait(ctx context.Context) error {
	if d := b.reserve(); d > 0 {
		return b.sleep(ctx, d)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
