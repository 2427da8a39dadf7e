package detect

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// DefaultLimit is the number of (source, detector) windows a Tracker keeps
// by default.
const DefaultLimit = 200_000

type key struct {
	addr [16]byte
	det  uint16
	v4   bool
}

func keyOf(a netip.Addr, det int) key {
	return key{addr: a.As16(), det: uint16(det), v4: a.Is4()}
}

func (k key) Addr() netip.Addr {
	a := netip.AddrFrom16(k.addr)
	if k.v4 {
		return a.Unmap()
	}
	return a
}

// entChunk is the number of entries per chunk of the table.
const entChunk = 4096

// ent returns entry i.
func (t *Tracker) ent(i int32) *entry { return &t.ents[i/entChunk][i%entChunk] }

// ringInline is how many event times a window keeps inline; windows of
// detectors with a larger max_retry keep theirs in Tracker.big.
const ringInline = 6

// entry is one window. It holds no pointers (the garbage collector never
// scans the table) and times are seconds since Tracker.base, so a window
// costs about 100 bytes with its index entry.
type entry struct {
	key        key
	prev, next int32 // recency list; -1 ends it
	total      uint32
	trips      uint16
	n, pos     uint8  // events in the ring, next slot
	ringLen    uint8  // the ring's size (max_retry, at most 255)
	first      uint32 // seconds since base
	last       uint32
	ring       [ringInline]uint32
}

// Trip is a source crossing a detector's threshold: max_retry failures
// within find_time.
type Trip struct {
	Detector int
	Addr     netip.Addr
	Port     policy.Port
	Evidence int       // failures within the window
	Total    int       // failures seen from this source by this detector
	First    time.Time // the oldest failure of the window
	Last     time.Time // the failure that crossed the threshold
	Rate     float64   // failures per second over the window (at least one second)
}

// Source is the tally of one source for one detector.
type Source struct {
	Detector int
	Addr     netip.Addr
	Count    int       // failures seen
	Trips    int       // times the threshold was crossed
	First    time.Time // first failure seen
	Last     time.Time // last failure seen
}

// Tracker keeps a sliding window per source and detector. It holds at most
// limit windows; when a new source would exceed that, the one seen least
// recently is forgotten. A window costs about 100 bytes (plus 4 per event
// beyond six for detectors with a larger max_retry); times have a
// resolution of one second. It is not safe for concurrent use.
type Tracker struct {
	dets    []Detector
	limit   int
	index   map[key]int32
	ents    [][]entry          // chunks of entChunk entries
	n       int                // entries used
	big     map[int32][]uint32 // rings longer than ringInline, by entry
	base    int64              // unix seconds of time 0 of the entries
	baseSet bool
	head    int32 // most recently seen
	tail    int32 // least recently seen
	evicted int
}

// NewTracker returns a tracker for the detectors of a matcher holding at
// most limit windows (DefaultLimit when limit <= 0).
func NewTracker(dets []Detector, limit int) *Tracker {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Tracker{dets: dets, limit: limit, index: make(map[key]int32), big: map[int32][]uint32{}, head: -1, tail: -1}
}

// SetDetectors replaces the detectors (after a configuration reload) while
// keeping the windows of detectors whose index is unchanged; a window's
// ring is resized to the new max_retry on its next event.
func (t *Tracker) SetDetectors(dets []Detector) { t.dets = dets }

// Len returns the number of windows held.
func (t *Tracker) Len() int { return len(t.index) }

// Evicted returns how many windows were forgotten to stay within the limit.
func (t *Tracker) Evicted() int { return t.evicted }

// Observe adds a failure line. now is used when the line has no
// timestamp. It reports a trip when the source has now failed max_retry
// times within find_time; the window then starts afresh.
func (t *Tracker) Observe(m Match, now time.Time) (Trip, bool) {
	if m.Detector < 0 || m.Detector >= len(t.dets) {
		return Trip{}, false
	}
	d := &t.dets[m.Detector]
	at := m.Time
	if at.IsZero() {
		at = now
	}
	sec := t.secs(at)
	id, e := t.get(keyOf(m.Addr, m.Detector), d.MaxRetry, sec)
	ring := t.ring(id, e)
	count := max(m.Count, 1)
	e.total += uint32(count)
	e.last = max(e.last, sec)
	e.first = min(e.first, sec)
	for range min(count, len(ring)) {
		ring[e.pos] = sec
		e.pos = uint8((int(e.pos) + 1) % len(ring))
		if int(e.n) < len(ring) {
			e.n++
		}
	}
	if int(e.n) < len(ring) {
		return Trip{}, false
	}
	oldest := ring[e.pos] // the ring is full: the next slot is the oldest
	span := time.Duration(int64(sec)-int64(oldest)) * time.Second
	if span > d.FindTime {
		return Trip{}, false
	}
	tr := Trip{
		Detector: m.Detector,
		Addr:     m.Addr,
		Port:     m.Port,
		Evidence: int(e.n),
		Total:    int(e.total),
		First:    t.time(oldest),
		Last:     at,
		Rate:     float64(e.n) / max(span, time.Second).Seconds(),
	}
	if e.trips < 1<<16-1 {
		e.trips++
	}
	e.n, e.pos = 0, 0
	return tr, true
}

// secs converts a time to seconds since the tracker's base, which is set a
// long way before the first time seen so earlier lines still fit.
func (t *Tracker) secs(at time.Time) uint32 {
	u := at.Unix()
	if !t.baseSet {
		t.base, t.baseSet = u-1<<30, true
	}
	d := u - t.base
	switch {
	case d < 0:
		return 0
	case d > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(d)
}

func (t *Tracker) time(s uint32) time.Time { return time.Unix(t.base+int64(s), 0) }

// ring returns the event ring of entry id.
func (t *Tracker) ring(id int32, e *entry) []uint32 {
	if int(e.ringLen) <= ringInline {
		return e.ring[:e.ringLen]
	}
	return t.big[id]
}

// get finds or creates the window of k with a ring of size ring and moves
// it to the front of the recency list.
func (t *Tracker) get(k key, ring int, sec uint32) (int32, *entry) {
	ring = min(max(ring, 1), 255)
	if i, ok := t.index[k]; ok {
		e := t.ent(i)
		t.unlink(i)
		t.pushFront(i)
		if int(e.ringLen) != ring {
			t.setRing(i, e, ring)
		}
		return i, e
	}
	var i int32
	if len(t.index) >= t.limit {
		i = t.tail
		t.unlink(i)
		delete(t.index, t.ent(i).key)
		delete(t.big, i)
		t.evicted++
		*t.ent(i) = entry{}
	} else {
		i = int32(t.n)
		if t.n%entChunk == 0 {
			// chunks, not one growing slice: growth never copies the table
			t.ents = append(t.ents, make([]entry, entChunk))
		}
		t.n++
	}
	e := t.ent(i)
	e.key, e.first, e.last = k, sec, sec
	t.setRing(i, e, ring)
	t.index[k] = i
	t.pushFront(i)
	return i, e
}

func (t *Tracker) setRing(i int32, e *entry, ring int) {
	e.ringLen, e.n, e.pos = uint8(ring), 0, 0
	if ring > ringInline {
		t.big[i] = make([]uint32, ring)
	} else {
		delete(t.big, i)
	}
}

func (t *Tracker) unlink(i int32) {
	e := t.ent(i)
	if e.prev >= 0 {
		t.ent(e.prev).next = e.next
	} else if t.head == i {
		t.head = e.next
	}
	if e.next >= 0 {
		t.ent(e.next).prev = e.prev
	} else if t.tail == i {
		t.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (t *Tracker) pushFront(i int32) {
	e := t.ent(i)
	e.prev, e.next = -1, t.head
	if t.head >= 0 {
		t.ent(t.head).prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

// Sources calls fn for every window held, most recently seen first.
func (t *Tracker) Sources(fn func(Source)) {
	for i := t.head; i >= 0; i = t.ent(i).next {
		fn(t.At(i))
	}
}

// IDs returns the ids of every window held, most recently seen first, for
// callers that order many windows without copying them (see At).
func (t *Tracker) IDs() []int32 {
	ids := make([]int32, 0, len(t.index))
	for i := t.head; i >= 0; i = t.ent(i).next {
		ids = append(ids, i)
	}
	return ids
}

// At returns the window with id (from IDs); ids change when windows are
// added or forgotten.
func (t *Tracker) At(id int32) Source {
	e := t.ent(id)
	return Source{
		Detector: int(e.key.det),
		Addr:     e.key.Addr(),
		Count:    int(e.total),
		Trips:    int(e.trips),
		First:    t.time(e.first),
		Last:     t.time(e.last),
	}
}

// Attack turns a trip into what the policy engine decides on: one source,
// the detector's port and kind, origin watch.
func Attack(d Detector, tr Trip) policy.Attack {
	return policy.Attack{
		Sources:  []netip.Prefix{policy.Canonical(netip.PrefixFrom(tr.Addr, tr.Addr.BitLen()))},
		Port:     tr.Port,
		Evidence: tr.Evidence,
		Rate:     tr.Rate,
		Window:   d.FindTime,
		Kind:     d.Kind,
		Origin:   policy.OriginWatch,
		Reason:   fmt.Sprintf("%s: %d failures within %s", d.Name, tr.Evidence, d.FindTime),
	}
}
