package hostfw

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// This file answers "does INPUT jump to banshee's chain?" for the nft
// backend without starting iptables: one nf_tables netlink dump of the
// rules of that one chain, read the way iptables-nft writes "-j CHAIN".

// nftJumps reports whether the filter table's chain from, in the family's
// nf_tables (the tables iptables-nft writes), holds a rule that jumps to
// chain to unconditionally: what "iptables -C from -j to" accepts. A rule
// with any match before its jump (an interface, an address) does not
// count, as it does not for -C. A missing table or chain is no jump.
func nftJumps(fam Family, from, to string) (bool, error) {
	proto := uint8(unix.NFPROTO_IPV4)
	if fam == V6 {
		proto = unix.NFPROTO_IPV6
	}
	b := []byte{proto, nl.NFNETLINK_V0, 0, 0} // nfgenmsg
	b = appendAttr(b, unix.NFTA_RULE_TABLE, append([]byte("filter"), 0)...)
	b = appendAttr(b, unix.NFTA_RULE_CHAIN, append([]byte(from), 0)...)
	found := false
	var perr error
	err := nlRequest(unix.NETLINK_NETFILTER, unix.NFT_MSG_GETRULE|unix.NFNL_SUBSYS_NFTABLES<<8, unix.NLM_F_DUMP, b, func(msg []byte) bool {
		ok, err := nftRuleJumps(msg, from, to)
		if err != nil {
			perr = err
			return false
		}
		found = found || ok
		return !found
	})
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil // no such table or chain
	case errors.Is(err, unix.EPERM):
		return false, ErrNotPermitted
	case err != nil:
		return false, fmt.Errorf("listing the rules of %s through nf_tables: %w", from, err)
	}
	return found, perr
}

// nftRuleJumps reads one NEWRULE message (nfgenmsg, then attributes) and
// says whether it is a rule of chain from whose expressions are counters
// and one immediate verdict "jump to".
func nftRuleJumps(msg []byte, from, to string) (bool, error) {
	chain, exprs := attrPair(msg, 4, unix.NFTA_RULE_CHAIN, unix.NFTA_RULE_EXPRESSIONS)
	if cString(chain) != from || exprs == nil {
		return false, nil
	}
	jumps := false
	for typ, elem := range attrs(exprs, 0) {
		if typ != unix.NFTA_LIST_ELEM {
			continue
		}
		name, data := attrPair(elem, 0, unix.NFTA_EXPR_NAME, unix.NFTA_EXPR_DATA)
		switch cString(name) {
		case "counter":
			continue // iptables-nft counts every rule
		case "immediate":
			if jumps {
				return false, nil
			}
			code, target, err := nftVerdict(data)
			if err != nil {
				return false, err
			}
			if code != unix.NFT_JUMP || target != to {
				return false, nil
			}
			jumps = true
		default:
			return false, nil // a match, or a verdict of another kind
		}
	}
	return jumps, nil
}

// nftVerdict reads the data of an immediate expression that loads the
// verdict register: the verdict code and, for jump and goto, the chain.
func nftVerdict(data []byte) (code int32, chain string, err error) {
	dreg := -1
	var verdict []byte
	for typ, v := range attrs(data, 0) {
		switch typ {
		case unix.NFTA_IMMEDIATE_DREG:
			if len(v) == 4 {
				dreg = int(binary.BigEndian.Uint32(v))
			}
		case unix.NFTA_IMMEDIATE_DATA:
			for typ, v := range attrs(v, 0) {
				if typ == unix.NFTA_DATA_VERDICT {
					verdict = v
				}
			}
		}
	}
	if dreg != unix.NFT_REG_VERDICT || verdict == nil {
		return 0, "", nil // loads data, not a verdict: not a jump
	}
	haveCode := false
	for typ, v := range attrs(verdict, 0) {
		switch typ {
		case unix.NFTA_VERDICT_CODE:
			if len(v) != 4 {
				return 0, "", errors.New("reading an nf_tables verdict: a code of the wrong size")
			}
			code, haveCode = int32(binary.BigEndian.Uint32(v)), true
		case unix.NFTA_VERDICT_CHAIN:
			chain = cString(v)
		}
	}
	if !haveCode {
		return 0, "", errors.New("reading an nf_tables verdict: no code")
	}
	return code, chain, nil
}

// attrPair returns the payloads of the attributes of types a and b in buf
// from offset skip on (the last of each; nil when absent).
func attrPair(buf []byte, skip int, a, b uint16) (va, vb []byte) {
	for typ, v := range attrs(buf, skip) {
		switch typ {
		case a:
			va = v
		case b:
			vb = v
		}
	}
	return va, vb
}

// cString is a netlink string attribute without its terminating NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
