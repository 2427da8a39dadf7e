package main

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/banshee-project/banshee/hostfw"
)

// fakeHostFW stands in for this machine's firewall: a stateful set with a
// journal, behaving like hostfw.Firewall for the engine.
type fakeHostFW struct {
	mu       sync.Mutex
	entries  map[string]hostfw.Entry // kernel
	recorded map[string]hostfw.Entry // journal
	now      func() time.Time
}

func newFakeHostFW() *fakeHostFW {
	return &fakeHostFW{entries: map[string]hostfw.Entry{}, recorded: map[string]hostfw.Entry{}, now: time.Now}
}

func (f *fakeHostFW) Block(_ context.Context, es []hostfw.Entry) (hostfw.BlockResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res hostfw.BlockResult
	for _, e := range es {
		if e.TTL > 0 {
			e.ExpiresAt = f.now().Add(e.TTL)
		}
		if _, ok := f.entries[e.Prefix.String()]; ok {
			res.Refreshed = append(res.Refreshed, e.Prefix)
		} else {
			res.Added++
		}
		f.entries[e.Prefix.String()] = e
		f.recorded[e.Prefix.String()] = e
	}
	return res, nil
}

func (f *fakeHostFW) Unblock(_ context.Context, ps []netip.Prefix) ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var absent []netip.Prefix
	for _, p := range ps {
		if _, ok := f.entries[p.String()]; !ok {
			absent = append(absent, p)
		}
		delete(f.entries, p.String())
		delete(f.recorded, p.String())
	}
	return absent, nil
}

func (f *fakeHostFW) List(context.Context) ([]hostfw.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hostfw.Entry
	for _, e := range f.entries {
		out = append(out, e)
	}
	return out, nil
}

func (f *fakeHostFW) Existing(_ context.Context, ps []netip.Prefix) (map[netip.Prefix]hostfw.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[netip.Prefix]hostfw.Entry{}
	for _, p := range ps {
		if e, ok := f.entries[p.String()]; ok {
			out[p] = e
		}
	}
	return out, nil
}

func (f *fakeHostFW) Recorded() ([]hostfw.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []hostfw.Entry
	for _, e := range f.recorded {
		out = append(out, e)
	}
	return out, nil
}

func (f *fakeHostFW) Status(context.Context) (hostfw.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return hostfw.Status{Families: []hostfw.FamilyStatus{{Family: "ipv4", Set: "banshee4", SetOK: true, Entries: len(f.entries), Chain: true, Hooks: []string{"INPUT"}}}}, nil
}

func (f *fakeHostFW) Restore(_ context.Context, check func(netip.Prefix) error) (hostfw.RestoreResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, e := range f.recorded {
		if check(e.Prefix) == nil {
			f.entries[k] = e
		}
	}
	return hostfw.RestoreResult{Restored: len(f.recorded)}, nil
}
