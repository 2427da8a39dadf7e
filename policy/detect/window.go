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
	addr [16]byte // the group's network address
	det  uint16
	v4   bool
	bits uint8 // the group's prefix length
}

// keyOf returns the window key of a: its group (the /bits network holding
// it) and detector, and the address's bits below the group (its member).
func keyOf(a netip.Addr, det, bits4, bits6 int) (key, uint64) {
	b := a.As16()
	bits := bits6
	if a.Is4() {
		bits = 96 + bits4
	}
	var member uint64
	for i := bits; i < 128; i++ {
		byt, bit := i/8, 7-uint(i%8)
		member = member<<1 | uint64(b[byt]>>bit&1)
		b[byt] &^= 1 << bit
	}
	k := key{addr: b, det: uint16(det), v4: a.Is4(), bits: uint8(bits)}
	return k, member
}

// Addr returns the group's network address.
func (k key) Addr() netip.Addr {
	a := netip.AddrFrom16(k.addr)
	if k.v4 {
		return a.Unmap()
	}
	return a
}

// member returns the address of the group holding member below the
// group's prefix.
func (k key) member(m uint64) netip.Addr {
	b := k.addr
	for i := 127; i >= int(k.bits); i-- {
		if m&1 != 0 {
			b[i/8] |= 1 << (7 - uint(i%8))
		}
		m >>= 1
	}
	a := netip.AddrFrom16(b)
	if k.v4 {
		return a.Unmap()
	}
	return a
}

// prefix returns the group as a prefix (a single address when the group
// has one member).
func (k key) prefix(member uint64, multi bool) netip.Prefix {
	if !multi {
		a := k.member(member)
		return netip.PrefixFrom(a, a.BitLen())
	}
	bits := int(k.bits)
	if k.v4 {
		bits -= 96
	}
	return netip.PrefixFrom(k.Addr(), bits)
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
	part       uint8  // weight below one full failure, not yet in the ring
	multi      bool   // more than one address of the group failed
	first      uint32 // seconds since base
	last       uint32
	partAt     uint32 // when the partial weight started
	longStart  uint32 // start of the long window's current bucket
	longCur    uint16 // failures in the current bucket
	longPrev   uint16 // failures in the bucket before
	member     uint64 // the first failing address below the group prefix
	ring       [ringInline]uint32
}

// Trip is a source crossing a detector's threshold: max_retry failures
// within find_time.
type Trip struct {
	Detector int
	Addr     netip.Addr
	// Source is what crossed the threshold: the address, or the group
	// (an IPv6 /64 by default) when more than one of its addresses failed.
	Source   netip.Prefix
	Port     policy.Port
	Evidence int           // failures (weighted, in whole failures) within the window
	Total    int           // failure lines seen from this source by this detector
	First    time.Time     // the oldest failure of the window
	Last     time.Time     // the failure that crossed the threshold
	Rate     float64       // failures per second over the window (at least one second)
	Window   time.Duration // the window crossed: the detector's find_time or its long window
}

// Source is the tally of one source for one detector.
type Source struct {
	Detector int
	Addr     netip.Addr
	Prefix   netip.Prefix // Addr as a prefix, or its group when several of its addresses failed
	Count    int          // failures seen
	Trips    int          // times the threshold was crossed
	First    time.Time    // first failure seen
	Last     time.Time    // last failure seen
}

// Tracker keeps a sliding window per source and detector. It holds at most
// limit windows; when a new source would exceed that, the one seen least
// recently is forgotten. A window costs about 100 bytes (plus 4 per event
// beyond six for detectors with a larger max_retry); times have a
// resolution of one second. It is not safe for concurrent use.
type Tracker struct {
	dets    []Detector
	limit   int
	bits4   int // group prefix lengths (32 and 128: every address alone)
	bits6   int
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
	return &Tracker{dets: dets, limit: limit, bits4: 32, bits6: 128, index: make(map[key]int32), big: map[int32][]uint32{}, head: -1, tail: -1}
}

// GroupBy makes failures of addresses within one IPv4 /bits4 and one IPv6
// /bits6 network count together toward the threshold (32 and 128: each
// address alone). A group whose window holds one address trips as that
// address; one with several as the network. Call it before the first
// Observe.
func (t *Tracker) GroupBy(bits4, bits6 int) {
	t.bits4, t.bits6 = min(max(bits4, 16), 32), min(max(bits6, 64), 128) // members fit 64 bits
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
// times (weighted: a probe counts less than an authentication failure)
// within find_time, or long_max_retry times within long_find_time; the
// window then starts afresh.
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
	k, member := keyOf(m.Addr, m.Detector, t.bits4, t.bits6)
	id, e, fresh := t.get(k, d.MaxRetry, sec)
	if fresh {
		e.member = member
	} else if e.member != member {
		e.multi = true
	}
	ring := t.ring(id, e)
	count := min(max(m.Count, 1), 1<<16)
	w := m.Weight
	if w <= 0 || w > FullWeight {
		w = FullWeight
	}
	e.total += uint32(count)
	e.last = max(e.last, sec)
	e.first = min(e.first, sec)
	// whole failures: the weight carried over (if still within the
	// window) plus this line's; the remainder waits for the next probe
	if e.part > 0 && time.Duration(sec-min(e.partAt, sec))*time.Second > d.FindTime {
		e.part = 0
	}
	firstAt := sec
	if e.part > 0 {
		firstAt = e.partAt
	}
	units := int(e.part) + count*w
	full := units / FullWeight
	e.part = uint8(units % FullWeight)
	if e.part > 0 && full > 0 || e.part > 0 && firstAt == sec {
		e.partAt = sec
	}
	if full == 0 {
		return Trip{}, false
	}
	for i := range min(full, len(ring)) {
		ts := sec
		if i == 0 {
			ts = firstAt
		}
		ring[e.pos] = ts
		e.pos = uint8((int(e.pos) + 1) % len(ring))
		if int(e.n) < len(ring) {
			e.n++
		}
	}
	if tr, ok := t.longObserve(d, e, full, sec, at, m); ok {
		return tr, true
	}
	if int(e.n) < len(ring) {
		return Trip{}, false
	}
	oldest := ring[e.pos] // the ring is full: the next slot is the oldest
	span := time.Duration(int64(sec)-int64(oldest)) * time.Second
	if span > d.FindTime {
		return Trip{}, false
	}
	tr := t.trip(e, m, at)
	tr.Evidence, tr.First, tr.Window = int(e.n), t.time(oldest), d.FindTime
	tr.Rate = float64(e.n) / max(span, time.Second).Seconds()
	e.n, e.pos, e.longCur, e.longPrev = 0, 0, 0, 0
	return tr, true
}

// trip fills what every trip of e says and starts the group afresh.
func (t *Tracker) trip(e *entry, m Match, at time.Time) Trip {
	tr := Trip{
		Detector: m.Detector,
		Addr:     m.Addr,
		Source:   e.key.prefix(e.member, e.multi),
		Port:     m.Port,
		Total:    int(e.total),
		Last:     at,
	}
	if e.trips < 1<<16-1 {
		e.trips++
	}
	e.multi = false
	_, e.member = keyOf(m.Addr, m.Detector, t.bits4, t.bits6)
	return tr
}

// longObserve counts full failures into the long window: two buckets of
// long_find_time, the previous one weighted by how much of it the sliding
// window still covers (an estimate that is exact while the first bucket
// lasts and errs by at most the previous bucket's count after).
func (t *Tracker) longObserve(d *Detector, e *entry, full int, sec uint32, at time.Time, m Match) (Trip, bool) {
	if d.LongMaxRetry <= 0 || d.LongFindTime <= 0 {
		return Trip{}, false
	}
	l := uint32(min(d.LongFindTime/time.Second, 1<<31))
	if l == 0 {
		return Trip{}, false
	}
	switch {
	case e.longCur == 0 && e.longPrev == 0:
		e.longStart = sec
	case sec >= e.longStart+l:
		k := (sec - e.longStart) / l
		if k == 1 {
			e.longPrev = e.longCur
		} else {
			e.longPrev = 0
		}
		e.longCur = 0
		e.longStart += k * l
	}
	e.longCur = uint16(min(int(e.longCur)+full, 1<<16-1))
	into := float64(sec-min(e.longStart, sec)) / float64(l)
	est := float64(e.longPrev)*(1-into) + float64(e.longCur)
	if est < float64(d.LongMaxRetry) {
		return Trip{}, false
	}
	tr := t.trip(e, m, at)
	tr.Evidence, tr.Window = int(est), d.LongFindTime
	tr.First = t.time(e.first)
	if e.longPrev == 0 {
		tr.First = t.time(e.longStart)
	}
	span := max(at.Sub(tr.First), time.Second)
	tr.Rate = est / span.Seconds()
	e.n, e.pos, e.longCur, e.longPrev = 0, 0, 0, 0
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
func (t *Tracker) get(k key, ring int, sec uint32) (int32, *entry, bool) {
	ring = min(max(ring, 1), 255)
	if i, ok := t.index[k]; ok {
		e := t.ent(i)
		t.unlink(i)
		t.pushFront(i)
		if int(e.ringLen) != ring {
			t.setRing(i, e, ring)
		}
		return i, e, false
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
	return i, e, true
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
	p := e.key.prefix(e.member, e.multi)
	return Source{
		Detector: int(e.key.det),
		Addr:     p.Addr(),
		Prefix:   p,
		Count:    int(e.total),
		Trips:    int(e.trips),
		First:    t.time(e.first),
		Last:     t.time(e.last),
	}
}

// Attack turns a trip into what the policy engine decides on: one source,
// the detector's port and kind, origin watch.
func Attack(d Detector, tr Trip) policy.Attack {
	src := tr.Source
	if !src.IsValid() {
		src = netip.PrefixFrom(tr.Addr, tr.Addr.BitLen())
	}
	window := tr.Window
	if window == 0 {
		window = d.FindTime
	}
	reason := fmt.Sprintf("%s: %d failures within %s", d.Name, tr.Evidence, window)
	if src.Bits() < src.Addr().BitLen() {
		reason = fmt.Sprintf("%s: %d failures from addresses of %s within %s", d.Name, tr.Evidence, src, window)
	}
	return policy.Attack{
		Sources:  []netip.Prefix{policy.Canonical(src)},
		Port:     tr.Port,
		Evidence: tr.Evidence,
		Rate:     tr.Rate,
		Window:   window,
		Kind:     d.Kind,
		Origin:   policy.OriginWatch,
		Reason:   reason,
	}
}
