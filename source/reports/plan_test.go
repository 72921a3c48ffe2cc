package reports

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// planNow is the moment of the planning tests: 10:30 in Paris (CET, +01:00), before the spring change of 2026-03-29.
var planNow = time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)

func planAccount(t *testing.T) Account {
	return Account{Location: paris(t), Metrics: []Metric{
		{ID: "OPENED", Name: "Opened Email", Created: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "PLACED", Name: "Placed Order", Created: time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC)},
	}}
}

// windows renders a plan's requests as "part from→to final|live" lines in the account's time.
func windows(p *Plan) []string {
	var out []string
	for _, r := range p.Requests {
		mode := "live"
		if r.Final {
			mode = "final"
		}
		s := fmt.Sprintf("%s→%s %s", r.From.Format("2006-01-02T15:04"), r.To.Format("2006-01-02T15:04"), mode)
		if r.Part != "" {
			s = r.Part + " " + s
		}
		if r.Resumed {
			s += " resumed at " + r.URL
		}
		out = append(out, s)
	}
	return out
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02T15:04", s, paris(t))
	require.NoError(t, err)
	return v
}

// TestPlanRequests is the table of what a definition, a state and a moment plan: the windows, in order, and
// exact bodies, as go-github's request tests pin what goes on the wire.
func TestPlanRequests(t *testing.T) {
	since := func(s string) Config {
		d, err := time.Parse(time.DateOnly, s)
		require.NoError(t, err)
		return Config{StartDate: d}
	}
	cursor := func(s string) State { return State{FinalTo: map[string]time.Time{"": at(t, s)}} }
	cases := []struct {
		name   string
		def    Definition
		prev   State
		want   []string
		bodies map[int]string // request index -> exact body
		final  string         // the final boundary
	}{
		{
			name: "daily series, first sync from start_date: 60-day windows, the last one up to the sync",
			def:  userDef(t, since("2026-01-01"), `{"name":"r","type":"flow_series","statistics":["opens"]}`),
			want: []string{"2026-01-01T00:00→2026-03-02T00:00 live", "2026-03-02T00:00→2026-03-10T10:30 live"},
			bodies: map[int]string{
				0: `{"data":{"type":"flow-series-report","attributes":{"statistics":["opens"],"timeframe":{"start":"2026-01-01T00:00:00+01:00","end":"2026-03-02T00:00:00+01:00"},"interval":"daily","conversion_metric_id":"PLACED","group_by":["flow_id","flow_message_id","send_channel"]}}}`,
				1: `{"data":{"type":"flow-series-report","attributes":{"statistics":["opens"],"timeframe":{"start":"2026-03-02T00:00:00+01:00","end":"2026-03-10T10:30:00+01:00"},"interval":"daily","conversion_metric_id":"PLACED","group_by":["flow_id","flow_message_id","send_channel"]}}}`,
			},
			final: "2026-02-08T00:00",
		},
		{
			name:  "daily series, the next day: the lookback and the new day in one request",
			def:   userDef(t, since("2026-01-01"), `{"name":"r","type":"flow_series","statistics":["opens"]}`),
			prev:  cursor("2026-02-07T00:00"),
			want:  []string{"2026-02-07T00:00→2026-03-10T10:30 live"},
			final: "2026-02-08T00:00",
		},
		{
			name: "daily series, a backfill the quota stopped: from the cursor, final windows first",
			def:  userDef(t, since("2025-01-01"), `{"name":"r","type":"segment_series","statistics":["total_members"]}`),
			prev: cursor("2025-08-30T00:00"),
			want: []string{"2025-08-30T00:00→2025-10-29T00:00 final", "2025-10-29T00:00→2025-12-28T00:00 final",
				"2025-12-28T00:00→2026-02-26T00:00 live", "2026-02-26T00:00→2026-03-10T10:30 live"},
			bodies: map[int]string{
				0: `{"data":{"type":"segment-series-report","attributes":{"statistics":["total_members"],"timeframe":{"start":"2025-08-30T00:00:00+02:00","end":"2025-10-29T00:00:00+01:00"},"interval":"daily"}}}`,
			},
			final: "2026-02-08T00:00",
		},
		{
			name:  "a cursor past the final boundary (a longer lookback than before): the whole lookback again",
			def:   userDef(t, since("2025-01-01"), `{"name":"r","type":"form_series","statistics":["submits"],"lookback_days":45}`),
			prev:  cursor("2026-02-07T00:00"),
			want:  []string{"2026-01-24T00:00→2026-03-10T10:30 live"},
			final: "2026-01-24T00:00",
		},
		{
			name: "hourly series: 7-day windows",
			def:  userDef(t, Config{}, `{"name":"r","type":"form_series","interval":"hourly","statistics":["submits"],"lookback_days":20}`),
			prev: cursor("2026-02-17T00:00"),
			want: []string{"2026-02-17T00:00→2026-02-24T00:00 live", "2026-02-24T00:00→2026-03-03T00:00 live",
				"2026-03-03T00:00→2026-03-10T00:00 live", "2026-03-10T00:00→2026-03-10T10:30 live"},
			final: "2026-02-18T00:00",
		},
		{
			name: "weekly series: Monday-aligned windows of 52 weeks, the history start on its Monday",
			def:  userDef(t, Config{}, `{"name":"r","type":"segment_series","interval":"weekly","statistics":["total_members"],"history_days":400}`),
			want: []string{"2025-02-03T00:00→2026-02-02T00:00 final", "2026-02-02T00:00→2026-03-10T10:30 live"},
			bodies: map[int]string{
				0: `{"data":{"type":"segment-series-report","attributes":{"statistics":["total_members"],"timeframe":{"start":"2025-02-03T00:00:00+01:00","end":"2026-02-02T00:00:00+01:00"},"interval":"weekly"}}}`,
			},
			final: "2026-02-02T00:00",
		},
		{
			name:  "monthly series: 11 months a request (52 weeks hold no 12)",
			def:   userDef(t, since("2024-01-15"), `{"name":"r","type":"flow_series","interval":"monthly","statistics":["opens"]}`),
			want:  []string{"2024-01-01T00:00→2024-12-01T00:00 final", "2024-12-01T00:00→2025-11-01T00:00 final", "2025-11-01T00:00→2026-03-10T10:30 live"},
			final: "2026-02-01T00:00",
		},
		{
			name: "values per month: one request a period, the current one up to the sync",
			def:  userDef(t, since("2025-01-01"), `{"name":"r","type":"flow_values","statistics":["opens"]}`),
			prev: cursor("2026-01-01T00:00"),
			want: []string{"2026-01-01T00:00→2026-02-01T00:00 final", "2026-02-01T00:00→2026-03-01T00:00 live", "2026-03-01T00:00→2026-03-10T10:30 live"},
			bodies: map[int]string{
				2: `{"data":{"type":"flow-values-report","attributes":{"statistics":["opens"],"timeframe":{"start":"2026-03-01T00:00:00+01:00","end":"2026-03-10T10:30:00+01:00"},"conversion_metric_id":"PLACED","group_by":["flow_id","flow_message_id","send_channel"]}}}`,
			},
			final: "2026-02-01T00:00",
		},
		{
			name:  "campaign values by send date: windows of a year",
			def:   defaultDef(t, "campaign_values_reports", since("2024-01-01")),
			want:  []string{"2024-01-01T00:00→2025-01-01T00:00 final", "2025-01-01T00:00→2026-01-01T00:00 final", "2026-01-01T00:00→2026-03-10T10:30 live"},
			final: "2026-02-08T00:00",
		},
		{
			name:  "segment values start no earlier than Klaviyo's segment data (June 2023)",
			def:   userDef(t, since("2023-01-01"), `{"name":"r","type":"segment_values","period":"month","statistics":["total_members"]}`),
			prev:  State{},
			want:  nil, // checked below: 34 months from 2023-06-01
			final: "2026-02-01T00:00",
		},
		{
			name:  "weekly segment series start on the first Monday after June 1st, 2023",
			def:   userDef(t, since("2023-01-01"), `{"name":"r","type":"segment_series","interval":"weekly","statistics":["total_members"]}`),
			want:  []string{"2023-06-05T00:00→2024-06-03T00:00 final", "2024-06-03T00:00→2025-06-02T00:00 final", "2025-06-02T00:00→2026-03-10T10:30 live"},
			final: "2026-02-02T00:00",
		},
		{
			name:   "snapshot by key: one request, Klaviyo resolves the key",
			def:    userDef(t, Config{}, `{"name":"r","type":"flow_values","timeframe":"last_30_days","statistics":["opens"],"conversion_metric_id":"OPENED"}`),
			want:   []string{"2026-02-08T00:00→2026-03-10T00:00 live"},
			bodies: map[int]string{0: `{"data":{"type":"flow-values-report","attributes":{"statistics":["opens"],"timeframe":{"key":"last_30_days"},"conversion_metric_id":"OPENED","group_by":["flow_id","flow_message_id","send_channel"]}}}`},
		},
		{
			name: "snapshot by key longer than the interval allows: resolved here and split",
			def:  userDef(t, Config{}, `{"name":"r","type":"form_series","timeframe":"last_90_days","statistics":["submits"]}`),
			want: []string{"2025-12-10T00:00→2026-02-08T00:00 live", "2026-02-08T00:00→2026-03-10T00:00 live"},
			bodies: map[int]string{
				1: `{"data":{"type":"form-series-report","attributes":{"statistics":["submits"],"timeframe":{"start":"2026-02-08T00:00:00+01:00","end":"2026-03-10T00:00:00+01:00"},"interval":"daily","group_by":["form_id"]}}}`,
			},
		},
		{
			name: "snapshot of a custom timeframe, wall clocks in the account's timezone",
			def:  userDef(t, Config{}, `{"name":"r","type":"form_values","timeframe":{"start":"2025-07-01","end":"2025-10-01T12:00:00Z"},"statistics":["submits"],"filter":"equals(form_id,\"F1\")"}`),
			want: []string{"2025-07-01T00:00→2025-10-01T12:00 live"},
			bodies: map[int]string{
				0: `{"data":{"type":"form-values-report","attributes":{"statistics":["submits"],"timeframe":{"start":"2025-07-01T00:00:00+02:00","end":"2025-10-01T12:00:00+02:00"},"group_by":["form_id"],"filter":"equals(form_id,\"F1\")"}}}`,
			},
		},
		{
			name: "metric aggregates of every metric: a cursor per metric, a year a request",
			def:  defaultDef(t, "metric_aggregates", since("2025-06-01")),
			prev: State{FinalTo: map[string]time.Time{"PLACED": at(t, "2026-02-07T00:00")}},
			want: []string{"OPENED 2025-06-01T00:00→2026-03-10T10:30 live", "PLACED 2026-02-07T00:00→2026-03-10T10:30 live"},
			bodies: map[int]string{
				1: `{"data":{"type":"metric-aggregate","attributes":{"metric_id":"PLACED","measurements":["count","unique","sum_value"],"interval":"day","timezone":"Europe/Paris","filter":["greater-or-equal(datetime,2026-02-07T00:00:00+01:00)","less-than(datetime,2026-03-10T10:30:00+01:00)"]}}}`,
			},
			final: "2026-02-08T00:00",
		},
		{
			name: "a user's metric aggregate with dimensions and filters",
			def: userDef(t, since("2026-03-01"), `{"name":"r","type":"metric_aggregates","metric_id":"PLACED","measurements":["sum_value"],
				"by":["$attributed_flow"],"interval":"week","filter":["equals($attributed_channel,\"email\")"]}`),
			want: []string{"PLACED 2026-02-23T00:00→2026-03-10T10:30 live"},
			bodies: map[int]string{
				0: `{"data":{"type":"metric-aggregate","attributes":{"metric_id":"PLACED","measurements":["sum_value"],"interval":"week","by":["$attributed_flow"],"timezone":"Europe/Paris","filter":["greater-or-equal(datetime,2026-02-23T00:00:00+01:00)","less-than(datetime,2026-03-10T10:30:00+01:00)","equals($attributed_channel,\"email\")"]}}}`,
			},
			final: "2026-02-23T00:00",
		},
		{
			name: "a window the quota cut short resumes at its links.next",
			def:  userDef(t, since("2025-01-01"), `{"name":"r","type":"flow_series","statistics":["opens"]}`),
			prev: State{FinalTo: map[string]time.Time{"": at(t, "2025-08-30T00:00")},
				Pending: &Pending{From: at(t, "2025-08-30T00:00"), To: at(t, "2025-10-29T00:00"), Next: "https://a.klaviyo.com/api/flow-series-reports?page_cursor=p2"}},
			want: []string{"2025-08-30T00:00→2025-10-29T00:00 final resumed at https://a.klaviyo.com/api/flow-series-reports?page_cursor=p2",
				"2025-10-29T00:00→2025-12-28T00:00 final", "2025-12-28T00:00→2026-02-26T00:00 live", "2026-02-26T00:00→2026-03-10T10:30 live"},
			final: "2026-02-08T00:00",
		},
		{
			name:  "a changed definition starts over from the history start",
			def:   userDef(t, since("2026-01-01"), `{"name":"r","type":"flow_series","statistics":["opens"]}`),
			prev:  State{Definition: "0123456789abcdef", FinalTo: map[string]time.Time{"": at(t, "2026-02-07T00:00")}, Seen: []uint64{1, 2}},
			want:  []string{"2026-01-01T00:00→2026-03-02T00:00 live", "2026-03-02T00:00→2026-03-10T10:30 live"},
			final: "2026-02-08T00:00",
		},
		{
			name:  "no lookback: from yesterday's cursor, today is the only day read again next time",
			def:   userDef(t, since("2026-01-01"), `{"name":"r","type":"flow_series","statistics":["opens"],"lookback_days":0}`),
			prev:  cursor("2026-03-09T00:00"),
			want:  []string{"2026-03-09T00:00→2026-03-10T10:30 live"},
			final: "2026-03-10T00:00",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.def.Plan(c.prev, planNow, planAccount(t), NewLedger(planNow, 1))
			require.NoError(t, err)
			if c.want != nil {
				assert.Equal(t, c.want, windows(p))
			}
			for i, body := range c.bodies {
				require.Less(t, i, len(p.Requests))
				assert.JSONEq(t, body, string(p.Requests[i].Body), "request %d", i)
				assert.Equal(t, body, string(p.Requests[i].Body), "bodies are byte for byte what the test says: attributes in the spec's order")
			}
			if c.final != "" {
				assert.Equal(t, at(t, c.final), p.FinalBoundary)
			}
			for _, r := range p.Requests {
				assert.Equal(t, c.def.Kind.Endpoint, r.Endpoint)
				assert.Equal(t, c.def.Kind.Budget, r.Budget)
			}
			again, err := c.def.Plan(c.prev, planNow, planAccount(t), NewLedger(planNow, 1))
			require.NoError(t, err)
			assert.Equal(t, p.Requests, again.Requests, "planning is deterministic")
		})
	}

	t.Run("segment months", func(t *testing.T) {
		d := userDef(t, since("2023-01-01"), `{"name":"r","type":"segment_values","statistics":["total_members"]}`)
		p, err := d.Plan(State{}, planNow, planAccount(t), NewLedger(planNow, 1))
		require.NoError(t, err)
		w := windows(p)
		require.Len(t, w, 34)
		assert.Equal(t, "2023-06-01T00:00→2023-07-01T00:00 final", w[0])
		assert.Equal(t, at(t, "2023-07-01T00:00"), p.Requests[0].PeriodEnd)
		assert.Equal(t, "2026-03-01T00:00→2026-03-10T10:30 live", w[33])
		assert.Equal(t, at(t, "2026-04-01T00:00"), p.Requests[33].PeriodEnd, "a period row names its whole period")
	})
}

func TestPlanNotesAndEdgeCases(t *testing.T) {
	acct := planAccount(t)
	d := defaultDef(t, "flow_series_reports", Config{})
	p, err := d.Plan(State{}, planNow, acct, NewLedger(planNow, 1))
	require.NoError(t, err)
	assert.Equal(t, []string{"flow_series_reports: conversion metric Placed Order (PLACED): the account's order metric, so conversion_value is attributed revenue; set report_conversion_metric_id to choose another"}, p.Notes)
	assert.Len(t, p.Requests, 13, "two years of daily series: 13 windows of 60 days")

	restart, err := d.Plan(State{Definition: "other", FinalTo: map[string]time.Time{"": planNow}, Quota: Quota{Day: "2026-03-10", Endpoint: d.Kind.Endpoint, Used: 7}},
		planNow, acct, NewLedger(planNow, 1))
	require.NoError(t, err)
	assert.Contains(t, restart.Notes[1], "the report's definition changed since the last sync")
	assert.Len(t, restart.Requests, 13)
	assert.Equal(t, 7, restart.prev.Quota.Used, "requests spent today stay spent")

	moved := State{Definition: p.digest, Timezone: "America/New_York", FinalTo: map[string]time.Time{"": planNow}}
	tz, err := d.Plan(moved, planNow, acct, NewLedger(planNow, 1))
	require.NoError(t, err)
	assert.Contains(t, tz.Notes[1], "the account's timezone changed from America/New_York to Europe/Paris")

	none, err := d.Plan(State{}, planNow, Account{Location: acct.Location}, NewLedger(planNow, 1))
	require.NoError(t, err)
	assert.Empty(t, none.Requests)
	assert.Contains(t, none.Notes[0], "the account has no metric yet")

	future, err := d.Plan(State{Definition: p.digest, FinalTo: map[string]time.Time{"": planNow.AddDate(5, 0, 0)}}, planNow, acct, NewLedger(planNow, 1))
	require.NoError(t, err)
	assert.Empty(t, future.Requests, "a state from the future has nothing due")

	_, err = d.Plan(State{}, planNow, Account{}, NewLedger(planNow, 1))
	assert.ErrorContains(t, err, "the account's timezone is unknown")

	kyiv, err := time.LoadLocation("Europe/Kyiv")
	require.NoError(t, err)
	agg := userDef(t, Config{}, `{"name":"r","type":"metric_aggregates","metric_id":"M","history_days":1}`)
	ap, err := agg.Plan(State{}, planNow, Account{Location: kyiv}, NewLedger(planNow, 1))
	require.NoError(t, err)
	assert.Contains(t, string(ap.Requests[0].Body), `"timezone":"Europe/Kiev"`, "Klaviyo refuses Europe/Kyiv and takes its alias")
}

func TestChooseConversionMetric(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name    string
		metrics []Metric
		id, why string
	}{
		{"placed order", []Metric{{"A", "Active on Site", day(1)}, {"P", "Placed Order", day(2)}}, "P", "the account's order metric, so conversion_value is attributed revenue"},
		{"two stores", []Metric{{"P2", "Placed Order", day(3)}, {"P1", "Placed Order", day(2)}}, "P1", "the account's order metric, so conversion_value is attributed revenue (the oldest of 2 metrics of that name)"},
		{"no orders", []Metric{{"C", "Clicked Email", day(1)}, {"A", "Active on Site", day(2)}}, "A", "the account has no Placed Order metric; Active on Site is the closest conversion it records"},
		{"email only", []Metric{{"O", "Opened Email", day(1)}, {"C", "Clicked Email", day(2)}}, "C", "the account has no Placed Order metric; Clicked Email is the closest conversion it records"},
		{"none of them", []Metric{{"Z", "Custom", day(2)}, {"Y", "Other", day(1)}}, "Y", "the account has none of Placed Order, Active on Site or Clicked Email; its oldest metric is used"},
	}
	for _, c := range cases {
		m, why, ok := ChooseConversionMetric(c.metrics)
		assert.True(t, ok, c.name)
		assert.Equal(t, c.id, m.ID, c.name)
		assert.Equal(t, c.why, why, c.name)
	}
	_, _, ok := ChooseConversionMetric(nil)
	assert.False(t, ok)
}
