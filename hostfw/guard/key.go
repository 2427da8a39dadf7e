package guard

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrKeyExists is returned by WriteKeyFile when the file is already there.
var ErrKeyExists = errors.New("key file already exists")

// ErrKeyPermissions is returned by ReadKeyFile for a key file that group or
// others can access.
var ErrKeyPermissions = errors.New("key file is accessible by group or others")

// GenerateKey returns KeySize random bytes from random.
func GenerateKey(random io.Reader) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(random, key); err != nil {
		return nil, fmt.Errorf("reading random key bytes: %w", err)
	}
	return key, nil
}

// WriteKeyFile writes a new random key to path with mode 0600, as hex and a
// newline, or as the raw bytes when raw is set. It never overwrites: an
// existing path is ErrKeyExists.
func WriteKeyFile(path string, raw bool) error {
	key, err := GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	data := key
	if !raw {
		data = append([]byte(hex.EncodeToString(key)), '\n')
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("writing guard key %s: %w; remove it first to replace it", path, ErrKeyExists)
	}
	if err != nil {
		return fmt.Errorf("writing guard key: %w", err)
	}
	// The umask cannot widen 0600, but a umask of 0 with an odd default ACL
	// could; make the mode exact.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing guard key %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing guard key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing guard key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing guard key %s: %w", path, err)
	}
	return nil
}

// ReadKeyFile reads a key written by WriteKeyFile: KeySize raw bytes, or
// their hex (surrounding white space allowed). It refuses a file that is not
// regular or that group or others can access (ErrKeyPermissions).
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading guard key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading guard key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("reading guard key %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("reading guard key %s: %w (mode %04o); run chmod 600 %s", path, ErrKeyPermissions, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4*KeySize))
	if err != nil {
		return nil, fmt.Errorf("reading guard key %s: %w", path, err)
	}
	key, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("reading guard key %s: %w", path, err)
	}
	return key, nil
}

// ParseKey decodes a key file's content: KeySize raw bytes, or their hex
// with optional surrounding white space.
func ParseKey(data []byte) ([]byte, error) {
	if len(data) == KeySize {
		return append([]byte(nil), data...), nil
	}
	t := bytes.TrimSpace(data)
	if len(t) == 2*KeySize {
		key := make([]byte, KeySize)
		if _, err := hex.Decode(key, t); err == nil {
			return key, nil
		}
	}
	return nil, fmt.Errorf("decoding guard key: want %d raw bytes or %d hex digits, got %d bytes", KeySize, 2*KeySize, len(data))
}
