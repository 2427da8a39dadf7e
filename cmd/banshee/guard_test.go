package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/guard"
)

// runBanshee runs the CLI in-process and returns the exit code and streams.
func runBanshee(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, strings.NewReader(""), &out, &errb)
	code := report(err, &errb)
	return code, out.String(), errb.String()
}

func TestGuardKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.key")
	code, out, errs := runBanshee(t, "guard", "keygen", path, "-o", "json")
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errs)
	}
	var v struct{ KeyFile, Format string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Format != "hex" {
		t.Fatalf("keygen -o json: %q, %v", out, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %04o, want 0600", st.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	code, _, errs = runBanshee(t, "guard", "keygen", path)
	if code != exitUsage || !strings.Contains(errs, "already exists") {
		t.Fatalf("keygen over an existing key: exit %d, %q; want 2 and a refusal", code, errs)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("keygen overwrote the key")
	}
	raw := filepath.Join(t.TempDir(), "raw.key")
	if code, _, errs := runBanshee(t, "guard", "keygen", "--raw", raw); code != 0 {
		t.Fatalf("keygen --raw: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(raw); len(b) != guard.KeySize {
		t.Fatalf("raw key of %d bytes", len(b))
	}
}

func TestGuardKnockSendsAVerifiableKnock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.key")
	if err := guard.WriteKeyFile(path, false); err != nil {
		t.Fatal(err)
	}
	key, err := guard.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Skipf("no %s loopback: %v", host, err)
		}
		defer pc.Close()
		port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		code, out, errs := runBanshee(t, "guard", "knock", host, "--key", path, "--port", port, "-o", "json")
		if code != 0 {
			t.Fatalf("knock %s: exit %d: %s", host, code, errs)
		}
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no knock arrived at %s: %v", host, err)
		}
		v, err := guard.NewVerifier(guard.HostKey(key, host), 30*time.Second, 0, nil) // bound to HOST as written
		if err != nil {
			t.Fatal(err)
		}
		k, err := v.Verify(buf[:n])
		if err != nil {
			t.Fatalf("knock to %s does not verify: %v", host, err)
		}
		var rep struct{ Nonce, Address string }
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Nonce != k.NonceHex() {
			t.Fatalf("knock -o json %q (%v) does not report nonce %s", out, err, k.NonceHex())
		}
	}
}

func TestGuardBadInputIsUsage(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "guard.key")
	if err := guard.WriteKeyFile(key, false); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	data, _ := os.ReadFile(key)
	if err := os.WriteFile(open, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"guard", "knock", "127.0.0.1", "--key", open}, "accessible by group or others"},
		{[]string{"guard", "--key", open}, "accessible by group or others"},
		{[]string{"guard", "knock", "127.0.0.1", "--key", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"guard", "--key", key, "--max-skew", "0s"}, "--max-skew"},
		{[]string{"guard", "--key", key, "--port", "0"}, "--port"},
		{[]string{"guard", "--key", key, "--port", "70000"}, "port"},
		{[]string{"guard", "knock"}, "arg"},
		{[]string{"guard", "keygen"}, "arg"},
		{[]string{"guard", "bogus"}, "bogus"},
	}
	for _, c := range cases {
		code, _, errs := runBanshee(t, c.args...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("banshee %v: exit %d, %q; want exit 2 mentioning %q", c.args, code, errs, c.want)
		}
	}
}
