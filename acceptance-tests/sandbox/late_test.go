package sandbox

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func withLate(per int, window time.Duration) func(*Options) {
	return func(o *Options) { o.LateEvents = LateEvents{PerAdvance: per, Window: window} }
}

// between is a datetime filter for [from, to).
func between(from, to time.Time) string {
	return "greater-or-equal(datetime," + from.Format(time.RFC3339) + "),less-than(datetime," + to.Format(time.RFC3339) + ")"
}

// eventsQuery is a GET /api/events path with the filter escaped and extra parameters.
func eventsQuery(filter string, kv ...string) string {
	q := url.Values{"filter": {filter}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return "/api/events?" + q.Encode()
}

func datetimeOf(t testing.TB, rec map[string]any) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, rec["attributes"].(map[string]any)["datetime"].(string))
	require.NoError(t, err)
	return at.UTC()
}

// requireSorted checks that a listing is in datetime order (descending when desc).
func requireSorted(t testing.TB, recs []map[string]any, desc bool) {
	t.Helper()
	for k := 1; k < len(recs); k++ {
		a, b := datetimeOf(t, recs[k-1]), datetimeOf(t, recs[k])
		if desc {
			a, b = b, a
		}
		require.False(t, b.Before(a), "record %d (%s) is out of datetime order", k, recs[k]["id"])
	}
}

func lateIDs(late []LateEvent) []string {
	out := make([]string, 0, len(late))
	for _, ev := range late {
		out = append(out, ev.ID)
	}
	return out
}

func TestLateEventsArriveInThePast(t *testing.T) {
	const win = 45 * time.Minute
	s := startSmall(t, withLate(6, win))
	t0 := s.Now()
	require.Empty(t, s.LateEvents(), "the clock has not moved")
	past := between(t0.Add(-win), t0)
	pastBefore := countF(t, s, "/api/events", past)
	totalBefore := countF(t, s, "/api/events", "")

	s.Advance(time.Hour)
	t1 := s.Now()
	late := s.LateEvents()
	require.Len(t, late, 6)
	for _, ev := range late {
		assert.Equal(t, t0, ev.AdvancedFrom)
		assert.True(t, ev.Datetime.Before(t0), "%s is dated before the previous clock", ev.ID)
		assert.False(t, ev.Datetime.Before(t0.Add(-win)), "%s is at most the window late", ev.ID)
		r := get(t, s, "/api/events/"+ev.ID+"?include=metric")
		require.Equal(t, 200, r.status, string(r.body))
		data := r.doc["data"].(map[string]any)
		assert.Equal(t, ev.Datetime, datetimeOf(t, data))
		assert.Equal(t, ev.MetricID, data["relationships"].(map[string]any)["metric"].(map[string]any)["data"].(map[string]any)["id"])
		assert.Equal(t, ev.MetricID, r.doc["included"].([]any)[0].(map[string]any)["id"], "include=metric")
		// The metric_id filter finds it, as any event.
		byMetric := ids(collectAll(t, s, eventsQuery(past+`,equals(metric_id,"`+ev.MetricID+`")`)))
		assert.Contains(t, byMetric, ev.ID)
	}

	// Counted in the window they are dated in, and in the total beside the new events.
	assert.Equal(t, pastBefore+6, countF(t, s, "/api/events", past))
	created := countF(t, s, "/api/events", "greater-than(datetime,"+t0.Format(time.RFC3339)+"),less-or-equal(datetime,"+t1.Format(time.RFC3339)+")")
	assert.Positive(t, created)
	assert.Equal(t, totalBefore+created+6, countF(t, s, "/api/events", ""))

	// A paged range query covering them returns them in datetime order, both ways.
	asc := collectAll(t, s, eventsQuery(past, "sort", "datetime", "page[size]", "5"))
	require.Len(t, asc, pastBefore+6)
	requireSorted(t, asc, false)
	for _, id := range lateIDs(late) {
		assert.Contains(t, ids(asc), id)
	}
	desc := ids(collectAll(t, s, eventsQuery(past, "sort", "-datetime", "page[size]", "4")))
	slices.Reverse(desc)
	assert.Equal(t, ids(asc), desc)
}

// When Advances are shorter than the window, late events of successive Advances interleave in
// time: listings, counts and the reports' event walk still see one datetime order.
func TestLateEventsOfOverlappingAdvances(t *testing.T) {
	s := startSmall(t, withLate(4, time.Hour))
	t0 := s.Now()
	for k := 0; k < 6; k++ {
		s.Advance(10 * time.Minute)
	}
	late := s.LateEvents()
	require.Len(t, late, 24)
	interleaved := false
	for k := 1; k < len(late); k++ {
		interleaved = interleaved || late[k].Datetime.Before(late[k-1].Datetime)
		assert.True(t, late[k].Datetime.Before(late[k].AdvancedFrom))
	}
	require.True(t, interleaved, "creation order differs from datetime order")

	from, to := t0.Add(-2*time.Hour), s.Now().Add(time.Second)
	asc := collectAll(t, s, eventsQuery(between(from, to), "page[size]", "7"))
	requireSorted(t, asc, false)
	assert.Len(t, asc, countF(t, s, "/api/events", between(from, to)))
	seen := map[string]bool{}
	for _, id := range ids(asc) {
		require.False(t, seen[id], "%s listed twice", id)
		seen[id] = true
	}
	for _, id := range lateIDs(late) {
		assert.True(t, seen[id], id)
	}

	// Reports walk the same events in the same order (eachEvent, every index or every third).
	w := s.world.Load()
	for _, step := range []int64{1, 3} {
		var want, got []int64
		for _, id := range ids(asc) {
			g, ok := w.eventIndex(id)
			require.True(t, ok)
			if g%step == 0 {
				want = append(want, g)
			}
		}
		w.eachEvent(from.Unix(), to.Unix(), step, func(g int64) { got = append(got, g) })
		assert.Equal(t, want, got, "step %d", step)
	}
}

func TestLateEventsCountInMetricAggregates(t *testing.T) {
	off := startSmall(t, nil)
	on := startSmall(t, withLate(8, 0))
	t0 := on.Now()
	for _, s := range []*Server{off, on} {
		s.Advance(24 * time.Hour)
	}
	late := on.LateEvents()
	require.Len(t, late, 8)
	metric := late[0].MetricID
	want := 0
	for _, ev := range late {
		assert.False(t, ev.Datetime.Before(t0.Add(-DefaultLateWindow)), "the window defaults to 45 minutes")
		if ev.MetricID == metric {
			want++
		}
	}
	sum := func(s *Server) int64 {
		a := postOK(t, s, "/api/metric-aggregates", "metric-aggregate", map[string]any{
			"metric_id": metric, "measurements": []string{"count"}, "interval": "hour",
			"filter": []string{"greater-or-equal(datetime," + t0.Add(-2*time.Hour).Format(time.RFC3339) + ")", "less-than(datetime," + t0.Add(time.Hour).Format(time.RFC3339) + ")"}})
		var n int64
		for _, row := range results(a, "data") {
			for _, v := range row["measurements"].(map[string]any)["count"].([]any) {
				f, err := v.(interface{ Int64() (int64, error) }).Int64()
				require.NoError(t, err)
				n += f
			}
		}
		return n
	}
	assert.Equal(t, sum(off)+int64(want), sum(on))
}

// The option only adds: with late events on, the events are those of the account without them
// plus the late events, byte for byte.
func TestLateEventsOnlyAdd(t *testing.T) {
	off := startSmall(t, nil)
	on := startSmall(t, withLate(5, 0))
	for _, d := range []time.Duration{24 * time.Hour, time.Hour, 30 * time.Minute} {
		off.Advance(d)
		on.Advance(d)
	}
	assert.Empty(t, off.LateEvents())
	late := map[string]bool{}
	for _, id := range lateIDs(on.LateEvents()) {
		late[id] = true
	}
	require.Len(t, late, 15)
	q := url.Values{"include": {"metric,profile,attributions"}}
	offEvents, err := off.Resources("/api/events", q)
	require.NoError(t, err)
	onEvents, err := on.Resources("/api/events", q)
	require.NoError(t, err)
	var kept [][]byte
	for _, raw := range onEvents {
		var ev struct{ ID string }
		require.NoError(t, json.Unmarshal(raw, &ev))
		if !late[ev.ID] {
			kept = append(kept, bytes.ReplaceAll(raw, []byte(on.URL()), []byte(off.URL())))
		}
	}
	require.Len(t, onEvents, len(offEvents)+len(late), "the late events are listed")
	require.Len(t, kept, len(offEvents))
	for k := range kept {
		require.Equal(t, string(offEvents[k]), string(kept[k]))
	}
}

func TestLateEventsAreDeterministic(t *testing.T) {
	run := func(seed int64) ([]LateEvent, []byte) {
		s := startSmall(t, func(o *Options) { o.Seed = seed; withLate(3, 20*time.Minute)(o) })
		for _, d := range []time.Duration{time.Hour, 5 * time.Minute, 24 * time.Hour} {
			s.Advance(d)
		}
		r := get(t, s, eventsQuery(between(fixedNow.Add(-time.Hour), s.Now()), "page[size]", "1000", "include", "metric"))
		require.Equal(t, 200, r.status)
		return s.LateEvents(), bytes.ReplaceAll(r.body, []byte(s.URL()), nil)
	}
	a, bodyA := run(42)
	b, bodyB := run(42)
	assert.Equal(t, a, b)
	assert.Equal(t, string(bodyA), string(bodyB))
	c, _ := run(43)
	assert.NotEqual(t, lateIDs(a), lateIDs(c))
}

func TestLateEventsOptions(t *testing.T) {
	for in, want := range map[string]LateEvents{
		"": {}, "off": {}, "0": {}, "0:10m": {},
		"5":     {PerAdvance: 5, Window: DefaultLateWindow},
		"5:10m": {PerAdvance: 5, Window: 10 * time.Minute},
		"2:90s": {PerAdvance: 2, Window: 90 * time.Second},
	} {
		got, err := ParseLateEvents(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"x", "-1", "3:", "3:0s", "3:500ms", "3:ten"} {
		_, err := ParseLateEvents(in)
		assert.Error(t, err, in)
	}
	for _, o := range []Options{{LateEvents: LateEvents{PerAdvance: -1}}, {LateEvents: LateEvents{PerAdvance: 1, Window: -time.Minute}},
		{LateEvents: LateEvents{PerAdvance: 1, Window: time.Millisecond}}} {
		s, err := Start(o)
		if s != nil {
			_ = s.Close()
		}
		assert.Error(t, err, "%+v", o)
	}
}
