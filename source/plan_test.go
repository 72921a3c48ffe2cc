package source

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// fakePlanSource answers planning's two questions from tables, and remembers the probes it was asked.
type fakePlanSource struct {
	// first is the cursor of the earliest record of each endpoint path; absent means the stream is empty.
	first map[string]time.Time
	// whole names the endpoint paths whose probe page holds all their data (no links.next).
	whole map[string]bool
	// last, when set for a path, adds a second record to the probe's page with this cursor: the page's span.
	last    map[string]time.Time
	parents map[string][]string
	probes  []string
}

func (f *fakePlanSource) probe(_ context.Context, reqs requestBuilder, req klaviyo.Request) (*klaviyo.Document, error) {
	f.probes = append(f.probes, describeRequest(req))
	t, ok := f.first[req.Path]
	if !ok {
		return &klaviyo.Document{}, nil
	}
	ts := t.Format(time.RFC3339)
	attrs := fmt.Sprintf(`{%q:%q}`, reqs.s.Cursor.Field, ts)
	if reqs.s.Cursor.FilterField != "" {
		attrs = fmt.Sprintf(`{"subscriptions":{"email":{"marketing":{"suppression":[{"reason":"r","timestamp":%q}],"list_suppressions":[{"list_id":"L","reason":"r","timestamp":%q}]}}}}`, ts, ts)
	}
	doc := &klaviyo.Document{Data: []klaviyo.Resource{{Type: reqs.s.ResourceType, ID: "first", Attributes: json.RawMessage(attrs)}}}
	if l, ok := f.last[req.Path]; ok {
		doc.Data = append(doc.Data, klaviyo.Resource{Type: reqs.s.ResourceType, ID: "second",
			Attributes: json.RawMessage(fmt.Sprintf(`{%q:%q}`, reqs.s.Cursor.Field, l.Format(time.RFC3339)))})
	}
	if !f.whole[req.Path] {
		doc.Next = "https://a.klaviyo.com" + req.Path + "?page[cursor]=next"
	}
	return doc, nil
}

func (f *fakePlanSource) parentIDs(_ context.Context, stream string) ([]string, error) {
	ids, ok := f.parents[stream]
	if !ok {
		return nil, fmt.Errorf("no parents of %s in the test's table", stream)
	}
	return ids, nil
}

// describeRequest writes a request as its budget key and its path with the query unescaped, keys sorted, so a
// table of expected requests reads like the URLs Klaviyo receives.
func describeRequest(req klaviyo.Request) string {
	keys := make([]string, 0, len(req.Query))
	for k := range req.Query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+req.Query.Get(k))
	}
	return fmt.Sprintf("[%s %d/s %d/min] %s?%s", req.Endpoint, req.Budget.Burst, req.Budget.PerMinute, req.Path, strings.Join(parts, "&"))
}

// describePlan lists a plan's tasks, one line per read: the parent, the window, and the first request.
func describePlan(sp *streamPlan) []string {
	var out []string
	for _, t := range sp.tasks {
		for _, rd := range t.reads {
			line := describeRequest(rd.req)
			if rd.window != nil && rd.window.page != nil {
				line = fmt.Sprintf("probe page: [%s, %s)", rd.window.lo.Format(time.RFC3339), rd.window.hi.Format(time.RFC3339))
			}
			if rd.object {
				line = "object " + line
			}
			out = append(out, line)
		}
	}
	return out
}

func TestPlanStreamStateToRequests(t *testing.T) {
	syncStart := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	at := func(s string) time.Time { return ts(s) }
	for _, tc := range []struct {
		name    string
		stream  string
		config  string // extra config members
		full    bool
		fields  []string
		state   string
		first   map[string]time.Time
		whole   map[string]bool
		last    map[string]time.Time
		parents map[string][]string
		mode    planMode
		probes  []string
		reads   []string
		err     string
	}{
		{
			name: "events from the beginning: a probe, then windows an hour or more long", stream: "events",
			first: map[string]time.Time{"/api/events": at("2026-01-09T21:00:00Z")}, mode: readWindows,
			probes: []string{"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=100&sort=datetime"},
			reads: []string{
				"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=less-than(datetime,2026-01-09T22:00:00Z)&include=metric&page[size]=1000&sort=datetime",
				"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=greater-or-equal(datetime,2026-01-09T22:00:00Z),less-than(datetime,2026-01-09T23:00:00Z)&include=metric&page[size]=1000&sort=datetime",
				"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=greater-or-equal(datetime,2026-01-09T23:00:00Z),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=1000&sort=datetime",
			},
		},
		{
			name: "events from a state: the state is the lower bound", stream: "events",
			state: `{"datetime":"2026-01-09T22:30:00Z","ids_at_cursor":["e1"]}`,
			first: map[string]time.Time{"/api/events": at("2026-01-09T22:30:00Z")}, mode: readWindows,
			reads: []string{
				"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=greater-or-equal(datetime,2026-01-09T22:30:00Z),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=1000&sort=datetime",
			},
		},
		{
			name: "a state that lists its lookback: the read starts an hour below the checkpoint", stream: "events",
			state: `{"datetime":"2026-01-09T23:00:00Z","ids_at_cursor":["e1"],"lookback_from":"2026-01-09T22:00:00Z","lookback_ids":[]}`,
			first: map[string]time.Time{"/api/events": at("2026-01-09T22:30:00Z")}, mode: readWindows,
			reads: []string{
				"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=greater-or-equal(datetime,2026-01-09T22:00:00Z),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=1000&sort=datetime",
			},
		},
		{
			name: "a shorter lookback than the state lists", stream: "events", config: `,"events_lookback_minutes":15`,
			state: `{"datetime":"2026-01-09T23:00:00Z","lookback_from":"2026-01-09T22:00:00Z","lookback_ids":[]}`,
			first: map[string]time.Time{"/api/events": at("2026-01-09T23:30:00Z")}, mode: readWindows,
			reads: []string{
				"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=greater-or-equal(datetime,2026-01-09T22:45:00Z),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=1000&sort=datetime",
			},
		},
		{
			name: "start_date later than the state wins", stream: "events", config: `,"start_date":"2026-01-09T23:00:00Z"`,
			state: `{"datetime":"2026-01-01T00:00:00Z"}`,
			first: map[string]time.Time{"/api/events": at("2026-01-09T23:10:00Z")}, mode: readWindows,
			reads: []string{
				"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=greater-or-equal(datetime,2026-01-09T23:00:00Z),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=1000&sort=datetime",
			},
		},
		{
			name: "event_metric_ids: one query per metric", stream: "events", config: `,"event_metric_ids":["M1","M\"2"]`,
			mode: readWindows,
			probes: []string{
				`[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=equals(metric_id,"M1"),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=100&sort=datetime`,
				`[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=equals(metric_id,"M\"2"),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=100&sort=datetime`,
			},
		},
		{
			name: "a state at the sync start reads nothing", stream: "events", state: `{"datetime":"2026-01-10T00:00:00Z"}`,
			mode: readWindows,
		},
		{
			name: "full refresh: windows through the filter from the epoch, the last open above", stream: "global_exclusions", full: true,
			first: map[string]time.Time{"/api/profiles": at("2026-01-09T22:00:00Z")}, mode: readWindows,
			probes: []string{"[/api/profiles 75/s 750/min] /api/profiles?additional-fields[profile]=subscriptions&filter=greater-or-equal(subscriptions.email.marketing.suppression.timestamp,1970-01-01T00:00:00Z)&page[size]=100&sort=subscriptions.email.marketing.suppression.timestamp"},
			reads: []string{
				"[/api/profiles 75/s 750/min] /api/profiles?additional-fields[profile]=subscriptions&filter=greater-or-equal(subscriptions.email.marketing.suppression.timestamp,1970-01-01T00:00:00Z),less-than(subscriptions.email.marketing.suppression.timestamp,2026-01-09T23:00:00Z)&page[size]=100&sort=subscriptions.email.marketing.suppression.timestamp",
				"[/api/profiles 75/s 750/min] /api/profiles?additional-fields[profile]=subscriptions&filter=greater-or-equal(subscriptions.email.marketing.suppression.timestamp,2026-01-09T23:00:00Z)&page[size]=100&sort=subscriptions.email.marketing.suppression.timestamp",
			},
		},
		{
			name: "profiles with predictive analytics: their own budget, and greater-than for the lower bound", stream: "profiles",
			config: `,"profile_predictive_analytics":true`, state: `{"updated":"2026-01-09T23:00:00Z"}`,
			first: map[string]time.Time{"/api/profiles": at("2026-01-09T23:30:00Z")}, mode: readWindows,
			reads: []string{
				"[/api/profiles#predictive_analytics 10/s 150/min] /api/profiles?additional-fields[profile]=subscriptions,predictive_analytics&filter=greater-than(updated,2026-01-09T22:59:59Z),less-than(updated,2026-01-10T00:00:00Z)&page[size]=100&sort=updated",
			},
		},
		{
			name: "a partial selection asks for only its attributes, and the cursor; an hour is one window, no probe", stream: "profiles",
			config: `,"profile_subscriptions":false`, fields: []string{"id", "email"}, state: `{"updated":"2026-01-09T23:00:00Z"}`,
			first: map[string]time.Time{"/api/profiles": at("2026-01-09T23:30:00Z")}, mode: readWindows,
			reads: []string{
				"[/api/profiles 75/s 750/min] /api/profiles?fields[profile]=email,updated&filter=greater-than(updated,2026-01-09T22:59:59Z),less-than(updated,2026-01-10T00:00:00Z)&page[size]=100&sort=updated",
			},
		},
		{
			name: "no upper-bound operator: one window, no probe", stream: "lists", state: `{"updated":"2026-01-09T00:00:00Z"}`,
			mode: readWindows,
			reads: []string{
				"[/api/lists 75/s 750/min] /api/lists?filter=greater-than(updated,2026-01-08T23:59:59Z)&page[size]=10&sort=updated",
			},
		},
		{
			name: "no cursor: read once", stream: "accounts", mode: readOnce,
			reads: []string{"[/api/accounts 1/s 15/min] /api/accounts?"},
		},
		{
			// Flows are S tier (3 a second); at half the budget the client counts a burst of 2.
			name: "full refresh of a stream whose budget allows two windows: one per variant, no probe", stream: "flows", full: true, mode: readWindows,
			config: `,"rate_limit_scale":0.5`,
			first:  map[string]time.Time{"/api/flows": at("2026-01-09T23:30:00Z")},
			reads: []string{
				"[/api/flows 3/s 60/min] /api/flows?filter=equals(archived,false),greater-or-equal(updated,1970-01-01T00:00:00Z)&page[size]=50&sort=updated",
				"[/api/flows 3/s 60/min] /api/flows?filter=equals(archived,true),greater-or-equal(updated,1970-01-01T00:00:00Z)&page[size]=50&sort=updated",
			},
		},
		{
			name: "per parent, incremental: each parent from its own cursor", stream: "list_memberships",
			state:   `{"parents":{"L1":{"joined_group_at":"2026-01-09T00:00:00Z"},"gone":{"joined_group_at":"2026-01-01T00:00:00Z"}}}`,
			parents: map[string][]string{"lists": {"L1", "L2"}}, mode: readParents,
			reads: []string{
				"[/api/lists/{id}/profiles 75/s 750/min] /api/lists/L1/profiles?fields[profile]=joined_group_at&filter=greater-or-equal(joined_group_at,2026-01-09T00:00:00Z),less-than(joined_group_at,2026-01-10T00:00:00Z)&page[size]=100&sort=joined_group_at",
				"[/api/lists/{id}/profiles 75/s 750/min] /api/lists/L2/profiles?fields[profile]=joined_group_at&filter=less-than(joined_group_at,2026-01-10T00:00:00Z)&page[size]=100&sort=joined_group_at",
			},
		},
		{
			name: "per parent, a filter template", stream: "coupon_codes", parents: map[string][]string{"coupons": {"C1"}}, mode: readParents,
			reads: []string{`[/api/coupon-codes 350/s 3500/min] /api/coupon-codes?filter=any(coupon.id,["C1"])&page[size]=100`},
		},
		{
			name: "per parent object: one GET each", stream: "campaign_send_jobs", parents: map[string][]string{"campaigns": {"K1", "K2"}}, mode: readParents,
			reads: []string{
				"object [/api/campaign-send-jobs/{id} 10/s 150/min] /api/campaign-send-jobs/K1?",
				"object [/api/campaign-send-jobs/{id} 10/s 150/min] /api/campaign-send-jobs/K2?",
			},
		},
		{
			name: "a state from a newer release is refused", stream: "events", state: `{"datetime":"2026-01-01T00:00:00Z","state_version":2}`,
			err: `state of stream "events" was written by a newer source-klaviyo (state_version 2`,
		},
		{
			name: "a broken version is refused", stream: "events", state: `{"state_version":"one"}`,
			err: `state_version of stream "events" must be a whole number from 1`,
		},
		{
			name: "a sparse stream: as many windows as the probe's density says there are pages", stream: "templates",
			first: map[string]time.Time{"/api/templates": at("2025-03-16T00:00:00Z")},
			last:  map[string]time.Time{"/api/templates": at("2025-12-01T00:00:00Z")}, mode: readWindows,
			probes: []string{"[/api/templates 75/s 750/min] /api/templates?filter=less-than(updated,2026-01-10T00:00:00Z)&page[size]=10&sort=updated"},
			// Two records over 260 of the 300 days: about 5 records, doubled for growth, one page: one window.
			reads: []string{"[/api/templates 75/s 750/min] /api/templates?filter=less-than(updated,2026-01-10T00:00:00Z)&page[size]=10&sort=updated"},
		},
		{
			name: "a span whose probe page holds everything: one window, read by the probe", stream: "events",
			state: `{"datetime":"2026-01-07T00:00:00Z"}`,
			first: map[string]time.Time{"/api/events": at("2026-01-08T10:00:00Z")}, whole: map[string]bool{"/api/events": true},
			mode:   readWindows,
			probes: []string{"[/api/events 350/s 3500/min] /api/events?fields[metric]=name&filter=greater-or-equal(datetime,2026-01-07T00:00:00Z),less-than(datetime,2026-01-10T00:00:00Z)&include=metric&page[size]=100&sort=datetime"},
			reads:  []string{"probe page: [2026-01-07T00:00:00Z, 2026-01-10T00:00:00Z)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig("config.json", []byte(`{"api_key":"pk_x"`+tc.config+`}`))
			require.NoError(t, err)
			s, ok := catalog.Lookup(tc.stream)
			require.True(t, ok)
			sel := catalog.Selection{Stream: s, Incremental: !tc.full && s.Cursor != nil, Fields: tc.fields}
			sh, err := newShaper(sel)
			require.NoError(t, err)
			src := &fakePlanSource{first: tc.first, whole: tc.whole, last: tc.last, parents: tc.parents}
			sp, err := planner{cfg: cfg, syncStart: syncStart, src: src}.plan(context.Background(), sel, sh, json.RawMessage(tc.state))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.Equal(t, "config_error", string(failureType(err)))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.mode, sp.mode)
			require.Equal(t, tc.probes, src.probes, "probes")
			if tc.stream == "events" && tc.config != "" && tc.reads == nil {
				return // the variants are the point; their windows are the first case's
			}
			require.Equal(t, tc.reads, describePlan(sp), "reads")
		})
	}
}

// Every option the stream table names is a SPEC property of the kind the engine reads it as, so a typo in the
// table cannot silently turn an option off.
func TestStreamTableOptionsAreSpecProperties(t *testing.T) {
	var spec struct {
		Properties map[string]struct {
			Type    string          `json:"type"`
			Default json.RawMessage `json:"default"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(specJSON, &spec))
	require.JSONEq(t, fmt.Sprintf("%q", DefaultBaseURL), string(spec.Properties["base_url"].Default))
	for _, s := range catalog.Streams() {
		for _, f := range s.OptionalFields {
			require.Equal(t, "boolean", spec.Properties[f.Option].Type, "%s: optional field %s", s.Name, f.Field)
		}
		if ov := s.OptionVariants; ov != nil {
			require.Equal(t, "array", spec.Properties[ov.Option].Type, "%s: option variants", s.Name)
			require.Contains(t, ov.Filter, "{value}")
		}
	}
}

// Every shape the table names is implemented, and a cursor can be found for every cursor field the table names.
func TestEveryShapeAndCursorFieldOfTheTableIsRead(t *testing.T) {
	when := "2026-01-02T03:04:05+00:00"
	for _, s := range catalog.Streams() {
		t.Run(s.Name, func(t *testing.T) {
			sh, err := newShaper(catalog.Selection{Stream: s})
			require.NoError(t, err, "the engine implements shape %q", s.Shape)
			if s.Cursor == nil {
				return
			}
			attrs := fmt.Sprintf(`{"a":{"%s":"nested, not this"},%q:%q,"z":[1,{"b":"c"}]}`, s.Cursor.Field, s.Cursor.Field, when)
			if sh.rules.perRowCursor {
				attrs = fmt.Sprintf(`{"subscriptions":{"email":{"marketing":{"suppression":[{"reason":"r",%q:%q}],"list_suppressions":[{"list_id":"L","reason":"r",%q:%q}]}}}}`,
					s.Cursor.Field, when, s.Cursor.Field, when)
			}
			got, ok := sh.cursorOf(klaviyo.Resource{Type: s.ResourceType, ID: "x", Attributes: json.RawMessage(attrs)}, time.Time{})
			require.True(t, ok, "cursor %s of %s", s.Cursor.Field, attrs)
			require.Equal(t, ts("2026-01-02T03:04:05Z"), got)
		})
	}
	_, err := shapeOf("unknown")
	require.ErrorContains(t, err, `shape "unknown" is not implemented`)
}

// A stream gets as many windows as the burst the client counts can keep busy (a whole burst at once, for a small
// sync), no more than max_concurrency requests in flight, and none shorter than an hour.
func TestWindowCountFollowsTheBurstTheClientCounts(t *testing.T) {
	events, ok := catalog.Lookup("events")
	require.True(t, ok)
	profiles, ok := catalog.Lookup("profiles")
	require.True(t, ok)
	long := 365 * 24 * time.Hour
	for _, tc := range []struct {
		name   string
		config string
		s      catalog.Stream
		span   time.Duration
		want   int
	}{
		{"profiles: the L tier's burst of 75", ``, profiles, long, 75},
		{"events: the XL tier's 350, bounded by max_concurrency's default", ``, events, long, 128},
		{"events at a tenth of the budget: a burst of 35", `,"rate_limit_scale":0.1`, events, long, 35},
		{"a lower max_concurrency bounds it", `,"max_concurrency":16`, events, long, 16},
		{"never a window shorter than an hour", ``, events, 5*time.Hour + 59*time.Minute, 5},
		{"at least one window", ``, events, time.Minute, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig("config.json", []byte(`{"api_key":"pk_x"`+tc.config+`}`))
			require.NoError(t, err)
			require.Equal(t, tc.want, planner{cfg: cfg}.windowCount(tc.s, tc.span))
		})
	}
}
