package sandbox

import (
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blackFriday is the skew the bench's rate-skewed scenario serves: the last day twenty times as dense as the
// first, and a week eight times as dense as its neighbours, six weeks before the clock start.
func blackFriday() EventSkew { return EventSkew{Growth: 20, Burst: 8} }

func withSkew(events int, sk EventSkew) func(*Options) {
	return func(o *Options) { o.Scale.Events = events; o.EventSkew = sk }
}

// daysBefore is the datetime filter of the n days that end `ago` days before t.
func daysBefore(t time.Time, ago, n int) string {
	to := t.AddDate(0, 0, -ago)
	return between(to.AddDate(0, 0, -n), to)
}

func TestParseEventSkew(t *testing.T) {
	for in, want := range map[string]EventSkew{
		"":           {},
		"off":        {},
		"0":          {},
		"1":          {},
		"1:1":        {},
		"20":         {Growth: 20, BurstAgo: DefaultBurstAgo},
		"20:8":       {Growth: 20, Burst: 8, BurstAgo: DefaultBurstAgo},
		"1:5":        {Growth: 1, Burst: 5, BurstAgo: DefaultBurstAgo},
		"20:8:30d":   {Growth: 20, Burst: 8, BurstAgo: 30 * 24 * time.Hour},
		"20:8:6w":    {Growth: 20, Burst: 8, BurstAgo: 42 * 24 * time.Hour},
		"2.5:3:168h": {Growth: 2.5, Burst: 3, BurstAgo: 7 * 24 * time.Hour},
	} {
		got, err := ParseEventSkew(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"x", "20:y", "20:8:soon", "20:8:42d:1", "0.5", "20:0.5", "-3", "20:8:400d", "20:8:36h", "20:8:48h", "NaN", "1e9"} {
		_, err := ParseEventSkew(bad)
		assert.Error(t, err, bad)
	}
	_, err := Start(Options{EventSkew: EventSkew{Growth: -1}})
	assert.Error(t, err, "Start validates the skew too")
}

// Most events fall in the last months, the burst week holds about Burst times its neighbours' volume, and the
// account still has exactly the events it was asked for.
func TestEventSkewShapesHistory(t *testing.T) {
	const events = 60_000
	flat := startSmall(t, withSkew(events, EventSkew{}))
	skewed := startSmall(t, withSkew(events, blackFriday()))
	t0 := skewed.Now()
	require.Equal(t, countF(t, flat, "/api/events", ""), countF(t, skewed, "/api/events", ""))

	lastQuarter := countF(t, skewed, "/api/events", daysBefore(t0, 0, 91))
	firstQuarter := countF(t, skewed, "/api/events", daysBefore(t0, 365-91, 91))
	assert.Greater(t, lastQuarter, events/2, "more than half of the events fall in the last three months")
	assert.Less(t, 8*firstQuarter, lastQuarter, "the first three months are far sparser")
	flatQuarter := countF(t, flat, "/api/events", daysBefore(t0, 0, 91))
	assert.InDelta(t, events*91/365, flatQuarter, events/100, "without the option, events stay evenly spread")

	burst := countF(t, skewed, "/api/events", daysBefore(t0, 42-7, 7))
	before := countF(t, skewed, "/api/events", daysBefore(t0, 42, 7))
	after := countF(t, skewed, "/api/events", daysBefore(t0, 42-14, 7))
	assert.InDelta(t, 8, float64(burst)/float64(before), 1, "burst week %d, the week before %d", burst, before)
	assert.InDelta(t, 8, float64(burst)/float64(after), 1, "burst week %d, the week after %d", burst, after)
	assert.Less(t, before, after, "the density grows week by week")
}

// Every listing of a skewed account agrees with every other: ascending and descending pages, datetime ranges,
// metric filters, the admin count and the event scan the reports use.
func TestEventSkewListingsAgree(t *testing.T) {
	s := startSmall(t, withSkew(12_000, blackFriday()))
	t0 := s.Now()
	asc := collectAll(t, s, "/api/events?page[size]=700")
	requireSorted(t, asc, false)
	require.Len(t, asc, countF(t, s, "/api/events", ""))
	desc := collectAll(t, s, "/api/events?page[size]=450&sort=-datetime")
	requireSorted(t, desc, true)
	descIDs := ids(desc)
	slices.Reverse(descIDs)
	ascIDs := ids(asc)
	assert.Equal(t, ascIDs, descIDs, "descending is ascending reversed")
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(ascIDs))), len(ascIDs), "no event is listed twice")

	// A range across the burst week's start, by filter, is the slice of the full listing in that range.
	from, to := t0.AddDate(0, 0, -45), t0.AddDate(0, 0, -40)
	var want []string
	for _, rec := range asc {
		if at := datetimeOf(t, rec); !at.Before(from) && at.Before(to) {
			want = append(want, rec["id"].(string))
		}
	}
	require.NotEmpty(t, want)
	assert.Equal(t, want, ids(collectAll(t, s, eventsQuery(between(from, to), "page[size]", "200"))))

	byMetric := 0
	metrics, err := s.Resources("/api/metrics", nil)
	require.NoError(t, err)
	for _, raw := range metrics {
		byMetric += countF(t, s, "/api/events", "equals(metric_id,\""+jsonID(t, raw)+"\")")
	}
	assert.Equal(t, len(asc), byMetric, "the metric filters partition the events")

	w := s.world.Load()
	var scanned, served []int64
	w.eachEvent(from.Unix(), to.Unix(), 1, func(g int64) { scanned = append(scanned, g) })
	for _, id := range want {
		g, ok := w.eventIndex(id)
		require.True(t, ok)
		served = append(served, g)
	}
	assert.Equal(t, served, scanned, "the reports scan the events in the order they are served")
}

// The option is deterministic, and off unless asked for: a skew of 1 and 1 serves the flat account byte for byte.
func TestEventSkewIsDeterministicAndOptIn(t *testing.T) {
	page := func(s *Server) string {
		return strings.ReplaceAll(string(get(t, s, "/api/events?page[size]=300&sort=-datetime&include=metric").body), s.URL(), "BASE")
	}
	a, b := startSmall(t, withSkew(5000, blackFriday())), startSmall(t, withSkew(5000, blackFriday()))
	assert.Equal(t, page(a), page(b))
	flat := startSmall(t, withSkew(5000, EventSkew{}))
	unit := startSmall(t, withSkew(5000, EventSkew{Growth: 1, Burst: 1}))
	assert.Equal(t, page(flat), page(unit))
	assert.NotEqual(t, page(flat), page(a))
}

// An Advance continues at the last day's pace, not the year's average: a growing account keeps growing.
func TestEventSkewAdvanceKeepsTodaysPace(t *testing.T) {
	const events = 36_500 // 100 a day on average
	flat := startSmall(t, withSkew(events, EventSkew{}))
	skewed := startSmall(t, withSkew(events, EventSkew{Growth: 20}))
	t0 := skewed.Now()
	for _, s := range []*Server{flat, skewed} {
		s.Advance(24 * time.Hour)
	}
	day := between(t0, t0.Add(24*time.Hour))
	lastDay := countF(t, skewed, "/api/events", between(t0.Add(-24*time.Hour), t0))
	newFlat, newSkewed := countF(t, flat, "/api/events", day), countF(t, skewed, "/api/events", day)
	assert.InDelta(t, 100, newFlat, 2)
	assert.InDelta(t, lastDay, newSkewed, float64(lastDay)/20, "the new day is as dense as the last one (%d)", lastDay)
	assert.Greater(t, newSkewed, 2*newFlat)
}

// Ten million skewed events cost no more memory than ten million even ones: the curve is one count per day.
func TestEventSkewStaysFlatAtScale(t *testing.T) {
	s := startSmall(t, withSkew(10_000_000, blackFriday()))
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	burstDay := daysBefore(s.Now(), 38, 1)
	n := countF(t, s, "/api/events", burstDay)
	assert.Greater(t, n, 10*10_000_000/365, "a burst day holds ten times the mean day")
	r := get(t, s, eventsQuery(burstDay, "page[size]", "1000", "sort", "-datetime"))
	require.Equal(t, 200, r.status)
	assert.Len(t, r.data(), 1000)
	u, err := url.Parse(r.link("next"))
	require.NoError(t, err)
	r = get(t, s, u.RequestURI())
	require.Equal(t, 200, r.status)
	requireSorted(t, r.data(), true)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	assert.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(64<<20), "heap stays flat")
	w := s.world.Load()
	assert.Len(t, w.pop(kEvent).curve.cum, 366, "one count per day of history, and the total")
}

// The curve's instants never go backwards, stay in the history and on their day, even where a day holds more
// records than milliseconds.
func TestCurveIsOrdered(t *testing.T) {
	p := newPopulation(7, 0, year, year, 0, fixedNow.Unix())
	for _, c := range []struct {
		base, span int64
	}{{200_000, year}, {1_000_000_000, 2 * day}, {3, year}, {5000, year + day/2}} {
		cv := newCurve(EventSkew{Growth: 50, Burst: 10, BurstAgo: DefaultBurstAgo}, c.base, c.span, fixedNow.Unix()*1000)
		prev := cv.firstMs
		check := func(i int64) {
			ms := cv.createdMs(i, p.jitter)
			require.GreaterOrEqual(t, ms, prev, "record %d of %d", i, c.base)
			require.Less(t, ms, cv.endMs, "record %d of %d", i, c.base)
			prev = ms
		}
		if c.base <= 1_000_000 {
			for i := int64(0); i < c.base; i++ {
				check(i)
			}
			continue
		}
		for _, at := range cv.cum[:len(cv.cum)-1] { // around each day's first record
			prev = cv.firstMs
			for i := max(at-3, 0); i < min(at+3, c.base); i++ {
				check(i)
			}
		}
	}
}
