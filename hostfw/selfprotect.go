package hostfw

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// SSHPeers returns the remote addresses of established TCP sessions to the
// given local ports (sshd's), read from /proc/net/tcp and /proc/net/tcp6 of
// the network namespace banshee runs in. No block may cut them off.
func SSHPeers(ports []uint16) ([]netip.Addr, error) {
	// sock_diag over netlink asks the kernel for the sockets directly; the
	// /proc files walk the whole established-hash table twice per read,
	// which on a large host costs milliseconds.
	if peers, err := diagPeers(ports); err == nil {
		return peers, nil
	}
	return procPeers(ports)
}

// procPeers reads the sessions from /proc of the calling thread's network
// namespace (thread-self: a locked thread may be in another namespace than
// the process).
func procPeers(ports []uint16) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue // no IPv6 in this kernel
			}
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		peers, err := parseProcNetTCP(data, ports)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		for _, p := range peers {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// parseProcNetTCP reads the established sessions (st 01) whose local port
// is one of ports and returns their remote addresses.
func parseProcNetTCP(data []byte, ports []uint16) ([]netip.Addr, error) {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		if first {
			first = false // header
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "01" {
			continue
		}
		_, lport, err := procAddr(f[1])
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, lport) {
			continue
		}
		raddr, _, err := procAddr(f[2])
		if err != nil {
			return nil, err
		}
		out = append(out, raddr.Unmap())
	}
	return out, sc.Err()
}

// procAddr decodes "0100007F:0016" (little-endian 32-bit words) into an
// address and port.
func procAddr(s string) (netip.Addr, uint16, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad port in %q", s)
	}
	raw, err := hex.DecodeString(hexAddr)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is host order
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	a, _ := netip.AddrFromSlice(raw)
	return a, uint16(port), nil
}

// Verdict is what a ruleset does to a packet, as far as a static reading can
// tell.
type Verdict int

// Verdicts of a static reading.
const (
	VerdictUnknown Verdict = iota // a match banshee cannot evaluate decides
	VerdictAccept
	VerdictDrop
)

// SSHVerdict reads the filter table of an iptables-save text and tells
// whether INPUT accepts an established TCP session from peer to port.
// Matches it cannot evaluate (interfaces, other modules) make the answer
// VerdictUnknown unless an earlier rule already decided. The string says
// which rule or policy decided.
func SSHVerdict(text string, peer netip.Addr, port uint16) (Verdict, string) {
	chains, policies := parseFilter(text)
	if chains == nil {
		return VerdictAccept, "the ruleset has no filter table, so the live one stays"
	}
	v, why, _ := walk(chains, "INPUT", peer, port, 0)
	if v == verdictNone {
		pol := policies["INPUT"]
		if pol == "DROP" || pol == "REJECT" {
			return VerdictDrop, "INPUT policy " + pol
		}
		return VerdictAccept, "INPUT policy " + pol
	}
	return v, why
}

const verdictNone Verdict = -1

func walk(chains map[string][][]string, chain string, peer netip.Addr, port uint16, depth int) (Verdict, string, bool) {
	if depth > 16 {
		return VerdictUnknown, "chains nested too deep", true
	}
	for _, args := range chains[chain] {
		m, target := matchRule(args, peer, port)
		if m == matchNo {
			continue
		}
		line := "-A " + chain + " " + strings.Join(args, " ")
		switch target {
		case "ACCEPT":
			if m == matchYes {
				return VerdictAccept, line, true
			}
			return VerdictUnknown, line, true
		case "DROP", "REJECT":
			if m == matchYes {
				return VerdictDrop, line, true
			}
			return VerdictUnknown, line, true
		case "RETURN":
			if m == matchYes {
				return verdictNone, "", false
			}
			return VerdictUnknown, line, true
		case "", "LOG", "NFLOG", "CONNMARK", "MARK":
			continue
		default:
			if _, ok := chains[target]; !ok {
				continue
			}
			v, why, final := walk(chains, target, peer, port, depth+1)
			if final && v != verdictNone {
				if m == matchMaybe && v != VerdictUnknown {
					return VerdictUnknown, line, true
				}
				return v, why, true
			}
		}
	}
	return verdictNone, "", false
}

type match int

const (
	matchNo match = iota
	matchYes
	matchMaybe
)

// matchRule evaluates the matches of one rule against an established TCP
// packet from peer to port.
func matchRule(args []string, peer netip.Addr, port uint16) (match, string) {
	res := matchYes
	target := ""
	maybe := func() {
		if res == matchYes {
			res = matchMaybe
		}
	}
	for i := 0; i < len(args); i++ {
		neg := false
		if args[i] == "!" && i+1 < len(args) {
			neg = true
			i++
		}
		a := args[i]
		val := ""
		if i+1 < len(args) {
			val = args[i+1]
		}
		hit := func(ok bool) {
			if ok == neg {
				res = matchNo
			}
		}
		switch a {
		case "-j", "--jump", "-g", "--goto":
			target = val
			i++
		case "-s", "--source":
			ok := false
			for _, c := range strings.Split(val, ",") {
				if p, err := parsePrefixOrAddr(c); err == nil && p.Contains(peer) {
					ok = true
				}
			}
			hit(ok)
			i++
		case "-p", "--protocol":
			hit(val == "tcp" || val == "6" || val == "all")
			i++
		case "--dport", "--destination-port":
			hit(portIn(val, port))
			i++
		case "--dports", "--destination-ports":
			ok := false
			for _, p := range strings.Split(val, ",") {
				ok = ok || portIn(p, port)
			}
			hit(ok)
			i++
		case "--ctstate", "--state":
			hit(slices.Contains(strings.Split(val, ","), "ESTABLISHED"))
			i++
		case "-m", "--match":
			i++ // the module's own options are handled by name
		case "--comment", "--log-prefix", "--log-level":
			i++
		case "--match-set":
			// banshee's own sets: the policy never puts a caller there.
			if strings.HasPrefix(val, "banshee") {
				res = matchNo
			} else {
				maybe()
			}
			i += 2
		default:
			if strings.HasPrefix(a, "-") {
				maybe()
				if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					i++
				}
			}
		}
		if res == matchNo {
			return matchNo, target
		}
	}
	return res, target
}

func portIn(spec string, port uint16) bool {
	lo, hi, isRange := strings.Cut(spec, ":")
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return false
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return false
		}
	}
	return uint64(port) >= l && uint64(port) <= h
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseFilter splits the filter table of an iptables-save text into rules
// per chain and the built-in chains' policies; nil without a filter table.
func parseFilter(text string) (map[string][][]string, map[string]string) {
	var chains map[string][][]string
	policies := map[string]string{}
	in := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "*filter":
			in = true
			chains = map[string][][]string{}
		case strings.HasPrefix(line, "*") || line == "COMMIT":
			in = false
		case !in:
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 {
				policies[f[0]] = f[1]
				if _, ok := chains[f[0]]; !ok {
					chains[f[0]] = nil
				}
			}
		case strings.HasPrefix(line, "-A "):
			args := splitArgs(line)
			if len(args) >= 2 {
				chains[args[1]] = append(chains[args[1]], args[2:])
			}
		}
	}
	return chains, policies
}

// splitArgs splits a restore line into words, honouring double quotes and
// backslash escapes the way iptables-restore does.
func splitArgs(line string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && inQ && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			inQ = !inQ
			have = true
		case (c == ' ' || c == '\t') && !inQ:
			if have || cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
		}
	}
	if have || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
