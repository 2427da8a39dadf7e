package hostfw

import (
	"errors"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func (netlinkSets) test(set string, p netip.Prefix) (bool, error) {
	b := ipsetRequest(nil, set)
	b, data := beginAttr(b, nl.IPSET_ATTR_DATA|nl.NLA_F_NESTED)
	b = appendPrefixAttrs(b, p)
	b = data.end(b)
	err := ipsetDo(nl.IPSET_CMD_TEST, unix.NLM_F_ACK|unix.NLM_F_EXCL, b, nil)
	var errno unix.Errno
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &errno) && int(errno) == nl.IPSET_ERR_EXIST:
		return false, nil // not in the set
	case errors.Is(err, unix.ENOENT):
		return false, nil // no set: nothing in it
	}
	return false, ipsetError(err)
}
