package detect

import (
	"bytes"
	"net/netip"
)

// hostBracketAddr parses "HOST[ADDR]" at the start of s (Postfix's
// client name and address: HOST is the verified reverse name or
// "unknown", so host name characters only) and returns what follows "]".
func hostBracketAddr(s []byte) (netip.Addr, []byte, bool) {
	lb := bytes.IndexByte(s, '[')
	if lb <= 0 || !isHostname(s[:lb]) {
		return netip.Addr{}, nil, false
	}
	rb := bytes.IndexByte(s[lb:], ']')
	if rb < 0 {
		return netip.Addr{}, nil, false
	}
	a, ok := parseAddr(s[lb+1 : lb+rb])
	return a, s[lb+rb+1:], ok
}

// postfixMore parses the other Postfix smtpd forms (smtpd.c,
// smtpd_check.c): "NOQUEUE: reject: RCPT from HOST[ADDR]: 554 5.7.1
// <RCPT>: Relay access denied; from=<…> …" and "lost connection after
// AUTH from HOST[ADDR]". The client's address comes before anything the
// client wrote.
func postfixMore(msg []byte) (result, bool) {
	if i := bytes.Index(msg, []byte(": reject: RCPT from ")); i > 0 && i <= 16 {
		// queue id or NOQUEUE
		for _, c := range msg[:i] {
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
				return none, false
			}
		}
		a, rest, ok := hostBracketAddr(msg[i+len(": reject: RCPT from "):])
		if !ok || !hasPrefix(rest, ": 554 5.7.1 <") {
			return none, false
		}
		// "<RCPT>: Relay access denied;" — the recipient is the client's,
		// so the reason must follow its closing "> " … take the first
		// ">: " after which the server's text starts
		j := bytes.Index(rest, []byte(">: Relay access denied;"))
		if j < 0 {
			return none, false
		}
		return matched(a, classAuth, "relay-denied"), true
	}
	if p := "lost connection after AUTH from "; hasPrefix(msg, p) {
		a, rest, ok := hostBracketAddr(msg[len(p):])
		if !ok || len(rest) != 0 {
			return none, false
		}
		return matched(a, classProbe, "lost-after-auth"), true
	}
	return none, false
}

// courier parses Courier's imapd/pop3d "LOGIN FAILED, user=USER,
// ip=[ADDR]" (authlib/courier imapd.c, pop3dserver.c): the user comes
// first, so the address is the bracket that ends the message.
func courier(msg []byte) result {
	if !hasPrefix(msg, "LOGIN FAILED, user=") || msg[len(msg)-1] != ']' {
		return none
	}
	i := bytes.LastIndex(msg, []byte(", ip=["))
	if i < len("LOGIN FAILED, user=") {
		return none
	}
	a, ok := parseAddr(msg[i+len(", ip=[") : len(msg)-1])
	if !ok {
		return none
	}
	return matched(a, classAuth, "login-failed")
}

// dovecotAuth parses Dovecot's auth process (src/auth/auth-request.c
// log prefix "PASSDB(USER,RIP[,<SESSION>]): "): "auth: pam(USER,RIP,<S>):
// pam_authenticate() failed: …", "… Password mismatch", "… unknown user".
// USER is the client's and comes first; RIP is the field before the
// server's session id (or the last field), read from the right.
func dovecotAuth(msg []byte) result {
	rest, ok := cutAuthPrefix(msg)
	if !ok {
		return none
	}
	var tail []byte
	for _, t := range [...]string{"): pam_authenticate() failed: ", "): Password mismatch", "): unknown user"} {
		if i := bytes.LastIndex(rest, []byte(t)); i > 0 {
			if t[len(t)-1] != ' ' && i+len(t) != len(rest) && !hasPrefix(rest[i+len(t):], " ") {
				continue
			}
			tail = rest[:i]
			break
		}
	}
	if tail == nil {
		return none
	}
	// tail: PASSDB(USER,RIP[,<SESSION>]
	if bytes.HasSuffix(tail, []byte(">")) {
		s := bytes.LastIndex(tail, []byte(",<"))
		if s < 0 {
			return none
		}
		tail = tail[:s]
	}
	c := bytes.LastIndexByte(tail, ',')
	if c < 0 || bytes.IndexByte(tail[:c], '(') < 0 {
		return none
	}
	a, ok := parseAddr(tail[c+1:])
	if !ok {
		return none
	}
	return matched(a, classAux, "auth-failed")
}

// cutAuthPrefix removes "auth: " or "auth-worker(N): " (with Dovecot's
// optional "Info: " level prefix after it).
func cutAuthPrefix(msg []byte) ([]byte, bool) {
	switch {
	case hasPrefix(msg, "auth: "):
		msg = msg[len("auth: "):]
	case hasPrefix(msg, "auth-worker("):
		rp := bytes.Index(msg, []byte("): "))
		if rp < 0 || rp > 24 {
			return nil, false
		}
		if _, ok := atoi(msg[len("auth-worker("):rp]); !ok {
			return nil, false
		}
		msg = msg[rp+3:]
	default:
		return nil, false
	}
	for _, l := range [...]string{"Info: ", "Error: ", "Warning: "} {
		msg = trimPrefix(msg, l)
	}
	return msg, true
}

// proftpd parses ProFTPD's log prefix "SERVER (NAME[ADDR]) - " (src/log.c
// with the remote name and address) followed by mod_auth.c's "USER %s: no
// such user found from …", "USER %s (Login failed): …" or "Maximum login
// attempts (N) exceeded". NAME is a resolver's host name or the address;
// the address is in the first brackets, before anything the client wrote.
func proftpd(msg []byte) result {
	i := bytes.Index(msg, []byte(" ("))
	if i <= 0 || i > 256 || bytes.ContainsAny(msg[:i], " ()") {
		return none
	}
	s := msg[i+2:]
	lb := bytes.IndexByte(s, '[')
	if lb <= 0 {
		return none
	}
	if _, isAddr := parseAddr(s[:lb]); !isAddr && !isHostname(s[:lb]) {
		return none
	}
	rb := bytes.IndexByte(s[lb:], ']')
	if rb < 0 {
		return none
	}
	a, ok := parseAddr(s[lb+1 : lb+rb])
	rest := s[lb+rb+1:]
	if !ok || !hasPrefix(rest, ") - ") {
		return none
	}
	body := rest[len(") - "):]
	switch {
	case hasPrefix(body, "USER ") && (bytes.Contains(body, []byte(": no such user found from ")) || bytes.Contains(body, []byte(" (Login failed): "))):
	case hasPrefix(body, "Maximum login attempts (") && bytes.HasSuffix(body, []byte(") exceeded")):
	default:
		return none
	}
	return matched(a, classAuth, "login-failed")
}

// pureFTPd parses Pure-FTPd's "(?@ADDR) [WARNING] Authentication failed
// for user [USER]" (src/log_*.c prefix "(%s@%s) " with "?" before login):
// the address precedes the user name.
func pureFTPd(msg []byte) result {
	if !hasPrefix(msg, "(?@") {
		return none
	}
	rp := bytes.IndexByte(msg, ')')
	if rp < 0 || !hasPrefix(msg[rp:], ") [WARNING] Authentication failed for user [") {
		return none
	}
	a, ok := parseAddr(msg[len("(?@"):rp])
	if !ok {
		return none
	}
	return matched(a, classAuth, "auth-failed")
}

// exim parses the message of an Exim main log line after its timestamp:
// "AUTH authenticator failed for [NAME ][(HELO) ][ADDR]:PORT: 535
// Incorrect authentication data[ (set_id=USER)]" (smtp_in.c,
// host_and_ident). HELO is the client's and comes before the address,
// USER after it: every "[ADDR]:PORT: 535 " is tried.
func exim(msg []byte) result {
	i := bytes.Index(msg, []byte(" authenticator failed for "))
	if i <= 0 || i > 64 || bytes.IndexByte(msg[:i], ' ') >= 0 {
		return none
	}
	s := msg[i+len(" authenticator failed for "):]
	var r readings
	off := 0
	for range maxReadings {
		j := bytes.IndexByte(s[off:], '[')
		if j < 0 {
			break
		}
		at := off + j
		off = at + 1
		if at > 0 && s[at-1] != ' ' {
			continue
		}
		rb := bytes.IndexByte(s[at:], ']')
		if rb < 0 {
			break
		}
		a, ok := parseAddr(s[at+1 : at+rb])
		if !ok {
			continue
		}
		rest := s[at+rb+1:]
		if len(rest) < 2 || rest[0] != ':' {
			continue
		}
		k := 1
		for k < len(rest) && k < 7 && rest[k] >= '0' && rest[k] <= '9' {
			k++
		}
		if _, ok := atoiPort(rest[1:k]); !ok || !hasPrefix(rest[k:], ": 535 ") {
			continue
		}
		r.add(a)
	}
	return r.result(classAuth, "authenticator-failed")
}

// apacheError parses an Apache 2.4 error log line: "[DATE] [MODULE:LEVEL]
// [pid N[:tid M]] [client ADDR:PORT] AH01617: user USER: authentication
// failure for "URI": Password Mismatch" (mod_auth_basic.c; AH01618 user
// not found, AH01614 wrong scheme). Everything up to the client's address
// is the server's.
func apacheError(line []byte) result {
	s := line
	for range 3 { // date, module:level, pid
		if len(s) == 0 || s[0] != '[' {
			return none
		}
		rb := bytes.IndexByte(s, ']')
		if rb < 0 || rb+2 > len(s) || s[rb+1] != ' ' {
			return none
		}
		s = s[rb+2:]
	}
	if !hasPrefix(s, "[client ") {
		return none
	}
	rb := bytes.IndexByte(s, ']')
	if rb < 0 {
		return none
	}
	a, ok := addrColonPort(s[len("[client "):rb])
	if !ok {
		return none
	}
	body := s[rb+1:]
	for _, code := range [...]string{" AH01617: user ", " AH01618: user ", " AH01614: client used wrong authentication scheme: ", " AH01615: client used wrong authentication scheme: "} {
		if hasPrefix(body, code) {
			return matched(a, classAuth, "auth-basic")
		}
	}
	return none
}

// nginxError parses an nginx error log message (after "DATE [LEVEL]
// PID#TID: *CID ") from ngx_http_auth_basic_module.c: "user "USER":
// password mismatch", "user "USER" was not found in "FILE"", "no
// user/password was provided for basic authentication", each followed by
// ", client: ADDR, server: NAME, request: "…"". The user name comes
// before the address and the request after it: every ", client: " is
// tried.
func nginxError(msg []byte) result {
	switch {
	case hasPrefix(msg, "no user/password was provided for basic authentication, client: "):
		// nothing the client wrote precedes the address
		s := msg[len("no user/password was provided for basic authentication, client: "):]
		c := bytes.IndexByte(s, ',')
		if c < 0 {
			c = len(s)
		}
		a, ok := parseAddr(s[:c])
		if !ok || c < len(s) && !hasPrefix(s[c:], ", server: ") {
			return none
		}
		return matched(a, classAuth, "auth-basic")
	case hasPrefix(msg, `user "`):
	default:
		return none
	}
	var r readings
	off := len(`user "`)
	for range maxReadings {
		i := bytes.Index(msg[off:], []byte(", client: "))
		if i < 0 {
			break
		}
		at := off + i
		off = at + 1
		head := msg[len(`user "`):at] // after the opening quote
		if !bytes.HasSuffix(head, []byte(`": password mismatch`)) && !(bytes.HasSuffix(head, []byte(`"`)) && bytes.Contains(head[:len(head)-1], []byte(`" was not found in "`))) {
			continue
		}
		s := msg[at+len(", client: "):]
		c := bytes.IndexByte(s, ',')
		if c < 0 {
			c = len(s)
		}
		a, ok := parseAddr(s[:c])
		if !ok || c < len(s) && !hasPrefix(s[c:], ", server: ") {
			continue
		}
		r.add(a)
	}
	return r.result(classAuth, "auth-basic")
}
