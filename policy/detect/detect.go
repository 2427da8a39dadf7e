package detect

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// Detector describes one detector: what it is called, the service it
// implies and its window.
type Detector struct {
	Name     string        `json:"name"`
	Kind     policy.Kind   `json:"kind"`
	Port     policy.Port   `json:"port"`
	MaxRetry int           `json:"max_retry"`
	FindTime time.Duration `json:"find_time"`
	Builtin  bool          `json:"builtin"`
	Pattern  string        `json:"pattern,omitempty"`
}

// Match is one failure line: who failed against which detector.
type Match struct {
	Detector int         // index into Matcher.Detectors
	Addr     netip.Addr  // canonical source address
	Port     policy.Port // the service the line is about
	Count    int         // failures the line stands for (>= 1)
	Time     time.Time   // the line's timestamp; zero when it has none
}

// Built-in detector names.
const (
	SSHD        = "sshd"
	CyrusPOP3   = "cyrus-pop3"
	CyrusIMAP   = "cyrus-imap"
	DovecotPOP3 = "dovecot-pop3"
	DovecotIMAP = "dovecot-imap"
	PostfixSASL = "postfix-sasl"
	VSFTPD      = "vsftpd"
	HTTPAuth    = "http-auth"
	HTTPScan    = "http-scan"
)

func tcp(p uint16) policy.Port { return policy.Port{Proto: "tcp", From: p, To: p} }

// builtins lists the built-in detectors in the order of their indexes.
// MaxRetry/FindTime zero means the watch section's defaults.
var builtins = []Detector{
	{Name: SSHD, Kind: policy.KindBruteforce, Port: tcp(22)},
	{Name: CyrusPOP3, Kind: policy.KindBruteforce, Port: tcp(110)},
	{Name: CyrusIMAP, Kind: policy.KindBruteforce, Port: tcp(143)},
	{Name: DovecotPOP3, Kind: policy.KindBruteforce, Port: tcp(110)},
	{Name: DovecotIMAP, Kind: policy.KindBruteforce, Port: tcp(143)},
	{Name: PostfixSASL, Kind: policy.KindBruteforce, Port: tcp(25)},
	{Name: VSFTPD, Kind: policy.KindBruteforce, Port: tcp(21)},
	// HTTP and HTTPS share the log; the range covers both.
	{Name: HTTPAuth, Kind: policy.KindBruteforce, Port: policy.Port{Proto: "tcp", From: 80, To: 443}},
	// 404s come in bursts from scanners but also from broken links: a
	// higher default threshold over a short window.
	{Name: HTTPScan, Kind: policy.KindScan, Port: policy.Port{Proto: "tcp", From: 80, To: 443}, MaxRetry: 20, FindTime: time.Minute},
}

const (
	idSSHD = iota
	idCyrusPOP3
	idCyrusIMAP
	idDovecotPOP3
	idDovecotIMAP
	idPostfixSASL
	idVSFTPD
	idHTTPAuth
	idHTTPScan
	numBuiltins
)

type userDetector struct {
	id   int
	re   *regexp.Regexp
	addr int // submatch index of "addr"
}

// Matcher runs the built-in and configured detectors over lines. It is not
// safe for concurrent use.
type Matcher struct {
	p    *Parser
	dets []Detector
	user []userDetector
	rec  Record
}

// Builtins returns the built-in detectors with their own defaults.
func Builtins() []Detector {
	return append([]Detector(nil), builtins...)
}

// New builds a matcher from the watch section of the config: the built-in
// detectors with the section's max_retry and find_time, then every
// configured detector. A configured detector with a built-in's name and no
// pattern tunes that built-in (max_retry, find_time, port). now is the
// reference time for syslog timestamps without a year (time.Now when nil).
func New(cfg policy.WatchConfig, now func() time.Time) (*Matcher, error) {
	defRetry, defFind := cfg.MaxRetry, time.Duration(cfg.FindTime)
	if defRetry <= 0 {
		defRetry = 5
	}
	if defFind <= 0 {
		defFind = 10 * time.Minute
	}
	m := &Matcher{p: NewParser(now, nil)}
	index := map[string]int{}
	for _, d := range builtins {
		d.Builtin = true
		if d.MaxRetry == 0 {
			d.MaxRetry = defRetry
		}
		if d.FindTime == 0 {
			d.FindTime = defFind
		}
		index[d.Name] = len(m.dets)
		m.dets = append(m.dets, d)
	}
	for _, dc := range cfg.Detectors {
		if err := m.add(dc, index, defRetry, defFind); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Matcher) add(dc policy.DetectorConfig, index map[string]int, defRetry int, defFind time.Duration) error {
	name := strings.TrimSpace(dc.Name)
	if name == "" {
		return &policy.InputError{Value: dc.Pattern, Msg: "watch.detectors: a detector needs a name"}
	}
	if len(name) > 64 || !isHostname([]byte(name)) {
		// names end up in metrics labels, logs and firewall comments
		return &policy.InputError{Value: name, Msg: "watch.detectors: a name is 1 to 64 letters, digits, '.', '_' or '-'"}
	}
	if dc.MaxRetry < 0 || dc.FindTime < 0 {
		return &policy.InputError{Value: name, Msg: "watch.detectors: max_retry and find_time must not be negative"}
	}
	var port policy.Port
	if dc.Port != "" {
		p, err := policy.ParsePort(dc.Port)
		if err != nil {
			return err
		}
		port = p
	}
	if i, ok := index[name]; ok {
		d := &m.dets[i]
		if !d.Builtin || dc.Pattern != "" {
			return &policy.InputError{Value: name, Msg: "watch.detectors: duplicate detector name (a built-in is tuned by giving its name without a pattern)"}
		}
		if dc.MaxRetry > 0 {
			d.MaxRetry = dc.MaxRetry
		}
		if dc.FindTime > 0 {
			d.FindTime = time.Duration(dc.FindTime)
		}
		if dc.Port != "" {
			d.Port = port
		}
		return nil
	}
	if dc.Pattern == "" {
		return &policy.InputError{Value: name, Msg: "watch.detectors: not a built-in detector and no pattern given"}
	}
	re, err := regexp.Compile(dc.Pattern)
	if err != nil {
		return &policy.InputError{Value: dc.Pattern, Msg: fmt.Sprintf("watch.detectors %s: bad pattern: %v", name, err)}
	}
	addr, n := -1, 0
	for i, sn := range re.SubexpNames() {
		if sn == "addr" {
			addr = i
			n++
		}
	}
	if n != 1 {
		return &policy.InputError{Value: dc.Pattern, Msg: fmt.Sprintf("watch.detectors %s: the pattern needs exactly one group named addr, it has %d", name, n)}
	}
	d := Detector{Name: name, Kind: policy.KindBruteforce, Port: port, MaxRetry: dc.MaxRetry, FindTime: time.Duration(dc.FindTime), Pattern: dc.Pattern}
	if d.MaxRetry == 0 {
		d.MaxRetry = defRetry
	}
	if d.FindTime == 0 {
		d.FindTime = defFind
	}
	index[name] = len(m.dets)
	m.user = append(m.user, userDetector{id: len(m.dets), re: re, addr: addr})
	m.dets = append(m.dets, d)
	return nil
}

// Detectors returns every detector, indexed by Match.Detector.
func (m *Matcher) Detectors() []Detector { return m.dets }

// Match reports whether line is a failure line of any detector. The first
// detector that matches wins; built-ins come first.
func (m *Matcher) Match(line []byte) (Match, bool) {
	line = bytes.TrimRight(line, "\r\n")
	m.p.Parse(line, &m.rec)
	return m.MatchRecord(&m.rec)
}

// MatchRecord is Match for a line already split into a record (the
// journal gives its fields separately).
func (m *Matcher) MatchRecord(r *Record) (Match, bool) {
	mt := Match{Detector: -1, Count: 1, Time: r.Time}
	msg := r.Msg
	if r.Program != nil {
		// rsyslog's "message repeated N times: [ MSG]"
		if hasPrefix(msg, "message repeated ") {
			if inner, n, ok := unwrapRepeated(msg); ok {
				msg, mt.Count = inner, n
			}
		}
		if m.builtin(r.Program, msg, &mt) {
			return m.finish(mt), true
		}
	} else if m.noHeader(r.Line, &mt) {
		return m.finish(mt), true
	}
	for _, u := range m.user {
		sm := u.re.FindSubmatchIndex(r.Tagged)
		if sm == nil || sm[2*u.addr] < 0 {
			continue
		}
		a, ok := parseAddr(r.Tagged[sm[2*u.addr]:sm[2*u.addr+1]])
		if !ok {
			continue
		}
		mt.Detector, mt.Addr = u.id, a
		return m.finish(mt), true
	}
	return Match{}, false
}

func (m *Matcher) finish(mt Match) Match {
	if mt.Port == (policy.Port{}) {
		mt.Port = m.dets[mt.Detector].Port
	}
	return mt
}

func unwrapRepeated(msg []byte) ([]byte, int, bool) {
	rest := msg[len("message repeated "):]
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return nil, 0, false
	}
	n, ok := atoi(rest[:sp])
	if !ok || n < 1 || !hasPrefix(rest[sp:], " times: [ ") || !bytes.HasSuffix(rest, []byte("]")) {
		return nil, 0, false
	}
	return rest[sp+len(" times: [ ") : len(rest)-1], n, true
}

// builtin dispatches on the program name: the cheap prefilter that keeps
// lines of other programs away from every parser.
func (m *Matcher) builtin(prog, msg []byte, mt *Match) bool {
	var a netip.Addr
	var ok bool
	switch string(prog) {
	case "sshd", "sshd-session", "sshd-auth":
		a, ok = sshd(msg)
		mt.Detector = idSSHD
	case "pop3", "pop3s", "cyrus/pop3", "cyrus/pop3s", "pop3d":
		a, ok = cyrus(msg)
		mt.Detector = idCyrusPOP3
		if ok && (string(prog) == "pop3s" || string(prog) == "cyrus/pop3s") {
			mt.Port = tcp(995)
		}
	case "imap", "imaps", "cyrus/imap", "cyrus/imaps", "imapd":
		a, ok = cyrus(msg)
		mt.Detector = idCyrusIMAP
		if ok && (string(prog) == "imaps" || string(prog) == "cyrus/imaps") {
			mt.Port = tcp(993)
		}
	case "dovecot":
		svc, rest, isLogin := dovecotService(msg)
		if !isLogin {
			return false
		}
		return m.dovecotLogin(svc, rest, mt)
	case "pop3-login", "imap-login":
		return m.dovecotLogin(prog[:len(prog)-len("-login")], msg, mt)
	case "vsftpd":
		a, ok = vsftpd(msg)
		mt.Detector = idVSFTPD
	case "nginx", "apache", "apache2", "httpd":
		return m.http(msg, mt)
	default:
		if hasPrefix(prog, "postfix") && bytes.HasSuffix(prog, []byte("/smtpd")) {
			a, ok = postfixSASL(msg)
			mt.Detector = idPostfixSASL
			if ok {
				switch {
				case bytes.Contains(prog, []byte("/submission/")):
					mt.Port = tcp(587)
				case bytes.Contains(prog, []byte("/smtps/")):
					mt.Port = tcp(465)
				}
			}
		}
	}
	if !ok {
		return false
	}
	mt.Addr = a
	return true
}

func (m *Matcher) dovecotLogin(svc, msg []byte, mt *Match) bool {
	switch string(svc) {
	case "pop3":
		mt.Detector = idDovecotPOP3
	case "imap":
		mt.Detector = idDovecotIMAP
	default:
		return false
	}
	a, n, ok := dovecot(msg)
	if !ok {
		return false
	}
	mt.Addr, mt.Count = a, n*mt.Count
	return true
}

func (m *Matcher) http(line []byte, mt *Match) bool {
	a, st, t, ok := combined(line)
	if !ok {
		return false
	}
	switch st {
	case 401:
		mt.Detector = idHTTPAuth
	case 404:
		mt.Detector = idHTTPScan
	default:
		return false
	}
	mt.Addr = a
	if mt.Time.IsZero() {
		mt.Time = t
	}
	return true
}

// noHeader handles lines without a syslog header: the combined log and
// vsftpd's own log ("Tue Nov 21 05:53:09 2026 [pid 1] [user] FAIL LOGIN: …").
func (m *Matcher) noHeader(line []byte, mt *Match) bool {
	if len(line) > 30 && line[3] == ' ' && line[7] == ' ' && line[24] == ' ' && hasPrefix(line[25:], "[pid ") {
		rb := bytes.IndexByte(line[25:], ']')
		if rb < 0 || 25+rb+2 > len(line) {
			return false
		}
		a, ok := vsftpd(line[25+rb+2:])
		if !ok {
			return false
		}
		mt.Detector, mt.Addr = idVSFTPD, a
		if t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", string(line[:24]), time.Local); err == nil {
			mt.Time = t
		}
		return true
	}
	return m.http(line, mt)
}
