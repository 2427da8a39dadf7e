//go:build !linux

package hostfw

import (
	"errors"
)

// ErrUnsupported is returned on systems without iptables and ipset.
var ErrUnsupported = errors.New("the host firewall needs Linux (iptables and ipset)")

func checkPrivileges() error { return ErrUnsupported }
