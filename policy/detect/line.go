package detect

import (
	"bytes"
	"time"
)

// Record is one log line split into its parts. The byte slices alias the
// line they were parsed from and are only valid as long as it is.
type Record struct {
	Time    time.Time // zero when the line has no timestamp detect understands
	Host    []byte    // syslog host; nil without a syslog header
	Program []byte    // syslog tag without the pid: "sshd", "postfix/smtpd"
	Tagged  []byte    // "prog[pid]: message": what user detectors see
	Msg     []byte    // the message after "prog[pid]: "; the whole line without a header
	Line    []byte    // the whole line
}

// Parser splits lines into records. It caches the last timestamp it parsed,
// so it is not safe for concurrent use.
type Parser struct {
	now func() time.Time
	loc *time.Location

	bsdKey  [15]byte
	bsdOK   bool
	bsdTime time.Time
}

// NewParser returns a parser. now gives the reference time for syslog
// timestamps, which carry no year: the year is now's, or the one before
// when that would put the line more than a day in the future. loc is the
// time zone of syslog timestamps (time.Local when nil).
func NewParser(now func() time.Time, loc *time.Location) *Parser {
	if now == nil {
		now = time.Now
	}
	if loc == nil {
		loc = time.Local
	}
	return &Parser{now: now, loc: loc}
}

// Parse splits line into a record. Lines without a recognised header are
// returned whole in Msg (and Tagged) with a zero Time; the combined log and
// vsftpd's own log format have their timestamps read by their detectors.
func (p *Parser) Parse(line []byte, r *Record) {
	*r = Record{Line: line, Msg: line, Tagged: line}
	// "<PRI>" of a line received over the network or read raw
	if len(line) > 3 && line[0] == '<' {
		if gt := bytes.IndexByte(line[:min(len(line), 5)], '>'); gt > 1 {
			if _, ok := atoi(line[1:gt]); ok {
				line = line[gt+1:]
				if len(line) > 2 && line[0] == '1' && line[1] == ' ' {
					p.parse5424(line[2:], r)
					return
				}
			}
		}
	}
	var rest []byte
	switch {
	case isBSDStamp(line):
		t, ok := p.bsdTimeOf(line[:15])
		if !ok {
			return
		}
		r.Time = t
		rest = line[16:]
	case len(line) > 20 && line[4] == '-' && line[7] == '-' && line[10] == 'T':
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return
		}
		t, ok := parseRFC3339(line[:sp])
		if !ok {
			return
		}
		r.Time = t
		rest = line[sp+1:]
	default:
		return
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return
	}
	host, tagged := rest[:sp], rest[sp+1:]
	var prog, msg []byte
	ok := host[len(host)-1] != ':' && host[len(host)-1] != ']'
	if ok {
		prog, msg, ok = splitTag(tagged)
	}
	if !ok {
		// "Nov 21 05:53:09 pop3-login: ..." (Dovecot's own log file has no host)
		prog, msg, ok = splitTag(rest)
		if !ok {
			return
		}
		host, tagged = nil, rest
	}
	r.Host, r.Program, r.Tagged, r.Msg = host, prog, tagged, msg
}

// parse5424 parses the rest of an RFC 5424 line after "<PRI>1 ":
// TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG.
func (p *Parser) parse5424(b []byte, r *Record) {
	var f [5][]byte
	for i := range f {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return
		}
		f[i], b = b[:sp], b[sp+1:]
	}
	t, ok := parseRFC3339(f[0])
	if !ok || string(f[2]) == "-" {
		return
	}
	// STRUCTURED-DATA: "-" or [id k="v" …]…, values escaping \", \] and \\
	switch {
	case hasPrefix(b, "- "):
		b = b[2:]
	case string(b) == "-":
		b = nil
	case len(b) > 0 && b[0] == '[':
		end, inQuote := -1, false
		for i := 0; i < len(b) && end < 0; i++ {
			switch c := b[i]; {
			case c == '\\' && inQuote:
				i++
			case c == '"':
				inQuote = !inQuote
			case c == ']' && !inQuote && (i+1 == len(b) || b[i+1] != '['):
				end = i
			}
		}
		switch {
		case end < 0:
			return
		case end+1 == len(b):
			b = nil
		case b[end+1] == ' ':
			b = b[end+2:]
		default:
			return
		}
	default:
		return
	}
	b = trimPrefix(b, "\xef\xbb\xbf") // BOM
	r.Time, r.Host, r.Program, r.Msg, r.Tagged = t, f[1], f[2], b, b
}

// splitTag splits "prog[pid]: msg" or "prog: msg".
func splitTag(b []byte) (prog, msg []byte, ok bool) {
	for i := 0; i < len(b) && i < 64; i++ {
		switch b[i] {
		case '[':
			if i == 0 {
				return nil, nil, false
			}
			j := bytes.IndexByte(b[i:], ']')
			if j < 0 {
				return nil, nil, false
			}
			k := i + j + 1 // just after ']'
			if k+1 >= len(b) || b[k] != ':' || b[k+1] != ' ' {
				return nil, nil, false
			}
			return b[:i], b[k+2:], true
		case ':':
			if i == 0 || i+1 >= len(b) || b[i+1] != ' ' {
				return nil, nil, false
			}
			return b[:i], b[i+2:], true
		case ' ':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

func isBSDStamp(b []byte) bool {
	return len(b) > 16 && b[3] == ' ' && b[6] == ' ' && b[9] == ':' && b[12] == ':' && b[15] == ' '
}

func (p *Parser) bsdTimeOf(b []byte) (time.Time, bool) {
	if p.bsdOK && bytes.Equal(p.bsdKey[:], b) {
		return p.bsdTime, true
	}
	mon := month(b[0:3])
	if mon == 0 {
		return time.Time{}, false
	}
	day, ok := num2(b[4:6], true)
	if !ok || day < 1 || day > 31 {
		return time.Time{}, false
	}
	hh, ok1 := num2(b[7:9], false)
	mm, ok2 := num2(b[10:12], false)
	ss, ok3 := num2(b[13:15], false)
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	now := p.now()
	t := time.Date(now.Year(), mon, day, hh, mm, ss, 0, p.loc)
	if t.Sub(now) > 24*time.Hour {
		t = time.Date(now.Year()-1, mon, day, hh, mm, ss, 0, p.loc)
	}
	copy(p.bsdKey[:], b)
	p.bsdOK, p.bsdTime = true, t
	return t, true
}

func month(b []byte) time.Month {
	switch string(b) {
	case "Jan":
		return time.January
	case "Feb":
		return time.February
	case "Mar":
		return time.March
	case "Apr":
		return time.April
	case "May":
		return time.May
	case "Jun":
		return time.June
	case "Jul":
		return time.July
	case "Aug":
		return time.August
	case "Sep":
		return time.September
	case "Oct":
		return time.October
	case "Nov":
		return time.November
	case "Dec":
		return time.December
	}
	return 0
}

// num2 parses two digits; padded allows a leading space (" 1").
func num2(b []byte, padded bool) (int, bool) {
	hi := b[0]
	if padded && hi == ' ' {
		hi = '0'
	}
	if hi < '0' || hi > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(hi-'0')*10 + int(b[1]-'0'), true
}

func numN(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// parseRFC3339 parses YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM) without
// allocating.
func parseRFC3339(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	y, ok0 := numN(b[0:4])
	mo, ok1 := num2(b[5:7], false)
	d, ok2 := num2(b[8:10], false)
	hh, ok3 := num2(b[11:13], false)
	mm, ok4 := num2(b[14:16], false)
	ss, ok5 := num2(b[17:19], false)
	if !ok0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		scale := 100000000
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			nsec += int(rest[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	off := 0
	switch {
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':',
		len(rest) == 5 && (rest[0] == '+' || rest[0] == '-'): // journalctl -o short-iso: +0000
		oh, ok1 := num2(rest[1:3], false)
		om, ok2 := num2(rest[len(rest)-2:], false)
		if !ok1 || !ok2 {
			return time.Time{}, false
		}
		off = oh*3600 + om*60
		if rest[0] == '-' {
			off = -off
		}
	default:
		return time.Time{}, false
	}
	sec := daysFromCivil(y, mo, d)*86400 + int64(hh*3600+mm*60+ss) - int64(off)
	return time.Unix(sec, int64(nsec)), true
}

// parseCLFTime parses the combined log's 21/Nov/2026:05:53:09 +0000.
func parseCLFTime(b []byte) (time.Time, bool) {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' || b[17] != ':' || b[20] != ' ' {
		return time.Time{}, false
	}
	d, ok1 := num2(b[0:2], false)
	mon := month(b[3:6])
	y, ok2 := numN(b[7:11])
	hh, ok3 := num2(b[12:14], false)
	mm, ok4 := num2(b[15:17], false)
	ss, ok5 := num2(b[18:20], false)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || mon == 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	if b[21] != '+' && b[21] != '-' {
		return time.Time{}, false
	}
	oh, ok1 := num2(b[22:24], false)
	om, ok2 := num2(b[24:26], false)
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	off := oh*3600 + om*60
	if b[21] == '-' {
		off = -off
	}
	sec := daysFromCivil(y, int(mon), d)*86400 + int64(hh*3600+mm*60+ss) - int64(off)
	return time.Unix(sec, 0), true
}

// daysFromCivil returns days since 1970-01-01 of a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
