package main

import (
	"strings"
	"time"

	"github.com/banshee-project/banshee/policy"
	"github.com/spf13/pflag"
)

// durationFlag is a duration flag read with policy.ParseDuration, so every
// flag accepts days ("2d", "1d12h") like the configuration does.
type durationFlag struct {
	d   *time.Duration
	set bool // given on the command line
	// permanent, when not nil, is set by the word "permanent" (--ttl):
	// a block that never expires.
	permanent *bool
}

// permanentWord is the documented spelling of a block that never expires.
const permanentWord = "permanent"

var _ pflag.Value = (*durationFlag)(nil)

// durationVar defines a duration flag on fs.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) *durationFlag {
	*p = def
	f := &durationFlag{d: p}
	fs.Var(f, name, usage)
	return f
}

func (f *durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	if f.permanent != nil && *f.permanent {
		return permanentWord
	}
	return policy.FormatDuration(*f.d)
}

func (f *durationFlag) Set(s string) error {
	if f.permanent != nil {
		*f.permanent = strings.EqualFold(strings.TrimSpace(s), permanentWord)
		if *f.permanent {
			*f.d, f.set = 0, true
			return nil
		}
	}
	d, err := policy.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d, f.set = d, true
	return nil
}

func (f *durationFlag) Type() string { return "duration" }
