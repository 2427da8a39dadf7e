package detect

import "net/netip"

// Tally sums failures per source group and detector over one window the
// caller has already chosen (the Lambda's alarm evaluation window), with
// the weights and the grouping watch's Tracker applies: a probe counts
// its weight, not a whole failure, and addresses of one IPv6 /group_v6
// (IPv4 /group_v4) network count together, the group standing for itself
// once more than one of its addresses failed. It is not safe for
// concurrent use.
type Tally struct {
	dets  []Detector
	bits4 int
	bits6 int
	limit int
	index map[key]int
	ents  []tallyEntry
}

type tallyEntry struct {
	key    key
	member uint64 // the first failing address below the group prefix
	multi  bool   // more than one address of the group failed
	units  int    // weighted failures: FullWeight per authentication failure
	lines  int
}

// Sum is the tally of one source group for one detector.
type Sum struct {
	Detector int
	// Source is the address, or its group when more than one address of
	// the group failed (as Trip.Source).
	Source netip.Prefix
	// Failures is the weighted count in whole failures: the units of
	// every line (Match.Count × Match.Weight) divided by FullWeight.
	Failures int
	Lines    int // failure lines, each repeated line counted Match.Count times
	// Over reports Failures at or above the detector's max_retry.
	Over bool
}

// NewTally returns a tally for the matcher's detectors with its grouping
// (watch.group_v4, group_v6), holding at most limit groups (no bound when
// limit <= 0).
func (m *Matcher) NewTally(limit int) *Tally {
	return &Tally{dets: m.dets, bits4: m.bits4, bits6: m.bits6, limit: limit, index: map[key]int{}}
}

// Add counts a match and returns the id of its group's sum (see At). It
// returns false, counting nothing, when the match opens a new group and
// the tally already holds limit groups.
func (t *Tally) Add(mt Match) (int, bool) {
	if mt.Detector < 0 || mt.Detector >= len(t.dets) {
		return 0, false
	}
	k, member := keyOf(mt.Addr, mt.Detector, t.bits4, t.bits6)
	id, ok := t.index[k]
	if !ok {
		if t.limit > 0 && len(t.ents) >= t.limit {
			return 0, false
		}
		id = len(t.ents)
		t.index[k] = id
		t.ents = append(t.ents, tallyEntry{key: k, member: member})
	}
	e := &t.ents[id]
	if e.member != member {
		e.multi = true
	}
	n := min(max(mt.Count, 1), 1<<16)
	w := mt.Weight
	if w <= 0 || w > FullWeight {
		w = FullWeight
	}
	e.units += n * w
	e.lines += n
	return id, true
}

// Len returns the number of groups held; their ids are 0 to Len()-1 in
// the order they were first seen.
func (t *Tally) Len() int { return len(t.ents) }

// At returns the sum with id.
func (t *Tally) At(id int) Sum {
	e := &t.ents[id]
	det := int(e.key.det)
	s := Sum{
		Detector: det,
		Source:   e.key.prefix(e.member, e.multi),
		Failures: e.units / FullWeight,
		Lines:    e.lines,
	}
	s.Over = s.Failures >= max(t.dets[det].MaxRetry, 1)
	return s
}
