// Package detect turns log lines into attack evidence: it splits a line into
// its syslog (BSD, RFC 3339, RFC 5424, or combined-log) header and message,
// runs the built-in detectors (OpenSSH, Dropbear, Cyrus (imap, pop3,
// sieve), Dovecot (pop3, imap, managesieve, submission), Courier,
// Postfix, Exim, vsftpd, ProFTPD, Pure-FTPd, nginx/Apache access and
// error logs) and the detectors the user configured,
// and keeps a memory-bounded sliding window per source and detector
// (max_retry failures within find_time) that says when a source has crossed
// its threshold.
//
// detect does no I/O and enforces nothing: it never reads files, runs
// commands or touches a firewall. Reading logs lives in cmd/internal/logsource,
// deciding in package policy, enforcing in hostfw and awsnacl.
//
// # Threat model: log injection
//
// The remote side controls parts of every line a detector reads: user
// names (sshd, Cyrus, Dovecot, vsftpd), client version strings and key
// exchange offers (sshd), request lines, referers and user agents (HTTP),
// and — through its own reverse DNS — host names (Cyrus, Postfix). An
// attacker who can make a server log "Failed password for invalid user
// x from 10.0.0.1 port 22 ssh2" as a user name must not get 10.0.0.1
// banned, because that turns the ban machinery into a denial of service
// against an address of the attacker's choosing.
//
// So every built-in detector takes the address only from the one position
// the daemon's format fixes, and parses towards it from the side the remote
// side cannot write to. Where the remote side writes on both sides of the
// address (a user name before it, auth info, a request or a HELO name
// after it), every reading the format allows is tried; when two readings
// name different addresses the line is skipped and counted
// (Matcher.TakeSkipped), because a missed line costs less than a wrong ban:
//
//   - sshd "Failed METHOD for [invalid user ]USER from ADDR port N[ ssh2][:
//     INFO]", "maximum authentication attempts exceeded for …": every
//     " from " is tried; a valid account (no "invalid user ") has no space
//     in its name, so that reading wins a tie.
//   - sshd "Invalid user USER from ADDR[ port N]", "Bad protocol version
//     identification 'TEXT' from ADDR port N", "error: PAM: … for USER
//     from HOST[ via ADDR]": the address ends the message.
//   - sshd "Disconnected from / Connection closed by / Connection reset by
//     / Disconnecting / Received disconnect from [authenticating|invalid
//     user X] ADDR port N…": every " port N" preceded by an address.
//   - sshd forms logged before any user name ("Did not receive
//     identification string", "Unable to negotiate", "banner exchange",
//     "Timeout before authentication", "ROOT LOGIN REFUSED FROM"): the
//     address starts the text after the fixed prefix. "User U from HOST not
//     allowed because …": U is an account; HOST must be an address.
//   - pam_unix "pam_unix(SERVICE:auth): authentication failure; logname=
//     uid= euid= tty= ruser=USER rhost=HOST[  user=USER]", of sshd and of
//     any program whose PAM service names a daemon detect knows
//     (dovecot, vsftpd, proftpd, pure-ftpd, imap, pop, sieve, smtp, exim):
//     with an empty ruser (sshd) every field before rhost= is the
//     system's; a ruser (the name the client sent) makes every " rhost="
//     a reading.
//   - Dropbear: "… from ADDR:PORT" ends the message; "Exit before auth
//     from <ADDR:PORT>: …" starts it.
//   - Cyrus imapd, pop3d and timsieved "badlogin: HOST [ADDR] …", Postfix "HOST[ADDR]: SASL …",
//     "reject: RCPT from HOST[ADDR]: 554 … Relay access denied", "lost
//     connection after AUTH from HOST[ADDR]", ProFTPD "SERVER
//     (HOST[ADDR]) - …": parsed from the start; HOST must consist only of
//     host name characters (resolvers reject anything else).
//   - Dovecot "…-login: … (auth failed, N attempts …): user=<X>, …,
//     rip=ADDR, …": "auth failed" before "user=<", the last ", rip=".
//     Its auth process "PASSDB(USER,RIP[,<SESSION>]): …": the field before
//     the server's session id, read from the right.
//   - Courier "LOGIN FAILED, user=X, ip=[ADDR]", vsftpd "[USER] FAIL LOGIN:
//     Client "ADDR"": the message must end with the address field.
//   - Pure-FTPd "(?@ADDR) [WARNING] Authentication failed for user [X]":
//     the address precedes the user.
//   - Exim "AUTH authenticator failed for [NAME ][(HELO) ][ADDR]:PORT:
//     535 …[ (set_id=USER)]": every "[ADDR]:PORT: 535 ".
//   - Apache error log "[DATE] [MODULE:LEVEL] [pid N] [client ADDR:PORT]
//     AH01617|AH01618|AH01614: …": all server text up to the address.
//     nginx error log "user "X": password mismatch, client: ADDR, server:
//     …, request: "…"": every ", client: " after a user form; "no
//     user/password was provided …, client: ADDR": the first.
//   - combined log: the address is the first field; the status is read
//     after the request string, honouring the escapes Apache (\") and nginx
//     (\x22) write for quotes inside it.
//
// Weights: an authentication failure counts FullWeight (10), a
// pre-authentication probe DefaultProbeWeight (5, watch.probe_weight;
// watch.ignore_probes drops them), a PAM line that accompanies the
// daemon's own failure line 5. A detector trips at max_retry × 10 within
// find_time, or long_max_retry failures within long_find_time (default 10
// in 24h: slow attackers). IPv6 sources are grouped by /64 by default
// (watch.group_v6; group_v4 for IPv4): a group with one address trips as
// that address, one with several as the network.
//
// Defaults next to fail2ban's and sshguard's: banshee max_retry 5 within
// 10m (fail2ban maxretry 5, findtime 10m; sshguard threshold 30 with
// attacks scoring 10, i.e. 3 attacks, within detection_time 30m), probes
// counted at half weight (sshguard scores them like attacks, 10, except
// "Connection closed … [preauth]" at 2; fail2ban counts them only in its
// aggressive mode), long window 10 within 24h (fail2ban's recidive jail
// bans 5 bans within 1d; CrowdSec's ssh-slow-bf).
//
// Checked against fail2ban's filter.d (sshd, dovecot, postfix, …) and
// sshguard's attack_scanner.l. Left out on purpose: forms without an
// address (kex_exchange_identification, "Disconnecting: Too many
// authentication failures" of old sshd, pam_unix "check pass; user
// unknown"); Dovecot "tried to use disabled plaintext auth" (no
// credentials were checked); Postfix's RBL, HELO and sender rejections
// (spam, not a login attack); "Received disconnect" with codes other than
// 14 and JSch's "Auth fail" (a client that leaves, often after success);
// and daemons banshee has no detector for (Sendmail, OpenSMTPD, UW imapd,
// FreeBSD ftpd, cockpit, Gitea, OpenVPN, WordPress logins): a
// watch.detectors entry reads them.
//
// A line that does not fit its format exactly yields nothing: detect fails
// closed (no ban), never open. Addresses are canonical (IPv4-mapped IPv6
// becomes IPv4; a zone is dropped).
//
// Out of scope: a local user who can write arbitrary lines into the log
// (logger -t sshd, a world-writable log file) can forge any line; protect
// the log files and, for the journal, prefer trusted fields. User-defined
// detectors must be anchored at both ends (New refuses a pattern that is
// not), which keeps text before and after the form from moving the "addr"
// group; where inside the form the group sits is the user's
// responsibility: at a position the format fixes.
package detect
