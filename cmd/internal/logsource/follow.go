package logsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Options configures Follow and Journal.
type Options struct {
	// FromStart reads what the file (or the journal of this boot) already
	// holds; by default only lines written from now on are read.
	FromStart bool
	// Poll is how often the file is checked without an inotify event, in
	// case one was missed or the directory cannot be watched (1s when 0).
	Poll time.Duration
	// MaxLine is the longest line handed on (DefaultMaxLine when 0);
	// longer lines (journal messages) are dropped.
	MaxLine int
	// OnLong, when set, is called for every line dropped for being longer
	// than MaxLine.
	OnLong func()
	// OnBad, when set, is called for every journal entry that makes no
	// line: output of journalctl that is not a JSON object, or an entry
	// whose MESSAGE is missing or neither a string nor an array of bytes.
	OnBad func()
	// JournalDirectory, when set, makes Journal read the journal files
	// in this directory (journalctl --directory) instead of the system's
	// journal: a journal copied off another machine, or one written by
	// systemd-journal-remote.
	JournalDirectory string
	// OnRotate, when set, is called after the file was replaced by a new
	// one (rename) or truncated (copytruncate).
	OnRotate func(how string)
	// Ready, when set, is called once the file is open (or known to be
	// missing) and inotify watches its directory: lines appended after it
	// returns are read.
	Ready func()
}

// follower is the state of one followed file.
type follower struct {
	path string
	o    Options
	fn   func([]byte)
	f    *os.File
	off  int64
	sp   splitter
	buf  []byte
}

// Follow reads lines appended to the file at path until ctx is done, and
// returns nil then. It follows rotation: when the file is renamed away and
// a new one created at path, it finishes the old file and continues at the
// start of the new one; when the file shrinks (copytruncate), it continues
// from its start. A file that does not exist yet is waited for.
func Follow(ctx context.Context, path string, o Options, fn func([]byte)) error {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	fl := &follower{path: path, o: o, fn: fn, sp: splitter{max: o.MaxLine, onLong: o.OnLong}, buf: make([]byte, 64<<10)}
	defer fl.close()

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("following %s: starting inotify: %w", path, err)
	}
	defer w.Close()
	// The directory, not the file: a watch on the file is lost when it is
	// renamed away, and the new file would go unnoticed.
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("following %s: watching its directory: %w", path, err)
	}
	if err := fl.open(!o.FromStart); err != nil {
		return err
	}
	if err := fl.read(); err != nil {
		return err
	}
	if o.Ready != nil {
		o.Ready()
	}
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("following %s: inotify closed", path)
			}
			if filepath.Clean(ev.Name) != filepath.Clean(path) {
				continue
			}
			if err := fl.check(); err != nil {
				return err
			}
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("following %s: inotify closed", path)
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				return fmt.Errorf("following %s: %w", path, err)
			}
			// events were lost: the check below catches up
			if err := fl.check(); err != nil {
				return err
			}
		case <-tick.C:
			if err := fl.check(); err != nil {
				return err
			}
		}
	}
}

// open opens the file at path; atEnd skips what it holds. A missing file
// is not an error: the follower waits for it.
func (fl *follower) open(atEnd bool) error {
	f, err := os.Open(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("following %s: %w", fl.path, err)
	}
	fl.f, fl.off = f, 0
	if atEnd {
		off, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			fl.f = nil
			return fmt.Errorf("following %s: seeking to its end: %w", fl.path, err)
		}
		fl.off = off
	}
	return nil
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

// check reads what was appended and handles rotation and truncation.
func (fl *follower) check() error {
	if fl.f == nil {
		// the file appeared: everything in it is new
		if err := fl.open(false); err != nil || fl.f == nil {
			return err
		}
		return fl.read()
	}
	if err := fl.read(); err != nil {
		return err
	}
	cur, err := fl.f.Stat()
	if err != nil {
		return fmt.Errorf("following %s: %w", fl.path, err)
	}
	if cur.Size() < fl.off {
		// copytruncate: the same file, cut short; read it from the start
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("following %s: seeking after truncation: %w", fl.path, err)
		}
		fl.off = 0
		fl.sp.partial, fl.sp.long = fl.sp.partial[:0], false
		if fl.o.OnRotate != nil {
			fl.o.OnRotate("truncate")
		}
		return fl.read()
	}
	st, err := os.Stat(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // renamed away, the new file is not there yet
	}
	if err != nil {
		return fmt.Errorf("following %s: %w", fl.path, err)
	}
	if os.SameFile(st, cur) {
		return nil
	}
	// rotated by rename: finish the old file, then start the new one
	if err := fl.read(); err != nil {
		return err
	}
	fl.sp.flush(fl.fn)
	fl.close()
	if fl.o.OnRotate != nil {
		fl.o.OnRotate("rename")
	}
	if err := fl.open(false); err != nil || fl.f == nil {
		return err
	}
	return fl.read()
}

// read hands on every complete line up to the current end of the file.
func (fl *follower) read() error {
	if fl.f == nil {
		return nil
	}
	for {
		n, err := fl.f.Read(fl.buf)
		fl.off += int64(n)
		fl.sp.feed(fl.buf[:n], fl.fn)
		if errors.Is(err, io.EOF) || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("following %s: reading: %w", fl.path, err)
		}
	}
}
