package guard

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bytes to the packet parser and the knock
// verifier: neither may panic, the parser's payload lies within the packet
// and is as long as the UDP header says, and only a payload that re-seals to
// itself passes verification.
func FuzzParse(f *testing.F) {
	k := Knock{Time: t0}
	good := k.Seal(testKey)
	s4, d4 := netip.MustParseAddr("10.99.10.2"), netip.MustParseAddr("10.99.10.1")
	s6, d6 := netip.MustParseAddr("fd99:10::2"), netip.MustParseAddr("fd99:10::1")
	f.Add(ipv4UDP(s4, d4, 1, DefaultPort, good))
	f.Add(ipv6UDP(s6, d6, 1, DefaultPort, good, 0))
	f.Add(ipv4UDP(s4, d4, 1, DefaultPort, good[:40]))
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		now := t0
		v, err := NewVerifier(testKey, 30*time.Second, 8, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		payloads := [][]byte{b}
		if p, ok := ParseUDP(b, DefaultPort); ok {
			if p.Dst.Port() != DefaultPort || len(p.Payload) > len(b) {
				t.Fatalf("parsed %v with %d-byte payload from %d bytes", p.Dst, len(p.Payload), len(b))
			}
			payloads = append(payloads, p.Payload)
		}
		for _, pl := range payloads {
			got, err := v.Verify(pl)
			if err == nil {
				if !bytes.Equal(got.Seal(testKey), pl) {
					t.Fatalf("accepted %x, which does not re-seal to itself", pl)
				}
				if _, err := v.Verify(pl); !errors.Is(err, ErrReplay) {
					t.Fatalf("second Verify of an accepted knock: %v", err)
				}
				continue
			}
			if Reason(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
		}
	})
}
