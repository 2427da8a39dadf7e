package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Resetter resets the host firewall to permissive: every filter chain of
// both address families accepts, with no rules.
type Resetter interface {
	ResetPermissive(ctx context.Context) error
}

// Source yields the UDP datagrams to the guard port. Close makes a blocked
// ReadPacket return.
type Source interface {
	ReadPacket() (Packet, error)
	Close() error
}

// Options configure a Guard.
type Options struct {
	Key []byte
	// HostIDs are the identities knocks must be bound to (see HostKey): the
	// addresses and names operators knock at. Empty means the raw key, for
	// tests of the knock format only.
	HostIDs []string
	// ReplayFile keeps the nonces of accepted knocks across restarts; ""
	// keeps them in memory only.
	ReplayFile string
	MaxSkew    time.Duration // 0 means DefaultMaxSkew
	MaxNonces  int           // 0 means DefaultMaxNonces
	Resetter   Resetter
	Logger     *slog.Logger     // nil discards
	Now        func() time.Time // nil means time.Now

	// ResetTimeout bounds one reset; 0 means 30s.
	ResetTimeout time.Duration
	// LogBurst ignored knocks are logged at once, then one per LogEvery;
	// the rest are counted and the count is logged with the next line.
	// 0 means 20 and 1s.
	LogBurst int
	LogEvery time.Duration
}

// Guard verifies knocks and resets the firewall for each valid one.
type Guard struct {
	v       *Verifier
	r       Resetter
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	limit   logLimiter
}

// New returns a Guard.
func New(o Options) (*Guard, error) {
	if o.Resetter == nil {
		return nil, errors.New("guard needs a resetter")
	}
	if o.MaxSkew == 0 {
		o.MaxSkew = DefaultMaxSkew
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ResetTimeout <= 0 {
		o.ResetTimeout = 30 * time.Second
	}
	if o.LogBurst <= 0 {
		o.LogBurst = 20
	}
	if o.LogEvery <= 0 {
		o.LogEvery = time.Second
	}
	v, err := NewVerifier(o.Key, o.MaxSkew, o.MaxNonces, o.Now)
	if err != nil {
		return nil, err
	}
	if len(o.HostIDs) > 0 || o.ReplayFile != "" {
		maxNonces := o.MaxNonces
		if maxNonces <= 0 {
			maxNonces = DefaultMaxNonces
		}
		seen := NewReplayCache(2*o.MaxSkew, maxNonces)
		if o.ReplayFile != "" {
			if seen, err = OpenReplayCache(o.ReplayFile, 2*o.MaxSkew, maxNonces, o.Now()); err != nil {
				return nil, err
			}
		}
		ids := o.HostIDs
		if len(ids) == 0 {
			return nil, errors.New("a persistent replay cache needs host identities")
		}
		if v, err = NewHostVerifier(o.Key, ids, o.MaxSkew, seen, o.Now); err != nil {
			return nil, err
		}
	}
	return &Guard{v: v, r: o.Resetter, log: o.Logger, now: o.Now, timeout: o.ResetTimeout,
		limit: logLimiter{burst: o.LogBurst, every: o.LogEvery, tokens: float64(o.LogBurst)}}, nil
}

// Handle acts on one datagram: a valid knock resets the firewall (and is
// logged); anything else is ignored (and logged, rate-limited). The error
// says why the datagram was ignored or why the reset failed.
func (g *Guard) Handle(ctx context.Context, p Packet) error {
	k, err := g.v.Verify(p.Payload)
	if err != nil {
		g.ignored(p, k, err)
		return err
	}
	start := g.now()
	rctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	if err := g.r.ResetPermissive(rctx); err != nil {
		err = fmt.Errorf("resetting the firewall for a knock from %s: %w", p.Src.Addr(), err)
		g.log.Error("reset failed", "source", p.Src.String(), "timestamp", k.Time.UTC().Format(time.RFC3339), "nonce", k.NonceHex(), "error", err.Error())
		return err
	}
	g.log.Warn("firewall reset to permissive", "source", p.Src.String(), "timestamp", k.Time.UTC().Format(time.RFC3339), "nonce", k.NonceHex(), "took", g.now().Sub(start).Round(time.Millisecond).String())
	return nil
}

func (g *Guard) ignored(p Packet, k Knock, err error) {
	ok, suppressed := g.limit.allow(g.now())
	if !ok {
		return
	}
	attrs := []any{"source", p.Src.String(), "reason", Reason(err)}
	if d := err.Error(); d != Reason(err) {
		attrs = append(attrs, "detail", d)
	}
	if !k.Time.IsZero() {
		attrs = append(attrs, "timestamp", k.Time.UTC().Format(time.RFC3339), "nonce", k.NonceHex())
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	g.log.Info("knock ignored", attrs...)
}

// Run handles datagrams from src until ctx is done (then it closes src and
// returns nil) or src fails.
func (g *Guard) Run(ctx context.Context, src Source) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = src.Close()
		case <-done:
		}
	}()
	for {
		p, err := src.ReadPacket()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading knocks: %w", err)
		}
		_ = g.Handle(ctx, p) // logged by Handle
	}
}

// logLimiter is a token bucket for log lines.
type logLimiter struct {
	burst      int
	every      time.Duration
	tokens     float64
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged at now and, if so, how many
// were suppressed since the last one.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	if !l.last.IsZero() {
		if d := now.Sub(l.last); d > 0 {
			l.tokens += float64(d) / float64(l.every)
			if l.tokens > float64(l.burst) {
				l.tokens = float64(l.burst)
			}
		}
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}
