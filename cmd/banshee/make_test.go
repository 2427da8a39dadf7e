package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make install puts banshee under DESTDIR/PREFIX/bin, and the first build
// says what it compiles and how long that takes.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	tmp := t.TempDir()
	cmd := exec.Command("make", "-C", "../..", "install", "BIN="+filepath.Join(tmp, "bin"), "DESTDIR="+filepath.Join(tmp, "root"), "PREFIX=/opt/banshee",
		"GOBUILDFLAGS=") // no -trimpath: reuse what go test compiled
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	first := strings.SplitN(string(out), "\n", 3)
	if len(first) < 2 || !strings.Contains(first[1], "building "+filepath.Join(tmp, "bin", "banshee")) || !strings.Contains(first[1], "about 6 minutes on 2 cores") {
		t.Errorf("the first build does not say what it does:\n%s", out)
	}
	bin := filepath.Join(tmp, "root", "opt", "banshee", "bin", "banshee")
	fi, err := os.Stat(bin)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary: %v %v\n%s", fi, err, out)
	}
	if !strings.Contains(string(out), "installed "+bin) {
		t.Errorf("make install does not say where banshee went:\n%s", out)
	}
	v, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "banshee ") {
		t.Errorf("installed banshee version: %q %v", v, err)
	}
	// A second build is quiet about the first-build time.
	out, err = exec.Command("make", "-C", "../..", "build", "BIN="+filepath.Join(tmp, "bin"), "GOBUILDFLAGS=").CombinedOutput()
	if err != nil || strings.Contains(string(out), "about 6 minutes") {
		t.Errorf("second make build: %v\n%s", err, out)
	}
}
