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
	addAll(set string, entries []Entry) error
	count(set string) (int, error)
	members(set string) (map[netip.Prefix]struct{}, error)
}

type netlinkSets struct{}

func (netlinkSets) add(string, Entry, bool) error { return ErrUnsupported }
func (netlinkSets) addAll(string, []Entry) error  { return ErrUnsupported }
func (netlinkSets) count(string) (int, error)     { return 0, ErrUnsupported }
func (netlinkSets) members(string) (map[netip.Prefix]struct{}, error) {
	return nil, ErrUnsupported
}

func diagPeers([]uint16) ([]netip.Addr, error) { return nil, ErrUnsupported }
