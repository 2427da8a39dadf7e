package detect

import (
	"bytes"
	"net/netip"
)

// sshd parses the failure messages of OpenSSH's sshd (and sshd-session).
// See doc.go for why each form is parsed from the side it is.
func sshd(msg []byte) (netip.Addr, bool) {
	if len(msg) < 8 {
		return netip.Addr{}, false
	}
	switch msg[0] {
	case 'F': // Failed METHOD for [invalid user ]USER from ADDR port N ssh2[: TYPE FP]
		if hasPrefix(msg, "Failed ") {
			return sshFromTail(msg, len("Failed "), true)
		}
	case 'I': // Invalid user USER from ADDR[ port N]
		if hasPrefix(msg, "Invalid user ") {
			return sshFromTail(msg, len("Invalid user "), false)
		}
	case 'e': // error: maximum authentication attempts exceeded for [invalid user ]USER from ADDR port N ssh2 [preauth]
		if p := "error: maximum authentication attempts exceeded for "; hasPrefix(msg, p) {
			return sshFromTail(trimSuffix(msg, " [preauth]"), len(p), true)
		}
	case 'm':
		if p := "maximum authentication attempts exceeded for "; hasPrefix(msg, p) {
			return sshFromTail(trimSuffix(msg, " [preauth]"), len(p), true)
		}
	case 'D':
		if hasPrefix(msg, "Disconnected from ") {
			return sshPreauthTail(msg)
		}
		if hasPrefix(msg, "Did not receive identification string from ") {
			rest := msg[len("Did not receive identification string from "):]
			return addrPortRest(rest, false)
		}
	case 'C':
		if hasPrefix(msg, "Connection closed by ") || hasPrefix(msg, "Connection reset by ") {
			return sshPreauthTail(msg)
		}
	case 'U': // Unable to negotiate with ADDR port N: no matching ... Their offer: CLIENT TEXT
		if hasPrefix(msg, "Unable to negotiate with ") {
			a, rest, ok := addrThenPort(msg[len("Unable to negotiate with "):])
			if !ok {
				return netip.Addr{}, false
			}
			c := bytes.IndexByte(rest, ':')
			if c < 0 {
				return netip.Addr{}, false
			}
			if _, ok := atoiPort(rest[:c]); !ok || !hasPrefix(rest[c:], ": no matching ") {
				return netip.Addr{}, false
			}
			return a, true
		}
	}
	return netip.Addr{}, false
}

// sshFromTail parses "… from ADDR port N ssh2[: TYPE FP]" (ssh2 true) or
// "… from ADDR[ port N]" (ssh2 false) at the end of msg, taking the last
// " from " after the fixed prefix of length skip: everything after it is
// written by sshd.
func sshFromTail(msg []byte, skip int, ssh2 bool) (netip.Addr, bool) {
	if skip > len(msg) { // the trimmed suffix overlapped the prefix
		return netip.Addr{}, false
	}
	i := bytes.LastIndex(msg[skip:], []byte(" from "))
	if i < 0 {
		return netip.Addr{}, false
	}
	rest := msg[skip+i+len(" from "):]
	if !ssh2 {
		return addrPortRest(rest, false)
	}
	// ADDR port N ssh2[: TYPE FP]
	a, rest, ok := addrThenPort(rest)
	if !ok {
		return netip.Addr{}, false
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return netip.Addr{}, false
	}
	if _, ok := atoiPort(rest[:sp]); !ok {
		return netip.Addr{}, false
	}
	rest = rest[sp+1:]
	switch {
	case string(rest) == "ssh2":
		return a, true
	case hasPrefix(rest, "ssh2: "):
		// key type and fingerprint: two tokens without spaces
		kt := rest[len("ssh2: "):]
		sp := bytes.IndexByte(kt, ' ')
		if sp <= 0 || bytes.IndexByte(kt[sp+1:], ' ') >= 0 || len(kt) == sp+1 {
			return netip.Addr{}, false
		}
		return a, true
	}
	return netip.Addr{}, false
}

// addrThenPort parses "ADDR port " at the start of rest and returns the
// address and what follows " port " (the port and the rest of the line).
func addrThenPort(rest []byte) (netip.Addr, []byte, bool) {
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return netip.Addr{}, nil, false
	}
	a, ok := parseAddr(rest[:sp])
	if !ok || !hasPrefix(rest[sp:], " port ") {
		return netip.Addr{}, nil, false
	}
	return a, rest[sp+len(" port "):], true
}

// addrPortRest parses "ADDR" or "ADDR port N" filling all of rest; with
// needPort the port is required.
func addrPortRest(rest []byte, needPort bool) (netip.Addr, bool) {
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		if needPort {
			return netip.Addr{}, false
		}
		return parseAddr(rest)
	}
	a, ok := parseAddr(rest[:sp])
	if !ok || !hasPrefix(rest[sp:], " port ") {
		return netip.Addr{}, false
	}
	if _, ok := atoiPort(rest[sp+len(" port "):]); !ok {
		return netip.Addr{}, false
	}
	return a, true
}

// sshPreauthTail parses "… ADDR port N [preauth]": the last three tokens
// before " [preauth]". Without [preauth] the session had authenticated
// (an ordinary logout) and the line is not a failure.
func sshPreauthTail(msg []byte) (netip.Addr, bool) {
	if !bytes.HasSuffix(msg, []byte(" [preauth]")) {
		return netip.Addr{}, false
	}
	msg = msg[:len(msg)-len(" [preauth]")]
	// N
	sp := bytes.LastIndexByte(msg, ' ')
	if sp < 0 {
		return netip.Addr{}, false
	}
	if _, ok := atoiPort(msg[sp+1:]); !ok {
		return netip.Addr{}, false
	}
	msg = msg[:sp]
	if !bytes.HasSuffix(msg, []byte(" port")) {
		return netip.Addr{}, false
	}
	msg = msg[:len(msg)-len(" port")]
	sp = bytes.LastIndexByte(msg, ' ')
	if sp < 0 {
		return netip.Addr{}, false
	}
	a, ok := parseAddr(msg[sp+1:])
	if !ok {
		return netip.Addr{}, false
	}
	// What comes before the address must be one of sshd's own forms.
	head := msg[:sp+1]
	for _, p := range [...]string{"Disconnected from ", "Connection closed by ", "Connection reset by "} {
		if string(head) == p {
			return a, true
		}
		if hasPrefix(head, p) {
			// "authenticating user " or "invalid user ", the (possibly
			// empty) user name, and the space before the address
			who := head[len(p):]
			for _, u := range [...]string{"authenticating user ", "invalid user "} {
				if hasPrefix(who, u) && len(who) > len(u) {
					return a, true
				}
			}
			return netip.Addr{}, false
		}
	}
	return netip.Addr{}, false
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

func trimSuffix(b []byte, s string) []byte {
	if len(b) >= len(s) && string(b[len(b)-len(s):]) == s {
		return b[:len(b)-len(s)]
	}
	return b
}
