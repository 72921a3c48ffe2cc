package reports

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// checkRows validates every row against the definition's schema and checks that no key repeats.
func checkRows(t *testing.T, def Definition, rows [][]byte) {
	t.Helper()
	sc, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(def.Schema()))
	require.NoError(t, err)
	keys := map[string]bool{}
	for _, r := range rows {
		res, err := sc.Validate(gojsonschema.NewBytesLoader(r))
		require.NoError(t, err)
		require.True(t, res.Valid(), "%s: %v\n%s", def.Name, res.Errors(), r)
		k := keyOf(t, def, decodeRow(t, r))
		require.False(t, keys[k], "%s: key %q twice", def.Name, k)
		keys[k] = true
	}
}

// TestEveryStreamReadsTheSandbox reads every default stream and a user-defined report of every shape: each
// produces rows valid against its schema, with unique keys, a state, and the log lines of its quota.
func TestEveryStreamReadsTheSandbox(t *testing.T) {
	s, c := startSandbox(t, nil)
	cfg := Config{StartDate: time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC), Reports: []byte(`[
		{"name":"campaigns_by_tag","type":"campaign_values","group_by":["campaign_id","campaign_message_id","campaign_message_name","tag_id","tag_name","variation_name"]},
		{"name":"flows_weekly","type":"flow_series","interval":"weekly","statistics":["opens","conversion_value"],"group_by":["flow_id","flow_message_id","flow_name","send_channel","tag_id"]},
		{"name":"flows_last_30_days","type":"flow_values","timeframe":"last_30_days"},
		{"name":"form_versions_hourly","type":"form_series","interval":"hourly","group_by":["form_id","form_version_id"],"history_days":3},
		{"name":"forms_by_week","type":"form_values","period":"week","group_by":["form_id","form_version_id"]},
		{"name":"segments_monthly","type":"segment_series","interval":"monthly","timeframe":{"start":"2025-01-01","end":"2026-03-01"}},
		{"name":"segments_yesterday","type":"segment_values","timeframe":"yesterday"},
		{"name":"orders_by_message","type":"metric_aggregates","metric_id":"PLACED_ORDER","measurements":["count","sum_value"],"by":["$attributed_message","$attributed_channel"],"interval":"week"}
	]`)}
	acct, err := Discover(context.Background(), c, true)
	require.NoError(t, err)
	assert.Equal(t, "Europe/Paris", acct.Location.String(), "the sandbox account's timezone, from /api/accounts")
	conv, _, ok := ChooseConversionMetric(acct.Metrics)
	require.True(t, ok)
	require.Equal(t, "Placed Order", conv.Name)
	cfg.Reports = []byte(strings.ReplaceAll(string(cfg.Reports), "PLACED_ORDER", conv.ID))
	defs, err := Definitions(cfg, nil)
	require.NoError(t, err)
	require.Len(t, defs, 16)
	led := NewLedger(s.Now(), 1)
	for _, def := range defs {
		t.Run(def.Name, func(t *testing.T) {
			p, err := def.Plan(State{}, s.Now(), acct, led)
			require.NoError(t, err)
			sink := &memSink{}
			require.NoError(t, p.Read(context.Background(), c, sink))
			require.NotEmpty(t, sink.rows, "the sandbox account has data for every report")
			checkRows(t, def, sink.rows)
			st := sink.lastState(t, def.Name)
			assert.Equal(t, "Europe/Paris", st.Timezone)
			assert.NotEmpty(t, st.Definition)
			if def.Kind.Daily > 0 {
				assert.Equal(t, Quota{Day: "2026-03-10", Endpoint: def.Kind.Endpoint, Used: len(p.Requests)}, st.Quota,
					"one request per window: the sandbox's pages hold 500 results")
				assert.Contains(t, sink.logs, "INFO "+p.plannedLine())
			}
			assert.Contains(t, sink.logs[len(sink.logs)-1], def.Name+": sent ")
			if def.Incremental() {
				assert.True(t, p.FinalBoundary.Equal(st.FinalTo[p.Requests[len(p.Requests)-1].Part]), "the cursor ends at the final boundary")
			} else {
				assert.Empty(t, st.FinalTo, "a snapshot has no cursor")
				assert.Empty(t, st.Seen)
			}
		})
	}
	assert.Contains(t, led.Summary(), "/api/flow-series-reports ")
	assert.Equal(t, 225-len(mustPlan(t, defs[2], acct, s.Now()).Requests)-len(mustPlan(t, defs[9], acct, s.Now()).Requests),
		led.Left("/api/flow-series-reports"), "two flow series streams took from the one quota of their endpoint")
}

func mustPlan(t *testing.T, def Definition, acct Account, now time.Time) *Plan {
	t.Helper()
	p, err := def.Plan(State{}, now, acct, NewLedger(now, 1))
	require.NoError(t, err)
	return p
}

// latestByKey folds rows into the last one written per key.
func latestByKey(t *testing.T, def Definition, sets ...[][]byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rows := range sets {
		for _, r := range rows {
			out[keyOf(t, def, decodeRow(t, r))] = string(r)
		}
	}
	return out
}

// TestASecondReadWritesTheNewDaysAndTheChangedOnes moves the sandbox's clock two days between two syncs: the
// second one reads the lookback and the new days again and writes exactly the rows that are new or changed.
func TestASecondReadWritesTheNewDaysAndTheChangedOnes(t *testing.T) {
	for stream, lookback := range map[string]int{"campaign_values_reports": 300, "flow_series_reports": DefaultLookbackDays,
		"flow_values_reports": DefaultLookbackDays, "segment_series_reports": DefaultLookbackDays, "metric_aggregates": DefaultLookbackDays} {
		t.Run(stream, func(t *testing.T) {
			s, c := startSandbox(t, nil)
			// The sandbox's last campaign went out more than 30 days before its clock: campaigns are re-read over
			// a longer lookback, to see their numbers move.
			def := defaultDef(t, stream, Config{StartDate: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), LookbackDays: &lookback})
			first, p1, err := syncOnce(t, s, c, def, State{}, nil)
			require.NoError(t, err)
			before := latestByKey(t, def, first.rows)
			st := first.lastState(t, def.Name)

			s.Advance(48 * time.Hour)
			second, p2, err := syncOnce(t, s, c, def, st, nil)
			require.NoError(t, err)
			for _, r := range p2.Requests {
				if _, known := st.FinalTo[r.Part]; known {
					assert.False(t, r.From.Before(p1.FinalBoundary), "the second sync starts at the first one's final boundary, %s", r.From)
				}
			}
			// What the second sync read, all of it: the same plan with no fingerprints.
			whole := &memSink{}
			p2.prev.Seen = nil
			require.NoError(t, p2.Read(context.Background(), c, whole))
			var want []string
			for _, r := range whole.rows {
				if before[keyOf(t, def, decodeRow(t, r))] != string(r) {
					want = append(want, string(r))
				}
			}
			var got []string
			for _, r := range second.rows {
				got = append(got, string(r))
			}
			assert.Equal(t, want, got, "the second sync writes the new and the changed rows, and nothing else")
			assert.NotEmpty(t, got, "two days bring new numbers")
			assert.Less(t, len(got), len(whole.rows), "unchanged re-read rows are not written again")
			var changedOld int
			for _, r := range second.rows {
				if _, seen := before[keyOf(t, def, decodeRow(t, r))]; seen {
					changedOld++
				}
			}
			if stream == "campaign_values_reports" {
				assert.Positive(t, changedOld, "late attribution reaches campaigns already written, under their keys")
			}
			t.Logf("%s: first sync %d rows; second sync read %d rows, wrote %d (%d of them re-attributed)", stream, len(first.rows), len(whole.rows), len(got), changedOld)
		})
	}
}

// TestABackfillLargerThanADaysQuotaFinishesOverSeveralDays runs a two-year backfill of the daily flow series
// with a quota of 5 requests a day: each day reads what fits and ends with a rate-limit error naming the next
// day, the next day carries on from the state, and in the end every row is there once, as one uninterrupted
// read gives it.
func TestABackfillLargerThanADaysQuotaFinishesOverSeveralDays(t *testing.T) {
	s, c := startSandbox(t, nil)
	cfg := Config{StartDate: time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)}
	def := defaultDef(t, "flow_series_reports", cfg)
	const scale = 5.0 / 225 // a day of 5 requests
	var st State
	var finalRows [][]byte
	finalKeys := map[string]int{}
	days := 0
	var all [][]byte
	for ; days < 10; days++ {
		led := NewLedger(s.Now(), scale)
		led.Count(st)
		require.Equal(t, 5, led.Limit())
		sink, p, err := syncOnce(t, s, c, def, st, led)
		all = append(all, sink.rows...)
		for i, r := range p.Requests[:min(len(p.Requests), 5)] {
			assert.False(t, r.Resumed, "request %d: windows end on whole pages here", i)
		}
		st = sink.lastState(t, def.Name)
		// Rows of final windows are never written twice across the days.
		for _, r := range sink.rows {
			row := decodeRow(t, r)
			date, _ := time.Parse(time.RFC3339, row["date"].(string))
			if date.Before(p.FinalBoundary) {
				finalKeys[keyOf(t, def, row)]++
				finalRows = append(finalRows, r)
			}
		}
		if err == nil {
			assert.LessOrEqual(t, len(p.Requests), 5)
			break
		}
		var ke *klaviyo.Error
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, klaviyo.KindRateLimited, ke.Kind)
		assert.Equal(t, led.ResumeAt(), ke.RetryAt)
		assert.Contains(t, err.Error(), "the next sync carries on from")
		assert.Equal(t, 5, st.Quota.Used, "the state records the day's spending")
		assert.Zero(t, led.Left(def.Kind.Endpoint))
		assert.Contains(t, sink.logs[len(sink.logs)-1], "planned requests wait until "+led.ResumeAt().Format(time.RFC3339))
		s.Advance(24 * time.Hour)
	}
	require.Equal(t, 2, days, "13 windows (the last ones the lookback) at 5 a day: the third day finishes")
	for k, n := range finalKeys {
		assert.Equal(t, 1, n, "final row %q written once", k)
	}

	// One uninterrupted read at the same clock gives the same rows.
	once, _, err := syncOnce(t, s, c, def, State{}, NewLedger(s.Now(), 1))
	require.NoError(t, err)
	assert.Equal(t, latestByKey(t, def, once.rows), latestByKey(t, def, all), "nothing lost, nothing different")
	assert.Less(t, len(all)-len(once.rows), len(once.rows)/4, "only the lookback was read more than once")
}

// fakePoster answers report requests from a function and counts them, for what the sandbox cannot stage.
type fakePoster struct {
	answer func(req klaviyo.PostRequest) (*klaviyo.Document, error)
	got    []klaviyo.PostRequest
}

func (f *fakePoster) Post(ctx context.Context, req klaviyo.PostRequest) (*klaviyo.Document, error) {
	f.got = append(f.got, req)
	if req.Sent != nil {
		req.Sent()
	}
	return f.answer(req)
}

// segmentPage is a segment values answer with the given segment ids.
func segmentPage(next string, ids ...string) *klaviyo.Document {
	var rows []string
	for _, id := range ids {
		rows = append(rows, `{"groupings":{"segment_id":"`+id+`"},"statistics":{"total_members":1}}`)
	}
	return &klaviyo.Document{Next: next, Data: []klaviyo.Resource{{Type: "segment-values-report",
		Attributes: []byte(`{"results":[` + strings.Join(rows, ",") + `]}`)}}}
}

// TestAWindowCutShortResumesAtItsNextPage stages a report of three pages when the quota has room for two: the
// state keeps the links.next, and the next day's first request goes on from it, so no page is read twice.
func TestAWindowCutShortResumesAtItsNextPage(t *testing.T) {
	acct := planAccount(t)
	def := userDef(t, Config{StartDate: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		`{"name":"r","type":"segment_values","statistics":["total_members"],"period":"month"}`)
	pages := func(req klaviyo.PostRequest) (*klaviyo.Document, error) {
		switch req.URL {
		case "":
			return segmentPage("https://k/p2", "a", "b"), nil
		case "https://k/p2":
			return segmentPage("https://k/p3", "c"), nil
		default:
			return segmentPage("", "d"), nil
		}
	}
	f := &fakePoster{answer: pages}
	led := NewLedger(planNow, 1)
	led.Count(State{Quota: Quota{Day: "2026-03-10", Endpoint: def.Kind.Endpoint, Used: 223}})
	p, err := def.Plan(State{}, planNow, acct, led)
	require.NoError(t, err)
	assert.Equal(t, 2, p.Fits)
	sink := &memSink{}
	err = p.Read(context.Background(), f, sink)
	require.ErrorIs(t, err, klaviyo.KindRateLimited)
	st := sink.lastState(t, "r")
	require.NotNil(t, st.Pending)
	assert.Equal(t, "https://k/p3", st.Pending.Next)
	assert.Len(t, sink.rows, 3, "two pages written")
	assert.Len(t, st.Seen, 3, "and remembered, should the window have to be read whole again")
	assert.Equal(t, 2, st.Quota.Used)

	next := planNow.Add(24 * time.Hour)
	led2 := NewLedger(next, 1)
	led2.Count(st)
	p2, err := def.Plan(st, next, acct, led2)
	require.NoError(t, err)
	require.True(t, p2.Requests[0].Resumed)
	f2 := &fakePoster{answer: pages}
	sink2 := &memSink{}
	require.NoError(t, p2.Read(context.Background(), f2, sink2))
	assert.Equal(t, "https://k/p3", f2.got[0].URL, "the cut window goes on from its next page")
	assert.Equal(t, string(p2.Requests[0].Body), string(f2.got[0].Body), "with the window's own body")
	first := decodeRow(t, sink2.rows[0])
	assert.Equal(t, "d", first["segment_id"])
	assert.Equal(t, "2024-01-01T00:00:00+01:00", first["period_start"])

	// Had Klaviyo refused the saved cursor, the window is read from its first page, and only d is new.
	refused := false
	refusing := &fakePoster{answer: func(req klaviyo.PostRequest) (*klaviyo.Document, error) {
		if req.URL == "https://k/p3" && !refused {
			refused = true // the saved cursor has expired; the ones of a fresh read are good
			return nil, &klaviyo.Error{Kind: klaviyo.KindBadRequest, Status: 400, Endpoint: req.Endpoint, Detail: "Invalid page cursor."}
		}
		return pages(req)
	}}
	p3, err := def.Plan(st, next, acct, NewLedger(next, 1))
	require.NoError(t, err)
	sink3 := &memSink{}
	require.NoError(t, p3.Read(context.Background(), refusing, sink3))
	assert.Equal(t, []string{"https://k/p3", "", "https://k/p2", "https://k/p3"}, urls(refusing.got[:4]))
	assert.Equal(t, "d", decodeRow(t, sink3.rows[0])["segment_id"], "a, b and c were written before")
	assert.Contains(t, sink3.logs, "WARN r: Klaviyo refused the saved page cursor (Invalid page cursor.); reading the window from its first page")
}

func urls(reqs []klaviyo.PostRequest) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.URL)
	}
	return out
}

// TestAWindowReadAgainWholeSkipsWhatWasWritten: when the cut window cannot resume (its links.next is refused),
// reading it whole again writes only the rows not written before.
func TestAWindowReadAgainWholeSkipsWhatWasWritten(t *testing.T) {
	acct := planAccount(t)
	def := userDef(t, Config{StartDate: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		`{"name":"r","type":"segment_values","statistics":["total_members"],"period":"month"}`)
	st := State{Definition: mustPlan(t, def, acct, planNow).digest, Timezone: "Europe/Paris", Seen: []uint64{}}
	rowsOf := func(ids ...string) [][]byte {
		p := mustPlan(t, def, acct, planNow)
		rows, err := def.Rows(p.Requests[0], segmentPage("", ids...).Data[0].Attributes)
		require.NoError(t, err)
		return rows
	}
	for _, r := range rowsOf("a", "b") {
		st.Seen = union(st.Seen, []uint64{fingerprint(r)})
	}
	f := &fakePoster{answer: func(req klaviyo.PostRequest) (*klaviyo.Document, error) { return segmentPage("", "a", "b", "c"), nil }}
	p, err := def.Plan(st, planNow, acct, NewLedger(planNow, 1))
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, p.Read(context.Background(), f, sink))
	assert.Equal(t, rowsOf("c")[0], sink.rows[0], "the first window writes c only; a and b were written")
}

// TestSomeoneElsesQuota429StopsTheStreamWithItsRetryAt: Klaviyo's own 429 (another integration spent the day)
// checkpoints and ends the stream with Klaviyo's RetryAt, and closes the endpoint in the ledger.
func TestSomeoneElsesQuota429StopsTheStreamWithItsRetryAt(t *testing.T) {
	acct := planAccount(t)
	def := defaultDef(t, "segment_series_reports", Config{StartDate: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)})
	retryAt := planNow.Add(14 * time.Hour)
	calls := 0
	f := &fakePoster{answer: func(req klaviyo.PostRequest) (*klaviyo.Document, error) {
		calls++
		if calls == 2 {
			return nil, &klaviyo.Error{Kind: klaviyo.KindRateLimited, Status: 429, Endpoint: req.Endpoint, RetryAt: retryAt}
		}
		return &klaviyo.Document{Data: []klaviyo.Resource{{Type: "segment-series-report",
			Attributes: []byte(`{"date_times":["2025-12-01T00:00:00+01:00"],"results":[{"groupings":{"segment_id":"s"},"statistics":{"total_members":[1],"members_added":[1],"members_removed":[0],"net_members_changed":[1]}}]}`)}}}, nil
	}}
	led := NewLedger(planNow, 1)
	p, err := def.Plan(State{}, planNow, acct, led)
	require.NoError(t, err)
	require.Len(t, p.Requests, 2)
	sink := &memSink{}
	err = p.Read(context.Background(), f, sink)
	var ke *klaviyo.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, retryAt, ke.RetryAt)
	assert.Zero(t, led.Left(def.Kind.Endpoint), "the endpoint is closed for the rest of the day")
	st := sink.lastState(t, def.Name)
	assert.Equal(t, 2, st.Quota.Used, "the refused request counts as Klaviyo counted it")
	assert.NotEmpty(t, sink.rows)
}

// TestRetriesAreCountedAgainstTheDay: a request Klaviyo saw twice (a retry) spends two of the day.
func TestRetriesAreCountedAgainstTheDay(t *testing.T) {
	acct := planAccount(t)
	def := userDef(t, Config{}, `{"name":"r","type":"segment_values","timeframe":"yesterday"}`)
	f := &fakePoster{answer: func(req klaviyo.PostRequest) (*klaviyo.Document, error) {
		req.Sent() // a second attempt
		return segmentPage("", "a"), nil
	}}
	led := NewLedger(planNow, 1)
	p, err := def.Plan(State{}, planNow, acct, led)
	require.NoError(t, err)
	sink := &memSink{}
	require.NoError(t, p.Read(context.Background(), f, sink))
	assert.Equal(t, 223, led.Left(def.Kind.Endpoint))
	assert.Equal(t, 2, sink.lastState(t, "r").Quota.Used)

	neverSent := posterFunc(func(ctx context.Context, req klaviyo.PostRequest) (*klaviyo.Document, error) {
		return nil, errors.New("boom")
	})
	p2, err := def.Plan(State{}, planNow, acct, led)
	require.NoError(t, err)
	err = p2.Read(context.Background(), neverSent, &memSink{})
	require.ErrorContains(t, err, "boom")
	assert.Equal(t, 223, led.Left(def.Kind.Endpoint), "a request that never left spends nothing")
}

// posterFunc adapts a function to Poster; it never calls Sent, like a request refused before sending.
type posterFunc func(ctx context.Context, req klaviyo.PostRequest) (*klaviyo.Document, error)

func (f posterFunc) Post(ctx context.Context, req klaviyo.PostRequest) (*klaviyo.Document, error) {
	return f(ctx, req)
}
