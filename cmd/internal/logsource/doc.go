// Package logsource reads log lines for banshee's detectors: whole files and
// standard input (ReadLines), files followed as they grow through inotify
// with rotation by rename and by copytruncate (Follow), and the systemd
// journal through `journalctl -f -o json` (Journal, ReadJournal).
//
// logsource only reads: it never writes, truncates or rotates a log, and it
// never interprets a line — that is package detect's job. A line is
// handed to the caller without its newline and is only valid during the
// call.
package logsource
