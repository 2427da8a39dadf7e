package guard

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, KeySize)
	otherKey = bytes.Repeat([]byte{0x24}, KeySize)
	t0       = time.Unix(1_800_000_000, 0)
)

func knockAt(t *testing.T, key []byte, ts time.Time) (Knock, []byte) {
	t.Helper()
	k, err := NewKnock(rand.Reader, ts)
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Seal(key)
}

func newVerifier(t *testing.T, now *time.Time) *Verifier {
	t.Helper()
	v, err := NewVerifier(testKey, 30*time.Second, 0, func() time.Time { return *now })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKnockLayout(t *testing.T) {
	k := Knock{Time: t0}
	copy(k.Nonce[:], "0123456789abcdef")
	b := k.Seal(testKey)
	if len(b) != KnockSize || KnockSize != 62 {
		t.Fatalf("knock is %d bytes (KnockSize %d), want 62", len(b), KnockSize)
	}
	if string(b[:6]) != "BNSHK2" {
		t.Errorf("magic %q", b[:6])
	}
	if ts := binary.BigEndian.Uint64(b[6:14]); ts != uint64(t0.Unix()) {
		t.Errorf("timestamp %d, want %d", ts, t0.Unix())
	}
	if string(b[14:30]) != "0123456789abcdef" {
		t.Errorf("nonce %q", b[14:30])
	}
	if !bytes.Equal(b[30:], mac(testKey, b[:30])) {
		t.Error("MAC is not HMAC-SHA256(key, magic|timestamp|nonce)")
	}
	got, err := Open(testKey, b)
	if err != nil || !got.Time.Equal(k.Time) || got.Nonce != k.Nonce {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, k)
	}
}

func TestVerify(t *testing.T) {
	now := t0
	_, valid := knockAt(t, testKey, t0)
	tampered := func(i int) []byte {
		b := bytes.Clone(valid)
		b[i] ^= 1
		return b
	}
	_, wrongKey := knockAt(t, otherKey, t0)
	_, stale := knockAt(t, testKey, t0.Add(-31*time.Second))
	_, future := knockAt(t, testKey, t0.Add(31*time.Second))
	_, edgePast := knockAt(t, testKey, t0.Add(-30*time.Second))
	_, edgeFuture := knockAt(t, testKey, t0.Add(30*time.Second))
	farFuture := bytes.Clone(valid)
	binary.BigEndian.PutUint64(farFuture[6:], ^uint64(0))
	copy(farFuture[30:], mac(testKey, farFuture[:30]))

	cases := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"valid", valid, nil},
		{"replay", valid, ErrReplay},
		{"wrong key", wrongKey, ErrBadMAC},
		{"tampered magic", tampered(0), ErrMalformed},
		{"tampered timestamp", tampered(13), ErrBadMAC},
		{"tampered nonce", tampered(20), ErrBadMAC},
		{"tampered MAC", tampered(61), ErrBadMAC},
		{"stale", stale, ErrStale},
		{"future", future, ErrStale},
		{"timestamp beyond range", farFuture, ErrStale},
		{"at the skew in the past", edgePast, nil},
		{"at the skew in the future", edgeFuture, nil},
		{"empty", nil, ErrMalformed},
		{"truncated", valid[:KnockSize-1], ErrMalformed},
		{"magic only", []byte(Magic), ErrMalformed},
		{"oversized", append(bytes.Clone(valid), 0), ErrMalformed},
	}
	v := newVerifier(t, &now)
	for _, c := range cases {
		_, err := v.Verify(c.payload)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
		if c.want != nil && Reason(err) != c.want.Error() {
			t.Errorf("%s: Reason = %q, want %q", c.name, Reason(err), c.want.Error())
		}
	}
}

func TestStaleAndBadKnocksDoNotBurnNonces(t *testing.T) {
	now := t0
	v := newVerifier(t, &now)
	k, _ := knockAt(t, testKey, t0)
	early := Knock{Time: t0.Add(-time.Minute), Nonce: k.Nonce}
	if _, err := v.Verify(early.Seal(testKey)); !errors.Is(err, ErrStale) {
		t.Fatalf("stale knock: %v", err)
	}
	if _, err := v.Verify(k.Seal(otherKey)); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := v.Verify(k.Seal(testKey)); err != nil {
		t.Fatalf("a fresh knock with a nonce only seen in rejected knocks: %v", err)
	}
}

func TestReplayRejectedForTheWholeSkewWindow(t *testing.T) {
	now := t0
	v := newVerifier(t, &now)
	_, b := knockAt(t, testKey, t0.Add(30*time.Second)) // from the future edge
	if _, err := v.Verify(b); err != nil {
		t.Fatal(err)
	}
	// The knock stays fresh until t0+60s; the nonce must be remembered at
	// least that long (2×skew from its first sight).
	for _, d := range []time.Duration{time.Second, 30 * time.Second, 59 * time.Second, 60 * time.Second} {
		now = t0.Add(d)
		if _, err := v.Verify(b); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay at +%v: %v, want replay", d, err)
		}
	}
	now = t0.Add(61 * time.Second)
	if _, err := v.Verify(b); !errors.Is(err, ErrStale) {
		t.Fatalf("replay at +61s: %v, want stale", err)
	}
}

func TestNewVerifierRejectsBadOptions(t *testing.T) {
	if _, err := NewVerifier(testKey[:16], time.Second, 0, nil); err == nil {
		t.Error("16-byte key accepted")
	}
	if _, err := NewVerifier(testKey, 0, 0, nil); err == nil {
		t.Error("zero skew accepted")
	}
}
