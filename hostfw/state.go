package hostfw

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// store keeps the host blocks on disk so they survive a reboot: a snapshot
// ("blocks", written atomically by Save and Restore) plus a journal of every
// block and unblock since ("journal", appended and fsynced by each change).
// Each line is one record:
//
//   - EXPIRES PREFIX ORIGIN REASON ~SUM   a block; EXPIRES is Unix seconds, 0 = permanent
//   - PREFIX ~SUM                         an unblock
//
// ORIGIN and REASON are Go-quoted strings; SUM is the CRC-32C of the record
// before " ~". A record is written whole or not at all (see appendJournal).
// A nil *store keeps nothing.
type store struct {
	dir  string
	open func(path string) (appendFile, error) // the journal for appending; nil: openAppend
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

// recordSum is the checksum that ends every record: " ~" and the CRC-32C of
// the record before it, in 8 hex digits. A record whose sum does not match
// was damaged on disk; records written before sums existed have none.
var recordSum = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// sealRecord ends the record that starts at b[start:] with its checksum and
// a newline.
func sealRecord(b []byte, start int) []byte {
	sum := crc32.Checksum(b[start:], recordSum())
	b = append(b, " ~"...)
	b = append(b, fmt.Sprintf("%08x", sum)...)
	return append(b, '\n')
}

func appendRecord(b []byte, e Entry, now time.Time) []byte {
	exp := int64(0)
	if e.TTL > 0 {
		exp = now.Add(e.TTL).Unix()
	} else if !e.ExpiresAt.IsZero() {
		exp = e.ExpiresAt.Unix()
	}
	start := len(b)
	b = append(b, "+ "...)
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, ' ')
	b = appendPrefixFull(b, e.Prefix)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, e.Origin)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, e.Reason)
	return sealRecord(b, start)
}

func appendUnblockRecord(b []byte, p netip.Prefix) []byte {
	start := len(b)
	b = append(b, "- "...)
	b = appendPrefixFull(b, p)
	return sealRecord(b, start)
}

func appendPrefixFull(b []byte, p netip.Prefix) []byte {
	return p.AppendTo(b)
}

func (s *store) journalBlocks(now time.Time, entries []Entry) error {
	_, err := s.journalBlocksUndo(now, entries)
	return err
}

// journalBlocksUndo journals blocks and returns a function that takes them
// back out (truncating the journal to where they start), for a caller that
// journals while the kernel change is still running and must undo the
// record if that change fails.
func (s *store) journalBlocksUndo(now time.Time, entries []Entry) (undo func() error, err error) {
	if s == nil {
		return func() error { return nil }, nil
	}
	buf := make([]byte, 0, len(entries)*90)
	for _, e := range entries {
		buf = appendRecord(buf, e, now)
	}
	at, err := s.appendJournal(buf)
	if err != nil {
		return nil, err
	}
	return func() error {
		if err := truncateNoFollow(s.path(journalFile), at); err != nil {
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
		buf = appendUnblockRecord(buf, p)
	}
	_, err := s.appendJournal(buf)
	return err
}

// journalFile is the part of *os.File that appending to the journal uses;
// tests give one that fails the way a full disk does.
type appendFile interface {
	io.ReaderAt
	io.Writer
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// openAppend opens the journal for appending, never through a symbolic link.
func openAppend(path string) (appendFile, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
}

// appendJournal appends whole records and returns the offset where they
// start. Every record is written whole or not at all: a torn record left by
// a process that died mid-write is cut off first (it was never
// acknowledged), and a failed write or sync (a full disk) is truncated back.
func (s *store) appendJournal(buf []byte) (int64, error) {
	open := s.open
	if open == nil {
		open = openAppend
	}
	f, err := open(s.path(journalFile))
	if err != nil {
		return 0, fmt.Errorf("opening journal: %w", err)
	}
	defer f.Close()
	at, err := cutTornTail(f)
	if err != nil {
		return 0, fmt.Errorf("repairing the journal's last record: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if terr := f.Truncate(at); terr != nil {
			return 0, fmt.Errorf("writing journal: %w; and taking the partial record back: %w", err, terr)
		}
		return 0, fmt.Errorf("writing journal (nothing recorded): %w", err)
	}
	return at, nil
}

// cutTornTail truncates a file that does not end in a newline back to its
// last newline and returns the new size.
func cutTornTail(f appendFile) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if size == 0 {
		return 0, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return size, nil
	}
	buf := make([]byte, 4096)
	end := size - 1
	for end > 0 {
		from := max(end-int64(len(buf)), 0)
		chunk := buf[:end-from]
		if _, err := f.ReadAt(chunk, from); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			end = from + int64(i) + 1
			break
		}
		end = from
	}
	if err := f.Truncate(end); err != nil {
		return 0, err
	}
	return end, nil
}

// truncateNoFollow truncates path to size, never through a symbolic link.
func truncateNoFollow(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// Damage is a record in the state directory that could not be read.
type Damage struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Problem string `json:"problem"`
	torn    bool   // a torn last record: expected after a crash, not worth keeping
}

func (d Damage) String() string { return fmt.Sprintf("%s line %d: %s", d.File, d.Line, d.Problem) }

// loaded is what load read from the state directory.
type loaded struct {
	entries []Entry  // the blocks still wanted, in the order first made
	records int      // records read intact
	damaged []Damage // records skipped
	torn    bool     // the journal ends in a torn record (a crash mid-write)
}

// checkSafe refuses a state directory that others could write (they would
// choose what restore blocks) and a journal or snapshot that is not a plain
// file (a symbolic link would make restore read, and Save write, elsewhere).
func (s *store) checkSafe() error {
	for _, d := range []string{s.dir, filepath.Join(s.dir, "hostfw")} {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("checking state directory %s: %w", d, err)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("state directory %s is group- or world-writable (mode %04o): refusing to use it; run chmod go-w %s", d, fi.Mode().Perm(), d)
		}
	}
	for _, name := range []string{snapshotFile, journalFile} {
		fi, err := os.Lstat(s.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("checking %s: %w", s.path(name), err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link: refusing to follow it; remove it", s.path(name))
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file: refusing to read it", s.path(name))
		}
	}
	return nil
}

// load reads snapshot then journal. A record that cannot be read is skipped
// and reported with its line number; the rest is still read.
func (s *store) load() (loaded, error) {
	var res loaded
	if err := s.checkSafe(); err != nil {
		return res, err
	}
	var order []netip.Prefix
	m := map[netip.Prefix]Entry{}
	for _, name := range []string{snapshotFile, journalFile} {
		data, err := readNoFollow(s.path(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("reading %s: %w", s.path(name), err)
		}
		for n := 1; len(data) > 0; n++ {
			line, rest, complete := bytes.Cut(data, []byte{'\n'})
			data = rest
			if !complete {
				// A crash mid-append leaves a torn last record; it was never
				// acknowledged, and the next append cuts it off.
				res.torn = true
				res.damaged = append(res.damaged, Damage{File: s.path(name), Line: n, Problem: "torn last record (the writer died mid-write), skipped", torn: true})
				break
			}
			if len(line) == 0 {
				continue
			}
			e, del, err := parseRecord(string(line))
			if err != nil {
				res.damaged = append(res.damaged, Damage{File: s.path(name), Line: n, Problem: err.Error()})
				continue
			}
			res.records++
			if del {
				delete(m, e.Prefix)
				continue
			}
			if _, ok := m[e.Prefix]; !ok {
				order = append(order, e.Prefix)
			}
			m[e.Prefix] = e
		}
	}
	res.entries = make([]Entry, 0, len(m))
	for _, p := range order {
		if e, ok := m[p]; ok {
			res.entries = append(res.entries, e)
			delete(m, p)
		}
	}
	return res, nil
}

// readNoFollow reads a whole file, never through a symbolic link.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// quoteShort quotes a damaged record for an error message, cut to a length
// a terminal can show.
func quoteShort(line string) string {
	const limit = 120
	if len(line) > limit {
		return strconv.Quote(line[:limit]) + "..."
	}
	return strconv.Quote(line)
}

func parseRecord(line string) (e Entry, del bool, err error) {
	if i := len(line) - 10; i >= 0 && line[i:i+2] == " ~" {
		if sum, perr := strconv.ParseUint(line[i+2:], 16, 32); perr == nil {
			if crc32.Checksum([]byte(line[:i]), recordSum()) != uint32(sum) {
				return e, false, fmt.Errorf("checksum mismatch in %s", quoteShort(line))
			}
			line = line[:i]
		}
	}
	if p, ok := strings.CutPrefix(line, "- "); ok {
		if e.Prefix, err = netip.ParsePrefix(p); err != nil {
			return e, true, fmt.Errorf("bad prefix in %s", quoteShort(line))
		}
		return e, true, nil
	}
	rest, ok := strings.CutPrefix(line, "+ ")
	if !ok {
		return e, false, fmt.Errorf("unknown record %s", quoteShort(line))
	}
	expS, rest, _ := strings.Cut(rest, " ")
	pS, rest, _ := strings.Cut(rest, " ")
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || exp < 0 {
		return e, false, fmt.Errorf("bad expiry in %s", quoteShort(line))
	}
	if e.Prefix, err = netip.ParsePrefix(pS); err != nil {
		return e, false, fmt.Errorf("bad prefix in %s", quoteShort(line))
	}
	if exp > 0 {
		e.ExpiresAt = time.Unix(exp, 0)
	}
	origin, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return e, false, fmt.Errorf("bad origin in %s", quoteShort(line))
	}
	e.Origin, _ = strconv.Unquote(origin)
	reason := strings.TrimPrefix(rest[len(origin):], " ")
	if e.Reason, err = strconv.Unquote(reason); err != nil {
		return e, false, fmt.Errorf("bad reason in %s", quoteShort(line))
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
	if err := truncateNoFollow(s.path(journalFile), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
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

// keepDamaged keeps a copy of each file with damaged records as
// NAME.damaged before restore rewrites it, so what was skipped can still be
// read. A torn last record alone is not worth a copy.
func (s *store) keepDamaged(damaged []Damage) error {
	files := map[string]bool{}
	for _, d := range damaged {
		if !d.torn {
			files[d.File] = true
		}
	}
	for path := range files {
		data, err := readNoFollow(path)
		if err != nil {
			return fmt.Errorf("keeping a copy of the damaged %s: %w", path, err)
		}
		if err := writeFileAtomic(path+".damaged", data); err != nil {
			return fmt.Errorf("keeping a copy of the damaged %s: %w", path, err)
		}
	}
	return nil
}
