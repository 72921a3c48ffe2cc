package sandbox

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

// POST /api/metric-aggregates: count, unique (distinct profiles) and sum_value (the sum of
// $value) of one metric's events per interval of a datetime range, in a timezone, optionally
// split by dimensions. The $attributed_* dimensions come from the event's attribution
// (attribution.go); every other dimension is the event property of that name ("" when the event
// has none, as Klaviyo answers empty dimensions). Events are visited without rendering unless a
// property dimension is asked for: the cost is one hash per event in the range, plus one render
// per event of the metric when grouping or filtering by a property.

// maxAggregateDates bounds the intervals of one query so a response stays small; it is the
// sandbox's own limit (Klaviyo documents none), above a year of hours.
const maxAggregateDates = 10000

// datetimeTerm finds the range terms on datetime in a filter string, to read their literal again:
// the filter grammar reads a datetime without offset as UTC, metric aggregates in their timezone.
var datetimeTerm = regexp.MustCompile(`(greater-or-equal|greater-than|less-than|less-or-equal)\(\s*datetime\s*,\s*([^)\s]+)\s*\)`)

// aggregateFilters are the filter fields of metric aggregates: the datetime range, and the
// group-by dimensions compared with equals (one value or a list) or any (a list).
func aggregateFilters(rep *specgen.Report) map[string]specgen.FilterField {
	out := make(map[string]specgen.FilterField, len(rep.By)+1)
	for _, b := range rep.By {
		out[b] = specgen.FilterField{Single: []string{"equals"}, List: []string{"any", "equals"}, Type: "string"}
	}
	out["datetime"] = specgen.FilterField{Single: []string{"greater-or-equal", "greater-than", "less-than", "less-or-equal"}, Type: "date-time"}
	return out
}

// pageSizeOf is the page_size of a validated metric aggregate query.
func pageSizeOf(attrs map[string]any, rep *specgen.Report) int {
	if n, ok := attrs["page_size"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 {
			return int(v)
		}
	}
	return rep.PageSizeDefault
}

// aggregateQuery is a validated metric aggregate request.
type aggregateQuery struct {
	metric   int64
	meas     []string
	by       []string
	interval string
	win      window
	filter   []pred
	sort     string
}

func (q *reportReq) parseAggregate() (*aggregateQuery, *apiError) {
	rep, a := q.rep, q.attrs
	out := &aggregateQuery{interval: rep.IntervalDefault}
	var aerr *apiError
	if out.metric, aerr = q.metricOf("metric_id"); aerr != nil {
		return nil, aerr
	}
	if out.meas, aerr = stringList(a, "measurements", rep.Measurements, nil); aerr != nil {
		return nil, aerr
	}
	if len(out.meas) == 0 {
		return nil, invalidAt("/data/attributes/measurements", "At least one measurement is required.")
	}
	if out.by, aerr = stringList(a, "by", rep.By, nil); aerr != nil {
		return nil, aerr
	}
	if v := a["return_fields"]; v != nil { // accepted and, as the sandbox returns few fields, not applied
		if _, isList := v.([]any); !isList {
			return nil, invalidAt("/data/attributes/return_fields", "Expected a list of field names.")
		}
	}
	if v := a["interval"]; v != nil {
		if s, _ := v.(string); !contains(rep.Intervals, s) {
			return nil, invalidAt("/data/attributes/interval", "'%v' is not a valid interval. Valid intervals are: %s.", v, strings.Join(rep.Intervals, ", "))
		}
		out.interval = v.(string)
	}
	tzName := rep.TimezoneDefault
	if v := a["timezone"]; v != nil {
		tzName, _ = v.(string)
	}
	loc, err := time.LoadLocation(tzName)
	if err != nil || tzName == "" || tzName == "Local" || contains(rep.UnsupportedTimezones, tzName) {
		return nil, invalidAt("/data/attributes/timezone", "'%s' is not a supported timezone.", sanitize(tzName))
	}
	if v := a["sort"]; v != nil {
		if s, _ := v.(string); !contains(rep.Sort, s) {
			return nil, invalidAt("/data/attributes/sort", "'%v' is not a valid sort.", v)
		}
		out.sort = v.(string)
	}
	if v := a["page_size"]; v != nil {
		n, _ := v.(json.Number)
		if i, err := n.Int64(); err != nil || i < 1 {
			return nil, invalidAt("/data/attributes/page_size", "page_size must be a positive integer.")
		}
	}
	if out.win, out.filter, aerr = aggregateFilter(a["filter"], rep, loc); aerr != nil {
		return nil, aerr
	}
	if n := len(newBuckets(out.win, out.interval).starts); n > maxAggregateDates {
		return nil, invalidAt("/data/attributes/filter", "The range holds %d %s intervals; the sandbox answers at most %d.", n, out.interval, maxAggregateDates)
	}
	return out, nil
}

// aggregateFilter reads the filter list: a datetime range (a lower and an upper bound, naive
// datetimes read in the query's timezone) and terms on the dimensions.
func aggregateFilter(v any, rep *specgen.Report, loc *time.Location) (window, []pred, *apiError) {
	const ptr = "/data/attributes/filter"
	list, ok := v.([]any)
	if !ok {
		return window{}, nil, invalidAt(ptr, "Expected a list of filter strings.")
	}
	var lo, hi *time.Time
	var preds []pred
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return window{}, nil, invalidAt(ptr, "Expected a list of filter strings.")
		}
		p, err := parseFilter(s, aggregateFilters(rep))
		if err != nil {
			return window{}, nil, invalidAt(ptr, "Invalid filter provided: %s.", err.Error())
		}
		for _, pr := range p {
			if pr.field != "datetime" {
				preds = append(preds, pr)
			}
		}
		for _, m := range datetimeTerm.FindAllStringSubmatch(s, -1) {
			t, ok := aggregateTime(m[2], loc)
			if !ok {
				return window{}, nil, invalidAt(ptr, "'%s' is not a valid datetime.", sanitize(m[2]))
			}
			// Event datetimes are whole seconds: turn each bound into an inclusive start or an exclusive end.
			sec, frac := t.Unix(), t.Nanosecond() > 0
			switch m[1] {
			case "greater-or-equal", "greater-than":
				if m[1] == "greater-than" || frac {
					sec++
				}
				from := time.Unix(sec, 0).In(loc)
				lo = &from
			default:
				if m[1] == "less-or-equal" || frac {
					sec++
				}
				to := time.Unix(sec, 0).In(loc)
				hi = &to
			}
		}
	}
	if lo == nil || hi == nil {
		return window{}, nil, invalidAt(ptr, "The filter must include a time range: greater-or-equal(datetime,...) and less-than(datetime,...).")
	}
	if !hi.After(*lo) {
		return window{}, nil, invalidAt(ptr, "The end of the datetime range must be after its start.")
	}
	return window{*lo, *hi}, preds, nil
}

// aggregateTime reads an ISO 8601 datetime: with an offset it is an instant, without one a wall
// clock in the query's timezone.
func aggregateTime(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// eventDims computes the values of some dimensions of event g lazily, rendering the event only
// for property dimensions.
type eventDims struct {
	c        *rctx
	g        int64
	name     string
	props    map[string]any
	channels map[int64]string // flow index -> channel of its first message
}

func (d *eventDims) get(dim string) string {
	w := d.c.w
	if strings.HasPrefix(dim, "$attributed_") {
		t := w.attributionTarget(d.g)
		if !hasAttribution(d.name, d.g) || !t.ok {
			return ""
		}
		switch {
		case dim == "$attributed_flow" && t.campaign:
			return ""
		case dim == "$attributed_flow":
			return w.flowID(t.owner)
		case dim == "$attributed_channel" && t.campaign:
			return sendChannel(w.campaignChannel(t.owner))
		case dim == "$attributed_channel":
			ch, ok := d.channels[t.owner]
			if !ok {
				ch, _ = d.c.flowMessage(t.owner, 0).Attrs["channel"].(string)
				ch = sendChannel(ch)
				d.channels[t.owner] = ch
			}
			return ch
		case t.campaign:
			return w.campaignMessageID(t.owner, 0)
		}
		return w.flowMessageID(t.owner, 0, 0)
	}
	if d.props == nil {
		d.props, _ = d.c.event(d.g).Attrs["event_properties"].(map[string]any)
	}
	switch v := d.props[dim].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// metricAggregates answers POST /api/metric-aggregates.
func (q *reportReq) metricAggregates() (*reportResult, *apiError) {
	a, aerr := q.parseAggregate()
	if aerr != nil {
		return nil, aerr
	}
	c, w := q.c, q.c.w
	b := newBuckets(a.win, a.interval)
	t := newTally(len(b.starts))
	name := w.metricName(a.metric)
	order := isOrderMetric(name)
	slots := map[string]int{}
	var dims [][]any
	if len(a.by) == 0 {
		slots[""], dims = 0, [][]any{{}}
	}
	channels := map[int64]string{}
	watch := t.bucketWatch()
	if a.metric < int64(w.sc.Metrics) { // metrics created by Advance have no events
		w.eachEvent(a.win.from.Unix(), a.win.to.Unix(), 1, func(g int64) {
			if w.eventMetric(g) != a.metric {
				return
			}
			d := &eventDims{c: c, g: g, name: name, channels: channels}
			if !matchesAll(a.filter, func(f string) any { return d.get(f) }) {
				return
			}
			vals := make([]any, len(a.by))
			key := make([]string, len(a.by))
			for i, by := range a.by {
				key[i] = d.get(by)
				vals[i] = key[i]
			}
			k := strings.Join(key, "\x00")
			slot, ok := slots[k]
			if !ok {
				slot = len(dims)
				slots[k] = slot
				dims = append(dims, vals)
			}
			bk := b.of(w.eventSec(g))
			watch(bk)
			cell := t.cell(slot, bk)
			cell[cntCount]++
			if order {
				cell[cntCents] += w.orderCents(g)
			}
			t.distinct(slot, bk, cntUnique, w.eventProfile(g))
		})
	}
	if err := t.finish(); err != nil {
		return nil, internal(err)
	}
	rows := make([]int, len(dims))
	for i := range rows {
		rows[i] = i
	}
	sortAggregateRows(rows, dims, a, t)
	res := &reportResult{dateTimes: b.dateTimes()}
	for _, slot := range rows {
		m := map[string]any{}
		for _, name := range a.meas {
			vals := make([]any, len(b.starts))
			for k := range vals {
				vals[k] = aggregateMeasurement(name, t.at(slot, k))
			}
			m[name] = vals
		}
		res.rows = append(res.rows, map[string]any{"dimensions": dims[slot], "measurements": m})
	}
	return res, nil
}

func aggregateMeasurement(name string, c counters) any {
	switch name {
	case "count":
		return c[cntCount]
	case "unique":
		return c[cntUnique]
	}
	return float64(c[cntCents]) / 100 // sum_value
}

// sortAggregateRows orders rows by their dimensions, or by the sort attribute: a dimension's value
// or a measurement's total over the dates, descending with a leading "-"; ties keep dimension order.
func sortAggregateRows(rows []int, dims [][]any, a *aggregateQuery, t *tally) {
	byDims := func(x, y int) int {
		for i := range dims[x] {
			if c := strings.Compare(dims[x][i].(string), dims[y][i].(string)); c != 0 {
				return c
			}
		}
		return 0
	}
	key := strings.TrimPrefix(a.sort, "-")
	desc := strings.HasPrefix(a.sort, "-")
	dimAt := -1
	for i, by := range a.by {
		if by == key {
			dimAt = i
		}
	}
	total := func(slot int) float64 {
		v := aggregateMeasurement(key, t.sum(slot))
		if f, ok := v.(float64); ok {
			return f
		}
		return float64(v.(int64))
	}
	sort.SliceStable(rows, func(i, j int) bool {
		x, y := rows[i], rows[j]
		c := 0
		switch {
		case dimAt >= 0:
			c = strings.Compare(dims[x][dimAt].(string), dims[y][dimAt].(string))
		case key == "count" || key == "unique" || key == "sum_value":
			c = cmpFloat(total(x), total(y))
		}
		if desc {
			c = -c
		}
		if c == 0 {
			return byDims(x, y) < 0
		}
		return c < 0
	})
}
