package source_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/stretchr/testify/require"
)

// profiles_filter end to end, in both dialects: the profiles read are exactly those the sandbox's own filter
// selects, and the incremental window still applies.
func TestProfilesFilterInBothDialects(t *testing.T) {
	srv := shared(t)
	now := srv.Now()
	dir := t.TempDir()
	filter := "greater-than(created," + now.AddDate(0, -6, 0).UTC().Format("2006-01-02T15:04:05Z") + ")"
	raw, err := srv.Resources("/api/profiles", url.Values{"filter": {filter}})
	require.NoError(t, err)
	var want []string
	for _, r := range raw {
		var res struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(r, &res))
		want = append(want, res.ID)
	}
	all, err := srv.Count("/api/profiles", nil)
	require.NoError(t, err)
	require.NotEmpty(t, want)
	require.Less(t, len(want), all, "the filter must leave some profiles out for the test to mean anything")
	sort.Strings(want)

	cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"profiles_filter": filter}))
	ids := func(o *syncOutput) []string {
		var got []string
		for _, r := range o.rows("profiles") {
			var rec struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(r, &rec))
			got = append(got, rec.ID)
		}
		sort.Strings(got)
		return got
	}
	t.Run("airbyte", func(t *testing.T) {
		res, o := airbyteRead(t, now, cfg, airbyteCatalog(t, dir, cfg, true, "profiles"), "")
		requireCompleted(t, res, o, []string{"profiles"})
		require.Equal(t, want, ids(o))
	})
	t.Run("singer", func(t *testing.T) {
		res, o := singerSync(t, now, cfg, singerCatalog(t, dir, cfg, "profiles"), "")
		require.Equal(t, 0, res.code, res.stderr)
		require.Equal(t, want, ids(o))
	})
	t.Run("a filter Klaviyo would refuse", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.json", configFor(srv, map[string]any{"profiles_filter": `contains(email,"x")`}))
		r := invoke(t, now, "read", "--config", bad, "--catalog", airbyteCatalog(t, dir, cfg, true, "profiles"))
		require.Equal(t, 1, r.code)
		e := oneMessage(t, r.stdout).Trace.Error
		require.Equal(t, "config_error", e.FailureType)
		require.Contains(t, e.Message, "profiles_filter, term 1: Klaviyo does not accept contains on email")
		r = invoke(t, now, "--config", bad, "--discover")
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "profiles_filter, term 1")
	})
}

// eventTimes reads the datetime of every events record of a sync, by id.
func eventTimes(t *testing.T, o *syncOutput) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, raw := range o.rows("events") {
		var rec struct {
			ID       string `json:"id"`
			Datetime string `json:"datetime"`
		}
		require.NoError(t, json.Unmarshal(raw, &rec))
		at, err := time.Parse(time.RFC3339, rec.Datetime)
		require.NoError(t, err)
		_, dup := out[rec.ID]
		require.False(t, dup, "event %s written twice", rec.ID)
		out[rec.ID] = at
	}
	return out
}

// end_date, in both dialects: a sync reads nothing at or after it and leaves its cursor there; the next sync
// without it goes on from there, and the two together are the whole stream, once.
func TestEndDateInBothDialects(t *testing.T) {
	srv := shared(t)
	now := srv.Now()
	end := now.Add(-10 * 24 * time.Hour).Truncate(time.Hour)
	// Incremental syncs read up to their start; the sandbox also holds future-dated events, read by the sync after
	// their time comes.
	all, err := srv.Count("/api/events", url.Values{"filter": {"less-than(datetime," + now.Format("2006-01-02T15:04:05Z") + ")"}})
	require.NoError(t, err)
	for _, dialect := range []string{"airbyte", "singer"} {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			bounded := writeFile(t, dir, "bounded.json", configFor(srv, map[string]any{"end_date": end.Format(time.RFC3339)}))
			open := writeFile(t, dir, "open.json", configFor(srv, nil))
			var first, second *syncOutput
			if dialect == "airbyte" {
				cat := airbyteCatalog(t, dir, open, true, "events")
				var res result
				res, first = airbyteRead(t, now, bounded, cat, "")
				requireCompleted(t, res, first, []string{"events"})
				final := checkAirbyteStates(t, first, nil, end)
				_, second = airbyteRead(t, now, open, cat, writeFile(t, dir, "state.json", airbyteStateFile(final)))
			} else {
				cat := singerCatalog(t, dir, open, "events")
				var res result
				res, first = singerSync(t, now, bounded, cat, "")
				require.Equal(t, 0, res.code, res.stderr)
				final, _ := checkSingerStates(t, first, nil, end)
				state := writeFile(t, dir, "state.json", map[string]any{"bookmarks": final})
				_, second = singerSync(t, now, open, cat, state)
			}
			before := eventTimes(t, first)
			require.NotEmpty(t, before)
			for id, at := range before {
				require.True(t, at.Before(end), "event %s at %s is not before end_date %s", id, at, end)
			}
			after := eventTimes(t, second)
			union := len(before)
			for id, at := range after {
				if _, again := before[id]; again {
					require.False(t, at.After(end), "only events at the checkpoint's exact moment may be read again")
					continue
				}
				require.False(t, at.Before(end.Add(-time.Second)), "the second sync starts where end_date stopped the first")
				union++
			}
			require.Equal(t, all, union, "the two syncs together are every event")
		})
	}
}

// A relative start_date is fixed at a stream's first sync and kept in its state: a sync days later starts at the
// same moment, in both dialects.
func TestRelativeStartDateIsFixedAtTheFirstSync(t *testing.T) {
	srv := startSandbox(t, releaseOptions())
	t0 := srv.Now()
	start := t0.AddDate(0, 0, -20).UTC().Truncate(24 * time.Hour)
	for _, dialect := range []string{"airbyte", "singer"} {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"start_date": "P20D"}))
			// A full refresh reads from the start every time: only a fixed start keeps it where it was.
			var first map[string]json.RawMessage
			var o *syncOutput
			if dialect == "airbyte" {
				var res result
				res, o = airbyteRead(t, t0, cfg, airbyteCatalog(t, dir, cfg, false, "events"), "")
				requireCompleted(t, res, o, []string{"events"})
				first = checkAirbyteStates(t, o, nil, t0)
			} else {
				var res result
				res, o = singerSync(t, t0, cfg, singerCatalogAs(t, dir, cfg, "FULL_TABLE", "events"), "")
				require.Equal(t, 0, res.code, res.stderr)
				first, _ = checkSingerStates(t, o, nil, t0)
			}
			var st struct {
				Start   string `json:"start_date"`
				Setting string `json:"start_date_setting"`
			}
			require.NoError(t, json.Unmarshal(first["events"], &st))
			require.Equal(t, start.Format("2006-01-02T15:04:05Z"), st.Start, "the period is resolved at midnight UTC, 20 days before the sync")
			require.Equal(t, "P20D", st.Setting)
			for id, at := range eventTimes(t, o) {
				require.False(t, at.Before(start), "event %s at %s is before the start %s", id, at, start)
			}

			// Five days later, from that state, the read still starts at the fixed moment.
			later := t0.Add(5 * 24 * time.Hour)
			var again *syncOutput
			if dialect == "airbyte" {
				_, again = airbyteRead(t, later, cfg, airbyteCatalog(t, dir, cfg, false, "events"), writeFile(t, dir, "state.json", airbyteStateFile(first)))
			} else {
				_, again = singerSync(t, later, cfg, singerCatalogAs(t, dir, cfg, "FULL_TABLE", "events"), writeFile(t, dir, "state.json", map[string]any{"bookmarks": first}))
			}
			earliest := later
			for _, at := range eventTimes(t, again) {
				if at.Before(earliest) {
					earliest = at
				}
			}
			require.True(t, earliest.Before(start.Add(5*24*time.Hour)), "the second read reaches back to the fixed start, not 20 days before itself")
		})
	}
}

// Late events, in both dialects: events the sandbox creates after its clock moved, dated before the first sync's
// checkpoint, arrive in the next sync thanks to the lookback, each once; without a lookback they are lost.
func TestLateEventsArriveThroughTheLookback(t *testing.T) {
	for _, tc := range []struct {
		dialect  string
		lookback int
	}{{"airbyte", 7200}, {"singer", 7200}, {"airbyte", 0}} {
		t.Run(fmt.Sprintf("%s lookback=%d", tc.dialect, tc.lookback), func(t *testing.T) {
			opts := releaseOptions()
			// Late events up to 3 days before the clock's previous value: the golden account's events are sparse,
			// so the first sync's checkpoint (its last event) lies hours before its start, and some late events
			// fall below it, which only a lookback catches.
			opts.LateEvents = sandbox.LateEvents{PerAdvance: 40, Window: 72 * time.Hour}
			srv := startSandbox(t, opts)
			dir := t.TempDir()
			cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"events_lookback_minutes": tc.lookback}))
			sync := func(now time.Time, state map[string]json.RawMessage) (*syncOutput, map[string]json.RawMessage) {
				if tc.dialect == "airbyte" {
					st := ""
					if state != nil {
						st = writeFile(t, dir, fmt.Sprintf("state-%d.json", now.Unix()), airbyteStateFile(state))
					}
					res, o := airbyteRead(t, now, cfg, airbyteCatalog(t, dir, cfg, true, "events"), st)
					requireCompleted(t, res, o, []string{"events"})
					return o, checkAirbyteStates(t, o, state, now)
				}
				st := ""
				if state != nil {
					st = writeFile(t, dir, fmt.Sprintf("state-%d.json", now.Unix()), map[string]any{"bookmarks": state})
				}
				res, o := singerSync(t, now, cfg, singerCatalog(t, dir, cfg, "events"), st)
				require.Equal(t, 0, res.code, res.stderr)
				final, _ := checkSingerStates(t, o, state, now)
				return o, final
			}
			t0 := srv.Now()
			first, state := sync(t0, nil)
			written := eventTimes(t, first)
			srv.Advance(2 * time.Hour)
			late := srv.LateEvents()
			require.Len(t, late, 40)
			lateIDs := map[string]bool{}
			for _, e := range late {
				require.True(t, e.Datetime.Before(t0), "a late event is dated before the first sync's start")
				lateIDs[e.ID] = true
			}
			second, _ := sync(srv.Now(), state)
			arrived := 0
			for id := range eventTimes(t, second) {
				if lateIDs[id] {
					arrived++
					continue
				}
				_, again := written[id]
				require.False(t, again, "event %s was written by the first sync and again by the second", id)
			}
			// Only late events dated within the lookback below the first sync's checkpoint can be caught.
			var cursor struct {
				Datetime string `json:"datetime"`
			}
			require.NoError(t, json.Unmarshal(state["events"], &cursor))
			at, err := time.Parse(time.RFC3339, cursor.Datetime)
			require.NoError(t, err)
			catchable, belowCursor := 0, 0
			for _, e := range late {
				if !e.Datetime.Before(at.Add(-time.Duration(tc.lookback) * time.Minute)) {
					catchable++
				}
				if e.Datetime.Before(at) {
					belowCursor++
				}
			}
			require.Positive(t, belowCursor, "some late events fall below the first sync's checkpoint, or the test proves nothing")
			if tc.lookback == 0 {
				require.Less(t, arrived, len(late), "without a lookback, late events below the checkpoint are lost")
			} else {
				require.Equal(t, len(late), catchable, "the lookback reaches every late event")
			}
			require.Equal(t, catchable, arrived, "every late event the lookback reaches arrives, once")
		})
	}
}
