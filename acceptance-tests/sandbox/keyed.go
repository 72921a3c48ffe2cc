package sandbox

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// Profiles sorted by email or by a suppression timestamp are in no index order, so each such listing
// needs every profile's key. Computing them per request rendered all profiles for every page of
// global_exclusions and list_exclusions (about half a second of CPU at 50,000 profiles), and with many
// pages in flight the sandbox fell behind on its own rate windows. A world's profiles never change, so
// the sorted keys are computed once per world and a page is a binary search plus the page's records.

// keyedIndex memoises, for one world, its profiles in the order of each keyed sort field. It is the
// world's only mutable part, and only a memo: every new world (Advance, AdvanceQuiet, RemoveMember)
// starts with an empty one, so it can never describe other records than its world's. It holds at most
// one list per keyed sort of /api/profiles (three), as many positions each as the world has profiles:
// what one request used to allocate.
type keyedIndex struct {
	mu    sync.Mutex
	lists map[string]*keyedList
}

func newKeyedIndex() *keyedIndex { return &keyedIndex{lists: map[string]*keyedList{}} }

// keyedList is every profile of one world in ascending (key, index) order of one sort field, keyed
// as the listing always keyed them: normKey of the rendered profile's field.
type keyedList struct {
	once sync.Once
	pos  []position
	// ranged tells that a range term on the field selects a run of pos: the profiles whose value holds
	// exactly one instant are pos[timed:], in non-decreasing instant order, times[j] being pos[timed+j]'s,
	// and every other profile (no instant, so no range term matches it) sorts before them. Emails hold
	// no instants (timed is len(pos)). When the values do not have that shape (a value with two instants,
	// or one with none sorting after one with one), range terms on the field go to the per-profile matcher.
	ranged bool
	timed  int
	times  []tval
}

// list returns the world's profiles sorted by field, building the list on first use. Requests that
// need it at once wait for one build rather than each doing it.
func (x *keyedIndex) list(w *world, field string) *keyedList {
	x.mu.Lock()
	l, ok := x.lists[field]
	if !ok {
		l = &keyedList{}
		x.lists[field] = l
	}
	x.mu.Unlock()
	l.once.Do(func() { l.build(w, field) })
	return l
}

// instants counts how many instants a range term would compare in a field value, and returns the
// instant when there is exactly one. It mirrors pred.matches with a datetime: a list holds if any
// element does, a string is read as RFC 3339, anything else never matches.
func instants(v any) (tval, int) {
	switch x := v.(type) {
	case []any:
		var t tval
		n := 0
		for _, e := range x {
			et, en := instants(e)
			if en > 0 {
				t, n = et, n+en
			}
		}
		return t, n
	case tval:
		return x, 1
	case string:
		pt, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return 0, 0
		}
		return timeOf(pt), 1
	}
	return 0, 0
}

// build sorts every profile of w by field and finds whether range terms on it select runs.
func (l *keyedList) build(w *world, field string) {
	type entry struct {
		pos position
		t   tval
		n   int
	}
	// No query: a profile's sort keys do not depend on what the request includes or adds.
	c := &rctx{w: w}
	n := w.pop(kProfile).total()
	es := make([]entry, n)
	for i := range n {
		v := c.profile(i, profVariantPlain).field(field)
		t, k := instants(v)
		es[i] = entry{pos: position{Key: normKey(v), Idx: i}, t: t, n: k}
	}
	slices.SortFunc(es, func(a, b entry) int { return comparePos(a.pos, b.pos) })
	l.pos = make([]position, n)
	l.timed = len(es)
	for j := range es {
		l.pos[j] = es[j].pos
		if es[j].n > 0 && l.timed == len(es) {
			l.timed = j
		}
	}
	l.ranged = true
	l.times = make([]tval, 0, len(es)-l.timed)
	for _, e := range es[l.timed:] {
		if e.n != 1 || len(l.times) > 0 && e.t < l.times[len(l.times)-1] {
			l.ranged, l.times = false, nil
			break
		}
		l.times = append(l.times, e.t)
	}
}

// keyedSource lists /api/profiles by a keyed sort: the run of the world's sorted list that the range
// terms on the sort field select, less the profiles the other terms reject.
func (c *rctx) keyedSource(render func(int64) *record) *keyedSource {
	field := c.q.sortField
	l := c.w.keyed.list(c.w, field)
	lo, hi := 0, len(l.pos)
	// from is where the instants meeting cond begin in pos.
	from := func(cond func(tval) bool) int {
		return l.timed + sort.Search(len(l.times), func(j int) bool { return cond(l.times[j]) })
	}
	var rest []pred
	for _, p := range c.q.filter {
		if !l.ranged || p.field != field || p.noVal || p.val.kind != vTime {
			rest = append(rest, p)
			continue
		}
		t := p.val.t
		switch p.op {
		case "greater-than":
			lo = max(lo, from(func(x tval) bool { return x > t }))
		case "greater-or-equal":
			lo = max(lo, from(func(x tval) bool { return x >= t }))
		case "less-than":
			lo, hi = max(lo, l.timed), min(hi, from(func(x tval) bool { return x >= t }))
		case "less-or-equal":
			lo, hi = max(lo, l.timed), min(hi, from(func(x tval) bool { return x > t }))
		default:
			rest = append(rest, p)
		}
	}
	hi = max(hi, lo)
	return &keyedSource{pos: l.pos[lo:hi], match: c.predMatcher(rest, profVariantPlain), rend: render}
}

// keyedSource is a run of a sorted keyedList; match, when set, drops the profiles the filter terms
// the run does not enforce reject. Records are rendered only for the page.
type keyedSource struct {
	pos   []position
	match func(int64) bool
	rend  func(int64) *record
}

func (k *keyedSource) each(desc bool, after *position, fn func(position) bool) {
	eachPos(k.pos, desc, after, k.match, fn)
}

func (k *keyedSource) render(p position) *record { return k.rend(p.Idx) }
