package main

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// TestCLIApplyKilledNeverLocksOut kills "apply drop-everything
// --confirm-within 1s" with SIGTERM or SIGKILL at random moments of its
// first 250 ms (or of its whole run and a little after, when a loaded
// machine makes it longer): whatever the moment, the admin reaches the host again once
// the window has passed. The rollback is armed before the change, so no
// moment leaves the new ruleset live without its timer.
func TestCLIApplyKilledNeverLocksOut(t *testing.T) {
	const trials, within = 20, time.Second
	n := nstest.New(t, "admin")
	n.Victim.Listen(t, port)
	adm := n.Peers["admin"]
	c := newCLI(t, n.Victim, "")
	rules := writeRules(t, dropAll)
	// On a quiet machine an apply takes well under 250 ms; on a loaded one
	// the kills must still spread over the whole run and a little after.
	bansheeBin(t) // built before the clock starts
	start := time.Now()
	c.must("", "apply", rules, "--confirm-within", "0")
	window := max(250*time.Millisecond, time.Since(start)*6/5)
	c.must("", "rollback")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 20))
	var lockouts, late, changed int
	var worst time.Duration
	for trial := range trials {
		sig := syscall.SIGTERM
		if trial%2 == 1 {
			sig = syscall.SIGKILL
		}
		delay := time.Duration(rng.Int64N(int64(window)))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := n.Victim.Command(ctx, bansheeBin(t), "--state-dir", c.stateDir, "--config", c.config, "apply", rules, "--confirm-within", within.String())
		cmd.Env = append(os.Environ(), "SSH_CONNECTION=", "SSH_CLIENT=")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(sig)
		_ = cmd.Wait()
		ended := time.Now()
		cancel()
		if strings.Contains(out.String(), "nothing changed") && adm.Dial(adm.VictimAddr4, port, 300*time.Millisecond) != nil {
			t.Errorf("trial %d (%s after %s): apply said nothing changed, but the admin is cut off: %s", trial, sig, delay, out.String())
		}
		if adm.Dial(adm.VictimAddr4, port, 300*time.Millisecond) != nil {
			changed++
		}
		// Reachable again: by the window plus 1.5 s as a figure, and within a
		// bound no load reaches as the assertion (a lockout).
		reached := false
		for i := 0; i < 200 && time.Since(ended) < within+30*time.Second; i++ {
			if adm.Dial(adm.VictimAddr4, port, 200*time.Millisecond) == nil {
				reached = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(ended)
		worst = max(worst, took)
		switch {
		case !reached:
			lockouts++
			t.Errorf("trial %d: %s after %s locked the admin out (output %q)", trial, sig, delay, out.String())
		case took > within+1500*time.Millisecond:
			late++
		}
		// Clear what a trial left pending (an apply that finished, or was
		// killed after arming), so the next one can apply.
		c.run("", "rollback")
		if r := c.must("", "status", "-o", "json"); strings.Contains(r.stdout, "pending_apply") {
			t.Fatalf("trial %d: still pending after rollback: %s", trial, r.stdout)
		}
	}
	t.Logf("apply-kill: %d trials (TERM and KILL within %s), %d with the new ruleset live after the kill, lockouts %d, reachable later than window+1.5s %d, worst %s",
		trials, window.Round(time.Millisecond), changed, lockouts, late, worst.Round(time.Millisecond))
}
