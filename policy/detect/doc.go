// Package detect turns log lines into attack evidence: it splits a line into
// its syslog (or RFC 3339, or combined-log) header and message, runs the
// built-in detectors (sshd, Cyrus and Dovecot pop3/imap, Postfix SASL,
// vsftpd, nginx/Apache combined logs) and the detectors the user configured,
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
// side cannot write to:
//
//   - sshd "Failed …", "Invalid user …", "maximum authentication
//     attempts …": the user name comes before the address, so the message is
//     parsed from its end: the last " from " followed by exactly
//     "ADDR port N ssh2" (plus ": KEYTYPE FINGERPRINT" for publickey, both
//     written by the server) or "ADDR port N".
//   - sshd "Disconnected from / Connection closed by / Connection reset by
//     [authenticating|invalid user X] ADDR port N [preauth]": the last three
//     tokens before " [preauth]".
//   - sshd "Did not receive identification string from ADDR [port N]":
//     the whole message is fixed text; "Unable to negotiate with ADDR port
//     N: …": parsed from the start, because the client's offer follows.
//   - Cyrus "badlogin: HOST [ADDR] MECH USER …" and Postfix "warning:
//     HOST[ADDR]: SASL …": parsed from the start; HOST must consist only of
//     host name characters (the daemons resolve it through the resolver,
//     which rejects anything else), otherwise the line is ignored.
//   - Dovecot "…-login: … (auth failed, N attempts …): user=<X>, …,
//     rip=ADDR, lip=…": "auth failed" must appear before "user=<", and the
//     address is the last ", rip=" field (everything after the user name
//     is written by the server).
//   - vsftpd "[USER] FAIL LOGIN: Client "ADDR"": the message must end with
//     that text; the address is the last quoted string.
//   - combined log: the address is the first field; the status is read
//     after the request string, honouring the escapes Apache (\") and nginx
//     (\x22) write for quotes inside it.
//
// A line that does not fit its format exactly yields nothing: detect fails
// closed (no ban), never open. Addresses are canonical (IPv4-mapped IPv6
// becomes IPv4); addresses with zones are rejected.
//
// Out of scope: a local user who can write arbitrary lines into the log
// (logger -t sshd, a world-writable log file) can forge any line; protect
// the log files and, for the journal, prefer trusted fields. User-defined
// detectors are the user's responsibility: their pattern must put the
// "addr" group at a position the format fixes; anchor it.
package detect
