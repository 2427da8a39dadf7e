package main

import (
	"slices"
	"strings"
	"testing"
)

// completions runs banshee's hidden completion command and returns the
// offered words (descriptions cut off).
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	out, stderr, code := runPlan(t, "", "", append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", args, code, stderr)
	}
	var words []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if l != "" && !strings.HasPrefix(l, ":") {
			words = append(words, strings.SplitN(l, "\t", 2)[0])
		}
	}
	return words
}

func TestCompletionOffersScopes(t *testing.T) {
	for cmd, want := range map[string][]string{
		"block":    {"auto", "host", "vpc"},
		"plan":     {"auto", "host", "vpc"},
		"list":     {"all", "host", "vpc"},
		"snapshot": {"all", "host", "vpc"},
		"unblock":  {"all", "host", "vpc"},
	} {
		if got := completions(t, cmd, "--scope", ""); !slices.Equal(got, want) {
			t.Errorf("%s --scope: got %q, want %q", cmd, got, want)
		}
	}
}
