package hostfw

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// tools are the resolved paths of the kernel tools for one backend.
type tools struct {
	backend  Backend
	ipset    string
	ipt      map[Family]string // iptables, ip6tables
	restore  map[Family]string // iptables-restore, ip6tables-restore
	save     map[Family]string // iptables-save, ip6tables-save
	otherSav map[Family]string // the other backend's save, "" if absent
}

// installHint says how to get the kernel tools.
const installHint = "install them: Debian/Ubuntu `apt-get install iptables ipset`, Amazon Linux/RHEL `dnf install iptables-nft ipset`"

// lookTools finds the tools of the requested backend. With BackendAuto it
// follows what the system's plain "iptables" uses.
func lookTools(ctx context.Context, r runner, want Backend) (*tools, error) {
	t := &tools{ipt: map[Family]string{}, restore: map[Family]string{}, save: map[Family]string{}, otherSav: map[Family]string{}}
	var err error
	if t.ipset, err = exec.LookPath("ipset"); err != nil {
		return nil, fmt.Errorf("ipset not found in PATH: %s", installHint)
	}
	backend := want
	if backend == BackendAuto || backend == "" {
		p, err := exec.LookPath("iptables")
		if err != nil {
			return nil, fmt.Errorf("iptables not found in PATH: %s", installHint)
		}
		backend = backendOfLink(p)
		if backend == "" {
			out, err := r.run(ctx, nil, p, "--version")
			if err != nil {
				return nil, fmt.Errorf("asking iptables for its version: %w", err)
			}
			backend = BackendLegacy
			if strings.Contains(string(out), "nf_tables") {
				backend = BackendNFT
			}
		}
	}
	t.backend = backend
	other := BackendLegacy
	if backend == BackendLegacy {
		other = BackendNFT
	}
	for _, fam := range []Family{V4, V6} {
		base := "iptables"
		if fam == V6 {
			base = "ip6tables"
		}
		for kind, m := range map[string]map[Family]string{"": t.ipt, "-restore": t.restore, "-save": t.save} {
			p, err := findTool(base, string(backend), kind, want == BackendAuto || want == "")
			if err != nil {
				return nil, err
			}
			m[fam] = p
		}
		if p, err := exec.LookPath(base + "-" + string(other) + "-save"); err == nil {
			t.otherSav[fam] = p
		}
	}
	return t, nil
}

// findTool prefers the backend-specific name (iptables-nft-restore) and,
// when the backend was detected from the plain "iptables", falls back to the
// plain name, which then runs that same backend.
func findTool(base, backend, kind string, plainOK bool) (string, error) {
	if p, err := exec.LookPath(base + "-" + backend + kind); err == nil {
		return p, nil
	}
	if !plainOK {
		return "", fmt.Errorf("%s-%s%s not found in PATH: %s", base, backend, kind, installHint)
	}
	p, err := exec.LookPath(base + kind)
	if err != nil {
		return "", fmt.Errorf("%s%s (%s backend) not found in PATH: %s", base, kind, backend, installHint)
	}
	return p, nil
}

// backendOfLink tells the backend from where the iptables alternatives
// link points (iptables -> iptables-nft), saving a process on every call;
// "" when the name does not say.
func backendOfLink(p string) Backend {
	for range 8 { // iptables -> /etc/alternatives/iptables -> iptables-nft -> xtables-nft-multi
		base := filepath.Base(p)
		switch {
		case strings.HasSuffix(base, "-nft"), base == "xtables-nft-multi":
			return BackendNFT
		case strings.HasSuffix(base, "-legacy"), base == "xtables-legacy-multi":
			return BackendLegacy
		}
		next, err := os.Readlink(p)
		if err != nil {
			return ""
		}
		if !filepath.IsAbs(next) {
			next = filepath.Join(filepath.Dir(p), next)
		}
		p = next
	}
	return ""
}
