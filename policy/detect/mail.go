package detect

import (
	"bytes"
	"net/netip"
)

// cyrus parses Cyrus IMAP's "badlogin: HOST [ADDR] MECH USER SASL(...)…"
// and "badlogin: [ADDR] MECH USER …" (no reverse DNS). HOST must be a plain
// host name: the address is the first bracketed token, and nothing the
// remote side writes (the user) comes before it.
func cyrus(msg []byte) (netip.Addr, bool) {
	if !hasPrefix(msg, "badlogin: ") {
		return netip.Addr{}, false
	}
	rest := msg[len("badlogin: "):]
	if len(rest) == 0 {
		return netip.Addr{}, false
	}
	if rest[0] != '[' {
		sp := bytes.IndexByte(rest, ' ')
		if sp <= 0 || !isHostname(rest[:sp]) {
			return netip.Addr{}, false
		}
		rest = rest[sp+1:]
		if len(rest) == 0 || rest[0] != '[' {
			return netip.Addr{}, false
		}
	}
	end := bytes.IndexByte(rest, ']')
	if end < 0 || end+1 >= len(rest) || rest[end+1] != ' ' {
		return netip.Addr{}, false
	}
	return parseAddr(rest[1:end])
}

// dovecot parses a Dovecot login process disconnect after failed
// authentication: "pop3-login: Disconnected (auth failed, 3 attempts in 8
// secs): user=<X>, method=PLAIN, rip=ADDR, lip=…". msg starts after the
// "dovecot: " tag when logged through syslog under that tag, or is the
// message of a "pop3-login:" tagged line. It returns the number of attempts
// the line reports.
func dovecot(msg []byte) (netip.Addr, int, bool) {
	msg = trimPrefix(msg, "Info: ")
	// "auth failed" must be in the server's part, before "user=<"
	u := bytes.Index(msg, []byte("user=<"))
	if u < 0 {
		return netip.Addr{}, 0, false
	}
	head := msg[:u]
	af := bytes.Index(head, []byte("(auth failed, "))
	if af < 0 {
		return netip.Addr{}, 0, false
	}
	n := 1
	att := head[af+len("(auth failed, "):]
	if sp := bytes.IndexByte(att, ' '); sp > 0 && hasPrefix(att[sp:], " attempts") {
		if v, ok := atoi(att[:sp]); ok && v > 0 {
			n = v
		}
	}
	r := bytes.LastIndex(msg, []byte(", rip="))
	if r < u {
		return netip.Addr{}, 0, false
	}
	rest := msg[r+len(", rip="):]
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		end = len(rest)
	}
	a, ok := parseAddr(rest[:end])
	return a, n, ok
}

// dovecotService returns the login service of a Dovecot message ("pop3"
// for "pop3-login: …") and the message after it.
func dovecotService(msg []byte) (service, rest []byte, ok bool) {
	c := bytes.Index(msg, []byte("-login: "))
	if c <= 0 || c > 20 {
		return nil, nil, false
	}
	for _, ch := range msg[:c] {
		if (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') {
			return nil, nil, false
		}
	}
	return msg[:c], msg[c+len("-login: "):], true
}

// postfixSASL parses "warning: HOST[ADDR]: SASL MECH authentication
// failed: …". HOST is Postfix's verified client name or "unknown".
func postfixSASL(msg []byte) (netip.Addr, bool) {
	if !hasPrefix(msg, "warning: ") {
		return netip.Addr{}, false
	}
	rest := msg[len("warning: "):]
	lb := bytes.IndexByte(rest, '[')
	if lb <= 0 || !isHostname(rest[:lb]) {
		return netip.Addr{}, false
	}
	rest = rest[lb+1:]
	rb := bytes.IndexByte(rest, ']')
	if rb < 0 {
		return netip.Addr{}, false
	}
	a, ok := parseAddr(rest[:rb])
	if !ok {
		return netip.Addr{}, false
	}
	rest = rest[rb+1:]
	if !hasPrefix(rest, ": SASL ") {
		return netip.Addr{}, false
	}
	rest = rest[len(": SASL "):]
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 || !hasPrefix(rest[sp:], " authentication failed") {
		return netip.Addr{}, false
	}
	return a, true
}

// vsftpd parses "[USER] FAIL LOGIN: Client "ADDR"" from its end: USER is
// the client's, so the address is the quoted string that ends the message.
func vsftpd(msg []byte) (netip.Addr, bool) {
	const tail = `FAIL LOGIN: Client "`
	if len(msg) < len(tail)+2 || msg[len(msg)-1] != '"' {
		return netip.Addr{}, false
	}
	body := msg[:len(msg)-1]
	q := bytes.LastIndexByte(body, '"')
	if q < len(tail)-1 || string(body[q+1-len(tail):q+1]) != tail {
		return netip.Addr{}, false
	}
	return parseAddr(body[q+1:])
}

func trimPrefix(b []byte, p string) []byte {
	if hasPrefix(b, p) {
		return b[len(p):]
	}
	return b
}
