package hostfw

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// setTester answers whether one exact entry is in a set (one netlink
// message), so a few targets can be checked without listing the set.
type setTester interface {
	test(set string, p netip.Prefix) (bool, error)
}

// setLister lists a set's entries with their timeouts and comments over
// netlink, building entries only for the prefixes keep picks.
type setLister interface {
	entries(set string, now time.Time, keep func(netip.Prefix) bool) ([]Entry, error)
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
	// The families to list: those of the prefixes, or after a probe only
	// those where a prefix is there (a re-block lists one set, not both).
	fams := map[Family]bool{}
	for _, p := range prefixes {
		fams[FamilyOf(p)] = true
	}
	if t, ok := f.sets.(setTester); ok && len(prefixes) <= probeLimit {
		found := map[Family]bool{}
		for _, p := range prefixes {
			in, err := t.test(f.setName(FamilyOf(p)), p)
			if err != nil {
				found = fams // cannot tell: list below
				break
			}
			if in {
				found[FamilyOf(p)] = true
			}
		}
		if len(found) == 0 {
			return out, nil
		}
		fams = found
	}
	want := make(map[netip.Prefix]bool, len(prefixes))
	for _, p := range prefixes {
		want[p.Masked()] = true
	}
	var list []Family
	for _, fam := range []Family{V4, V6} {
		if fams[fam] {
			list = append(list, fam)
		}
	}
	es, err := f.listSets(ctx, list, func(p netip.Prefix) bool { return want[p.Masked()] })
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

// listSets lists the entries of the families' sets whose prefixes keep
// picks (nil: all): over netlink without a process, passing over the other
// entries (a re-block among 100,000 entries builds one), or from "ipset
// save" when netlink cannot list.
func (f *Firewall) listSets(ctx context.Context, fams []Family, keep func(netip.Prefix) bool) ([]Entry, error) {
	if keep == nil {
		keep = func(netip.Prefix) bool { return true }
	}
	if l, ok := f.sets.(setLister); ok {
		if out, err := f.listNetlink(l, fams, keep); err == nil {
			return out, nil
		}
	}
	es, err := f.listFamilies(ctx, fams...)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(es, func(e Entry) bool { return !keep(e.Prefix) }), nil
}

// listNetlink is listSets over netlink; a missing set has no entries.
func (f *Firewall) listNetlink(l setLister, fams []Family, keep func(netip.Prefix) bool) ([]Entry, error) {
	var out []Entry
	now := f.now()
	for _, fam := range fams {
		es, err := l.entries(f.setName(fam), now, keep)
		if err != nil && !errors.Is(err, errNoSet) {
			return nil, err
		}
		out = append(out, es...)
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
