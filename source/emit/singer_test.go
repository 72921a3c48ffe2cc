package emit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

func singerStreams() []emit.StreamInfo {
	return []emit.StreamInfo{
		{
			Name:               "events",
			Schema:             json.RawMessage("{\n  \"type\": \"object\",\n  \"properties\": {\"id\": {\"type\": \"string\"}}\n}"),
			KeyProperties:      []string{"id"},
			BookmarkProperties: []string{"datetime"},
		},
		{Name: "lists", Schema: json.RawMessage(`{"type":"object"}`)},
		{Name: "broken", Schema: json.RawMessage(`{"type":`)},
	}
}

func newSinger(out, errOut *bytes.Buffer, initial emit.SingerState, now func() time.Time, secrets ...string) *emit.Singer {
	return emit.NewSinger(out, singerStreams(), initial, emit.Options{Secrets: secrets, Now: now, Stderr: errOut})
}

const eventsSchema = `{"type":"SCHEMA","stream":"events","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":["id"],"bookmark_properties":["datetime"]}`

func TestSingerWritesSchemaOnceBeforeTheFirstRecord(t *testing.T) {
	var out, errOut bytes.Buffer
	s := newSinger(&out, &errOut, emit.SingerState{}, fixedNow)
	require.NoError(t, s.Record("events", []byte(`{"id":"e1"}`)))
	require.NoError(t, s.Record("events", []byte(`{"id":"e2"}`)))
	require.NoError(t, s.Flush())
	assert.Equal(t, []string{
		eventsSchema,
		`{"type":"RECORD","stream":"events","record":{"id":"e1"},"time_extracted":"2026-01-02T03:04:05Z"}`,
		`{"type":"RECORD","stream":"events","record":{"id":"e2"},"time_extracted":"2026-01-02T03:04:05Z"}`,
	}, lines(out.String()))
	assert.Empty(t, errOut.String())
}

func TestSingerTimeExtractedFollowsTheClockInUTC(t *testing.T) {
	var out, errOut bytes.Buffer
	now := time.Date(2026, 5, 6, 7, 8, 9, 999e6, time.FixedZone("CEST", 2*3600))
	s := newSinger(&out, &errOut, emit.SingerState{}, func() time.Time { return now })
	require.NoError(t, s.Record("events", []byte(`{"id":"1"}`)))
	now = now.Add(time.Millisecond) // the next second
	require.NoError(t, s.Record("events", []byte(`{"id":"2"}`)))
	require.NoError(t, s.Flush())
	got := lines(out.String())
	require.Len(t, got, 3)
	assert.Contains(t, got[1], `"time_extracted":"2026-05-06T05:08:09Z"`)
	assert.Contains(t, got[2], `"time_extracted":"2026-05-06T05:08:10Z"`)
}

func TestSingerStateCarriesEveryBookmark(t *testing.T) {
	var out, errOut bytes.Buffer
	initial := emit.SingerState{Bookmarks: map[string]json.RawMessage{
		"profiles": json.RawMessage("{ \"updated\": \"2025-01-01T00:00:00Z\" }"), // not synced this run: kept
		"events":   json.RawMessage(`{"datetime":"2025-01-01T00:00:00Z"}`),
		"gone":     json.RawMessage(`null`),
	}}
	s := newSinger(&out, &errOut, initial, fixedNow)
	require.NoError(t, s.State("lists", json.RawMessage(`{}`))) // no record came: SCHEMA first
	require.NoError(t, s.Record("events", []byte(`{"id":"e1"}`)))
	require.NoError(t, s.State("events", json.RawMessage("{\"datetime\":\n\"2026-01-01T00:00:00Z\"}")))
	assert.Equal(t, []string{
		`{"type":"SCHEMA","stream":"lists","schema":{"type":"object"},"key_properties":[]}`,
		`{"type":"STATE","value":{"bookmarks":{"events":{"datetime":"2025-01-01T00:00:00Z"},"lists":{},"profiles":{"updated":"2025-01-01T00:00:00Z"}}}}`,
		eventsSchema,
		`{"type":"RECORD","stream":"events","record":{"id":"e1"},"time_extracted":"2026-01-02T03:04:05Z"}`,
		`{"type":"STATE","value":{"bookmarks":{"events":{"datetime":"2026-01-01T00:00:00Z"},"lists":{},"profiles":{"updated":"2025-01-01T00:00:00Z"}}}}`,
	}, lines(out.String()), "states flush without an explicit Flush")
}

// A STATE equal to the last one written says nothing new: a resumed sync's streams first checkpoint where they
// start, which is the state the run was given, and Singer's document repeats every other stream's bookmark.
func TestSingerWritesAStateOnlyWhenItChanged(t *testing.T) {
	var out, errOut bytes.Buffer
	initial := emit.SingerState{Bookmarks: map[string]json.RawMessage{
		"events": json.RawMessage(`{"datetime":"2025-01-01T00:00:00Z"}`),
		"lists":  json.RawMessage(`{}`),
	}}
	s := newSinger(&out, &errOut, initial, fixedNow)
	require.NoError(t, s.State("events", json.RawMessage(`{"datetime":"2025-01-01T00:00:00Z"}`)))
	require.NoError(t, s.State("lists", json.RawMessage(`{}`)), "the same document again")
	require.NoError(t, s.Record("events", []byte(`{"id":"e1"}`)))
	require.NoError(t, s.State("events", json.RawMessage(`{"datetime": "2025-01-01T00:00:00Z"}`)), "the same, spaced otherwise")
	require.NoError(t, s.State("events", json.RawMessage(`{"datetime":"2026-01-01T00:00:00Z"}`)))
	require.NoError(t, s.State("events", json.RawMessage(`{"datetime":"2026-01-01T00:00:00Z"}`)))
	require.NoError(t, s.Flush())
	var states []string
	for _, l := range lines(out.String()) {
		if strings.HasPrefix(l, `{"type":"STATE"`) {
			states = append(states, l)
		}
	}
	assert.Equal(t, []string{
		`{"type":"STATE","value":{"bookmarks":{"events":{"datetime":"2025-01-01T00:00:00Z"},"lists":{}}}}`,
		`{"type":"STATE","value":{"bookmarks":{"events":{"datetime":"2026-01-01T00:00:00Z"},"lists":{}}}}`,
	}, states)
}

func TestSingerRejectsUnknownStreamsAndBadSchemas(t *testing.T) {
	var out, errOut bytes.Buffer
	s := newSinger(&out, &errOut, emit.SingerState{}, fixedNow)
	err := s.Record("nope", []byte(`{}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nope"`)

	err = s.Record("broken", []byte(`{}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `schema of stream "broken"`)
	require.Error(t, s.State("broken", json.RawMessage(`{}`)))

	require.Error(t, s.Record("events", []byte(`[1]`)))
	require.Error(t, s.State("events", json.RawMessage(`1`)))
	require.NoError(t, s.Flush())
	assert.Empty(t, out.String())
}

func TestSingerLogsGoToStderrMasked(t *testing.T) {
	var out, errOut bytes.Buffer
	s := newSinger(&out, &errOut, emit.SingerState{}, fixedNow, "pk_secret")
	require.NoError(t, s.Log("info", "using key pk_secret\n"))
	require.NoError(t, s.StreamStatus("events", emit.Running, time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)))
	require.NoError(t, s.StreamStatus("events", emit.Complete, time.Time{}))
	require.NoError(t, s.Error(emit.TraceError{Message: "Key pk_secret was refused.", Internal: "401", Failure: emit.ConfigError, Stream: "events"}))
	require.Error(t, s.StreamStatus("events", "LATE", time.Time{}))
	require.Error(t, s.Log("chatty", "x"))
	require.NoError(t, s.Flush())
	assert.Empty(t, out.String(), "stdout carries only SCHEMA, RECORD and STATE")
	assert.Equal(t, []string{
		"INFO using key ****",
		"INFO stream events RUNNING, rate limited until 2026-01-02T03:05:00Z",
		"INFO stream events COMPLETE",
		"ERROR stream events: Key **** was refused. (config_error; 401)",
	}, lines(errOut.String()))
}

func TestSingerReportsABadInitialBookmark(t *testing.T) {
	var out, errOut bytes.Buffer
	s := newSinger(&out, &errOut, emit.SingerState{Bookmarks: map[string]json.RawMessage{"x": json.RawMessage(`{`)}}, fixedNow)
	err := s.State("events", json.RawMessage(`{}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `initial state: bookmark of stream "x"`)
}

// A versioned (full-table) stream: every RECORD carries the version, and completing the stream writes
// ACTIVATE_VERSION after its records, announcing the stream first if it had none; a stream that did not complete
// writes none.
func TestSingerActivateVersion(t *testing.T) {
	var out, stderr bytes.Buffer
	schema := json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`)
	s := emit.NewSinger(&out, []emit.StreamInfo{
		{Name: "members", Schema: schema, KeyProperties: []string{"id"}, Version: 1767323045678},
		{Name: "empty", Schema: schema, KeyProperties: []string{"id"}, Version: 1767323045678},
		{Name: "failed", Schema: schema, KeyProperties: []string{"id"}, Version: 1767323045678},
		{Name: "events", Schema: schema, KeyProperties: []string{"id"}},
	}, emit.SingerState{}, emit.Options{Now: fixedNow, Stderr: &stderr})
	require.NoError(t, s.Record("members", []byte(`{"id":"a"}`)))
	require.NoError(t, s.Record("events", []byte(`{"id":"e"}`)))
	require.NoError(t, s.Record("failed", []byte(`{"id":"f"}`)))
	require.NoError(t, s.StreamStatus("members", emit.Complete, time.Time{}))
	require.NoError(t, s.StreamStatus("empty", emit.Complete, time.Time{}))
	require.NoError(t, s.StreamStatus("failed", emit.Incomplete, time.Time{}))
	require.NoError(t, s.StreamStatus("events", emit.Complete, time.Time{}))
	require.NoError(t, s.Flush())
	got := lines(out.String())
	require.Equal(t, []string{
		`{"type":"SCHEMA","stream":"members","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":["id"]}`,
		`{"type":"RECORD","stream":"members","record":{"id":"a"},"version":1767323045678,"time_extracted":"2026-01-02T03:04:05Z"}`,
		`{"type":"SCHEMA","stream":"events","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":["id"]}`,
		`{"type":"RECORD","stream":"events","record":{"id":"e"},"time_extracted":"2026-01-02T03:04:05Z"}`,
		`{"type":"SCHEMA","stream":"failed","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":["id"]}`,
		`{"type":"RECORD","stream":"failed","record":{"id":"f"},"version":1767323045678,"time_extracted":"2026-01-02T03:04:05Z"}`,
		`{"type":"ACTIVATE_VERSION","stream":"members","version":1767323045678}`,
		`{"type":"SCHEMA","stream":"empty","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":["id"]}`,
		`{"type":"ACTIVATE_VERSION","stream":"empty","version":1767323045678}`,
	}, got)
}
