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

type entry struct {
	key        key
	prev, next int32 // recency list; -1 ends it
	total      uint32
	trips      uint32
	n, pos     int32   // events in the ring, next slot
	times      []int64 // ring of the last max_retry event times (unix ns)
	first      int64
	last       int64
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
// recently is forgotten. Its memory is bounded by limit × (max_retry × 8 +
// about 150) bytes. It is not safe for concurrent use.
type Tracker struct {
	dets    []Detector
	limit   int
	index   map[key]int32
	ents    []entry
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
	return &Tracker{dets: dets, limit: limit, index: make(map[key]int32), head: -1, tail: -1}
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
	ts := at.UnixNano()
	e := t.get(keyOf(m.Addr, m.Detector), d.MaxRetry, ts)
	count := max(m.Count, 1)
	e.total += uint32(count)
	if ts > e.last {
		e.last = ts
	}
	if ts < e.first {
		e.first = ts
	}
	for range min(count, len(e.times)) {
		e.times[e.pos] = ts
		e.pos = (e.pos + 1) % int32(len(e.times))
		if int(e.n) < len(e.times) {
			e.n++
		}
	}
	if int(e.n) < len(e.times) {
		return Trip{}, false
	}
	oldest := e.times[e.pos] // the ring is full: the next slot is the oldest
	if ts-oldest > int64(d.FindTime) {
		return Trip{}, false
	}
	span := time.Duration(ts - oldest)
	tr := Trip{
		Detector: m.Detector,
		Addr:     m.Addr,
		Port:     m.Port,
		Evidence: int(e.n),
		Total:    int(e.total),
		First:    time.Unix(0, oldest),
		Last:     at,
		Rate:     float64(e.n) / max(span, time.Second).Seconds(),
	}
	e.trips++
	e.n, e.pos = 0, 0
	return tr, true
}

// get finds or creates the window of k with a ring of size ring and moves
// it to the front of the recency list.
func (t *Tracker) get(k key, ring int, ts int64) *entry {
	ring = max(ring, 1)
	if i, ok := t.index[k]; ok {
		e := &t.ents[i]
		t.unlink(i)
		t.pushFront(i)
		if len(e.times) != ring {
			e.times = make([]int64, ring)
			e.n, e.pos = 0, 0
		}
		return e
	}
	var i int32
	if len(t.index) >= t.limit {
		i = t.tail
		t.unlink(i)
		delete(t.index, t.ents[i].key)
		t.evicted++
		old := t.ents[i].times
		if cap(old) >= ring {
			old = old[:ring]
		} else {
			old = make([]int64, ring)
		}
		t.ents[i] = entry{times: old}
	} else {
		i = int32(len(t.ents))
		t.ents = append(t.ents, entry{times: make([]int64, ring)})
	}
	e := &t.ents[i]
	e.key, e.first, e.last = k, ts, ts
	t.index[k] = i
	t.pushFront(i)
	return e
}

func (t *Tracker) unlink(i int32) {
	e := &t.ents[i]
	if e.prev >= 0 {
		t.ents[e.prev].next = e.next
	} else if t.head == i {
		t.head = e.next
	}
	if e.next >= 0 {
		t.ents[e.next].prev = e.prev
	} else if t.tail == i {
		t.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (t *Tracker) pushFront(i int32) {
	e := &t.ents[i]
	e.prev, e.next = -1, t.head
	if t.head >= 0 {
		t.ents[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

// Sources calls fn for every window held, most recently seen first.
func (t *Tracker) Sources(fn func(Source)) {
	for i := t.head; i >= 0; i = t.ents[i].next {
		e := &t.ents[i]
		fn(Source{
			Detector: int(e.key.det),
			Addr:     e.key.Addr(),
			Count:    int(e.total),
			Trips:    int(e.trips),
			First:    time.Unix(0, e.first),
			Last:     time.Unix(0, e.last),
		})
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
