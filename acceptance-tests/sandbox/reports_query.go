package sandbox

import (
	"fmt"
	"sort"
	"strings"
)

// reporting is a validated Reporting API request.
type reporting struct {
	stats    []string
	win      window
	interval string // "" for values reports
	b        buckets
	groupBy  []string
	filter   []pred
	conv     int64 // conversion metric index, -1 when the report takes none
}

// parseReporting validates what the six Reporting API endpoints share: statistics, timeframe,
// interval, conversion_metric_id, group_by and filter, each against the endpoint's rules in
// reports.json, in the order Klaviyo's schema lists them.
func (q *reportReq) parseReporting() (*reporting, *apiError) {
	rep := q.rep
	stats, aerr := stringList(q.attrs, "statistics", rep.Statistics, nil)
	if aerr != nil {
		return nil, aerr
	}
	if len(stats) == 0 {
		return nil, invalidAt("/data/attributes/statistics", "At least one statistic is required.")
	}
	out := &reporting{stats: stats, conv: -1}
	if out.win, aerr = parseTimeframe(q.attrs["timeframe"], rep, q.now); aerr != nil {
		return nil, aerr
	}
	if rep.Intervals != nil {
		if out.interval, aerr = checkInterval(q.attrs["interval"], rep, out.win); aerr != nil {
			return nil, aerr
		}
	}
	out.b = newBuckets(out.win, out.interval)
	if q.attrs["conversion_metric_id"] != nil {
		if out.conv, aerr = q.metricOf("conversion_metric_id"); aerr != nil {
			return nil, aerr
		}
	}
	if rep.GroupBy != nil {
		if out.groupBy, aerr = stringList(q.attrs, "group_by", rep.GroupBy, rep.GroupByDefault); aerr != nil {
			return nil, aerr
		}
		var missing []string
		for _, need := range rep.GroupByRequired {
			if !contains(out.groupBy, need) {
				missing = append(missing, need)
			}
		}
		if len(missing) > 0 {
			return nil, invalidAt("/data/attributes/group_by", "The following group by attributes are required: %s.", strings.Join(missing, ", "))
		}
		for dim, need := range rep.GroupByPrereqs {
			if contains(out.groupBy, dim) && !contains(out.groupBy, need) {
				return nil, invalidAt("/data/attributes/group_by", "The prerequisites for %s is %s: pass them in together.", dim, need)
			}
		}
	}
	if out.filter, aerr = q.reportFilter(); aerr != nil {
		return nil, aerr
	}
	return out, nil
}

// reportFilter parses the filter string with the GET filter grammar, then applies the report
// rules: one term per attribute, at most FilterMaxItems values per list, allowed values.
func (q *reportReq) reportFilter() ([]pred, *apiError) {
	const ptr = "/data/attributes/filter"
	v := q.attrs["filter"]
	if v == nil {
		return nil, nil
	}
	src, ok := v.(string)
	if !ok {
		return nil, invalidAt(ptr, "Expected a filter string.")
	}
	preds, err := parseFilter(src, q.rep.Filters)
	if err != nil {
		return nil, invalidAt(ptr, "Invalid filter provided: %s.", err.Error())
	}
	seen := map[string]bool{}
	for _, p := range preds {
		if seen[p.field] {
			return nil, invalidAt(ptr, "Only one filter can be used per attribute (%s).", p.field)
		}
		seen[p.field] = true
		vals := []fval{p.val}
		if p.val.kind == vList {
			vals = p.val.list
			if max := q.rep.FilterMaxItems; max > 0 && len(vals) > max {
				return nil, invalidAt(ptr, "Max of %d items per list filter (%s has %d).", max, p.field, len(vals))
			}
		}
		if allowed, ok := q.rep.FilterValues[p.field]; ok {
			for _, fv := range vals {
				if !contains(allowed, fv.s) {
					return nil, invalidAt(ptr, "'%s' is not an allowed value for %s; allowed values are %s.", sanitize(fv.s), p.field, strings.Join(allowed, ", "))
				}
			}
		}
	}
	return preds, nil
}

// matchesAll tells whether the values of a report row's dimensions pass every filter term.
func matchesAll(preds []pred, dim func(name string) any) bool {
	for i := range preds {
		if !preds[i].matches(dim(preds[i].field)) {
			return false
		}
	}
	return true
}

// Counters of a tally cell. Reporting API messages use the first twelve; metric aggregates use
// cntCount, cntCents and cntUnique.
const (
	cntReceived = iota
	cntOpened
	cntClicked
	cntBounced
	cntUnsub
	cntSpam
	cntConv
	cntOpenedU
	cntClickedU
	cntUnsubU
	cntConvU
	cntCents
	nCounters

	cntCount  = cntReceived
	cntUnique = cntOpenedU
)

type counters [nCounters]int64

// tally accumulates counters per (slot, bucket) cell: a slot is a report row's entity (a
// message, a form version, a dimension tuple). A distinct-profile count keeps one uint64 per
// contributing event (cell and counter in the high half, profile in the low half) until flush
// sorts and deduplicates them. Scans visit events in time order, so they flush whenever the
// bucket changes: the keys held at once are those of one interval's events, 8 bytes each.
type tally struct {
	nb       int
	cells    []counters
	seen     []uint64
	overflow bool
}

func newTally(nb int) *tally { return &tally{nb: max(nb, 1)} }

func (t *tally) cell(slot, bucket int) *counters {
	i := slot*t.nb + bucket
	for len(t.cells) <= i {
		t.cells = append(t.cells, counters{})
	}
	return &t.cells[i]
}

// distinct notes that profile counts once towards counter idx of the cell.
func (t *tally) distinct(slot, bucket, idx int, profile int64) {
	t.cell(slot, bucket)
	hi := (slot*t.nb+bucket)*nCounters + idx
	t.overflow = t.overflow || hi >= 1<<32 || profile >= 1<<32
	t.seen = append(t.seen, uint64(hi)<<32|uint64(profile))
}

// flush turns the noted profiles into distinct counts. A cell's profiles must all be noted
// between two flushes.
func (t *tally) flush() {
	sort.Slice(t.seen, func(a, b int) bool { return t.seen[a] < t.seen[b] })
	for i, k := range t.seen {
		if i > 0 && t.seen[i-1] == k {
			continue
		}
		hi := int(k >> 32)
		t.cells[hi/nCounters][hi%nCounters]++
	}
	t.seen = t.seen[:0]
}

// finish flushes the last keys and reports a tally too large for its key packing.
func (t *tally) finish() error {
	if t.overflow {
		return fmt.Errorf("tally of %d cells is too large", len(t.cells))
	}
	t.flush()
	t.seen = nil
	return nil
}

// bucketWatch calls flush whenever the bucket of the visited events changes.
func (t *tally) bucketWatch() func(bucket int) {
	last := -1
	return func(b int) {
		if b != last && last >= 0 {
			t.flush()
		}
		last = b
	}
}

// sum adds up a slot's buckets.
func (t *tally) sum(slot int) counters {
	var out counters
	for b := 0; b < t.nb; b++ {
		if i := slot*t.nb + b; i < len(t.cells) {
			for k := range out {
				out[k] += t.cells[i][k]
			}
		}
	}
	return out
}

// at returns a cell without growing the tally.
func (t *tally) at(slot, bucket int) counters {
	if i := slot*t.nb + bucket; i < len(t.cells) {
		return t.cells[i]
	}
	return counters{}
}

// statisticsOf renders the requested statistics of one row: a value per statistic (values
// reports) or a list with one value per bucket (series), from a function of a counters cell.
func statisticsOf(stats []string, t *tally, slot int, series bool, stat func(string, counters) any) map[string]any {
	out := make(map[string]any, len(stats))
	if !series {
		c := t.sum(slot)
		for _, s := range stats {
			out[s] = stat(s, c)
		}
		return out
	}
	for _, s := range stats {
		vals := make([]any, t.nb)
		for b := range vals {
			vals[b] = stat(s, t.at(slot, b))
		}
		out[s] = vals
	}
	return out
}

// eachEvent calls fn for every event dated in [from, to) (Unix seconds) whose index is a multiple
// of step, in the order GET /api/events lists them: by datetime, then index. The main sequence
// is dated by index, so its range is two binary searches; each future-dated or late event in
// range is slotted in by one more. Nothing is rendered: the cost is one call of fn per visited
// index (plus a look at every future or late event in range), and memory is constant.
func (w *world) eachEvent(from, to, step int64, fn func(g int64)) {
	seqs := w.eventSeqs()
	main := seqs[0]
	lo := main.search(func(i int64) bool { return main.key(i) >= from })
	hi := main.search(func(i int64) bool { return main.key(i) >= to })
	g := (lo + step - 1) / step * step
	sparse := &mergeSeqs{seqs: seqs[1:], rng: keyRange{lo: from, hi: to - 1}}
	sparse.each(false, nil, func(p position) bool {
		if p.Idx%step != 0 {
			return true
		}
		sec := int64(p.Key.(float64))
		before := min(hi, main.search(func(i int64) bool { return main.key(i) > sec })) // equal datetimes: lower index first
		for ; g < before; g += step {
			fn(g)
		}
		fn(p.Idx)
		return true
	})
	for ; g < hi; g += step {
		fn(g)
	}
}
