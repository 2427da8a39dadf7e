package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/banshee-project/banshee/hostfw/nstest"
)

// unblock completes the addresses blocked on this host, and leaves out
// what is already on the line.
func TestCompletionOffersBlockedAddresses(t *testing.T) {
	nstest.Require(t)
	n := nstest.New(t, "attacker")
	c := newCLI(t, n.Victim, "")
	c.must("", "block", "198.51.100.100", "198.51.100.2", "2001:db8::7", "--scope", "host", "--reason", "pop3 bruteforce")
	words := func(args ...string) []string {
		r := c.must("", append([]string{"__complete", "unblock"}, args...)...)
		var out []string
		for l := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				out = append(out, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return out
	}
	if got, want := words(""), []string{"198.51.100.2", "198.51.100.100", "2001:db8::7"}; !slices.Equal(got, want) {
		t.Errorf("unblock <TAB>: got %q, want %q", got, want)
	}
	if got, want := words("198.51.100.2", "198."), []string{"198.51.100.100"}; !slices.Equal(got, want) {
		t.Errorf("unblock 198.51.100.2 198.<TAB>: got %q, want %q", got, want)
	}
}
