package source

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// window is one slice of a stream's cursor axis, [lo, hi), read by one query. A zero lo means "from the
// beginning" and a zero hi "no upper bound" (endpoints without an upper-bound operator).
type window struct {
	variant string
	lo, hi  time.Time
	sorted  bool

	started bool
	done    bool
	// maxSeen is the largest cursor value of the records written from this window so far, and atMax the ids of
	// the records written with exactly that value.
	maxSeen time.Time
	atMax   []string
	// recent are the records seen (written, or skipped as written before) within the lookback of maxSeen: what a
	// state must list so the next sync's re-read of its lookback skips them.
	recent []seenID

	// What splitting needs (split.go), all under the tracker's lock. admitted is how many resources the read let
	// through, first and last the cursors of the first and the latest of them: the window's density so far, and
	// the floor below which a split may not cut (a resource admitted is being written by this read). density is
	// the records per second of cursor its parent window had when this one was split off, its estimate until its
	// own first page arrives.
	admitted    int
	first, last time.Time
	density     float64
	// pageDensity is the density of the latest page, measured from the mark (admitted and last after the page
	// before it).
	pageDensity float64
	markN       int
	markAt      time.Time
	// final is set once the read has had its last page: nothing is left to split.
	final bool
	// page, set by planning, is the window's whole content, read by the probe (plan.go); the read writes it
	// instead of asking again.
	page *klaviyo.Document
}

// seenID is a record of a window, by id and cursor.
type seenID struct {
	id string
	at time.Time
}

// holds reports whether a cursor value lies in the window. A zero lo or hi is no bound on that side.
func (w *window) holds(at time.Time) bool {
	return (w.lo.IsZero() || !at.Before(w.lo)) && (w.hi.IsZero() || at.Before(w.hi))
}

// cursorState is a checkpoint: every record with a cursor below At has been written, and of the records whose
// cursor equals At, those in IDs have. Resuming reads from At inclusive and skips IDs, so nothing is lost at a
// timestamp shared by several records and nothing already written is written again.
type cursorState struct {
	At  time.Time
	IDs []string
	// From and Recent are the lookback: every record with a cursor in [From, At) that was written is in Recent, so
	// a sync that re-reads from From (to catch late records, which arrive with a cursor already passed) writes only
	// those it has not written.
	From   time.Time
	Recent []string
	// recentSet indexes Recent for skip.
	recentSet map[string]bool
}

func (c cursorState) skip(id string, at time.Time) bool {
	if !c.From.IsZero() && !at.Before(c.From) && at.Before(c.At) {
		if c.recentSet == nil {
			return slices.Contains(c.Recent, id)
		}
		return c.recentSet[id]
	}
	if len(c.IDs) == 0 || !at.Equal(c.At) {
		return false
	}
	for _, x := range c.IDs {
		if x == id {
			return true
		}
	}
	return false
}

// tracker turns the progress of concurrent windows into states that are always safe to resume from.
//
// The safe point S is the lowest moment below which every record of the stream has been written: per variant,
// the lo of its first unfinished window, or that window's maxSeen when the window reads in cursor order and has
// started; the stream's S is the minimum over variants. The state written is not S itself but the largest cursor
// value actually written that is <= S (or the previous state). Two reasons: a state is then always a value that
// Klaviyo really returned, so a clock that differs from Klaviyo's (or records that land late) cannot make a resumed
// sync skip the gap between the last record and S; and resuming with greater-or-equal re-reads only the records
// that share that exact timestamp. The state never moves backwards and never passes the sync's start.
type tracker struct {
	mu        sync.Mutex
	windows   []*window
	prev      cursorState
	syncStart time.Time
	// lookback is how far below the checkpoint the state lists the records written (cursorState.Recent); zero
	// lists none.
	lookback time.Duration
}

func newTracker(prev cursorState, syncStart time.Time) *tracker {
	return &tracker{prev: prev, syncStart: syncStart}
}

// add registers the windows of one variant, in ascending order.
func (t *tracker) add(ws []*window) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.windows = append(t.windows, ws...)
}

// observe records that the record id with cursor c from window w has been written.
func (t *tracker) observe(w *window, id string, c time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w.started = true
	switch {
	case c.After(w.maxSeen):
		w.maxSeen, w.atMax = c, append(w.atMax[:0], id)
	case c.Equal(w.maxSeen):
		w.atMax = append(w.atMax, id)
	}
	if t.lookback > 0 && !c.Before(t.syncStart.Add(-t.lookback)) {
		// Only the last lookback before the sync's start is listed: late records are dated shortly before they
		// are created, so after the previous sync, which ended at its start; a checkpoint further back (an
		// interrupted backfill) resumes exactly at its cursor instead, and a backfill keeps no list in memory.
		w.recent = append(w.recent, seenID{id: id, at: c})
		if len(w.recent) >= 2*recentPrune {
			// Keep only what a checkpoint can still need: no checkpoint is below this window's maxSeen once its
			// records are all below the safe point, and a checkpoint lists only its lookback.
			floor := w.maxSeen.Add(-t.lookback)
			w.recent = slices.DeleteFunc(w.recent, func(r seenID) bool { return r.at.Before(floor) })
		}
	}
}

// admit reports whether the resource with cursor c, read by window w, is still the window's to write: a split
// (split.go) may have moved w's upper bound below what its request asked for, and a sorted read then stops at the
// first resource at or past it, which the split-off window reads instead. It is decided under the lock that split
// holds, so a split never cuts below a resource a read has already let through.
func (t *tracker) admit(w *window, c time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !w.hi.IsZero() && !c.Before(w.hi) {
		return false
	}
	if w.admitted == 0 {
		w.first = c
	}
	w.admitted++
	if c.After(w.last) {
		w.last = c
	}
	return true
}

// recentPrune is how many seen records a window collects before it drops those below its lookback.
const recentPrune = 1024

// finish marks w as fully read.
func (t *tracker) finish(w *window) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w.started, w.done = true, true
}

// cursor computes the checkpoint now. A zero At means "no cursor yet".
func (t *tracker) cursor() cursorState {
	t.mu.Lock()
	defer t.mu.Unlock()
	safe := time.Time{}
	unbounded := true // all windows done and none has an upper bound: everything read is covered
	byVariant := map[string][]*window{}
	var order []string
	for _, w := range t.windows {
		if _, ok := byVariant[w.variant]; !ok {
			order = append(order, w.variant)
		}
		byVariant[w.variant] = append(byVariant[w.variant], w)
	}
	for _, v := range order {
		s, bounded := variantSafePoint(byVariant[v])
		if !bounded {
			continue
		}
		unbounded = false
		if safe.IsZero() || s.Before(safe) {
			safe = s
		}
	}
	best := t.prev.At
	for _, w := range t.windows {
		if w.maxSeen.IsZero() {
			continue
		}
		if !unbounded && w.maxSeen.After(safe) {
			continue
		}
		if w.maxSeen.After(best) {
			best = w.maxSeen
		}
	}
	if best.After(t.syncStart) && t.prev.At.Before(t.syncStart) {
		// Records past the sync start were read (an endpoint without an upper bound): the cursor stops at the
		// start, and they are read again next time rather than skipped.
		return cursorState{At: t.syncStart}
	}
	if best.Before(t.prev.At) {
		best = t.prev.At
	}
	// The ids written at exactly best: from every counted window that reached it, and from the previous state
	// when it is the same moment.
	var ids []string
	seen := map[string]bool{}
	add := func(xs []string) {
		for _, x := range xs {
			if !seen[x] {
				seen[x] = true
				ids = append(ids, x)
			}
		}
	}
	if best.Equal(t.prev.At) {
		add(t.prev.IDs)
	}
	for _, w := range t.windows {
		if w.maxSeen.Equal(best) && (unbounded || !w.maxSeen.After(safe)) {
			add(w.atMax)
		}
	}
	sort.Strings(ids)
	out := cursorState{At: best, IDs: ids}
	if t.lookback > 0 {
		out.From, out.Recent = t.recentBelow(best, unbounded, safe)
	}
	return out
}

// recentBelow lists the records seen with a cursor in [best - lookback, best), from every counted window and, when
// the checkpoint has not moved, from the previous state (records of its lookback not re-read yet).
func (t *tracker) recentBelow(best time.Time, unbounded bool, safe time.Time) (time.Time, []string) {
	from := later(best.Add(-t.lookback), t.syncStart.Add(-t.lookback))
	// A checkpoint that has not moved keeps the previous state's list, which may reach further down.
	kept := best.Equal(t.prev.At) && !t.prev.From.IsZero() && t.prev.From.Before(t.prev.At)
	if kept && t.prev.From.Before(from) {
		from = t.prev.From
	}
	if !from.Before(best) {
		// A checkpoint below the listed range (a backfill, killed or not yet past the last lookback): it resumes
		// exactly at its cursor. A list starting above the cursor would make the next sync start there and skip
		// everything between.
		return time.Time{}, nil
	}
	seen := map[string]bool{}
	var ids []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if kept {
		for _, id := range t.prev.Recent {
			add(id)
		}
	}
	for _, w := range t.windows {
		for _, r := range w.recent {
			if !r.at.Before(from) && r.at.Before(best) && (unbounded || !r.at.After(safe)) {
				add(r.id)
			}
		}
	}
	sort.Strings(ids)
	return from, ids
}

// variantSafePoint returns the moment below which every record of this variant has been written, and false when
// every window is done and the last has no upper bound (then every record read counts).
func variantSafePoint(ws []*window) (time.Time, bool) {
	for _, w := range ws {
		if w.done {
			continue
		}
		if w.sorted && !w.maxSeen.IsZero() {
			return w.maxSeen, true
		}
		if w.lo.IsZero() {
			// Nothing below the first window's (open) lower bound is known to be written.
			return time.Time{}.Add(time.Nanosecond), true
		}
		return w.lo, true
	}
	last := ws[len(ws)-1]
	if last.hi.IsZero() {
		return time.Time{}, false
	}
	return last.hi, true
}
