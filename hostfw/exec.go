package hostfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// runner runs one external command. It is the only door to iptables-restore
// and ipset; tests of pure logic give it a fake.
type runner interface {
	run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error)
}

// execRunner runs commands with os/exec.
type execRunner struct{}

func (execRunner) run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = childAttr()
	if stdin != nil {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the input of %s: %w", name, err)
		}
		cmd.Stdin = &lineReader{b: data}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &CmdError{Cmd: name, Args: args, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// CmdError is a failed iptables or ipset command with its stderr.
type CmdError struct {
	Cmd    string
	Args   []string
	Stderr string
	Err    error
}

func (e *CmdError) Error() string {
	msg := e.Stderr
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %s", e.Cmd, strings.Join(e.Args, " "), msg)
}

func (e *CmdError) Unwrap() error { return e.Err }

// ErrNotPermitted means the process lacks root or CAP_NET_ADMIN.
var ErrNotPermitted = errors.New("permission denied: banshee needs root or CAP_NET_ADMIN for the host firewall (run it with sudo)")

// classify maps the kernel tools' stderr to banshee's errors. It is the one
// place that knows their wording.
func classify(err error) error {
	var ce *CmdError
	if !errors.As(err, &ce) {
		return err
	}
	s := ce.Stderr
	switch {
	case strings.Contains(s, "Permission denied"), strings.Contains(s, "Operation not permitted"),
		strings.Contains(s, "you must be root"):
		return fmt.Errorf("%w (%s)", ErrNotPermitted, ce.Error())
	}
	return err
}

// isSetMissing reports an ipset error about a set that does not exist.
func isSetMissing(err error) bool {
	var ce *CmdError
	return errors.As(err, &ce) && strings.Contains(ce.Stderr, "does not exist")
}

// isNotInSet reports an ipset error about an element that is not in a set.
func isNotInSet(err error) bool {
	var ce *CmdError
	return errors.As(err, &ce) && (strings.Contains(ce.Stderr, "is NOT in set") || strings.Contains(ce.Stderr, "it's not added"))
}
