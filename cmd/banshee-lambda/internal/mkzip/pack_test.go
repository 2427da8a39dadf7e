package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestPack(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bootstrap")
	content := bytes.Repeat([]byte("\x7fELF banshee "), 1000)
	if err := os.WriteFile(src, content, 0o755); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	for _, dst := range []string{a, b} {
		if err := pack(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	za, _ := os.ReadFile(a)
	zb, _ := os.ReadFile(b)
	if !bytes.Equal(za, zb) {
		t.Errorf("two packs of the same bootstrap differ")
	}
	r, err := zip.OpenReader(a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.File) != 1 || r.File[0].Name != "bootstrap" || r.File[0].Mode().Perm() != 0o755 {
		t.Fatalf("zip entries %v, want one executable bootstrap", r.File)
	}
	f, err := r.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, content) {
		t.Errorf("bootstrap in the zip differs from the file")
	}
	if err := pack(filepath.Join(dir, "missing"), filepath.Join(dir, "c.zip")); err == nil {
		t.Errorf("packing a missing file succeeded")
	}
}
