package detect

import "bytes"

// pamUnix parses Linux-PAM's pam_unix failure line as pam_syslog writes
// it (modules/pam_unix/support.c, _unix_verify_password; the prefix is
// pam_syslog's "MODULE(SERVICE:TYPE): "):
//
//	pam_unix(SERVICE:auth): authentication failure; logname=%s uid=%d euid=%d tty=%s ruser=%s rhost=%s %s%s
//
// the last two being " user=" and the user name when there is one, or
// SSSD's pam_sss (src/sss_client/pam_sss.c, send_and_receive), "…
// ruser=%s rhost=%s user=%s" in the same frame. It
// returns the PAM service and the result (classAux: the service logs its
// own failure line for the same attempt). logname, uid, euid and tty are
// the system's and the application's; ruser (PAM_RUSER) is empty for
// sshd but other services (Dovecot) set it to the name the client sent,
// and the user name follows rhost too. So with an empty ruser the
// position of rhost is fixed; otherwise every " rhost=" is a reading, a
// host name or an empty rhost counting as one, and the line is skipped
// unless all readings name the same address.
func pamUnix(msg []byte) (service []byte, res result) {
	var rest []byte
	switch {
	case hasPrefix(msg, "pam_unix("):
		rest = msg[len("pam_unix("):]
	case hasPrefix(msg, "pam_sss("):
		rest = msg[len("pam_sss("):]
	default:
		return nil, none
	}
	c := bytes.Index(rest, []byte(":auth): authentication failure; "))
	if c <= 0 || c > 32 || !isHostname(rest[:c]) {
		return nil, none
	}
	service = rest[:c]
	s := rest[c+len(":auth): authentication failure; "):]
	for _, f := range [...]string{"logname=", "uid=", "euid=", "tty="} {
		if !hasPrefix(s, f) {
			return service, none
		}
		s = s[len(f):]
		sp := bytes.IndexByte(s, ' ')
		if sp < 0 {
			return service, none
		}
		if f == "uid=" || f == "euid=" {
			if _, ok := atoi(s[:sp]); !ok {
				return service, none
			}
		}
		s = s[sp+1:]
	}
	if !hasPrefix(s, "ruser=") {
		return service, none
	}
	s = s[len("ruser="):]
	// rhost=HOST ends the message, or is followed by " " and the
	// optional " user=NAME" (one space when a syslog collapsed two)
	hostAt := func(at int) ([]byte, bool) {
		h := s[at+len(" rhost="):]
		sp := bytes.IndexByte(h, ' ')
		if sp < 0 {
			return h, true
		}
		tail := h[sp:]
		return h[:sp], string(tail) == " " || hasPrefix(tail, "  user=") || hasPrefix(tail, " user=")
	}
	var host []byte
	if hasPrefix(s, " rhost=") {
		// empty ruser: everything before rhost is the system's
		h, ok := hostAt(0)
		if !ok {
			return service, none
		}
		host = h
	} else {
		n, same := 0, true
		off := 0
		for range maxReadings {
			i := bytes.Index(s[off:], []byte(" rhost="))
			if i < 0 {
				break
			}
			at := off + i
			off = at + 1
			h, ok := hostAt(at)
			if !ok {
				continue
			}
			if n > 0 && !bytes.Equal(h, host) {
				same = false
			}
			host = h
			n++
		}
		if bytes.Contains(s[off:], []byte(" rhost=")) {
			same = false // too many readings to try: do not guess
		}
		switch {
		case n == 0:
			return service, none
		case !same:
			return service, result{v: vAmbiguous, class: classAux, form: "pam-unix"}
		}
	}
	a, ok := parseAddr(host)
	if !ok {
		// a host name (UseDNS) or no remote host (saslauthd, su)
		return service, result{v: vNoAddr, class: classAux, form: "pam-unix"}
	}
	return service, matched(a, classAux, "pam-unix")
}
