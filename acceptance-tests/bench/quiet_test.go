package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
)

// The studies run by name or kind, never under -scenario all, whose length the README states.
func TestStudiesRunOnlyByName(t *testing.T) {
	t.Parallel()
	o := defaults()
	o.pairMinutes, o.pairProfiles, o.scenario = 3, 2000, "all"
	all, err := plan(o)
	require.NoError(t, err)
	require.NotEmpty(t, all)
	for _, sc := range all {
		assert.Nil(t, sc.study, "%s runs under -scenario all", sc.name)
	}
	o.only = "quiet,catalog-vs-events"
	scs, err := plan(o)
	require.NoError(t, err)
	var names []string
	for _, sc := range scs {
		names = append(names, sc.name)
		assert.NotNil(t, sc.study, sc.name)
	}
	assert.Equal(t, []string{"quiet-demo", "quiet-lists", "catalog-vs-events"}, names)
}

// quiet-demo is make demo's account (seed 7, default sizes), quiet-lists the 1,000 lists and 300
// segments; both at Klaviyo's published tiers with the bench's latency, every stream but the skipped ones.
func TestQuietScenarios(t *testing.T) {
	t.Parallel()
	o := defaults()
	o.skip = []string{"reviews"}
	demo, lists := quietDemo(o), quietLists(o)
	assert.Equal(t, []string{"--seed", "7", "--rate-limits", "klaviyo", "--latency", "300ms"}, demo.sandboxArgs)
	assert.Equal(t, []string{"--lists", "1000", "--segments", "300", "--rate-limits", "klaviyo", "--latency", "300ms"}, lists.sandboxArgs)
	for _, sc := range []scenario{demo, lists} {
		assert.Nil(t, sc.streams, "%s: the whole catalog", sc.name)
		assert.Equal(t, []string{"reviews"}, sc.skip)
		assert.InDelta(t, 1, sc.factor, 0, "%s: the connector's rate_limit_scale matches the published tiers", sc.name)
		assert.Equal(t, "quiet", sc.kind)
	}
}

// catalog-vs-events leaves the report streams out unless asked, and sizes its events from the budget.
func TestCatalogVsEvents(t *testing.T) {
	t.Parallel()
	o := defaults()
	o.skip, o.pairMinutes, o.pairProfiles = []string{"reviews"}, 3, 2000
	sc := catalogVsEvents(o)
	assert.Contains(t, sc.sandboxArgs, "1050000", "three minutes of the events budget at a tenth of the tiers")
	assert.Equal(t, append([]string{"reviews"}, reportStreams()...), sc.skip)
	assert.Len(t, reportStreams(), 8)
	assert.Equal(t, []string{"reviews"}, o.skip, "the bench's own skip list is not changed")
	o.pairReports = true
	assert.Equal(t, []string{"reviews"}, catalogVsEvents(o).skip)
}

func TestRequestRole(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"/api/events?page[size]=1&sort=datetime&filter=greater-or-equal(datetime,2026-01-01T00:00:00Z)":           "probe",
		"/api/events?page[size]=200&filter=greater-or-equal(datetime,2026-01-01T00:00:00Z),less-than(datetime,x)": "cursor-bounded",
		"/api/lists/abc/profiles?filter=greater-than(joined_group_at,2026-01-01T00:00:00Z)&page[size]=100":        "cursor-bounded",
		"/api/events?page[cursor]=xyz&page[size]=200&filter=greater-than(datetime,x)":                             "next page",
		"/api/lists?page[size]=10":                               "other",
		"/api/campaign-send-jobs/01ABC":                          "other",
		"/api/campaigns?filter=equals(messages.channel,'email')": "other",
	}
	for uri, want := range cases {
		assert.Equal(t, want, requestRole(uri), uri)
	}
	roles := rolesByPath([]sandboxRequest{{Path: "/api/events", URI: "/api/events?page[size]=1&sort=datetime"}, {Path: "/api/events", URI: "/api/events"},
		{Path: "/api/lists", URI: "/api/lists"}})
	assert.Equal(t, map[string]map[string]int{"/api/events": {"probe": 1, "other": 1}, "/api/lists": {"other": 1}}, roles)
}

func TestStatsDelta(t *testing.T) {
	t.Parallel()
	before := sandboxStats{Requests: 5, Throttled: 1, ByPath: map[string]map[string]int{
		"/api/events": {"200": 3, "429": 1}, "/api/lists": {"200": 1}}}
	after := sandboxStats{Requests: 9, Throttled: 1, ByPath: map[string]map[string]int{
		"/api/events": {"200": 6, "429": 1}, "/api/lists": {"200": 1}, "/api/flows": {"200": 1}}}
	assert.Equal(t, sandboxStats{Requests: 4, ByPath: map[string]map[string]int{"/api/events": {"200": 3}, "/api/flows": {"200": 1}}},
		statsDelta(before, after), "only what was served between the snapshots, no empty rows")
}

// The state file is what read takes with --state: one state message per stream, in name order.
func TestWriteStateFile(t *testing.T) {
	t.Parallel()
	var r result
	st := func(name, cursor string) json.RawMessage {
		return json.RawMessage(`{"type":"STREAM","stream":{"stream_descriptor":{"name":"` + name + `"},"stream_state":{"updated":"` + cursor + `"}}}`)
	}
	r.keepState("lists", st("lists", "2026-01-01T00:00:00Z"))
	r.keepState("events", st("events", "2026-01-01T00:00:00Z"))
	r.keepState("lists", st("lists", "2026-01-02T00:00:00Z"))
	path := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, writeStateFile(path, r.states))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	states, err := protocol.ParseAirbyteStateFile(raw)
	require.NoError(t, err)
	require.Len(t, states, 2)
	assert.Equal(t, "events", states[0].Stream)
	assert.Equal(t, "lists", states[1].Stream)
	assert.JSONEq(t, `{"updated":"2026-01-02T00:00:00Z"}`, string(states[1].StreamState), "the last state of a stream is kept")
	assert.Error(t, writeStateFile(path, nil), "a first sync without states leaves nothing to sync again from")
}
