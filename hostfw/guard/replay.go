package guard

import (
	"os"
	"sync"
	"time"
)

// DefaultMaxNonces bounds the nonces a guard remembers.
const DefaultMaxNonces = 4096

// ReplayCache remembers nonces for a fixed time, at most max of them. When
// it is full of live nonces, the oldest is forgotten first. It is safe for
// concurrent use.
type ReplayCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	expires map[[NonceSize]byte]time.Time
	order   [][NonceSize]byte // ring, oldest at head
	head, n int
	evicted int

	// A persistent cache (OpenReplayCache) also appends to a file.
	path       string
	file       *os.File
	records    int
	persistErr error
}

// NewReplayCache returns a cache that remembers each nonce for ttl and holds
// at most max (at least 1) nonces.
func NewReplayCache(ttl time.Duration, max int) *ReplayCache {
	if max < 1 {
		max = 1
	}
	return &ReplayCache{ttl: ttl, max: max, expires: make(map[[NonceSize]byte]time.Time, max), order: make([][NonceSize]byte, max)}
}

// Seen reports whether nonce is remembered at now; if not, it remembers it
// until now+ttl, that instant included (a knock stays fresh up to and
// including its skew limit).
func (c *ReplayCache) Seen(nonce [NonceSize]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, ok := c.expires[nonce]; ok {
		return true
	}
	c.remember(nonce, now.Add(c.ttl))
	if err := c.persist(nonce, now.Add(c.ttl)); err != nil {
		c.persistErr = err
	}
	return false
}

// remember adds a nonce that expires at exp, forgetting the oldest when full.
func (c *ReplayCache) remember(nonce [NonceSize]byte, exp time.Time) {
	if c.n == c.max {
		c.pop()
		c.evicted++
	}
	c.order[(c.head+c.n)%c.max] = nonce
	c.n++
	c.expires[nonce] = exp
}

// expire forgets the nonces whose time is past. Every nonce lives for the same
// ttl, so the ring is in expiry order.
func (c *ReplayCache) expire(now time.Time) {
	for c.n > 0 && now.After(c.expires[c.order[c.head]]) {
		c.pop()
	}
}

func (c *ReplayCache) pop() {
	delete(c.expires, c.order[c.head])
	c.order[c.head] = [NonceSize]byte{}
	c.head = (c.head + 1) % c.max
	c.n--
}

// Len is the number of nonces remembered at now.
func (c *ReplayCache) Len(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	return c.n
}

// Evicted is the number of nonces forgotten before their time because the
// cache was full.
func (c *ReplayCache) Evicted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evicted
}
