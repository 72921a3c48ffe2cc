package sandbox

import "math"

// Segment reports count the memberships GET /api/segments/{id}/profiles serves: a member joins at
// its joined_group_at and leaves only when removed (Options.Removals, Server.RemoveMember), so
// members_removed counts the removals, net_members_changed is members_added minus
// members_removed, and total_members is the number of members joined minus those removed before
// the end of the timeframe (or of each interval). Every segment is a row. Cost: one hash per
// profile of the account per segment (the joins before the timeframe are counted too, for
// total_members), plus one look at each removal.

// membersJoined counts the members of list or segment l (kind) joined in [from, to), up to the
// clock: joined_group_at grows with the profile index, so the range is two binary searches.
func (w *world) membersJoined(kind string, l, from, to int64) int64 {
	p := w.pop(kProfile)
	d := w.joinDelay(kind, l)
	to = min(to, w.now+1)
	if to <= from {
		return 0
	}
	seq := &monoSeq{n: p.total()}
	lo := seq.search(func(i int64) bool { return p.created(i)+d >= from })
	hi := seq.search(func(i int64) bool { return p.created(i)+d >= to })
	var n int64
	for i := lo; i < hi; i++ {
		if w.memberOf(kind, l, i) {
			n++
		}
	}
	return n
}

// memberChange is what happened to a segment in a timeframe or interval: joins, removals, and the
// members at its end.
type memberChange struct{ added, removed, total int64 }

// change counts the joins and removals of group l in [from, to) and carries the running total.
func (w *world) change(kind string, l, from, to, before int64) memberChange {
	added, removed := w.membersJoined(kind, l, from, to), w.membersRemoved(kind, l, from, to)
	return memberChange{added: added, removed: removed, total: before + added - removed}
}

func segmentStatistic(stat string, c memberChange) int64 {
	switch stat {
	case "members_added":
		return c.added
	case "members_removed":
		return c.removed
	case "net_members_changed":
		return c.added - c.removed
	case "total_members":
		return c.total
	}
	return 0
}

// segmentReport answers POST /api/segment-values-reports and /api/segment-series-reports.
func (q *reportReq) segmentReport() (*reportResult, *apiError) {
	r, aerr := q.parseReporting()
	if aerr != nil {
		return nil, aerr
	}
	w := q.c.w
	from, to := r.win.from.Unix(), r.win.to.Unix()
	res := &reportResult{}
	if r.interval != "" {
		res.dateTimes = r.b.dateTimes()
	}
	for l := int64(0); l < w.total(kSegment); l++ {
		id := w.segmentID(l)
		if !matchesAll(r.filter, func(string) any { return id }) {
			continue
		}
		total := w.change(kSegment, l, math.MinInt64, from, 0).total
		stats := map[string]any{}
		if r.interval == "" {
			ch := w.change(kSegment, l, from, to, total)
			for _, s := range r.stats {
				stats[s] = segmentStatistic(s, ch)
			}
		} else {
			series := make(map[string][]any, len(r.stats))
			for k, start := range r.b.starts {
				end := to
				if k+1 < len(r.b.starts) {
					end = r.b.starts[k+1]
				}
				ch := w.change(kSegment, l, max(start, from), end, total)
				total = ch.total
				for _, s := range r.stats {
					series[s] = append(series[s], segmentStatistic(s, ch))
				}
			}
			for _, s := range r.stats {
				stats[s] = orEmptyList(series[s])
			}
		}
		res.rows = append(res.rows, map[string]any{"groupings": map[string]any{"segment_id": id}, "statistics": stats})
	}
	return res, nil
}
