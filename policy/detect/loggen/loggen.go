package loggen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Options shapes a generated log.
type Options struct {
	Lines        int       // lines to write
	Sources      int       // distinct attacking addresses (about half IPv6)
	FailureShare float64   // share of failure lines, 0..1
	Start        time.Time // timestamp of the first line
	Span         time.Duration
	Seed         uint64
}

// Source returns the i-th attacking address: even i IPv4 in 100.64.0.0/10,
// odd i IPv6 in 2001:db8::/32.
func Source(i int) netip.Addr {
	if i%2 == 0 {
		n := uint32(i/2) + 1
		return netip.AddrFrom4([4]byte{100, 64 | byte(n>>16)&0x3f, byte(n >> 8), byte(n)})
	}
	n := uint32(i/2) + 1
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(n >> 24), byte(n >> 16), 0, 0, 0, 0, 0, 0, byte(n >> 8), byte(n)})
}

var benign = []string{
	"%s web1 CRON[%d]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
	"%s web1 systemd[1]: Started session-%d.scope - Session of User alice.",
	"%s web1 sshd[%d]: Accepted publickey for alice from 10.0.0.5 port 51234 ssh2: ED25519 SHA256:Zm9vYmFyYmF6cXV4cXV1eHh5enp5",
	"%s web1 sshd[%d]: pam_unix(sshd:session): session opened for user alice(uid=1000) by alice(uid=0)",
	"%s web1 postfix/smtpd[%d]: connect from mail.example.org[192.0.2.25]",
	"%s web1 postfix/qmgr[%d]: 4BX7Yq0abc: from=<list@example.org>, size=4120, nrcpt=1 (queue active)",
	"%s web1 kernel: [%d.123456] TCP: request_sock_TCP: Possible SYN flooding on port 443.",
	"%s web1 dovecot: imap-login: Login: user=<bob>, method=PLAIN, rip=10.0.0.7, lip=10.0.0.2, mpid=%d, TLS",
	"%s web1 pop3[%d]: login: client.example.org [10.0.0.9] carol plaintext User logged in",
}

// failure formats take (stamp, pid, addr); the http ones only addr.
var failures = []string{
	"%s web1 sshd[%d]: Failed password for invalid user admin from %s port 52144 ssh2",
	"%s web1 sshd[%d]: Failed password for root from %s port 40022 ssh2",
	"%s web1 sshd[%d]: Invalid user oracle from %s port 33210",
	"%s web1 sshd[%d]: Connection closed by authenticating user root %s port 58812 [preauth]",
	"%s web1 sshd[%d]: Disconnected from invalid user test %s port 41000 [preauth]",
	"%s web1 pop3[%d]: badlogin: fc.df.84ae.static.example.com [%s] plaintext branden SASL(-13): authentication failure: checkpass failed",
	"%s web1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<info>, method=PLAIN, rip=%[3]s, lip=10.0.0.2, session=<%[2]d>",
	"%s web1 postfix/smtpd[%d]: warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
	"%s web1 vsftpd[%d]: [anonymous] FAIL LOGIN: Client \"%s\"",
}

// Write writes o.Lines lines to w and returns how many were failures.
func Write(w io.Writer, o Options) (int, error) {
	if o.Sources <= 0 {
		o.Sources = 1
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, time.November, 21, 0, 0, 0, 0, time.UTC)
	}
	if o.Span <= 0 {
		o.Span = 24 * time.Hour
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	bw := bufio.NewWriterSize(w, 1<<16)
	addrs := make([]string, o.Sources)
	for i := range addrs {
		addrs[i] = Source(i).String()
	}
	step := o.Span / time.Duration(max(o.Lines, 1))
	stamp, stampAt := "", time.Time{}
	nfail := 0
	for i := range o.Lines {
		at := o.Start.Add(time.Duration(i) * step)
		if stamp == "" || at.Sub(stampAt) >= time.Second {
			stampAt = at.Truncate(time.Second)
			stamp = stampAt.Format(time.Stamp)
		}
		pid := 1000 + rng.IntN(30000)
		var err error
		if rng.Float64() < o.FailureShare {
			nfail++
			addr := addrs[rng.IntN(len(addrs))]
			switch k := rng.IntN(len(failures) + 2); {
			case k < len(failures):
				_, err = fmt.Fprintf(bw, failures[k]+"\n", stamp, pid, addr)
			case k == len(failures):
				_, err = fmt.Fprintf(bw, "%s - admin [%s] \"GET /admin/ HTTP/1.1\" 401 188 \"-\" \"curl/8.5.0\"\n", addr, at.Format("02/Jan/2006:15:04:05 -0700"))
			default:
				_, err = fmt.Fprintf(bw, "%s - - [%s] \"GET /wp-login.php HTTP/1.1\" 404 153 \"-\" \"Mozilla/5.0\"\n", addr, at.Format("02/Jan/2006:15:04:05 -0700"))
			}
		} else {
			_, err = fmt.Fprintf(bw, benign[rng.IntN(len(benign))]+"\n", stamp, pid)
		}
		if err != nil {
			return nfail, fmt.Errorf("writing the generated log: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nfail, fmt.Errorf("writing the generated log: %w", err)
	}
	return nfail, nil
}
