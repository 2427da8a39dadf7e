package hostfw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
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
	Restored int       // entries put back with their remaining TTL
	Expired  int       // entries whose time had run out
	Refused  []Refusal // records the protection check turned down
	Damaged  []Damage  // records that could not be read, skipped
}

// Refusal is a recorded block that Restore did not put back.
type Refusal struct {
	Prefix netip.Prefix `json:"prefix"`
	Why    string       `json:"why"`
}

// Restore re-creates chain, hooks and sets and puts back every saved or
// journaled block with its remaining TTL. It is what runs at boot.
//
// check, when not nil, is asked about every record (the protected-network
// check of the policy): a record it returns an error for is not restored and
// is reported in Refused. A record that cannot be read is skipped and
// reported in Damaged; the rest is restored. Restore fails when there were
// records and none could be read, and refuses a state directory others can
// write or a journal that is a symbolic link.
func (f *Firewall) Restore(ctx context.Context, check func(netip.Prefix) error) (RestoreResult, error) {
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
	res.Damaged = saved.damaged
	now := f.now()
	var keep []Entry
	for _, e := range saved.entries {
		if reason := restoreRefusal(e.Prefix, check); reason != "" {
			res.Refused = append(res.Refused, Refusal{Prefix: e.Prefix, Why: reason})
			continue
		}
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
	if saved.records == 0 && len(saved.damaged) > 0 && !saved.torn {
		return res, fmt.Errorf("no record in %s could be read (%d damaged, first %s); chain and sets are set up empty", f.state.dir, len(saved.damaged), saved.damaged[0])
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
	if err := f.state.keepDamaged(saved.damaged); err != nil {
		return res, err
	}
	if err := f.state.writeSnapshot(keep, now); err != nil {
		return res, err
	}
	return res, nil
}

// restoreRefusal says why a recorded prefix must not come back, or "".
func restoreRefusal(p netip.Prefix, check func(netip.Prefix) error) string {
	if !p.IsValid() || p.Bits() == 0 {
		return "covers every address"
	}
	if check != nil {
		if err := check(p); err != nil {
			return err.Error()
		}
	}
	return ""
}
