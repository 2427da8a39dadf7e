package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

// FileOffences keeps offences in a JSON file of the state directory, written
// whole (temporary file, fsync, rename, fsync of the directory) under an
// exclusive lock, so a crash or a full disk leaves the old file or the new
// one, never a torn one. Also lists further files it only reads (watch's
// own record).
type FileOffences struct {
	Path string
	Also []string
}

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

func readOffences(path string) ([]policy.Offence, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading past offences: %w", err)
	}
	var out []policy.Offence
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading past offences %s: %w", path, err)
	}
	return out, nil
}

// Add appends offences and drops those older than horizon.
func (f FileOffences) Add(add []policy.Offence, horizon time.Time) error {
	if len(add) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("recording offences: %w", err)
	}
	lock, err := os.OpenFile(f.Path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("recording offences: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("recording offences: locking: %w", err)
	}
	old, err := readOffences(f.Path)
	if err != nil {
		return err
	}
	all := slices.DeleteFunc(append(old, add...), func(o policy.Offence) bool { return o.At.Before(horizon) })
	data, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("encoding offences: %w", err)
	}
	return writeWhole(f.Path, data)
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
