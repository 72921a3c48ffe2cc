package source

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Three windows of one variant read out of order: the state only ever moves to records below the first
// unfinished window, and never backwards.
func TestTrackerLowWaterMark(t *testing.T) {
	start := ts("2026-01-10T00:00:00Z")
	tr := newTracker(cursorState{}, start)
	w1 := &window{lo: time.Time{}, hi: ts("2026-01-04T00:00:00Z"), sorted: true}
	w2 := &window{lo: ts("2026-01-04T00:00:00Z"), hi: ts("2026-01-07T00:00:00Z"), sorted: true}
	w3 := &window{lo: ts("2026-01-07T00:00:00Z"), hi: start, sorted: true}
	tr.add([]*window{w1, w2, w3})
	require.True(t, tr.cursor().At.IsZero(), "nothing written yet")

	// The last window finishes first: nothing below w1 is known, so no cursor.
	tr.observe(w3, "e3", ts("2026-01-08T00:00:00Z"))
	tr.finish(w3)
	require.True(t, tr.cursor().At.IsZero())

	// w1 is sorted and has written up to Jan 2: everything before Jan 2 is safe.
	tr.observe(w1, "e1", ts("2026-01-02T00:00:00Z"))
	require.Equal(t, cursorState{At: ts("2026-01-02T00:00:00Z"), IDs: []string{"e1"}}, tr.cursor())

	// w1 done, w2 not started: the safe point is w2.lo; the state is the largest record below it.
	tr.finish(w1)
	require.Equal(t, cursorState{At: ts("2026-01-02T00:00:00Z"), IDs: []string{"e1"}}, tr.cursor())

	tr.observe(w2, "e2", ts("2026-01-05T12:00:00Z"))
	tr.finish(w2)
	// All done: the state is the newest record written, not the sync start.
	require.Equal(t, cursorState{At: ts("2026-01-08T00:00:00Z"), IDs: []string{"e3"}}, tr.cursor())
}

// An unsorted window only counts once it is finished.
func TestTrackerUnsortedWindowCountsWhenDone(t *testing.T) {
	start := ts("2026-01-10T00:00:00Z")
	tr := newTracker(cursorState{At: ts("2026-01-01T00:00:00Z")}, start)
	w := &window{lo: ts("2026-01-01T00:00:00Z"), hi: start}
	tr.add([]*window{w})
	tr.observe(w, "p1", ts("2026-01-05T00:00:00Z"))
	require.Equal(t, cursorState{At: ts("2026-01-01T00:00:00Z")}, tr.cursor(), "an unsorted window in progress proves nothing")
	tr.finish(w)
	require.Equal(t, cursorState{At: ts("2026-01-05T00:00:00Z"), IDs: []string{"p1"}}, tr.cursor())
}

// The cursor never passes the sync start, even when an endpoint without an upper bound returns later records,
// and never moves backwards from the previous state.
func TestTrackerBoundedBySyncStartAndPrevious(t *testing.T) {
	start := ts("2026-01-10T00:00:00Z")
	tr := newTracker(cursorState{At: ts("2026-01-03T00:00:00Z")}, start)
	w := &window{lo: ts("2026-01-03T00:00:00Z"), sorted: true} // no upper bound (lists, segments)
	tr.add([]*window{w})
	tr.observe(w, "l1", ts("2027-05-01T00:00:00Z"))
	tr.finish(w)
	require.Equal(t, cursorState{At: start}, tr.cursor(), "no ids: the records past the start are read again")

	future := newTracker(cursorState{At: ts("2999-01-01T00:00:00Z")}, start)
	require.Equal(t, cursorState{At: ts("2999-01-01T00:00:00Z")}, future.cursor(), "a state is never moved backwards")
}

// With several variants (campaign channels) the safe point is the minimum over them.
func TestTrackerVariantsTakeTheMinimum(t *testing.T) {
	start := ts("2026-01-10T00:00:00Z")
	tr := newTracker(cursorState{}, start)
	email := &window{variant: "email", lo: ts("2026-01-01T00:00:00Z"), hi: start, sorted: true}
	sms := &window{variant: "sms", lo: ts("2026-01-01T00:00:00Z"), hi: start, sorted: true}
	tr.add([]*window{email})
	tr.add([]*window{sms})
	tr.observe(email, "c1", ts("2026-01-08T00:00:00Z"))
	tr.finish(email)
	tr.observe(sms, "c2", ts("2026-01-03T00:00:00Z"))
	require.Equal(t, cursorState{At: ts("2026-01-03T00:00:00Z"), IDs: []string{"c2"}}, tr.cursor())
}

func TestWindowFiltersUseTheOperatorsTheEndpointHas(t *testing.T) {
	lo, hi := ts("2026-01-01T00:00:00Z"), ts("2026-02-01T00:00:00Z")
	require.Equal(t, []string{"greater-or-equal(datetime,2026-01-01T00:00:00Z)", "less-than(datetime,2026-02-01T00:00:00Z)"},
		windowFilters(catalog.Cursor{Field: "datetime", Lower: "greater-or-equal", Upper: "less-than"}, lo, hi))
	// greater-than(lo - 1s) is greater-or-equal(lo) at Klaviyo's whole-second precision.
	require.Equal(t, []string{"greater-than(updated,2025-12-31T23:59:59Z)"},
		windowFilters(catalog.Cursor{Field: "updated", Lower: "greater-than"}, lo, hi))
	require.Equal(t, []string{"less-or-equal(x.timestamp,2026-01-31T23:59:59Z)"},
		windowFilters(catalog.Cursor{Field: "timestamp", FilterField: "x.timestamp", Upper: "less-or-equal"}, time.Time{}, hi))
}

func TestStateRoundTrip(t *testing.T) {
	events, _ := catalog.Lookup("events")
	raw, err := encodeState(events, cursorState{At: ts("2026-03-04T05:06:07Z"), IDs: []string{"a", "b"}}, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"datetime":"2026-03-04T05:06:07Z","ids_at_cursor":["a","b"],"state_version":1}`, string(raw))
	c, _, err := decodeState(events, raw)
	require.NoError(t, err)
	require.Equal(t, cursorState{At: ts("2026-03-04T05:06:07Z"), IDs: []string{"a", "b"}}, c)
	require.True(t, c.skip("a", ts("2026-03-04T05:06:07Z")))
	require.False(t, c.skip("a", ts("2026-03-04T05:06:08Z")), "only records at the exact checkpoint are skipped")
	require.False(t, c.skip("z", ts("2026-03-04T05:06:07Z")), "a record not yet written at that moment is read")

	// The Singer SDK's bookmark shape is accepted too.
	c, _, err = decodeState(events, json.RawMessage(`{"replication_key":"datetime","replication_key_value":"2026-01-01T00:00:00+00:00"}`))
	require.NoError(t, err)
	require.Equal(t, cursorState{At: ts("2026-01-01T00:00:00Z")}, c)

	members, _ := catalog.Lookup("list_memberships")
	raw, err = encodeState(members, cursorState{}, map[string]cursorState{"L1": {At: ts("2026-01-02T00:00:00Z")}})
	require.NoError(t, err)
	require.JSONEq(t, `{"parents":{"L1":{"joined_group_at":"2026-01-02T00:00:00Z"}},"state_version":1}`, string(raw))
	_, parents, err := decodeState(members, raw)
	require.NoError(t, err)
	require.Equal(t, cursorState{At: ts("2026-01-02T00:00:00Z")}, parents["L1"])

	_, _, err = decodeState(events, json.RawMessage(`{"datetime": 12}`))
	require.ErrorContains(t, err, `datetime of stream "events" must be a date-time string`)
	_, _, err = decodeState(events, json.RawMessage(`[1]`))
	require.ErrorContains(t, err, `not a JSON object`)
}

func TestPeriods(t *testing.T) {
	for in, want := range map[string]period{"P3M": {months: 3}, "P1Y2M3W4D": {years: 1, months: 2, days: 25}, "P90D": {days: 90}} {
		p, err := parsePeriod(in)
		require.NoError(t, err, in)
		require.Equal(t, want, p, in)
	}
	for _, bad := range []string{"P", "3M", "PT1H", "P1H", "PM", "P1M2"} {
		_, err := parsePeriod(bad)
		require.Error(t, err, bad)
	}
	c := Config{StartPeriod: "P1M"}
	require.Equal(t, ts("2026-02-28T00:00:00Z"), c.startBefore(ts("2026-03-28T17:04:05Z")), "a month back, at midnight UTC")
}

func TestParseArgs(t *testing.T) {
	a, err := parseArgs([]string{"read", "--config", "c.json", "--catalog=cat.json", "--debug", "--state", "s.json"})
	require.NoError(t, err)
	require.Equal(t, "read", a.command)
	require.Equal(t, []string{"c.json"}, a.config)
	require.Equal(t, "cat.json", a.catalog)
	require.Equal(t, "s.json", a.state)
	require.Equal(t, []string{"--debug"}, a.unknown)

	a, err = parseArgs([]string{"--config", "c.json", "--discover"})
	require.NoError(t, err)
	require.Equal(t, "singer-discover", a.command)

	a, err = parseArgs([]string{"--config", "c.json", "--properties", "p.json"})
	require.NoError(t, err)
	require.Equal(t, "singer-sync", a.command)
	require.Equal(t, "p.json", a.catalog)

	_, err = parseArgs([]string{"read", "--config"})
	require.ErrorContains(t, err, "--config needs a file path")
	_, err = parseArgs([]string{"frobnicate"})
	require.ErrorContains(t, err, "unknown command")
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("config.json", []byte(`{"api_key":"pk_x","start_date":"2024-01-02T03:04:05Z","unknown":1}`))
	require.NoError(t, err)
	require.Equal(t, DefaultBaseURL, c.BaseURL)
	require.Equal(t, 128, c.MaxConcurrency)
	require.True(t, c.Flag("profile_subscriptions"), "profile_subscriptions defaults to the SPEC's true")
	require.False(t, c.Flag("profile_predictive_analytics"))
	require.Empty(t, c.List("event_metric_ids"))
	require.Equal(t, 1.0, c.RateLimitScale)
	require.Equal(t, 600, c.MaxRetryWaitSeconds)
	require.Equal(t, 60, c.RequestTimeoutSeconds)
	require.Equal(t, ts("2024-01-02T03:04:05Z"), c.StartDate)

	for _, tc := range []struct{ in, want string }{
		{``, "config.json is empty"},
		{`{`, "config.json is not valid JSON"},
		{`[1]`, "must hold a JSON object"},
		{`{}`, "api_key is required"},
		{`{"api_key": 5}`, "api_key must be string"},
		{`{"api_key":"pk_secret","start_date":"yesterday"}`, "start_date must be an RFC 3339 date-time"},
		{`{"api_key":"pk_secret","base_url":"ftp://x"}`, "base_url has the wrong format"},
		{`{"api_key":"pk_secret","max_concurrency":0.5}`, "max_concurrency must be integer"},
		{`{"api_key":"pk_secret","start_date":"P3X"}`, "start_date must be an RFC 3339 date-time like 2024-01-01T00:00:00Z or an ISO 8601 period like P3M"},
		{`{"api_key":"pk_secret","start_date":"P9999999D"}`, "start_date is not an ISO 8601 period"},
		{`{"api_key":"pk_secret","end_date":"2024"}`, "end_date must be an RFC 3339 date-time"},
		{`{"api_key":"pk_secret","start_date":"2024-02-01T00:00:00Z","end_date":"2024-01-01T00:00:00Z"}`, "end_date must be after start_date"},
	} {
		_, err := ParseConfig("config.json", []byte(tc.in))
		require.ErrorContains(t, err, tc.want, "input %s", tc.in)
		require.Equal(t, 1, strings.Count(err.Error(), tc.want), "each problem is said once: %s", err)
		require.NotContains(t, err.Error(), "pk_secret")
		require.Equal(t, "config_error", string(failureType(err)))
	}
}

// Records sharing the checkpoint's timestamp: the ids written are kept, so a resume skips exactly those.
func TestTrackerKeepsIDsAtTheCursor(t *testing.T) {
	start := ts("2026-01-10T00:00:00Z")
	tr := newTracker(cursorState{At: ts("2026-01-02T00:00:00Z"), IDs: []string{"a"}}, start)
	w := &window{lo: ts("2026-01-02T00:00:00Z"), hi: start, sorted: true}
	tr.add([]*window{w})
	tr.observe(w, "b", ts("2026-01-02T00:00:00Z"))
	require.Equal(t, cursorState{At: ts("2026-01-02T00:00:00Z"), IDs: []string{"a", "b"}}, tr.cursor(), "same moment: the ids accumulate")
	tr.observe(w, "c", ts("2026-01-03T00:00:00Z"))
	tr.observe(w, "d", ts("2026-01-03T00:00:00Z"))
	require.Equal(t, cursorState{At: ts("2026-01-03T00:00:00Z"), IDs: []string{"c", "d"}}, tr.cursor(), "a later moment replaces them")
}

// The lookback: a checkpoint lists the records written within the lookback below it, so a sync that re-reads
// that range writes only the late ones; and the list survives the state's round trip.
func TestTrackerListsTheLookback(t *testing.T) {
	t0 := ts("2026-01-09T22:00:00Z")
	tr := newTracker(cursorState{}, ts("2026-01-10T00:00:00Z"))
	tr.lookback = 2 * time.Hour
	w := &window{lo: t0, hi: ts("2026-01-10T00:00:00Z"), sorted: true}
	tr.add([]*window{w})
	tr.observe(w, "e0", t0)
	tr.observe(w, "e1", t0.Add(10*time.Minute))
	tr.observe(w, "e2", t0.Add(50*time.Minute))
	tr.observe(w, "e3", t0.Add(70*time.Minute))
	tr.finish(w)
	c := tr.cursor()
	require.Equal(t, t0.Add(70*time.Minute), c.At)
	require.Equal(t, []string{"e3"}, c.IDs)
	require.Equal(t, t0, c.From, "the list starts at the lookback before the sync's start")
	require.Equal(t, []string{"e0", "e1", "e2"}, c.Recent)

	events, _ := catalog.Lookup("events")
	raw, err := encodeState(events, c, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"datetime":"2026-01-09T23:10:00Z","ids_at_cursor":["e3"],"lookback_from":"2026-01-09T22:00:00Z","lookback_ids":["e0","e1","e2"],"state_version":1}`, string(raw))
	back, _, err := decodeState(events, raw)
	require.NoError(t, err)
	require.True(t, back.skip("e2", t0.Add(50*time.Minute)), "written within the lookback")
	require.True(t, back.skip("e3", t0.Add(70*time.Minute)), "written at the checkpoint")
	require.False(t, back.skip("late", t0.Add(30*time.Minute)), "a late event is written")
	require.False(t, back.skip("old", t0.Add(-time.Minute)), "below the lookback nothing is skipped (it is not read again)")

	// A resumed sync that re-reads the lookback sees the listed records again (skipped) and keeps them listed.
	tr = newTracker(back, ts("2026-01-10T01:00:00Z"))
	tr.lookback = 2 * time.Hour
	w = &window{lo: back.From, hi: ts("2026-01-10T00:00:00Z"), sorted: true}
	tr.add([]*window{w})
	tr.observe(w, "e1", t0.Add(10*time.Minute))
	tr.observe(w, "late", t0.Add(30*time.Minute))
	require.Equal(t, back.At, tr.cursor().At, "the checkpoint holds until the re-read passes it")
	require.Contains(t, tr.cursor().Recent, "e2", "the previous list stays while the checkpoint has not moved")
	tr.observe(w, "e2", t0.Add(50*time.Minute))
	tr.observe(w, "e3", t0.Add(70*time.Minute))
	tr.observe(w, "e4", t0.Add(90*time.Minute))
	tr.finish(w)
	c = tr.cursor()
	require.Equal(t, t0.Add(90*time.Minute), c.At)
	require.Equal(t, []string{"e3"}, c.Recent, "only what lies within the lookback before this sync's start is listed")
	require.Equal(t, t0.Add(60*time.Minute), c.From)

	// A checkpoint more than a lookback below the sync's start lists nothing: it resumes at its cursor.
	tr = newTracker(cursorState{}, ts("2026-01-12T00:00:00Z"))
	tr.lookback = time.Hour
	w = &window{lo: t0, hi: ts("2026-01-12T00:00:00Z"), sorted: true}
	tr.add([]*window{w})
	tr.observe(w, "e0", t0)
	require.Equal(t, cursorState{At: t0, IDs: []string{"e0"}}, tr.cursor())
}

// A backfill killed before its checkpoint moved resumes at its cursor: its state must not list a lookback that
// starts above the cursor, which would make the next sync start there and skip everything between (a kill test
// found 433 events lost this way). A state written that way by an earlier build is read from its cursor.
func TestKilledBackfillKeepsItsCursorAsTheLowerBound(t *testing.T) {
	at := ts("2026-01-17T03:15:39Z")
	syncStart := ts("2026-11-29T19:34:21Z")
	prev := cursorState{At: at, IDs: []string{"HCXKCZrP4b"}}
	tr := newTracker(prev, syncStart)
	tr.lookback = time.Hour
	w := &window{lo: at, hi: syncStart, sorted: true}
	tr.add([]*window{w})
	c := tr.cursor()
	require.Equal(t, at, c.At, "nothing was written: the checkpoint holds")
	require.True(t, c.From.IsZero(), "no lookback list above the cursor: %s", c.From)
	require.Empty(t, c.Recent)

	events, _ := catalog.Lookup("events")
	cfg, err := ParseConfig("config.json", []byte(`{"api_key":"pk_x"}`))
	require.NoError(t, err)
	sel := catalog.Selection{Stream: events, Incremental: true}
	sh, err := newShaper(sel)
	require.NoError(t, err)
	written := json.RawMessage(`{"datetime":"2026-01-17T03:15:39Z","ids_at_cursor":["HCXKCZrP4b"],"lookback_from":"2026-11-29T18:34:21Z","lookback_ids":[],"state_version":1}`)
	src := &fakePlanSource{first: map[string]time.Time{"/api/events": at}}
	sp, err := planner{cfg: cfg, syncStart: syncStart, src: src}.plan(context.Background(), sel, sh, written)
	require.NoError(t, err)
	require.NotEmpty(t, sp.windows)
	require.Equal(t, at, sp.windows[0].lo, "the read starts at the cursor, not at the lookback list above it")
}
