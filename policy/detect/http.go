package detect

import (
	"bytes"
	"net/netip"
	"time"
)

// combined parses an nginx/Apache combined (or common) log line:
// ADDR IDENT USER [TIME] "REQUEST" STATUS SIZE …. The address is the first
// field, written by the server. The user field (a basic-auth name) is the
// remote side's and may contain spaces and brackets, but both servers
// escape quotes in it, so the first `] "` that closes a well-formed
// timestamp ends the header. The request string is then scanned honouring
// backslash escapes (Apache writes \" for a quote inside it, nginx \x22)
// and the status is the token after it.
func combined(line []byte) (addr netip.Addr, status int, t time.Time, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return netip.Addr{}, 0, time.Time{}, false
	}
	a, ok := parseAddr(line[:sp])
	if !ok {
		return netip.Addr{}, 0, time.Time{}, false
	}
	rest := line[sp+1:]
	// The user field (basic-auth name) is the remote side's and may contain
	// spaces and brackets; the request that follows the timestamp is
	// escaped. Find the first "] \"" that closes a well-formed timestamp.
	i := 0
	for {
		j := bytes.Index(rest[i:], []byte("] \""))
		if j < 0 {
			return netip.Addr{}, 0, time.Time{}, false
		}
		end := i + j // index of ']'
		if end >= 27 && rest[end-27] == '[' {
			if tt, ok := parseCLFTime(rest[end-26 : end]); ok {
				t = tt
				rest = rest[end+3:]
				break
			}
		}
		i = end + 1
	}
	// the request string, up to its unescaped closing quote
	k := 0
	for ; k < len(rest); k++ {
		if rest[k] == '\\' {
			k++
			continue
		}
		if rest[k] == '"' {
			break
		}
	}
	if k >= len(rest) {
		return netip.Addr{}, 0, time.Time{}, false
	}
	rest = rest[k+1:]
	if len(rest) < 4 || rest[0] != ' ' || (len(rest) > 4 && rest[4] != ' ') {
		return netip.Addr{}, 0, time.Time{}, false
	}
	st, ok := atoi(rest[1:4])
	if !ok || st < 100 || st > 599 {
		return netip.Addr{}, 0, time.Time{}, false
	}
	return a, st, t, true
}
