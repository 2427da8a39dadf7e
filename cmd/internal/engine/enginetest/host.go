// Package enginetest holds the test doubles of the engine's consumer
// interfaces that more than one package's tests use.
package enginetest

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/banshee-project/banshee/hostfw"
)

// Host is a stateful host firewall: kernel entries, a journal and the
// hook of each family, behaving like hostfw.Firewall for the engine. Tests
// read and change its fields under Mu.
type Host struct {
	Mu       sync.Mutex
	now      func() time.Time
	Kernel   map[netip.Prefix]hostfw.Entry // the set
	Journal  map[netip.Prefix]hostfw.Entry // the record
	Unhooked bool                          // the chain jump is missing
	// Calls counts Block calls; Fail, when set, makes Block fail and
	// change nothing.
	Calls int
	Fail  error
}

// Get returns the kernel's entry for p, expired or not.
func (f *Host) Get(p netip.Prefix) (hostfw.Entry, bool) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	e, ok := f.Kernel[p]
	return e, ok
}

// live reports whether e has not expired (the kernel drops an entry at
// its timeout).
func (f *Host) live(e hostfw.Entry) bool {
	return e.ExpiresAt.IsZero() || e.ExpiresAt.After(f.now())
}

// NewHost returns an empty host firewall whose clock is now.
func NewHost(now func() time.Time) *Host {
	return &Host{now: now, Kernel: map[netip.Prefix]hostfw.Entry{}, Journal: map[netip.Prefix]hostfw.Entry{}}
}

func (f *Host) Block(_ context.Context, es []hostfw.Entry) (hostfw.BlockResult, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.Calls++
	if f.Fail != nil {
		return hostfw.BlockResult{}, f.Fail
	}
	// What hostfw.Firewall refuses before writing anything.
	for _, e := range es {
		if !e.Prefix.IsValid() || e.Prefix.Bits() == 0 {
			return hostfw.BlockResult{}, fmt.Errorf("refusing to block %q", e.Prefix)
		}
		if err := hostfw.CheckText("reason", e.Reason); err != nil {
			return hostfw.BlockResult{}, err
		}
	}
	var res hostfw.BlockResult
	for _, e := range es {
		e.ExpiresAt = time.Time{}
		if e.TTL > 0 {
			e.ExpiresAt = f.now().Add(e.TTL)
		}
		if old, ok := f.Kernel[e.Prefix]; ok && f.live(old) {
			res.Refreshed = append(res.Refreshed, e.Prefix)
		} else {
			res.Added++
		}
		f.Kernel[e.Prefix], f.Journal[e.Prefix] = e, e
	}
	return res, nil
}

func (f *Host) Unblock(_ context.Context, ps []netip.Prefix) ([]netip.Prefix, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var absent []netip.Prefix
	for _, p := range ps {
		if _, ok := f.Kernel[p]; !ok {
			absent = append(absent, p)
		}
		delete(f.Kernel, p)
		delete(f.Journal, p)
	}
	return absent, nil
}

func (f *Host) List(context.Context) ([]hostfw.Entry, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []hostfw.Entry
	for _, e := range f.Kernel {
		if f.live(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *Host) Existing(_ context.Context, ps []netip.Prefix) (map[netip.Prefix]hostfw.Entry, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	out := map[netip.Prefix]hostfw.Entry{}
	for _, p := range ps {
		if e, ok := f.Kernel[p]; ok && f.live(e) {
			out[p] = e
		}
	}
	return out, nil
}

func (f *Host) Recorded() ([]hostfw.Entry, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return slices.Collect(maps.Values(f.Journal)), nil
}

func (f *Host) Status(context.Context) (hostfw.Status, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	fs := hostfw.FamilyStatus{Family: "ipv4", Set: "banshee4", SetOK: true, Entries: len(f.Kernel), Chain: true, Hooks: []string{"INPUT"}}
	if f.Unhooked {
		fs.Hooks = nil
	}
	return hostfw.Status{Families: []hostfw.FamilyStatus{fs}}, nil
}

func (f *Host) Restore(_ context.Context, check func(netip.Prefix) error) (hostfw.RestoreResult, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.Unhooked = false
	var res hostfw.RestoreResult
	for p, e := range f.Journal {
		if !e.ExpiresAt.IsZero() && !e.ExpiresAt.After(f.now()) {
			res.Expired++
			continue
		}
		if err := check(p); err != nil {
			res.Refused = append(res.Refused, hostfw.Refusal{Prefix: p, Why: err.Error()})
			continue
		}
		f.Kernel[p] = e
		res.Restored++
	}
	return res, nil
}
