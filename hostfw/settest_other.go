//go:build !linux

package hostfw

import "net/netip"

func (netlinkSets) test(string, netip.Prefix) (bool, error) { return false, ErrUnsupported }
