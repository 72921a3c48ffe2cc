package source

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// testEngine builds an engine on a client that never sleeps, against base, with the config options in extra.
func testEngine(t *testing.T, base string, extra string, out *bytes.Buffer) *engine {
	t.Helper()
	cfg, err := ParseConfig("config.json", []byte(`{"api_key":"pk_test"`+extra+`}`))
	require.NoError(t, err)
	client, err := klaviyo.New(klaviyo.Config{
		BaseURL: base, APIKey: "pk_test", MaxAttempts: 3, RateScale: 1000,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		Rand:  func() float64 { return 0.5 },
	})
	require.NoError(t, err)
	cfg.BaseURL, cfg.APIKey, cfg.MaxConcurrency = base, "pk_test", 4
	return &engine{cfg: cfg, client: client, out: emit.NewAirbyte(out, emit.Options{}),
		syncStart: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC), parents: newParentCache(),
		board: newProgressBoard(time.Now)}
}

// Klaviyo answers predictive analytics with 503s at times: the profiles stream must still complete, reading those
// pages without predictions.
func TestPredictiveAnalytics503FallsBackWithoutPredictions(t *testing.T) {
	var withPredictive, without atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		if strings.Contains(r.URL.Query().Get("additional-fields[profile]"), "predictive_analytics") {
			withPredictive.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"errors":[{"id":"x","code":"service_unavailable","title":"Unavailable","detail":"try later"}]}`))
			return
		}
		without.Add(1)
		_, _ = w.Write([]byte(`{"data":[{"type":"profile","id":"p1","attributes":{"email":"a@example.com","updated":"2026-01-02T00:00:00+00:00"},"links":{"self":"x"}}],"links":{"self":"x"}}`))
	}))
	defer srv.Close()

	var out bytes.Buffer
	e := testEngine(t, srv.URL, `,"profile_predictive_analytics":true`, &out)
	s, _ := catalog.Lookup("profiles")
	failed := e.run(context.Background(), []catalog.Selection{{Stream: s}}, nil)
	require.Empty(t, failed, "%s", out.String())
	require.Positive(t, withPredictive.Load(), "predictive analytics was asked for first")
	require.Positive(t, without.Load(), "then the page was read without it")
	require.Contains(t, out.String(), `"id":"p1"`)
	require.Contains(t, out.String(), "Klaviyo failed predictive_analytics on /api/profiles#predictive_analytics (503); stream profiles reads on from that page without it")
	require.Contains(t, out.String(), `"status":"COMPLETE"`)
}

// syncOutput is what a test sync wrote, decoded.
type syncOutput struct {
	records map[string][]map[string]any // by stream
	states  map[string][]json.RawMessage
	raw     string
}

func parseOutput(t *testing.T, out *bytes.Buffer) syncOutput {
	t.Helper()
	msgs, err := protocol.ParseAirbyteOutput(out.Bytes())
	require.NoError(t, err)
	so := syncOutput{records: map[string][]map[string]any{}, states: map[string][]json.RawMessage{}, raw: out.String()}
	for _, m := range msgs {
		switch {
		case m.Record != nil:
			so.records[m.Record.Stream] = append(so.records[m.Record.Stream], m.Record.Data)
		case m.State != nil:
			so.states[m.State.Stream] = append(so.states[m.State.Stream], m.State.StreamState)
		}
	}
	return so
}

// requireCursorsNeverMoveBack checks that every state of a stream has a cursor at or after the one before.
func requireCursorsNeverMoveBack(t *testing.T, s catalog.Stream, states []json.RawMessage) {
	t.Helper()
	var last time.Time
	for _, st := range states {
		c, _, err := decodeState(s, st)
		require.NoError(t, err)
		require.False(t, c.At.Before(last), "state %s moves the cursor back from %s", st, last)
		last = c.At
	}
}

// hourlyProfiles are n profiles updated an hour apart, the last an hour before syncStart.
func hourlyProfiles(n int, syncStart time.Time) []fakeProfile {
	ps := make([]fakeProfile, n)
	for i := range ps {
		ps[i] = fakeProfile{id: fmt.Sprintf("p%02d", i), updated: syncStart.Add(-time.Duration(n-i) * time.Hour)}
	}
	return ps
}

// A page that fails on predictive analytics is read again without them from that page on: the pages before it
// are never written twice, and no state moves backwards. (Before this was fixed, the fallback restarted the
// window from its first request and wrote its earlier pages again.)
func TestPredictiveFallbackResumesAtTheFailedPage(t *testing.T) {
	for _, incremental := range []bool{true, false} {
		t.Run(fmt.Sprintf("incremental=%v", incremental), func(t *testing.T) {
			syncStart := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
			fake := &fakeProfiles{profiles: hourlyProfiles(40, syncStart), pageSize: 1,
				fail: func(q url.Values, page int) bool {
					return strings.Contains(q.Get("additional-fields[profile]"), "predictive_analytics") && (page == 2 || page == 5)
				}}
			srv := fake.start(t)
			var out bytes.Buffer
			e := testEngine(t, srv.URL, `,"profile_predictive_analytics":true`, &out)
			s, _ := catalog.Lookup("profiles")
			require.Empty(t, e.run(context.Background(), []catalog.Selection{{Stream: s, Incremental: incremental}}, nil), "%s", out.String())

			so := parseOutput(t, &out)
			seen := map[string]int{}
			for _, r := range so.records["profiles"] {
				seen[r["id"].(string)]++
			}
			require.Len(t, seen, 40, "every profile arrives")
			for id, n := range seen {
				require.Equal(t, 1, n, "profile %s written %d times", id, n)
			}
			requireCursorsNeverMoveBack(t, s, so.states["profiles"])

			// Windows of several pages each failed at pages 2 and 5, and the reads went on from there.
			var resumed int
			for _, q := range fake.served() {
				if q.Get("page[cursor]") != "" && !strings.Contains(q.Get("additional-fields[profile]"), "predictive_analytics") {
					resumed++
				}
			}
			require.Positive(t, resumed, "the fallback asks for the failed page itself")
			require.Contains(t, so.raw, "stream profiles reads on from that page without it")
		})
	}
}

// The fallback request keeps the failed page's position and takes the stream's own budget, not a literal.
func TestWithoutFallibleKeepsThePageAndTakesTheStreamsBudget(t *testing.T) {
	cfg, err := ParseConfig("config.json", []byte(`{"api_key":"pk_x","profile_predictive_analytics":true}`))
	require.NoError(t, err)
	s, _ := catalog.Lookup("profiles")
	reqs := newRequestBuilder(cfg, s, nil)
	first := reqs.build("", "", nil)
	require.Equal(t, "/api/profiles#predictive_analytics", first.Endpoint)
	require.Equal(t, klaviyo.Budget{Burst: catalog.TierM().Burst, PerMinute: catalog.TierM().PerMinute}, first.Budget)

	page3 := first
	page3.URL, page3.Query = "https://a.klaviyo.com/api/profiles?additional-fields%5Bprofile%5D=subscriptions%2Cpredictive_analytics&page%5Bcursor%5D=abc", nil
	failed := &klaviyo.Error{Kind: klaviyo.KindTransient, Status: 503, Endpoint: first.Endpoint}
	next, dropped, ok := reqs.withoutFallible(page3, failed)
	require.True(t, ok)
	require.Equal(t, []string{"predictive_analytics"}, dropped)
	require.Equal(t, "abc", next.Query.Get("page[cursor]"), "the same page")
	require.Equal(t, "subscriptions", next.Query.Get("additional-fields[profile]"))
	require.Empty(t, next.URL)
	require.Equal(t, "/api/profiles", next.Endpoint)
	require.Equal(t, klaviyo.Budget{Burst: s.Rate.Burst, PerMinute: s.Rate.PerMinute}, next.Budget)

	_, _, ok = reqs.withoutFallible(next, failed)
	require.False(t, ok, "nothing left to drop")
	_, _, ok = reqs.withoutFallible(first, &klaviyo.Error{Kind: klaviyo.KindBadRequest})
	require.False(t, ok, "only a failure that retrying could not cure falls back")
}

// A profile suppressed twice, months apart, is returned by the windows of both suppressions; each window writes
// only the suppression that lies in it, so every suppression is one row. Full refresh reads through the same
// server-side filter (only suppressed profiles) and costs the same requests as an incremental read from the
// beginning.
func TestPerRowCursorsAreWrittenByTheirOwnWindow(t *testing.T) {
	syncStart := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	profiles := []fakeProfile{
		{id: "twice", updated: syncStart.Add(-day), suppressed: []time.Time{syncStart.Add(-200 * day), syncStart.Add(-20 * day)},
			listSupps: []time.Time{syncStart.Add(-190 * day), syncStart.Add(-10 * day)}},
		{id: "once", updated: syncStart.Add(-day), suppressed: []time.Time{syncStart.Add(-100 * day)}, listSupps: []time.Time{syncStart.Add(-90 * day)}},
		{id: "never", updated: syncStart.Add(-day)},
		// The earliest suppression comes first in Klaviyo's order, so the windows span all of them.
		{id: "early", updated: syncStart.Add(-day), suppressed: []time.Time{syncStart.Add(-300 * day)}, listSupps: []time.Time{syncStart.Add(-300 * day)}},
	}
	for _, tc := range []struct {
		stream string
		field  string
	}{{"global_exclusions", suppressionField}, {"list_exclusions", listSuppressionField}} {
		s, _ := catalog.Lookup(tc.stream)
		requests := map[bool]int{}
		for _, incremental := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s incremental=%v", tc.stream, incremental), func(t *testing.T) {
				// Pages of two: the probe's page cannot hold every suppression, so the span is cut in windows.
				fake := &fakeProfiles{profiles: profiles, pageSize: 2}
				srv := fake.start(t)
				var out bytes.Buffer
				e := testEngine(t, srv.URL, "", &out)
				require.Empty(t, e.run(context.Background(), []catalog.Selection{{Stream: s, Incremental: incremental}}, nil), "%s", out.String())
				so := parseOutput(t, &out)
				rows := map[string]int{}
				for _, r := range so.records[tc.stream] {
					rows[r["profile_id"].(string)+" "+r["timestamp"].(string)]++
				}
				require.Equal(t, map[string]int{
					"twice " + profiles[0].suppressedAt(tc.stream, 0): 1,
					"twice " + profiles[0].suppressedAt(tc.stream, 1): 1,
					"once " + profiles[1].suppressedAt(tc.stream, 0):  1,
					"early " + profiles[3].suppressedAt(tc.stream, 0): 1,
				}, rows, "one row per suppression")
				for _, q := range fake.served() {
					require.Contains(t, q.Get("filter"), tc.field, "every request selects suppressed profiles on Klaviyo's side")
				}
				require.Greater(t, len(fake.served())-1, 1, "after the probe, the suppressions fell in different windows")
				requests[incremental] = len(fake.served())
				if incremental {
					requireCursorsNeverMoveBack(t, s, so.states[tc.stream])
				}
			})
		}
		require.Equal(t, requests[true], requests[false], "%s: a full refresh costs what an incremental read from the beginning costs", tc.stream)
	}
}

// suppressedAt is the timestamp of a profile's i-th suppression as the fake writes it, for the stream's kind.
func (p fakeProfile) suppressedAt(stream string, i int) string {
	ts := p.suppressed
	if stream == "list_exclusions" {
		ts = p.listSupps
	}
	return ts[i].Format("2006-01-02T15:04:05+00:00")
}
