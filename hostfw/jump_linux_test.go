package hostfw

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// TestJumpsAgreeWithIptablesCheck reads INPUT as banshee does (nf_tables
// netlink for nft, the kernel's filter table for legacy) and asks iptables
// -C the same question after each change of a real ruleset, in both
// families and both backends: the two answers must agree.
func TestJumpsAgreeWithIptablesCheck(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		backend Backend
		fam     Family
	}{{BackendNFT, V4}, {BackendNFT, V6}, {BackendLegacy, V4}, {BackendLegacy, V6}} {
		t.Run(string(c.backend)+"/"+c.fam.String(), func(t *testing.T) {
			n := nstest.New(t)
			fam := c.fam
			ipt := "iptables-" + string(c.backend)
			if fam == V6 {
				ipt = "ip6tables-" + string(c.backend)
			}
			jumps := func() (bool, error) {
				if c.backend == BackendLegacy {
					return legacyJumps(fam, "BANSHEE")
				}
				return nftJumps(fam, "INPUT", "BANSHEE")
			}
			run := func(args ...string) {
				t.Helper()
				if out, err := n.Victim.Run(ctx, ipt, append([]string{"-w"}, args...)...); err != nil {
					t.Fatalf("%s %s: %v: %s", ipt, strings.Join(args, " "), err, out)
				}
			}
			steps := []struct {
				what string
				args [][]string // commands run before the check
				want bool
			}{
				{"no filter table", nil, false},
				{"chain without a jump", [][]string{{"-N", "BANSHEE"}, {"-N", "BANSHEEX"}, {"-A", "INPUT", "-j", "ACCEPT"}}, false},
				{"a jump to another chain", [][]string{{"-A", "INPUT", "-j", "BANSHEEX"}}, false},
				{"a jump with a match", [][]string{{"-A", "INPUT", "-i", "lo", "-j", "BANSHEE"}}, false},
				{"a goto", [][]string{{"-A", "INPUT", "-g", "BANSHEE"}}, false},
				{"the jump", [][]string{{"-I", "INPUT", "3", "-j", "BANSHEE"}}, true},
				{"the jump removed", [][]string{{"-D", "INPUT", "-j", "BANSHEE"}}, false},
				{"the jump first", [][]string{{"-I", "INPUT", "-j", "BANSHEE"}}, true},
				{"INPUT flushed", [][]string{{"-F", "INPUT"}}, false},
			}
			for _, s := range steps {
				for _, a := range s.args {
					run(a...)
				}
				var got bool
				if err := n.Victim.Do(func() error {
					var err error
					got, err = jumps()
					return err
				}); err != nil {
					t.Fatalf("%s: %v", s.what, err)
				}
				_, cerr := n.Victim.Run(ctx, ipt, "-w", "-C", "INPUT", "-j", "BANSHEE")
				if got != s.want || got != (cerr == nil) {
					out, _ := n.Victim.Run(ctx, ipt+"-save")
					t.Fatalf("%s: banshee's read says %v, iptables -C says %v, want %v; ruleset:\n%s", s.what, got, cerr == nil, s.want, out)
				}
			}
		})
	}
}

// TestEnsureFindsTheJumpWithoutIptables: with either backend, a Firewall
// whose chain is in place answers Probe and Ensure without a process, and
// notices a removed jump.
func TestEnsureFindsTheJumpWithoutIptables(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) { ensureWithoutIptables(t, b) })
	}
}

func ensureWithoutIptables(t *testing.T, b Backend) {
	n := nstest.New(t)
	jumps := func(fw *Firewall) (bool, error) {
		if b == BackendLegacy {
			return legacyJumps(V4, fw.opts.Chain)
		}
		return nftJumps(V4, "INPUT", fw.opts.Chain)
	}
	inNS(t, n, b, t.TempDir(), func(ctx context.Context, fw *Firewall) error {
		if err := fw.Ensure(ctx, V4); err != nil {
			return err
		}
		rec := &recordingRunner{next: fw.r}
		fw.r = rec
		fw.ensured = nil
		if !fw.Probe(ctx, V4) {
			return fmt.Errorf("probe: no jump found after Ensure")
		}
		fw.ensured = nil
		if err := fw.Ensure(ctx, V4); err != nil {
			return err
		}
		if len(rec.cmds) != 0 {
			return fmt.Errorf("with the jump in place, Probe and Ensure ran %q", rec.cmds)
		}
		if _, err := fw.r.run(ctx, nil, fw.t.ipt[V4], "-w", "-D", "INPUT", "-j", fw.opts.Chain); err != nil {
			return err
		}
		rec.cmds = nil
		if fw.Probe(ctx, V4) {
			return fmt.Errorf("probe: a jump found after it was deleted")
		}
		fw.ensured = nil
		if err := fw.Ensure(ctx, V4); err != nil {
			return err
		}
		if ok, err := jumps(fw); err != nil || !ok {
			return fmt.Errorf("after Ensure the jump is not back (%v, %v); ran %q", ok, err, rec.cmds)
		}
		return nil
	})
}

// recordingRunner notes every command before running it.
type recordingRunner struct {
	next runner
	cmds []string
}

func (r *recordingRunner) run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	r.cmds = append(r.cmds, name+" "+strings.Join(args, " "))
	return r.next.run(ctx, stdin, name, args...)
}
