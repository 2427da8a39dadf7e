package hostfw

import (
	"context"
	"net/netip"
)

// setTester answers whether one exact entry is in a set (one netlink
// message), so a few targets can be checked without listing the set.
type setTester interface {
	test(set string, p netip.Prefix) (bool, error)
}

// Existing returns the entries among prefixes that the kernel's sets hold
// now (exact prefix), with their expiry, reason and origin. A few prefixes
// are tested one by one first, and the set is listed (once) only when one of
// them is there; many prefixes list the sets once.
func (f *Firewall) Existing(ctx context.Context, prefixes []netip.Prefix) (map[netip.Prefix]Entry, error) {
	out := map[netip.Prefix]Entry{}
	if len(prefixes) == 0 {
		return out, nil
	}
	if t, ok := f.sets.(setTester); ok && len(prefixes) <= probeLimit {
		any := false
		for _, p := range prefixes {
			in, err := t.test(f.setName(FamilyOf(p)), p)
			if err != nil {
				any = true // cannot tell: list below
				break
			}
			any = any || in
		}
		if !any {
			return out, nil
		}
	}
	want := make(map[netip.Prefix]bool, len(prefixes))
	for _, p := range prefixes {
		want[p.Masked()] = true
	}
	es, err := f.list(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if want[e.Prefix.Masked()] {
			out[e.Prefix.Masked()] = e
		}
	}
	return out, nil
}

// Recorded returns the blocks the state directory records as wanted (the
// snapshot and the journal after it), with their absolute expiry: the
// desired state that List's kernel view is compared with.
func (f *Firewall) Recorded() ([]Entry, error) {
	if f.state == nil || f.state.dir == "" {
		return nil, ErrNoStateDir
	}
	l, err := f.state.load()
	if err != nil {
		return nil, err
	}
	return l.entries, nil
}
