package guard

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// OpenReplayCache returns a ReplayCache that also keeps its nonces in the
// file at path, so a restarted guard still refuses a knock it accepted
// before: each accepted nonce is appended and synced before the knock is
// acted on, and the nonces still live at now are read back here. The file
// is rewritten (atomically) when it holds twice max records. A torn last
// line (a crash mid-append) is ignored.
func OpenReplayCache(path string, ttl time.Duration, max int, now time.Time) (*ReplayCache, error) {
	c := NewReplayCache(ttl, max)
	c.path = path
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	type rec struct {
		n   [NonceSize]byte
		exp time.Time
	}
	var live []rec
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading the replay cache %s: %w", path, err)
	default:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			h, e, ok := strings.Cut(sc.Text(), " ")
			b, herr := hex.DecodeString(h)
			ns, nerr := strconv.ParseInt(e, 10, 64)
			if !ok || herr != nil || nerr != nil || len(b) != NonceSize {
				continue // torn or foreign line
			}
			r := rec{exp: time.Unix(0, ns)}
			copy(r.n[:], b)
			if !now.After(r.exp) {
				live = append(live, r)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading the replay cache %s: %w", path, err)
		}
	}
	for _, r := range live {
		c.remember(r.n, r.exp)
	}
	if err := c.rewrite(); err != nil {
		return nil, err
	}
	return c, nil
}

func replayLine(n [NonceSize]byte, exp time.Time) string {
	return hex.EncodeToString(n[:]) + " " + strconv.FormatInt(exp.UnixNano(), 10) + "\n"
}

// rewrite replaces the file with the nonces held now and opens it for
// appending.
func (c *ReplayCache) rewrite() error {
	var b strings.Builder
	for i := range c.n {
		n := c.order[(c.head+i)%c.max]
		b.WriteString(replayLine(n, c.expires[n]))
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("writing the replay cache %s: %w", c.path, err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("writing the replay cache %s: %w", c.path, err)
	}
	if c.file != nil {
		c.file.Close()
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the replay cache %s: %w", c.path, err)
	}
	c.file, c.records = f, c.n
	return nil
}

// persist appends one accepted nonce and syncs it.
func (c *ReplayCache) persist(n [NonceSize]byte, exp time.Time) error {
	if c.file == nil {
		return nil
	}
	if c.records >= 2*c.max {
		if err := c.rewrite(); err != nil {
			return err
		}
		return c.file.Sync()
	}
	if _, err := c.file.WriteString(replayLine(n, exp)); err != nil {
		return fmt.Errorf("recording nonce in %s: %w", c.path, err)
	}
	c.records++
	if err := c.file.Sync(); err != nil {
		return fmt.Errorf("recording nonce in %s: %w", c.path, err)
	}
	return nil
}

// PersistErr is the last failure to record a nonce on disk, or nil. The
// knock was still accepted: the guard is for an operator who is locked out.
func (c *ReplayCache) PersistErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.persistErr
}

// Close closes the file of a persistent cache.
func (c *ReplayCache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == nil {
		return nil
	}
	err := c.file.Close()
	c.file = nil
	return err
}
