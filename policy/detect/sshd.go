package detect

import (
	"bytes"
	"net/netip"
)

// verdict is what a parser made of a message of its program.
type verdict uint8

const (
	vNone      verdict = iota // not a failure form of this program
	vMatch                    // a failure form, address at its fixed position
	vAmbiguous                // a failure form that reads two ways with different addresses: skipped
	vNoAddr                   // a failure form without an address banshee can use (a host name, none at all)
	vIgnored                  // a probe, not counted (watch.ignore_probes)
)

// class says how much a form weighs: an authentication failure counts
// fully, a pre-authentication probe (no credentials tried) less.
type class uint8

const (
	classAuth class = iota
	classProbe
	classAux // a PAM line that accompanies the daemon's own failure line
)

// result is a parser's answer: the verdict, the address when it matched,
// the form's name (for scan --explain) and its class.
type result struct {
	addr  netip.Addr
	v     verdict
	class class
	form  string
}

func matched(a netip.Addr, c class, form string) result {
	return result{addr: a, v: vMatch, class: c, form: form}
}

var none = result{}

// readings collects the addresses of every way a message can be read. One
// distinct address is a match; two are ambiguous (the remote side wrote a
// second "ADDR port N" into a field it controls) and the line is skipped.
type readings struct {
	addr netip.Addr
	n    int
	amb  bool
}

func (r *readings) add(a netip.Addr) {
	switch {
	case r.n == 0:
		r.addr = a
	case a != r.addr:
		r.amb = true
	}
	r.n++
}

func (r *readings) result(c class, form string) result {
	switch {
	case r.amb:
		return result{v: vAmbiguous, class: c, form: form}
	case r.n == 0:
		return none
	}
	return matched(r.addr, c, form)
}

// maxReadings bounds the readings tried per message.
const maxReadings = 32

// sshd parses the messages of OpenSSH's sshd (sshd-session, sshd-auth):
// auth.c, auth2.c, auth-pam.c, sshd.c, packet.c, kex.c. See doc.go for why
// each form is parsed from the side it is.
func sshd(msg []byte) result {
	// Solaris: "[ID 800047 auth.info] Failed …"
	if hasPrefix(msg, "[ID ") {
		rest, ok := solarisID(msg[len("[ID "):])
		if !ok {
			return none
		}
		msg = rest
	}
	if len(msg) < 8 {
		return none
	}
	switch msg[0] {
	case 'F': // auth.c auth_log: Failed METHOD for [invalid user ]USER from ADDR port N ssh2[: INFO]
		if hasPrefix(msg, "Failed ") {
			return sshFailed(msg[len("Failed "):], "failed")
		}
	case 'I': // auth.c getpwnamallow: Invalid user USER from ADDR port N
		if hasPrefix(msg, "Invalid user ") {
			return sshUserFrom(msg[len("Invalid user "):], "invalid-user")
		}
		if hasPrefix(msg, "Illegal user ") { // before OpenSSH 3.8
			return sshUserFrom(msg[len("Illegal user "):], "invalid-user")
		}
	case 'e':
		// auth.c auth_maxtries_exceeded
		if p := "error: maximum authentication attempts exceeded for "; hasPrefix(msg, p) {
			return sshMaxTries(msg[len(p):])
		}
		// auth-pam.c: error("PAM: %s for %s%.100s from %.100s", …)
		if hasPrefix(msg, "error: PAM: ") {
			return sshPAM(msg[len("error: PAM: "):])
		}
		// packet.c ssh_packet_read_poll_seqnr: a disconnect other than
		// by application (code 14, …) is logged at level error
		if p := "error: Received disconnect from "; hasPrefix(msg, p) {
			return sshReceivedDisconnect(msg[len(p):])
		}
	case 'm':
		if p := "maximum authentication attempts exceeded for "; hasPrefix(msg, p) {
			return sshMaxTries(msg[len(p):])
		}
	case 'U':
		// auth.c allowed_user: User USER from HOST not allowed because …
		if hasPrefix(msg, "User ") {
			return sshNotAllowed(msg[len("User "):])
		}
		// kex.c: Unable to negotiate with ADDR port N: no matching … Their offer: CLIENT TEXT
		if hasPrefix(msg, "Unable to negotiate with ") {
			return sshRemoteID(msg[len("Unable to negotiate with "):], false, func(t []byte) bool {
				return hasPrefix(t, ": no matching ")
			}, classProbe, "kex-no-match")
		}
	case 'R':
		// auth.c auth_root_allowed: ROOT LOGIN REFUSED FROM ADDR port N
		if p := "ROOT LOGIN REFUSED FROM "; hasPrefix(msg, p) {
			return sshRemoteID(msg[len(p):], false, isPreauthEnd, classAuth, "root-refused")
		}
		// packet.c: Received disconnect from ID:CODE: CLIENT TEXT [preauth]
		if p := "Received disconnect from "; hasPrefix(msg, p) {
			return sshReceivedDisconnect(msg[len(p):])
		}
	case 'D':
		// sshd.c / packet.c: Disconnected from [authenticating user U |invalid user U ]ADDR port N [preauth]
		if p := "Disconnected from "; hasPrefix(msg, p) {
			return sshClosed(msg[len(p):], "disconnected")
		}
		// packet.c ssh_packet_disconnect: Disconnecting ID: REASON
		if p := "Disconnecting "; hasPrefix(msg, p) {
			return sshDisconnecting(msg[len(p):])
		}
		// sshd.c: Did not receive identification string from ADDR port N
		if p := "Did not receive identification string from "; hasPrefix(msg, p) {
			return sshRemoteID(msg[len(p):], true, isEnd, classProbe, "no-ident")
		}
	case 'C':
		// packet.c: Connection closed/reset by [authenticating user U |invalid user U ]ADDR port N [preauth]
		if p := "Connection closed by "; hasPrefix(msg, p) {
			return sshClosed(msg[len(p):], "closed")
		}
		if p := "Connection reset by "; hasPrefix(msg, p) {
			return sshClosed(msg[len(p):], "reset")
		}
	case 'B':
		// sshd.c (before 8.x): Bad protocol version identification 'TEXT' from ADDR port N
		if p := "Bad protocol version identification "; hasPrefix(msg, p) {
			var r readings
			fromReadings(msg[len(p):], &r, false, isEnd, nil)
			return r.result(classProbe, "bad-protocol")
		}
	case 'b':
		// sshd.c: banner exchange: Connection from ADDR port N: REASON
		if p := "banner exchange: Connection from "; hasPrefix(msg, p) {
			return sshRemoteID(msg[len(p):], false, func(t []byte) bool { return hasPrefix(t, ": ") }, classProbe, "banner-exchange")
		}
	case 'T':
		// sshd.c grace_alarm_handler: Timeout before authentication for ADDR port N
		if p := "Timeout before authentication for "; hasPrefix(msg, p) {
			return sshRemoteID(msg[len(p):], false, isEnd, classProbe, "login-grace-timeout")
		}
	case 'k':
		// kex.c: kex_exchange_identification: … — no address; the
		// "banner exchange" or "Connection closed" line after it has one
		if hasPrefix(msg, "kex_exchange_identification: ") {
			return result{v: vNoAddr, class: classProbe, form: "kex-identification"}
		}
	case 'p':
		// Linux-PAM pam_unix support.c: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=HOST[  user=USER]
		// SSSD pam_sss.c: pam_sss(sshd:auth): authentication failure; … rhost=HOST user=USER
		if svc, res := pamUnix(msg); string(svc) == "sshd" {
			return res
		}
	}
	return none
}

// solarisID skips Solaris's message id after "[ID ": "800047 auth.info] ".
func solarisID(b []byte) ([]byte, bool) {
	i := 0
	for i < len(b) && i < 10 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ' ' {
		return nil, false
	}
	b = b[i+1:]
	dot := false
	for i = 0; i < len(b) && i < 32; i++ {
		switch c := b[i]; {
		case c >= 'a' && c <= 'z':
		case c == '.' && i > 0 && !dot:
			dot = true
		case c == ']' && dot && b[i-1] != '.' && i+1 < len(b) && b[i+1] == ' ':
			return b[i+2:], true
		default:
			return nil, false
		}
	}
	return nil, false
}

func isEnd(t []byte) bool { return len(t) == 0 }

// isPreauthEnd accepts the end of the message or " [preauth]".
func isPreauthEnd(t []byte) bool { return len(t) == 0 || string(t) == " [preauth]" }

// addrToken parses the address that starts s and ends at a space or the
// end of s; it returns what follows.
func addrToken(s []byte) (netip.Addr, []byte, bool) {
	sp := bytes.IndexByte(s, ' ')
	if sp < 0 {
		sp = len(s)
	}
	a, ok := parseAddr(s[:sp])
	return a, s[sp:], ok
}

// portThen parses " port N" at the start of s and returns what follows
// the number.
func portThen(s []byte) ([]byte, bool) {
	if !hasPrefix(s, " port ") {
		return nil, false
	}
	s = s[len(" port "):]
	i := 0
	for i < len(s) && i < 6 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if _, ok := atoiPort(s[:i]); !ok {
		return nil, false
	}
	return s[i:], true
}

// fromReadings tries every " from " of s: "ADDR port N" (the port
// optional when portOpt) followed by text tail accepts, and head (what
// precedes " from ") accepted by head (nil: anything).
func fromReadings(s []byte, r *readings, portOpt bool, tail func([]byte) bool, head func([]byte) bool) {
	off := 0
	for range maxReadings {
		i := bytes.Index(s[off:], []byte(" from "))
		if i < 0 {
			return
		}
		at := off + i
		off = at + 1
		if head != nil && !head(s[:at]) {
			continue
		}
		a, rest, ok := addrToken(s[at+len(" from "):])
		if !ok {
			continue
		}
		if after, ok := portThen(rest); ok {
			rest = after
		} else if !portOpt {
			continue
		}
		if tail(rest) {
			r.add(a)
		}
	}
	if bytes.Contains(s[off:], []byte(" from ")) {
		r.amb = true // too many readings to try: do not guess
	}
}

// userReadings runs fromReadings over "[invalid user ]USER from …". For
// a valid account (no "invalid user ") a reading whose user name has no
// space wins a tie: accounts are made by the administrator, and account
// names have no spaces, so the longer name holding " from ADDR port N"
// is the one that cannot be.
func userReadings(s []byte, tail func([]byte) bool) readings {
	var all readings
	fromReadings(s, &all, false, tail, nil)
	if !all.amb || hasPrefix(s, "invalid user ") {
		return all
	}
	var plain readings
	fromReadings(s, &plain, false, tail, func(h []byte) bool { return len(h) > 0 && bytes.IndexByte(h, ' ') < 0 })
	if plain.n > 0 {
		return plain
	}
	return all
}

// sshFailed parses what follows "Failed ": METHOD for [invalid user ]USER
// from ADDR port N[ ssh2][: INFO]. INFO (auth_method_info, the key's
// type and fingerprint, a certificate's key id, hostbased client names) is
// partly the client's, so every " from " is tried and the line is skipped
// when two readings name different addresses.
func sshFailed(s []byte, form string) result {
	sp := bytes.IndexByte(s, ' ')
	if sp <= 0 || sp > 64 || !hasPrefix(s[sp:], " for ") {
		return none
	}
	for _, c := range s[:sp] { // password, keyboard-interactive/pam, gssapi-with-mic, …
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '/' || c == '@' || c == '.') {
			return none
		}
	}
	r := userReadings(s[sp+len(" for "):], func(t []byte) bool {
		switch {
		case len(t) == 0, string(t) == " ssh2", string(t) == " ssh1":
			return true
		case hasPrefix(t, " ssh2: "):
			return len(t) > len(" ssh2: ")
		}
		return false
	})
	return r.result(classAuth, form)
}

// sshUserFrom parses what follows "Invalid user ": USER from ADDR[ port N].
// Everything after the address is sshd's, so only the last " from " can
// fill the message.
func sshUserFrom(s []byte, form string) result {
	var r readings
	fromReadings(s, &r, true, isEnd, nil)
	return r.result(classAuth, form)
}

// sshMaxTries parses what follows "maximum authentication attempts
// exceeded for ": [invalid user ]USER from ADDR port N ssh2[ [preauth]].
func sshMaxTries(s []byte) result {
	r := userReadings(s, func(t []byte) bool {
		return string(t) == " ssh2" || string(t) == " ssh2 [preauth]"
	})
	return r.result(classAuth, "max-auth-tries")
}

// sshNotAllowed parses what follows "User ": USER from HOST not allowed
// because REASON (auth.c allowed_user). USER is an account (no space);
// HOST is the verified reverse name or the address: a name is no address.
func sshNotAllowed(s []byte) result {
	sp := bytes.IndexByte(s, ' ')
	if sp <= 0 || !hasPrefix(s[sp:], " from ") {
		return none
	}
	rest := s[sp+len(" from "):]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return none
	}
	switch string(rest[sp:]) {
	case " not allowed because not listed in AllowUsers",
		" not allowed because listed in DenyUsers",
		" not allowed because not in any group",
		" not allowed because a group is listed in DenyGroups",
		" not allowed because none of user's groups are listed in AllowGroups",
		" not allowed because shell does not exist",
		" not allowed because shell is not executable",
		" not allowed because account is locked":
	default:
		return none
	}
	a, ok := parseAddr(rest[:sp])
	if !ok {
		return result{v: vNoAddr, class: classAuth, form: "user-not-allowed"}
	}
	return matched(a, classAuth, "user-not-allowed")
}

// sshPAM parses what follows "error: PAM: ": MESSAGE for [illegal user
// ]USER from HOST[ via ADDR] (auth-pam.c; "via" is a distribution
// patch naming the local address). The user comes before the host, so the
// last " from " whose rest is exactly HOST[ via ADDR] is the one.
func sshPAM(s []byte) result {
	p := 0
	// pam_strerror texts: Linux-PAM (PAM_AUTH_ERR, PAM_USER_UNKNOWN) and
	// OpenPAM (FreeBSD, macOS)
	for _, m := range [...]string{"Authentication failure for ", "User not known to the underlying authentication module for ", "authentication error for ", "unknown user for "} {
		if hasPrefix(s, m) {
			p = len(m)
			break
		}
	}
	if p == 0 {
		return none
	}
	i := bytes.LastIndex(s, []byte(" from "))
	if i < p {
		return none
	}
	host := s[i+len(" from "):]
	if v := bytes.Index(host, []byte(" via ")); v >= 0 {
		if _, ok := parseAddr(host[v+len(" via "):]); !ok {
			return none
		}
		host = host[:v]
	}
	if bytes.IndexByte(host, ' ') >= 0 {
		return none
	}
	a, ok := parseAddr(host)
	if !ok {
		return result{v: vNoAddr, class: classAux, form: "pam-failure"}
	}
	return matched(a, classAux, "pam-failure")
}

// sshRemoteID parses "ADDR port N" (the port optional when portOpt)
// followed by text tail accepts: forms logged before any user name is
// known, so the address starts the text.
func sshRemoteID(s []byte, portOpt bool, tail func([]byte) bool, c class, form string) result {
	a, rest, ok := addrToken(s)
	if !ok {
		return none
	}
	if after, ok := portThen(rest); ok {
		rest = after
	} else if !portOpt {
		return none
	}
	if !tail(rest) {
		return none
	}
	return matched(a, c, form)
}

// userMarkers are the prefixes packet.c's ssh_remote_id puts before a user
// name: "authenticating user U ", "invalid user U ". "user U " is an
// authenticated session.
var userMarkers = [...]string{"authenticating user ", "invalid user "}

// idReadings tries every " port N" of s whose preceding token is an
// address, with head (the text before that token) either empty or a user
// marker, a user name and a space, and the text after the port accepted
// by tail. It reports whether a user marker came first (the session had
// tried to authenticate) and whether the id names an authenticated user.
func idReadings(s []byte, r *readings, tail func([]byte) bool) (withUser, authed bool) {
	switch {
	case hasPrefix(s, userMarkers[0]), hasPrefix(s, userMarkers[1]):
		withUser = true
	case hasPrefix(s, "user "):
		return false, true
	}
	off := 0
	for range maxReadings {
		i := bytes.Index(s[off:], []byte(" port "))
		if i < 0 {
			return withUser, false
		}
		at := off + i
		off = at + 1
		start := bytes.LastIndexByte(s[:at], ' ') + 1
		a, ok := parseAddr(s[start:at])
		if !ok {
			continue
		}
		head := s[:start]
		if len(head) > 0 {
			if !withUser {
				continue
			}
			m := userMarkers[0]
			if !hasPrefix(head, m) {
				m = userMarkers[1]
			}
			// marker, user name (possibly empty) and a space
			if len(head) <= len(m) {
				continue
			}
		} else if withUser {
			continue
		}
		rest, ok := portThen(s[at:])
		if ok && tail(rest) {
			r.add(a)
		}
	}
	if bytes.Contains(s[off:], []byte(" port ")) {
		r.amb = true
	}
	return withUser, false
}

// sshClosed parses "[authenticating user U |invalid user U ]ADDR port N
// [preauth]" after "Disconnected from", "Connection closed by" and
// "Connection reset by". Without [preauth] the session had authenticated
// (an ordinary logout). With a user it had tried to log in: an
// authentication failure; without one it is a probe.
func sshClosed(s []byte, form string) result {
	if !bytes.HasSuffix(s, []byte(" [preauth]")) {
		return none
	}
	var r readings
	withUser, authed := idReadings(s, &r, func(t []byte) bool { return string(t) == " [preauth]" })
	if authed {
		return none
	}
	if withUser {
		return r.result(classAuth, form+"-user")
	}
	return r.result(classProbe, form)
}

// sshDisconnecting parses packet.c's "Disconnecting ID: REASON" where ID
// is "[authenticating user U |invalid user U ]ADDR port N": the user name
// comes before the address and the reason (which may quote the client)
// after it, so every reading is tried.
func sshDisconnecting(s []byte) result {
	var r readings
	withUser, authed := idReadings(s, &r, func(t []byte) bool { return hasPrefix(t, ": ") })
	if authed || !withUser {
		return none // a server-side disconnect of an anonymous or authenticated peer
	}
	return r.result(classAuth, "disconnecting-user")
}

// sshReceivedDisconnect parses what follows "Received disconnect from ":
// ID:CODE: CLIENT TEXT [preauth] (or the older "ADDR: CODE: TEXT"). Only
// the client giving up on authentication counts: code 14 (no more
// authentication methods) or code 3 with "Auth fail" (JSch).
func sshReceivedDisconnect(s []byte) result {
	if !bytes.HasSuffix(s, []byte(" [preauth]")) {
		return none
	}
	code := func(t []byte) bool {
		if len(t) < 2 || t[0] != ':' {
			return false
		}
		t = t[1:]
		if t[0] == ' ' {
			t = t[1:]
		}
		switch {
		case hasPrefix(t, "14: "):
			return true
		case hasPrefix(t, "3: "):
			return bytes.Contains(t, []byte("Auth fail"))
		}
		return false
	}
	var r readings
	if _, authed := idReadings(s, &r, code); authed {
		return none
	}
	if r.n == 0 && !r.amb {
		// the older form without a port: "ADDR: 3: …"
		c := bytes.IndexByte(s, ':')
		if c > 0 {
			if a, ok := parseAddr(s[:c]); ok && code(s[c:]) {
				return matched(a, classAuth, "received-disconnect")
			}
		}
		return none
	}
	return r.result(classAuth, "received-disconnect")
}

// dropbear parses Dropbear's svr-auth.c, svr-authpasswd.c, svr-authpam.c
// and svr-session.c messages. Its address string is "ADDR:PORT" (IPv6
// without brackets), always after the user name or at the start.
func dropbear(msg []byte) result {
	switch {
	case hasPrefix(msg, "Bad password attempt for "),
		hasPrefix(msg, "Bad PAM password attempt for "),
		hasPrefix(msg, "Login attempt for nonexistent user "):
		i := bytes.LastIndex(msg, []byte(" from "))
		if i < 0 {
			return none
		}
		a, ok := addrColonPort(msg[i+len(" from "):])
		if !ok {
			return none
		}
		return matched(a, classAuth, "dropbear-bad-login")
	case hasPrefix(msg, "Exit before auth from <"):
		rest := msg[len("Exit before auth from <"):]
		gt := bytes.IndexByte(rest, '>')
		if gt < 0 || !hasPrefix(rest[gt:], ">: ") {
			return none
		}
		a, ok := addrColonPort(rest[:gt])
		if !ok {
			return none
		}
		return matched(a, classProbe, "dropbear-exit-before-auth")
	}
	return none
}

// addrColonPort parses Dropbear's "ADDR:PORT" filling all of b.
func addrColonPort(b []byte) (netip.Addr, bool) {
	c := bytes.LastIndexByte(b, ':')
	if c <= 0 {
		return netip.Addr{}, false
	}
	if _, ok := atoiPort(b[c+1:]); !ok {
		return netip.Addr{}, false
	}
	return parseAddr(b[:c])
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}
