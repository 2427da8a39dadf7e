package main

import (
	"errors"
	"strings"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/policy"
)

// Exit codes (DESIGN.md): 0 done, 1 runtime failure, 2 bad input or usage
// (nothing changed), 3 refused by policy (nothing changed).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitRefused = 3
)

// errRefused marks a command whose targets the policy refused; wrap it to
// add detail.
var errRefused = engine.ErrRefused

// usageError is bad input or usage: exit 2.
type usageError = engine.UsageError

// usageErrorf reports bad input or usage (exit 2).
func usageErrorf(format string, args ...any) error {
	return engine.Usagef(format, args...)
}

func exitCode(err error) int {
	var ue *usageError
	var ie *policy.InputError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errRefused):
		return exitRefused
	case errors.As(err, &ue), errors.As(err, &ie), engine.IsUsage(err):
		return exitUsage
	}
	return exitFailure
}

// oneLine folds a multi-line message (tool stderr, say) into one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}
