package hostfw

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// store keeps the host blocks on disk so they survive a reboot: a snapshot
// ("blocks", written atomically by Save and Restore) plus a journal of every
// block and unblock since ("journal", appended and fsynced by each change).
// Each line is one record:
//
//   - EXPIRES PREFIX ORIGIN REASON    a block; EXPIRES is Unix seconds, 0 = permanent
//   - PREFIX                          an unblock
//
// ORIGIN and REASON are Go-quoted strings. A nil *store keeps nothing.
type store struct {
	dir string
}

const (
	snapshotFile = "blocks"
	journalFile  = "journal"
	lockFile     = "lock"
)

func (s *store) path(name string) string { return filepath.Join(s.dir, "hostfw", name) }

func (s *store) mkdir() error {
	if err := os.MkdirAll(filepath.Join(s.dir, "hostfw"), 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	return nil
}

// lockState locks the state directory for a change that needs it.
func (f *Firewall) lockState() (func(), error) {
	if f.state == nil {
		return nil, ErrNoStateDir
	}
	return f.state.lock()
}

// lock takes an exclusive lock on the state directory, so two banshee
// processes never interleave their changes.
func (s *store) lock() (func(), error) {
	if s == nil {
		return func() {}, nil
	}
	if err := s.mkdir(); err != nil {
		return nil, err
	}
	fd, err := unix.Open(s.path(lockFile), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file %s: %w", s.path(lockFile), err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("locking %s: %w", s.path(lockFile), err)
	}
	return func() { unix.Close(fd) }, nil
}

func appendRecord(b []byte, e Entry, now time.Time) []byte {
	exp := int64(0)
	if e.TTL > 0 {
		exp = now.Add(e.TTL).Unix()
	} else if !e.ExpiresAt.IsZero() {
		exp = e.ExpiresAt.Unix()
	}
	b = append(b, "+ "...)
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, ' ')
	b = appendPrefixFull(b, e.Prefix)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, e.Origin)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, e.Reason)
	return append(b, '\n')
}

func appendPrefixFull(b []byte, p netip.Prefix) []byte {
	return p.AppendTo(b)
}

func (s *store) journalBlocks(now time.Time, entries []Entry) error {
	_, err := s.journalBlocksUndo(now, entries)
	return err
}

// journalBlocksUndo journals blocks and returns a function that takes them
// back out (truncating the journal to where it was), for a caller that
// journals while the kernel change is still running and must undo the
// record if that change fails.
func (s *store) journalBlocksUndo(now time.Time, entries []Entry) (undo func() error, err error) {
	if s == nil {
		return func() error { return nil }, nil
	}
	buf := make([]byte, 0, len(entries)*80)
	for _, e := range entries {
		buf = appendRecord(buf, e, now)
	}
	var before int64
	if fi, err := os.Stat(s.path(journalFile)); err == nil {
		before = fi.Size()
	}
	if err := s.appendJournal(buf); err != nil {
		return nil, err
	}
	return func() error {
		if err := os.Truncate(s.path(journalFile), before); err != nil {
			return fmt.Errorf("taking back journal records: %w", err)
		}
		return nil
	}, nil
}

func (s *store) journalUnblocks(prefixes []netip.Prefix) error {
	if s == nil || len(prefixes) == 0 {
		return nil
	}
	var buf []byte
	for _, p := range prefixes {
		buf = append(buf, "- "...)
		buf = appendPrefixFull(buf, p)
		buf = append(buf, '\n')
	}
	return s.appendJournal(buf)
}

func (s *store) appendJournal(buf []byte) error {
	f, err := os.OpenFile(s.path(journalFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening journal: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("writing journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing journal: %w", err)
	}
	return f.Close()
}

// load reads snapshot then journal and returns the blocks that are still
// wanted, in the order they were first made.
func (s *store) load() ([]Entry, error) {
	var order []netip.Prefix
	m := map[netip.Prefix]Entry{}
	for _, name := range []string{snapshotFile, journalFile} {
		data, err := os.ReadFile(s.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", s.path(name), err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
		n := 0
		for sc.Scan() {
			n++
			line := sc.Text()
			if line == "" {
				continue
			}
			e, del, err := parseRecord(line)
			if err != nil {
				// A torn last line (crash mid-append) is skipped; anything
				// else is corruption worth stopping for.
				if name == journalFile && !sc.Scan() {
					break
				}
				return nil, fmt.Errorf("%s line %d: %w", s.path(name), n, err)
			}
			if del {
				delete(m, e.Prefix)
				continue
			}
			if _, ok := m[e.Prefix]; !ok {
				order = append(order, e.Prefix)
			}
			m[e.Prefix] = e
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", s.path(name), err)
		}
	}
	out := make([]Entry, 0, len(m))
	for _, p := range order {
		if e, ok := m[p]; ok {
			out = append(out, e)
			delete(m, p)
		}
	}
	return out, nil
}

func parseRecord(line string) (e Entry, del bool, err error) {
	if p, ok := strings.CutPrefix(line, "- "); ok {
		e.Prefix, err = netip.ParsePrefix(p)
		return e, true, err
	}
	rest, ok := strings.CutPrefix(line, "+ ")
	if !ok {
		return e, false, fmt.Errorf("unknown record %q", line)
	}
	expS, rest, _ := strings.Cut(rest, " ")
	pS, rest, _ := strings.Cut(rest, " ")
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil {
		return e, false, fmt.Errorf("bad expiry in %q", line)
	}
	if e.Prefix, err = netip.ParsePrefix(pS); err != nil {
		return e, false, fmt.Errorf("bad prefix in %q", line)
	}
	if exp > 0 {
		e.ExpiresAt = time.Unix(exp, 0)
	}
	origin, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return e, false, fmt.Errorf("bad origin in %q", line)
	}
	e.Origin, _ = strconv.Unquote(origin)
	reason := strings.TrimPrefix(rest[len(origin):], " ")
	if e.Reason, err = strconv.Unquote(reason); err != nil {
		return e, false, fmt.Errorf("bad reason in %q", line)
	}
	return e, false, nil
}

// writeSnapshot replaces the snapshot atomically (temp file, fsync, rename,
// fsync of the directory) and empties the journal it now includes.
func (s *store) writeSnapshot(entries []Entry, now time.Time) error {
	if err := s.mkdir(); err != nil {
		return err
	}
	buf := make([]byte, 0, len(entries)*80)
	for _, e := range entries {
		e.TTL = 0 // ExpiresAt is absolute here
		buf = appendRecord(buf, e, now)
	}
	if err := writeFileAtomic(s.path(snapshotFile), buf); err != nil {
		return err
	}
	if err := os.Truncate(s.path(journalFile), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("emptying journal: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path so that a crash leaves either the old
// or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
