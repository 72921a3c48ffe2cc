package source_test

import (
	"encoding/json"
	"net/url"
	"sort"
	"testing"
	"time"

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
