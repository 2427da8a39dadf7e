//go:build !linux

package hostfw

import (
	"errors"
	"net/netip"
)

var (
	errEntryExists = errors.New("entry already in set")
	errNoSet       = errors.New("set does not exist")
)

type setAdder interface {
	add(set string, e Entry, replace bool) error
}

type netlinkSets struct{}

func (netlinkSets) add(string, Entry, bool) error { return ErrUnsupported }

func diagPeers([]uint16) ([]netip.Addr, error) { return nil, ErrUnsupported }
