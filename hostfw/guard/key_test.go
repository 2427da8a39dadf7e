package guard

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	for _, raw := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "guard.key")
		if err := WriteKeyFile(path, raw); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("raw=%v: mode %04o, want 0600", raw, st.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		key, err := ReadKeyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(key) != KeySize {
			t.Fatalf("key of %d bytes", len(key))
		}
		want := data
		if !raw {
			want, _ = hex.DecodeString(string(bytes.TrimSpace(data)))
		}
		if !bytes.Equal(key, want) {
			t.Errorf("raw=%v: read key differs from the file", raw)
		}
		if err := WriteKeyFile(path, raw); !errors.Is(err, ErrKeyExists) {
			t.Errorf("overwrite: %v, want ErrKeyExists", err)
		}
		if again, _ := ReadKeyFile(path); !bytes.Equal(again, key) {
			t.Error("refused overwrite changed the key")
		}
	}
}

func TestTwoKeysDiffer(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if WriteKeyFile(a, false) != nil || WriteKeyFile(b, false) != nil {
		t.Fatal("writing keys")
	}
	ka, _ := ReadKeyFile(a)
	kb, _ := ReadKeyFile(b)
	if bytes.Equal(ka, kb) {
		t.Fatal("two generated keys are equal")
	}
}

func TestReadKeyFileRefusesOpenPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.key")
	if err := WriteKeyFile(path, false); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(path); !errors.Is(err, ErrKeyPermissions) {
			t.Errorf("mode %04o: %v, want ErrKeyPermissions", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	if _, err := ReadKeyFile(filepath.Dir(path)); err == nil {
		t.Error("a directory read as a key")
	}
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, KeySize)
	for name, data := range map[string][]byte{
		"raw":              raw,
		"hex":              []byte(hex.EncodeToString(raw)),
		"hex with newline": []byte("  " + hex.EncodeToString(raw) + "\n"),
		"upper-case hex":   bytes.ToUpper([]byte(hex.EncodeToString(raw))),
	} {
		k, err := ParseKey(data)
		if err != nil || !bytes.Equal(k, raw) {
			t.Errorf("%s: %x, %v", name, k, err)
		}
	}
	for name, data := range map[string][]byte{
		"short":       raw[:16],
		"long":        append(bytes.Clone(raw), 1),
		"bad hex":     bytes.Repeat([]byte("zz"), KeySize),
		"short hex":   []byte(hex.EncodeToString(raw[:31])),
		"empty":       nil,
		"only spaces": []byte("   \n"),
	} {
		if _, err := ParseKey(data); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
