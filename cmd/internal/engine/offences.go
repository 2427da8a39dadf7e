package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// Offences keeps past blocks for repeat-offender escalation (DESIGN rule 7)
// on doors that have no other record of them (the CLI).
type Offences interface {
	Load() ([]policy.Offence, error)
	Add(os []policy.Offence, horizon time.Time) error
}

// FileOffences keeps offences in a file of the state directory, one JSON
// object a line, appended under an exclusive lock with one write and one
// fsync per block (the record a single block pays for). A crash or a full
// disk can only cut the last line: Load skips a line it cannot read, and a
// failed append is truncated back. When the file grows past compactAt it
// is rewritten whole (temporary file, fsync, rename, fsync of the
// directory) without the offences older than the horizon. Also lists
// further files it only reads (watch's own record, a JSON array).
type FileOffences struct {
	Path string
	Also []string
}

// compactAt is the size past which an append rewrites the record without
// its expired offences (a variable for the kill test, which compacts
// often).
var compactAt int64 = 256 << 10

// Load reads the offences of every file; a missing file has none.
func (f FileOffences) Load() ([]policy.Offence, error) {
	var out []policy.Offence
	for _, p := range append([]string{f.Path}, f.Also...) {
		os, err := readOffences(p)
		if err != nil {
			return nil, err
		}
		out = append(out, os...)
	}
	return out, nil
}

// readOffences reads a record: a JSON array (watch's file, or a record
// written whole) or one JSON object a line, skipping a line a crash cut.
func readOffences(path string) ([]policy.Offence, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading past offences: %w", err)
	}
	var out []policy.Offence
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' && t[len(t)-1] == ']' && json.Unmarshal(t, &out) == nil {
		return out, nil // a JSON array, written whole
	}
	out = make([]policy.Offence, 0, bytes.Count(data, []byte("\n"))+1)
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		var o policy.Offence
		var arr []policy.Offence
		switch {
		case len(line) == 0:
		case line[0] == '[' && json.Unmarshal(line, &arr) == nil:
			out = append(out, arr...) // the array an older record began with
		case parseOffenceLine(line, &o), json.Unmarshal(line, &o) == nil:
			out = append(out, o)
		}
		// Anything else is a line a crash or a full disk cut: skipped.
	}
	return out, nil
}

// The parts of the line Add writes for each offence, which
// parseOffenceLine reads without reflection (a block reads the whole
// record, up to compactAt, before it decides); anything else goes to
// encoding/json.
var (
	offenceHead = []byte(`{"source":"`)
	offenceMid  = []byte(`","at":"`)
	offenceTail = []byte(`"}`)
)

// parseOffenceLine reads a line in exactly the form json.Encoder writes
// for a policy.Offence; false for anything else.
func parseOffenceLine(line []byte, o *policy.Offence) bool {
	rest, ok := bytes.CutPrefix(line, offenceHead)
	if !ok {
		return false
	}
	src, rest, ok := bytes.Cut(rest, offenceMid)
	if !ok {
		return false
	}
	at, ok := bytes.CutSuffix(rest, offenceTail)
	if !ok || bytes.ContainsAny(at, `"\`) || bytes.ContainsAny(src, `"\`) {
		return false
	}
	p, err := netip.ParsePrefix(string(src))
	if err != nil {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, string(at))
	if err != nil {
		return false
	}
	*o = policy.Offence{Source: p, At: t}
	return true
}

// Add appends offences; past compactAt it rewrites the record without
// those older than horizon.
func (f FileOffences) Add(add []policy.Offence, horizon time.Time) error {
	if len(add) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("recording offences: %w", err)
	}
	// The lock is a file of its own, so that a compaction's rename never
	// leaves an appender writing into the replaced file.
	lock, err := os.OpenFile(f.Path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("recording offences: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("recording offences: locking: %w", err)
	}
	file, err := os.OpenFile(f.Path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("recording offences: %w", err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return fmt.Errorf("recording offences: %w", err)
	}
	var buf bytes.Buffer
	if st.Size() > 0 {
		// A record written whole (a JSON array) or a cut last line: the
		// next line starts on its own.
		last := make([]byte, 1)
		if _, err := file.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			buf.WriteByte('\n')
		}
	}
	enc := json.NewEncoder(&buf)
	for _, o := range add {
		if err := enc.Encode(o); err != nil {
			return fmt.Errorf("encoding offences: %w", err)
		}
	}
	if st.Size()+int64(buf.Len()) > compactAt {
		return f.compact(add, horizon)
	}
	if _, err := file.Write(buf.Bytes()); err != nil {
		_ = file.Truncate(st.Size()) // a full disk: no half line stays
		return fmt.Errorf("recording offences: %w", err)
	}
	if err := file.Sync(); err != nil {
		return fmt.Errorf("recording offences: %w", err)
	}
	return nil
}

// compact rewrites the record whole with add and the offences not older
// than horizon; the caller holds the lock.
func (f FileOffences) compact(add []policy.Offence, horizon time.Time) error {
	old, err := readOffences(f.Path)
	if err != nil {
		return err
	}
	all := slices.DeleteFunc(append(old, add...), func(o policy.Offence) bool { return o.At.Before(horizon) })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, o := range all {
		if err := enc.Encode(o); err != nil {
			return fmt.Errorf("encoding offences: %w", err)
		}
	}
	return writeWhole(f.Path, buf.Bytes())
}

// writeWhole replaces path with data so that a crash at any moment leaves
// either the old file or the new one.
func writeWhole(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
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
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
