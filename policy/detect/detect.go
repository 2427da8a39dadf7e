package detect

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
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
	// LongMaxRetry failures within LongFindTime also trip (slow
	// attackers); zero turns the long window off.
	LongMaxRetry int           `json:"long_max_retry,omitempty"`
	LongFindTime time.Duration `json:"long_find_time,omitempty"`
	Builtin      bool          `json:"builtin"`
	Pattern      string        `json:"pattern,omitempty"`
}

// Match is one failure line: who failed against which detector.
type Match struct {
	Detector int         // index into Matcher.Detectors
	Addr     netip.Addr  // canonical source address
	Port     policy.Port // the service the line is about
	Count    int         // failures the line stands for (>= 1)
	Weight   int         // what each failure counts toward the threshold: FullWeight for an authentication failure, less for a probe
	Time     time.Time   // the line's timestamp; zero when it has none
}

// FullWeight is what one authentication failure counts toward a
// detector's threshold; a detector trips at MaxRetry × FullWeight within
// its window.
const FullWeight = 10

// DefaultProbeWeight is what a pre-authentication probe (no identification
// string, a failed key exchange, a connection closed before
// authenticating) counts by default: half a failure.
const DefaultProbeWeight = 5

// auxWeight is what a PAM line counts: sshd logs its own failure line for
// the same attempt.
const auxWeight = 5

// Defaults of the long window and the grouping (see policy.WatchConfig).
const (
	DefaultLongMaxRetry = 10
	DefaultLongFindTime = 24 * time.Hour
	DefaultGroupV6      = 64
)

// Skipped counts failure lines detect recognised but did not turn into a
// match.
type Skipped struct {
	Ambiguous int64 // the line reads two ways with different addresses
	NoAddress int64 // the form names no address (a host name, nothing)
}

// Built-in detector names.
const (
	SSHD         = "sshd"
	Dropbear     = "dropbear"
	CyrusPOP3    = "cyrus-pop3"
	CyrusIMAP    = "cyrus-imap"
	DovecotPOP3  = "dovecot-pop3"
	DovecotIMAP  = "dovecot-imap"
	PostfixSASL  = "postfix-sasl"
	VSFTPD       = "vsftpd"
	Courier      = "courier"
	DovecotAuth  = "dovecot-auth"
	DovecotSieve = "dovecot-sieve"
	PostfixRelay = "postfix-relay"
	Exim         = "exim"
	ProFTPD      = "proftpd"
	PureFTPd     = "pure-ftpd"
	HTTPAuth     = "http-auth"
	HTTPScan     = "http-scan"
	CyrusSieve   = "cyrus-sieve"
	// DovecotSubmission is Dovecot's submission (SMTP on 587) login.
	DovecotSubmission = "dovecot-submission"
)

func tcp(p uint16) policy.Port { return policy.Port{Proto: "tcp", From: p, To: p} }

// builtins lists the built-in detectors in the order of their indexes.
// MaxRetry/FindTime zero means the watch section's defaults.
var builtins = []Detector{
	{Name: SSHD, Kind: policy.KindBruteforce, Port: tcp(22)},
	{Name: Dropbear, Kind: policy.KindBruteforce, Port: tcp(22)},
	{Name: CyrusPOP3, Kind: policy.KindBruteforce, Port: tcp(110)},
	{Name: CyrusIMAP, Kind: policy.KindBruteforce, Port: tcp(143)},
	{Name: DovecotPOP3, Kind: policy.KindBruteforce, Port: tcp(110)},
	{Name: DovecotIMAP, Kind: policy.KindBruteforce, Port: tcp(143)},
	{Name: PostfixSASL, Kind: policy.KindBruteforce, Port: tcp(25)},
	{Name: VSFTPD, Kind: policy.KindBruteforce, Port: tcp(21)},
	{Name: Courier, Kind: policy.KindBruteforce, Port: tcp(143)},
	// the auth process serves every login service; its lines accompany a
	// login process's "auth failed" line (weight 5). IMAP by default.
	{Name: DovecotAuth, Kind: policy.KindBruteforce, Port: tcp(143)},
	{Name: DovecotSieve, Kind: policy.KindBruteforce, Port: tcp(4190)},
	{Name: PostfixRelay, Kind: policy.KindBruteforce, Port: tcp(25)},
	{Name: Exim, Kind: policy.KindBruteforce, Port: tcp(25)},
	{Name: ProFTPD, Kind: policy.KindBruteforce, Port: tcp(21)},
	{Name: PureFTPd, Kind: policy.KindBruteforce, Port: tcp(21)},
	// HTTP and HTTPS share the log; the range covers both.
	{Name: HTTPAuth, Kind: policy.KindBruteforce, Port: policy.Port{Proto: "tcp", From: 80, To: 443}},
	// 404s come in bursts from scanners but also from broken links: a
	// higher default threshold over a short window.
	{Name: HTTPScan, Kind: policy.KindScan, Port: policy.Port{Proto: "tcp", From: 80, To: 443}, MaxRetry: 20, FindTime: time.Minute},
	{Name: CyrusSieve, Kind: policy.KindBruteforce, Port: tcp(4190)},
	{Name: DovecotSubmission, Kind: policy.KindBruteforce, Port: tcp(587)},
}

const (
	idSSHD = iota
	idDropbear
	idCyrusPOP3
	idCyrusIMAP
	idDovecotPOP3
	idDovecotIMAP
	idPostfixSASL
	idVSFTPD
	idCourier
	idDovecotAuth
	idDovecotSieve
	idPostfixRelay
	idExim
	idProFTPD
	idPureFTPd
	idHTTPAuth
	idHTTPScan
	idCyrusSieve
	idDovecotSubmission
	numBuiltins
)

type userDetector struct {
	id        int
	re        *regexp.Regexp
	addr      int    // submatch index of "addr"
	program   []byte // nil: any line, against "prog[pid]: msg"
	prefilter []byte
	weight    int
}

// Matcher runs the built-in and configured detectors over lines. It is not
// safe for concurrent use.
type Matcher struct {
	p        *Parser
	dets     []Detector
	user     []userDetector
	rec      Record
	noProbes bool
	weights  [3]int // by class
	bits4    int    // group prefix lengths
	bits6    int
	skipped  Skipped
}

// TakeSkipped returns the counts of failure lines skipped since the last
// call and starts counting afresh.
func (m *Matcher) TakeSkipped() Skipped {
	s := m.skipped
	m.skipped = Skipped{}
	return s
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
	m := &Matcher{p: NewParser(now, nil), noProbes: cfg.IgnoreProbes}
	pw := DefaultProbeWeight
	if cfg.ProbeWeight != 0 {
		pw = cfg.ProbeWeight
	}
	if pw < 0 || pw > FullWeight {
		return nil, &policy.InputError{Value: fmt.Sprint(cfg.ProbeWeight), Msg: fmt.Sprintf("watch.probe_weight: a probe counts 1 to %d (a failure counts %d)", FullWeight, FullWeight)}
	}
	m.weights = [3]int{classAuth: FullWeight, classProbe: pw, classAux: auxWeight}
	longRetry, longFind := cfg.LongMaxRetry, time.Duration(cfg.LongFindTime)
	if longRetry == 0 {
		longRetry = DefaultLongMaxRetry
	}
	if longFind <= 0 {
		longFind = DefaultLongFindTime
	}
	if longRetry < 0 {
		longRetry, longFind = 0, 0
	}
	m.bits4, m.bits6 = cfg.GroupV4, cfg.GroupV6
	if m.bits4 == 0 {
		m.bits4 = 32
	}
	if m.bits6 == 0 {
		m.bits6 = DefaultGroupV6
	}
	if m.bits4 < 16 || m.bits4 > 32 {
		return nil, &policy.InputError{Value: fmt.Sprint(cfg.GroupV4), Msg: "watch.group_v4: a prefix length from 16 to 32"}
	}
	if m.bits6 < 64 || m.bits6 > 128 {
		return nil, &policy.InputError{Value: fmt.Sprint(cfg.GroupV6), Msg: "watch.group_v6: a prefix length from 64 to 128"}
	}
	index := map[string]int{}
	for _, d := range builtins {
		d.Builtin = true
		if d.MaxRetry == 0 {
			d.MaxRetry = defRetry
		}
		if d.FindTime == 0 {
			d.FindTime = defFind
		}
		if d.Kind == policy.KindBruteforce {
			d.LongMaxRetry, d.LongFindTime = longRetry, longFind
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
		tuneLong(d, dc)
		return nil
	}
	if dc.Pattern == "" {
		return &policy.InputError{Value: name, Msg: "watch.detectors: not a built-in detector and no pattern given"}
	}
	re, err := regexp.Compile(dc.Pattern)
	if err != nil {
		return &policy.InputError{Value: dc.Pattern, Msg: fmt.Sprintf("watch.detectors %s: bad pattern: %v", name, err)}
	}
	if !anchored(dc.Pattern) {
		return &policy.InputError{Value: dc.Pattern, Msg: fmt.Sprintf("watch.detectors %s: the pattern must be anchored at both ends, ^ first and $ last, so the addr group sits where the format puts it and not where a user name or other remote text repeats it", name)}
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
	w := dc.Weight
	if w == 0 {
		w = FullWeight
	}
	if w < 0 || w > FullWeight {
		return &policy.InputError{Value: fmt.Sprint(dc.Weight), Msg: fmt.Sprintf("watch.detectors %s: weight is 1 to %d", name, FullWeight)}
	}
	if dc.Program != "" && (len(dc.Program) > 64 || bytes.ContainsAny([]byte(dc.Program), " :[]\t")) {
		return &policy.InputError{Value: dc.Program, Msg: fmt.Sprintf("watch.detectors %s: program is a syslog tag without spaces, ':' or brackets", name)}
	}
	d := Detector{Name: name, Kind: policy.KindBruteforce, Port: port, MaxRetry: dc.MaxRetry, FindTime: time.Duration(dc.FindTime), Pattern: dc.Pattern}
	if d.MaxRetry == 0 {
		d.MaxRetry = defRetry
	}
	if d.FindTime == 0 {
		d.FindTime = defFind
	}
	d.LongMaxRetry, d.LongFindTime = m.dets[idSSHD].LongMaxRetry, m.dets[idSSHD].LongFindTime
	if m.dets[idSSHD].LongMaxRetry == 0 {
		d.LongMaxRetry, d.LongFindTime = 0, 0
	}
	tuneLong(&d, dc)
	index[name] = len(m.dets)
	u := userDetector{id: len(m.dets), re: re, addr: addr, weight: w}
	if dc.Program != "" {
		u.program = []byte(dc.Program)
	}
	if dc.Prefilter != "" {
		u.prefilter = []byte(dc.Prefilter)
	}
	m.user = append(m.user, u)
	m.dets = append(m.dets, d)
	return nil
}

// anchored reports whether every match of the pattern must start at the
// start of the text (^ or \A) and end at its end ($ or \z): the
// built-ins' discipline, so that text the remote side writes before or
// after the form cannot move the addr group.
func anchored(pattern string) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	return edge(re, syntax.OpBeginText, true) && edge(re, syntax.OpEndText, false)
}

// edge reports whether every way through re starts (first) or ends
// (!first) with op.
func edge(re *syntax.Regexp, op syntax.Op, first bool) bool {
	switch re.Op {
	case op:
		return true
	case syntax.OpCapture:
		return edge(re.Sub[0], op, first)
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			return false
		}
		i := 0
		if !first {
			i = len(re.Sub) - 1
		}
		return edge(re.Sub[i], op, first)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !edge(sub, op, first) {
				return false
			}
		}
		return true
	}
	return false
}

// tuneLong applies a detector's own long window settings.
func tuneLong(d *Detector, dc policy.DetectorConfig) {
	if dc.LongMaxRetry < 0 {
		d.LongMaxRetry, d.LongFindTime = 0, 0
		return
	}
	if dc.LongMaxRetry > 0 {
		d.LongMaxRetry = dc.LongMaxRetry
		if d.LongFindTime == 0 {
			d.LongFindTime = DefaultLongFindTime
		}
	}
	if dc.LongFindTime > 0 && d.LongMaxRetry > 0 {
		d.LongFindTime = time.Duration(dc.LongFindTime)
	}
}

// NewTracker returns a tracker for the matcher's detectors with its
// grouping (watch.group_v4, group_v6), holding at most limit windows.
func (m *Matcher) NewTracker(limit int) *Tracker {
	t := NewTracker(m.dets, limit)
	t.GroupBy(m.bits4, m.bits6)
	return t
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
	mt, res := m.matchRecord(r)
	switch res.v {
	case vMatch:
		return mt, true
	case vAmbiguous:
		m.skipped.Ambiguous++
	case vNoAddr:
		m.skipped.NoAddress++
	}
	return Match{}, false
}

// matchRecord runs the detectors over a record; the match is valid when
// the result's verdict is vMatch.
func (m *Matcher) matchRecord(r *Record) (Match, result) {
	mt := Match{Detector: -1, Count: 1, Time: r.Time}
	msg := r.Msg
	var res result
	if r.Program != nil {
		// rsyslog's "message repeated N times: [ MSG]"
		if hasPrefix(msg, "message repeated ") {
			if inner, n, ok := unwrapRepeated(msg); ok {
				msg, mt.Count = inner, n
			}
		}
		res = m.builtin(r.Program, msg, &mt)
	} else {
		res = m.noHeader(r.Line, &mt)
	}
	if res.v == vMatch {
		if res.class == classProbe && m.noProbes {
			res.v = vIgnored
			return mt, res
		}
		mt.Weight = m.weights[res.class]
		return m.finish(mt), res
	}
	if res.v != vNone {
		return mt, res
	}
	for _, u := range m.user {
		text := r.Tagged
		if u.program != nil {
			if !bytes.Equal(r.Program, u.program) {
				continue
			}
			text = msg
		}
		if u.prefilter != nil && !bytes.Contains(text, u.prefilter) {
			continue
		}
		sm := u.re.FindSubmatchIndex(text)
		if sm == nil || sm[2*u.addr] < 0 {
			continue
		}
		a, ok := parseAddr(text[sm[2*u.addr]:sm[2*u.addr+1]])
		if !ok {
			continue
		}
		mt.Detector, mt.Addr, mt.Weight = u.id, a, u.weight
		return m.finish(mt), matched(a, classAuth, "pattern")
	}
	return mt, none // mt.Detector: the detector that reads the program, if any
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
func (m *Matcher) builtin(prog, msg []byte, mt *Match) result {
	var res result
	if (hasPrefix(msg, "pam_unix(") || hasPrefix(msg, "pam_sss(")) && !hasPrefix(prog, "untrusted-") && !isSSHD(prog) {
		return m.pam(msg, mt)
	}
	switch string(prog) {
	case "sshd", "sshd-session", "sshd-auth":
		res = sshd(msg)
		mt.Detector = idSSHD
	case "dropbear":
		res = dropbear(msg)
		mt.Detector = idDropbear
	case "pop3", "pop3s", "cyrus/pop3", "cyrus/pop3s", "pop3d", "pop3d-ssl", "courierpop3login", "courier-pop3d":
		res = legacy(cyrus(msg))
		mt.Detector = idCyrusPOP3
		if res.v == vMatch && (string(prog) == "pop3s" || string(prog) == "cyrus/pop3s") {
			mt.Port = tcp(995)
		}
		if res.v == vNone {
			if res = courier(msg); res.v == vMatch {
				mt.Detector, mt.Port = idCourier, tcp(110)
				if bytes.HasSuffix(prog, []byte("-ssl")) {
					mt.Port = tcp(995)
				}
			}
		}
	case "imap", "imaps", "cyrus/imap", "cyrus/imaps", "imapd", "imapd-ssl", "courier-imapd":
		res = legacy(cyrus(msg))
		mt.Detector = idCyrusIMAP
		if res.v == vMatch && (string(prog) == "imaps" || string(prog) == "cyrus/imaps") {
			mt.Port = tcp(993)
		}
		if res.v == vNone {
			if res = courier(msg); res.v == vMatch {
				mt.Detector = idCourier
				if bytes.HasSuffix(prog, []byte("-ssl")) {
					mt.Port = tcp(993)
				}
			}
		}
	case "dovecot":
		svc, rest, isLogin := dovecotService(msg)
		if !isLogin {
			res = dovecotAuth(msg)
			mt.Detector = idDovecotAuth
			break
		}
		return m.dovecotLogin(svc, rest, mt)
	case "sieve", "cyrus/sieve", "timsieved":
		// timsieved/parser.c cmd_authenticate: "badlogin: %s %s %s"
		// (client host, mechanism, error), the host as imapd's
		res = legacy(cyrus(msg))
		mt.Detector = idCyrusSieve
	case "pop3-login", "imap-login", "managesieve-login", "submission-login":
		return m.dovecotLogin(prog[:len(prog)-len("-login")], msg, mt)
	case "exim", "exim4":
		res = exim(msg)
		mt.Detector = idExim
	case "proftpd":
		res = proftpd(msg)
		mt.Detector = idProFTPD
	case "pure-ftpd":
		res = pureFTPd(msg)
		mt.Detector = idPureFTPd
	case "vsftpd":
		res = legacy(vsftpd(msg))
		mt.Detector = idVSFTPD
	case "nginx", "apache", "apache2", "httpd":
		if res = m.http(msg, mt); res.v == vNone {
			res = m.errorLog(msg, mt)
		}
		return res
	default:
		if hasPrefix(prog, "postfix") && bytes.HasSuffix(prog, []byte("/smtpd")) {
			res = legacy(postfixSASL(msg))
			mt.Detector = idPostfixSASL
			if res.v == vNone {
				if more, ok := postfixMore(msg); ok {
					res = more
					if res.form == "relay-denied" {
						mt.Detector = idPostfixRelay
					}
				}
			}
			if res.v == vMatch {
				switch {
				case bytes.Contains(prog, []byte("/submission/")):
					mt.Port = tcp(587)
				case bytes.Contains(prog, []byte("/smtps/")):
					mt.Port = tcp(465)
				}
			}
		}
	}
	if res.v == vMatch {
		mt.Addr = res.addr
	}
	return res
}

func isSSHD(prog []byte) bool {
	switch string(prog) {
	case "sshd", "sshd-session", "sshd-auth":
		return true
	}
	return false
}

// pamServices maps the PAM service of a pam_unix line logged by a
// program other than sshd to the detector of the daemon that uses it
// (sshd's own lines are read by sshd). Services without a remote side
// (su, sudo, login) are not listed.
var pamServices = map[string]int{
	"sshd":      idSSHD,
	"dovecot":   idDovecotAuth,
	"vsftpd":    idVSFTPD,
	"proftpd":   idProFTPD,
	"pure-ftpd": idPureFTPd,
	"imap":      idCyrusIMAP,
	"pop":       idCyrusPOP3,
	"pop3":      idCyrusPOP3,
	"sieve":     idCyrusSieve,
	"smtp":      idPostfixSASL,
	"exim":      idExim,
}

// pam reads a pam_unix failure line of another program than sshd
// (Dovecot's auth process, vsftpd, saslauthd, …): the PAM service in the
// message names the daemon.
func (m *Matcher) pam(msg []byte, mt *Match) result {
	svc, res := pamUnix(msg)
	id, ok := pamServices[string(svc)]
	if !ok {
		return none
	}
	mt.Detector = id
	if res.v == vMatch {
		mt.Addr = res.addr
	}
	return res
}

// legacy turns an (address, ok) answer into a result.
func legacy(a netip.Addr, ok bool) result {
	if !ok {
		return none
	}
	return matched(a, classAuth, "")
}

func (m *Matcher) dovecotLogin(svc, msg []byte, mt *Match) result {
	switch string(svc) {
	case "pop3":
		mt.Detector = idDovecotPOP3
	case "imap":
		mt.Detector = idDovecotIMAP
	case "managesieve":
		mt.Detector = idDovecotSieve
	case "submission":
		mt.Detector = idDovecotSubmission
	default:
		return none
	}
	a, n, ok := dovecot(msg)
	if !ok {
		return none
	}
	mt.Addr, mt.Count = a, n*mt.Count
	return matched(a, classAuth, "login-disconnect")
}

func (m *Matcher) http(line []byte, mt *Match) result {
	a, st, t, ok := combined(line)
	if !ok {
		return none
	}
	form := ""
	switch st {
	case 401:
		mt.Detector, form = idHTTPAuth, "status-401"
	case 404:
		mt.Detector, form = idHTTPScan, "status-404"
	default:
		return none
	}
	mt.Addr = a
	if mt.Time.IsZero() {
		mt.Time = t
	}
	return matched(a, classAuth, form)
}

// noHeader handles lines without a syslog header: the combined log and
// vsftpd's own log ("Tue Nov 21 05:53:09 2026 [pid 1] [user] FAIL LOGIN: …").
func (m *Matcher) noHeader(line []byte, mt *Match) result {
	if len(line) > 30 && line[3] == ' ' && line[7] == ' ' && line[24] == ' ' && hasPrefix(line[25:], "[pid ") {
		rb := bytes.IndexByte(line[25:], ']')
		if rb < 0 || 25+rb+2 > len(line) {
			return none
		}
		a, ok := vsftpd(line[25+rb+2:])
		if !ok {
			return none
		}
		mt.Detector, mt.Addr = idVSFTPD, a
		if t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", string(line[:24]), time.Local); err == nil {
			mt.Time = t
		}
		return matched(a, classAuth, "fail-login")
	}
	if res := m.errorLog(line, mt); res.v != vNone {
		return res
	}
	// Exim's main log: "2026-11-21 05:53:09 [PID] MESSAGE"
	if len(line) > 20 && line[4] == '-' && line[7] == '-' && line[10] == ' ' && line[13] == ':' && line[16] == ':' && line[19] == ' ' {
		msg := line[20:]
		if len(msg) > 0 && msg[0] == '[' {
			if rb := bytes.IndexByte(msg, ']'); rb > 0 && rb < 12 && rb+1 < len(msg) && msg[rb+1] == ' ' {
				msg = msg[rb+2:]
			}
		}
		res := exim(msg)
		if res.v != vNone {
			mt.Detector = idExim
		}
		if res.v == vMatch {
			mt.Addr = res.addr
			if t, err := time.ParseInLocation("2006-01-02 15:04:05", string(line[:19]), time.Local); err == nil {
				mt.Time = t
			}
		}
		return res
	}
	return m.http(line, mt)
}

// errorLog reads the Apache and nginx error log forms of basic
// authentication failures (a line of the file, or the message of a
// syslog line).
func (m *Matcher) errorLog(line []byte, mt *Match) result {
	var res result
	var stamp []byte
	switch {
	case len(line) > 30 && line[0] == '[':
		res = apacheError(line)
		if rb := bytes.IndexByte(line, ']'); rb > 0 {
			stamp = line[1:rb]
		}
	case len(line) > 30 && isNginxStamp(line[:19]) && line[19] == ' ' && line[20] == '[':
		// "2026/11/21 05:53:09 [error] 123#123: *1 MESSAGE"
		rest := line[20:]
		rb := bytes.IndexByte(rest, ']')
		if rb < 0 || !hasPrefix(rest[rb:], "] ") {
			return none
		}
		rest = rest[rb+2:]
		// "PID#TID: " (ngx_log_error_core: "%P#" NGX_TID_T_FMT ": ")
		c := bytes.Index(rest, []byte(": "))
		if c < 0 || c > 24 {
			return none
		}
		pid, tid, ok := bytes.Cut(rest[:c], []byte("#"))
		if _, ok1 := numN(pid); !ok || !ok1 {
			return none
		}
		if _, ok2 := numN(tid); !ok2 {
			return none
		}
		rest = rest[c+2:]
		if len(rest) > 0 && rest[0] == '*' { // connection number
			sp := bytes.IndexByte(rest, ' ')
			if sp < 2 {
				return none
			}
			if _, ok := numN(rest[1:sp]); !ok {
				return none
			}
			rest = rest[sp+1:]
		}
		res = nginxError(rest)
		stamp = line[:19]
	default:
		return none
	}
	if res.v == vNone {
		return none
	}
	mt.Detector = idHTTPAuth
	if res.v == vMatch {
		mt.Addr = res.addr
		if mt.Time.IsZero() {
			for _, layout := range [...]string{"Mon Jan 02 15:04:05.000000 2006", "2006/01/02 15:04:05"} {
				if t, err := time.ParseInLocation(layout, string(stamp), time.Local); err == nil {
					mt.Time = t
					break
				}
			}
		}
	}
	return res
}

// Explanation says what detect made of one line: the fail2ban-regex habit
// (banshee scan --explain).
type Explanation struct {
	Line     string      `json:"line"`
	Time     *time.Time  `json:"time,omitempty"`
	Program  string      `json:"program,omitempty"`
	Matched  bool        `json:"matched"`
	Detector string      `json:"detector,omitempty"`
	Form     string      `json:"form,omitempty"`
	Source   *netip.Addr `json:"source,omitempty"`
	Count    int         `json:"count,omitempty"`  // failures the line stands for
	Weight   int         `json:"weight,omitempty"` // per failure; a detector trips at max_retry × 10
	Reason   string      `json:"reason"`
}

// Explain runs one line through the detectors like Match and says which
// detector and form matched and the source, or why nothing matched. It
// counts skipped lines like Match.
func (m *Matcher) Explain(line []byte) Explanation {
	line = bytes.TrimRight(line, "\r\n")
	var r Record
	m.p.Parse(line, &r)
	ex := Explanation{Line: string(line), Program: string(r.Program)}
	if !r.Time.IsZero() {
		t := r.Time.UTC()
		ex.Time = &t
	}
	mt, res := m.matchRecord(&r)
	name := ""
	if mt.Detector >= 0 && mt.Detector < len(m.dets) {
		name = m.dets[mt.Detector].Name
	}
	ex.Detector, ex.Form = name, res.form
	switch res.v {
	case vMatch:
		a := mt.Addr
		ex.Matched, ex.Source, ex.Count, ex.Weight = true, &a, mt.Count, mt.Weight
		if ex.Time == nil && !mt.Time.IsZero() {
			t := mt.Time.UTC()
			ex.Time = &t
		}
		what := "an authentication failure"
		switch res.class {
		case classProbe:
			what = "a pre-authentication probe"
		case classAux:
			what = "a PAM line that accompanies the daemon's own failure line"
		}
		ex.Reason = fmt.Sprintf("%s, the address at the position the format fixes; counts %d/%d of a failure", what, mt.Weight, FullWeight)
	case vAmbiguous:
		m.skipped.Ambiguous++
		ex.Reason = "a failure form that reads two ways naming different addresses (the remote side wrote one into a field it controls): skipped, a missed line costs less than a wrong ban"
	case vNoAddr:
		m.skipped.NoAddress++
		ex.Reason = "a failure form without an address to block (a host name, or none in this line)"
	case vIgnored:
		ex.Reason = "a pre-authentication probe, not counted (watch.ignore_probes)"
	default:
		switch {
		case r.Program == nil:
			ex.Reason = "no syslog header (BSD, RFC 3339 or RFC 5424), and not a combined-log or vsftpd log line"
		case hasPrefix(r.Program, "untrusted-"):
			ex.Reason = "the journal did not vouch for the program name (sender not root and not a system service): no detector reads it"
		case name != "":
			ex.Reason = fmt.Sprintf("program %s is read by the %s detector, but no failure form of it matches", r.Program, name)
		default:
			ex.Reason = fmt.Sprintf("no built-in detector reads program %s and no configured pattern matched", r.Program)
		}
	}
	return ex
}

// isNginxStamp reports whether b is "2006/01/02 15:04:05".
func isNginxStamp(b []byte) bool {
	for i, c := range b {
		switch i {
		case 4, 7:
			if c != '/' {
				return false
			}
		case 10:
			if c != ' ' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return len(b) == 19
}
