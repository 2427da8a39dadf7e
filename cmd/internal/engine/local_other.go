//go:build !linux

package engine

import (
	"errors"
	"net/netip"
)

// hostAddrs needs Linux's netlink.
func hostAddrs() ([]hostAddr, []netip.Addr, error) {
	return nil, nil, errors.New("reading interface addresses needs Linux")
}
