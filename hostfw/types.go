package hostfw

import (
	"fmt"
	"net/netip"
	"time"
)

// Family is an address family: IPv4 or IPv6.
type Family int

// Address families.
const (
	V4 Family = 4
	V6 Family = 6
)

func (f Family) String() string {
	if f == V6 {
		return "ipv6"
	}
	return "ipv4"
}

// FamilyOf returns the family of a prefix.
func FamilyOf(p netip.Prefix) Family {
	if p.Addr().Is4() {
		return V4
	}
	return V6
}

// Backend is the iptables kernel interface.
type Backend string

// Backends of iptables.
const (
	BackendAuto   Backend = "auto"
	BackendNFT    Backend = "nft"
	BackendLegacy Backend = "legacy"
)

// ParseBackend parses auto, nft or legacy.
func ParseBackend(s string) (Backend, error) {
	switch Backend(s) {
	case BackendAuto, BackendNFT, BackendLegacy:
		return Backend(s), nil
	case "":
		return BackendAuto, nil
	}
	return "", fmt.Errorf("unknown iptables backend %q (want auto, nft or legacy)", s)
}

// MaxTimeout is the longest per-entry timeout ipset accepts.
const MaxTimeout = 2147483 * time.Second

// Entry is one blocked prefix.
type Entry struct {
	Prefix    netip.Prefix
	TTL       time.Duration // 0 means permanent when adding
	ExpiresAt time.Time     // zero for permanent; filled by List
	Reason    string
	Origin    string
}

// Permanent reports whether the entry never expires.
func (e Entry) Permanent() bool { return e.ExpiresAt.IsZero() && e.TTL == 0 }
