package sandbox

import "time"

// Late events (Options.LateEvents) are events that become readable after their datetime, as
// Klaviyo's asynchronous ingestion and delayed webhooks make them. Each Advance creates
// PerAdvance of them, dated inside [from-Window, from) where from is the clock value the Advance
// started from, so a connector whose datetime cursor already reached `from` misses them unless it
// re-reads a lookback window.
//
// Index space: late event j (in creation order: Advance k creates j in [k·PerAdvance,
// (k+1)·PerAdvance)) has the global index lateBase+j, above the future-dated events
// (futureBase+j) and far above the main sequence, so ids, GET /api/events/{id}, include,
// attributions and the reports treat it as any event. Its datetime is a hash of (seed, k, j);
// metric, profile and properties are the usual hashes of its index. Unlike the other event
// sequences its index order is not its datetime order (the windows of successive Advances overlap
// when an Advance is shorter than the window), so each world keeps the late events' (datetime,
// index) pairs sorted in lateIdx: 16 bytes per late event ever created, never per ordinary event,
// rebuilt by each Advance in O(L log L) for L late events. Listings merge lateIdx as a third
// monotonic sequence, one more binary search per page.

const lateBase = int64(1) << 41

// lateCount is how many late events exist: every Advance created PerAdvance of them.
func (w *world) lateCount() int64 { return int64(w.late.PerAdvance) * int64(len(w.epochs)) }

// lateSec dates late event j strictly before the clock value its Advance started from, at most
// Window before it.
func (w *world) lateSec(j int64) int64 {
	per := int64(w.late.PerAdvance)
	k := j / per
	win := int64(w.late.Window / time.Second)
	return w.epochs[k].from - 1 - int64(mix(w.pop(kEvent).salt, 0x1a7e, uint64(k), uint64(j))%uint64(win))
}

// advanceLate returns the sorted late-event index after Advance k (whose epoch w already holds):
// prev plus the PerAdvance events k creates. prev is not modified, as older worlds still read it.
func (w *world) advanceLate(prev []ovr, k int) []ovr {
	per := int64(w.late.PerAdvance)
	if per == 0 {
		return prev
	}
	idx := make([]ovr, len(prev), len(prev)+int(per))
	copy(idx, prev)
	for j := int64(k) * per; j < int64(k+1)*per; j++ {
		idx = append(idx, ovr{t: w.lateSec(j), idx: lateBase + j})
	}
	sortOvrs(idx)
	return idx
}

// LateEvent is one event an Advance created in the past (Options.LateEvents).
type LateEvent struct {
	ID       string    `json:"id"`
	MetricID string    `json:"metric_id"`
	Datetime time.Time `json:"datetime"`
	// AdvancedFrom is the clock value the creating Advance started from: the event is dated
	// before it, and was not readable while the clock showed it.
	AdvancedFrom time.Time `json:"advanced_from"`
}

// LateEvents lists the late events created so far, in creation order, so a test can check that
// a connector read them.
func (s *Server) LateEvents() []LateEvent {
	w := s.world.Load()
	n := w.lateCount()
	out := make([]LateEvent, 0, n)
	for j := int64(0); j < n; j++ {
		g := lateBase + j
		out = append(out, LateEvent{ID: w.eventID(g), MetricID: w.metricID(w.eventMetric(g)),
			Datetime:     time.Unix(w.lateSec(j), 0).UTC(),
			AdvancedFrom: time.Unix(w.epochs[j/int64(w.late.PerAdvance)].from, 0).UTC()})
	}
	return out
}
