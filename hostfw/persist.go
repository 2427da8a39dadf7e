package hostfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNoStateDir means persistence was asked for without a state directory.
var ErrNoStateDir = errors.New("no state directory configured")

// Save writes the kernel's current blocks to the state directory as the new
// snapshot, with their absolute expiry, and empties the journal.
func (f *Firewall) Save(ctx context.Context) (int, error) {
	unlock, err := f.lockState()
	if err != nil {
		return 0, err
	}
	defer unlock()
	es, err := f.list(ctx)
	if err != nil {
		return 0, err
	}
	if err := f.state.writeSnapshot(es, f.now()); err != nil {
		return 0, err
	}
	return len(es), nil
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Restored int // entries put back with their remaining TTL
	Expired  int // entries whose time had run out
}

// Restore re-creates chain, hooks and sets and puts back every saved or
// journaled block with its remaining TTL. It is what runs at boot.
func (f *Firewall) Restore(ctx context.Context) (RestoreResult, error) {
	var res RestoreResult
	unlock, err := f.lockState()
	if err != nil {
		return res, err
	}
	defer unlock()
	saved, err := f.state.load()
	if err != nil {
		return res, err
	}
	now := f.now()
	var keep []Entry
	for _, e := range saved {
		if !e.ExpiresAt.IsZero() {
			left := e.ExpiresAt.Sub(now)
			if left < time.Second {
				res.Expired++
				continue
			}
			e.TTL = left
		}
		keep = append(keep, e)
	}
	for _, fam := range []Family{V4, V6} {
		h, err := f.header(ctx, fam)
		if err != nil {
			return res, err
		}
		if err := f.setup(ctx, fam, h); err != nil {
			return res, err
		}
	}
	if len(keep) > 0 {
		buf := make([]byte, 0, len(keep)*64)
		for _, e := range keep {
			buf = appendSetAdd(buf, f.setName(FamilyOf(e.Prefix)), e)
		}
		if _, err := f.r.run(ctx, bytes.NewReader(buf), f.t.ipset, "-exist", "restore"); err != nil {
			return res, fmt.Errorf("restoring %d entries: %w", len(keep), classify(err))
		}
	}
	res.Restored = len(keep)
	for i := range keep {
		if keep[i].TTL > 0 {
			keep[i].ExpiresAt = now.Add(keep[i].TTL)
		}
	}
	if err := f.state.writeSnapshot(keep, now); err != nil {
		return res, err
	}
	return res, nil
}
