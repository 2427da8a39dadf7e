package guard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Knock format (see the package documentation).
const (
	// Magic starts every knock and names the format version.
	Magic = "BNSHK2"
	// NonceSize is the length of a knock's random nonce.
	NonceSize = 16
	// KeySize is the length of the shared key.
	KeySize = 32
	// KnockSize is the exact length of a knock's payload.
	KnockSize = len(Magic) + 8 + NonceSize + sha256.Size
	// DefaultPort is the UDP port knocks are sent to.
	DefaultPort = 62201
	// DefaultMaxSkew is how far a knock's timestamp may be from the guard's clock.
	DefaultMaxSkew = 30 * time.Second
)

const macOffset = len(Magic) + 8 + NonceSize

// Why a knock was ignored. Verify wraps one of these with detail.
var (
	ErrMalformed = errors.New("malformed")
	ErrBadMAC    = errors.New("bad MAC")
	ErrStale     = errors.New("stale")
	ErrReplay    = errors.New("replay")
)

// Knock is the content of a knock: when it was made and its nonce.
type Knock struct {
	Time  time.Time // whole seconds
	Nonce [NonceSize]byte
}

// NewKnock returns a knock stamped now with a nonce read from random.
func NewKnock(random io.Reader, now time.Time) (Knock, error) {
	k := Knock{Time: time.Unix(now.Unix(), 0)}
	if _, err := io.ReadFull(random, k.Nonce[:]); err != nil {
		return Knock{}, fmt.Errorf("reading a random nonce: %w", err)
	}
	return k, nil
}

// NonceHex is the nonce in hex, as logged.
func (k Knock) NonceHex() string { return hex.EncodeToString(k.Nonce[:]) }

// Seal returns the knock's payload, authenticated with key.
func (k Knock) Seal(key []byte) []byte {
	b := make([]byte, 0, KnockSize)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint64(b, uint64(k.Time.Unix()))
	b = append(b, k.Nonce[:]...)
	return append(b, mac(key, b)...)
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// Open checks a payload's length, magic and MAC and returns its knock. It
// does not look at the time or remember nonces: that is [Verifier.Verify].
// The MAC is compared in constant time.
func Open(key, payload []byte) (Knock, error) {
	switch {
	case len(payload) < KnockSize:
		return Knock{}, fmt.Errorf("%w: truncated, %d bytes, want %d", ErrMalformed, len(payload), KnockSize)
	case len(payload) > KnockSize:
		return Knock{}, fmt.Errorf("%w: oversized, %d bytes, want %d", ErrMalformed, len(payload), KnockSize)
	case string(payload[:len(Magic)]) != Magic:
		return Knock{}, fmt.Errorf("%w: no %s magic", ErrMalformed, Magic)
	}
	if !hmac.Equal(mac(key, payload[:macOffset]), payload[macOffset:]) {
		return Knock{}, ErrBadMAC
	}
	var k Knock
	ts := binary.BigEndian.Uint64(payload[len(Magic):])
	if ts > 1<<62 { // beyond any time.Time arithmetic; never fresh
		return Knock{}, fmt.Errorf("%w: timestamp %d out of range", ErrStale, ts)
	}
	k.Time = time.Unix(int64(ts), 0)
	copy(k.Nonce[:], payload[len(Magic)+8:])
	return k, nil
}

// HostKey derives the key of the knocks meant for one host identity (the
// address or name the operator knocks at, or a configured host id):
// HMAC-SHA256(key, "banshee guard host " + id). A knock sealed with it
// opens nowhere else, so a knock captured on its way to one host cannot
// reset another host that shares the key.
func HostKey(key []byte, id string) []byte {
	return mac(key, []byte("banshee guard host "+id))
}

// Verifier accepts each valid, fresh knock once.
type Verifier struct {
	keys    [][]byte
	maxSkew time.Duration
	seen    *ReplayCache
	now     func() time.Time
}

// NewVerifier returns a verifier for key that accepts timestamps within
// maxSkew of now() and remembers nonces for 2×maxSkew, at most maxNonces of
// them (0 means DefaultMaxNonces). now nil means time.Now.
func NewVerifier(key []byte, maxSkew time.Duration, maxNonces int, now func() time.Time) (*Verifier, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("guard key is %d bytes, want %d", len(key), KeySize)
	}
	if maxSkew <= 0 {
		return nil, fmt.Errorf("max skew %v: want a positive duration", maxSkew)
	}
	if now == nil {
		now = time.Now
	}
	if maxNonces <= 0 {
		maxNonces = DefaultMaxNonces
	}
	return &Verifier{keys: [][]byte{append([]byte(nil), key...)}, maxSkew: maxSkew, seen: NewReplayCache(2*maxSkew, maxNonces), now: now}, nil
}

// NewHostVerifier returns a verifier that accepts only knocks bound to one
// of ids (see [HostKey]) and remembers nonces in seen, which may be a
// persistent cache; seen's ttl should be at least 2×maxSkew.
func NewHostVerifier(key []byte, ids []string, maxSkew time.Duration, seen *ReplayCache, now func() time.Time) (*Verifier, error) {
	v, err := NewVerifier(key, maxSkew, 1, now)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("guard needs at least one host identity")
	}
	v.keys = v.keys[:0]
	for _, id := range ids {
		v.keys = append(v.keys, HostKey(key, id))
	}
	v.seen = seen
	return v, nil
}

// Verify returns the knock in payload if it is authentic, fresh and not seen
// before, and remembers its nonce. Otherwise the error wraps ErrMalformed,
// ErrBadMAC, ErrStale or ErrReplay. Only authentic, fresh knocks are
// remembered.
func (v *Verifier) Verify(payload []byte) (Knock, error) {
	var k Knock
	var err error
	for _, key := range v.keys {
		if k, err = Open(key, payload); !errors.Is(err, ErrBadMAC) {
			break
		}
	}
	if err != nil {
		return Knock{}, err
	}
	now := v.now()
	skew := now.Sub(k.Time)
	if skew > v.maxSkew || skew < -v.maxSkew {
		return k, fmt.Errorf("%w: timestamp %s is %s from the guard's clock, more than %s", ErrStale, k.Time.UTC().Format(time.RFC3339), skew.Round(time.Second), v.maxSkew)
	}
	if v.seen.Seen(k.Nonce, now) {
		return k, fmt.Errorf("%w: nonce %s already used", ErrReplay, k.NonceHex())
	}
	return k, nil
}

// Reason is the short reason a knock was ignored: "malformed", "bad MAC",
// "stale", "replay", or "" for an error that is none of these.
func Reason(err error) string {
	for _, e := range []error{ErrMalformed, ErrBadMAC, ErrStale, ErrReplay} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return ""
}
