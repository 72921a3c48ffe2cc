package catalog

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// names returns the selected stream names in order.
func names(sels []Selection) []string {
	out := make([]string, 0, len(sels))
	for _, s := range sels {
		out = append(out, s.Stream.Name)
	}
	return out
}

func byStream(sels []Selection) map[string]Selection {
	m := map[string]Selection{}
	for _, s := range sels {
		m[s.Stream.Name] = s
	}
	return m
}

// allFields returns a stream's schema fields minus the ones named.
func allFieldsBut(t *testing.T, stream string, drop ...string) []string {
	t.Helper()
	s, ok := Lookup(stream)
	require.True(t, ok, stream)
	all, err := schemaProperties(s)
	require.NoError(t, err)
	return slices.DeleteFunc(all, func(f string) bool { return slices.Contains(drop, f) })
}

func TestSelectAirbyteModesAndOrder(t *testing.T) {
	sels, err := SelectAirbyte([]byte(`{"streams":[
		{"stream":{"name":"events","json_schema":{},"supported_sync_modes":["full_refresh","incremental"]},
		 "sync_mode":"incremental","destination_sync_mode":"append","cursor_field":["datetime"],"generation_id":3},
		{"stream":{"name":"accounts","namespace":"k"},"sync_mode":"incremental","destination_sync_mode":"overwrite"},
		{"stream":{"name":"profiles"},"sync_mode":"full_refresh","destination_sync_mode":"overwrite","new_member":{"x":1}}
	],"unknown_top":true}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"events", "accounts", "profiles"}, names(sels))
	m := byStream(sels)
	assert.True(t, m["events"].Incremental)
	assert.False(t, m["accounts"].Incremental, "incremental on a full-refresh-only stream is a full refresh (PyAirbyte)")
	assert.False(t, m["profiles"].Incremental)
	for _, s := range sels {
		assert.Nil(t, s.Fields, "%s: no trimmed schema means every field", s.Stream.Name)
	}
}

func TestSelectAirbyteTrimmedSchema(t *testing.T) {
	sels, err := SelectAirbyte([]byte(`{"streams":[{"stream":{"name":"events","json_schema":{"type":"object",
		"properties":{"event_properties":{},"metric_name":{},"gone_field":{}}}},"sync_mode":"incremental"}]}`))
	require.NoError(t, err)
	require.Len(t, sels, 1)
	assert.Equal(t, []string{"datetime", "event_properties", "id", "metric_name"}, sels[0].Fields,
		"the key and cursor stay, unknown fields are ignored")

	// The discovered schema, untouched, selects everything.
	streams, err := AirbyteStreams()
	require.NoError(t, err)
	var configured struct {
		Streams []map[string]any `json:"streams"`
	}
	for _, s := range streams {
		configured.Streams = append(configured.Streams, map[string]any{"stream": s, "sync_mode": "incremental", "destination_sync_mode": "overwrite"})
	}
	b, err := json.Marshal(configured)
	require.NoError(t, err)
	sels, err = SelectAirbyte(b)
	require.NoError(t, err)
	require.Len(t, sels, len(Streams()))
	for _, s := range sels {
		assert.Nil(t, s.Fields, s.Stream.Name)
		assert.Equal(t, s.Stream.Incremental(), s.Incremental, s.Stream.Name)
	}
}

func TestSelectAirbyteEmptyCatalogSelectsNothing(t *testing.T) {
	sels, err := SelectAirbyte([]byte(`{"streams":[]}`))
	require.NoError(t, err)
	assert.Empty(t, sels)
}

func TestSelectAirbyteErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{``, `the catalog is empty; run discover and configure streams from its catalog`},
		{`{"streams":`, `the catalog is not valid JSON (byte 11: unexpected end of JSON input); run discover and configure streams from its catalog`},
		{`[]`, `top level: expected an object with "streams", found an array; run discover and configure streams from its catalog`},
		{`{}`, `streams: missing; expected an array`},
		{`{"streams":{}}`, `streams: expected an array, found an object`},
		{`{"streams":[3]}`, `streams[0]: expected an object, found a number`},
		{`{"streams":[{"sync_mode":"incremental"}]}`, `streams[0].stream: missing; expected an object`},
		{`{"streams":[{"stream":{},"sync_mode":"incremental"}]}`, `streams[0].stream.name: missing; every configured stream needs the name discover gave it`},
		{`{"streams":[{"stream":{"name":7}}]}`, `streams[0].stream.name: expected a string, found a number`},
		{`{"streams":[{"stream":{"name":"events"},"sync_mode":"full_refresh"},{"stream":{"name":"foo"},"sync_mode":"full_refresh"}]}`,
			`streams[1].stream.name: "foo" is not a Klaviyo stream; run discover and pick streams from its catalog`},
		{`{"streams":[{"stream":{"name":"events"},"sync_mode":"full_refresh"},{"stream":{"name":"events"},"sync_mode":"incremental"}]}`,
			`streams[1].stream.name: "events" is configured twice; keep one entry per stream`},
		{`{"streams":[{"stream":{"name":"events"}}]}`, `streams[0].sync_mode: missing; set it to "full_refresh" or "incremental"`},
		{`{"streams":[{"stream":{"name":"events"},"sync_mode":"append"}]}`, `streams[0].sync_mode: "append" is not a sync mode; use "full_refresh" or "incremental"`},
		{`{"streams":[{"stream":{"name":"events","json_schema":[]},"sync_mode":"incremental"}]}`, `streams[0].stream.json_schema: expected an object, found an array`},
		{`{"streams":[{"stream":{"name":"events","json_schema":{"properties":true}},"sync_mode":"incremental"}]}`,
			`streams[0].stream.json_schema.properties: expected an object, found a boolean`},
	} {
		_, err := SelectAirbyte([]byte(tc.doc))
		assert.EqualError(t, err, tc.want, tc.doc)
	}
}

// discovered returns our own Singer catalog as a generic document a test can edit like a user would.
func discovered(t *testing.T) map[string]any {
	t.Helper()
	doc, err := SingerCatalog()
	require.NoError(t, err)
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// entry returns the catalog entry of a stream in a generic document.
func entry(t *testing.T, doc map[string]any, stream string) map[string]any {
	t.Helper()
	for _, e := range doc["streams"].([]any) {
		if em := e.(map[string]any); em["tap_stream_id"] == stream {
			return em
		}
	}
	t.Fatalf("no stream %s", stream)
	return nil
}

// setMetadata sets key=value on a stream's breadcrumb, adding the breadcrumb when missing.
func setMetadata(t *testing.T, doc map[string]any, stream string, breadcrumb []any, key string, value any) {
	t.Helper()
	e := entry(t, doc, stream)
	md, _ := e["metadata"].([]any)
	for _, it := range md {
		item := it.(map[string]any)
		if slices.Equal(item["breadcrumb"].([]any), breadcrumb) {
			item["metadata"].(map[string]any)[key] = value
			return
		}
	}
	e["metadata"] = append(md, map[string]any{"breadcrumb": breadcrumb, "metadata": map[string]any{key: value}})
}

func selectSinger(t *testing.T, doc any) []Selection {
	t.Helper()
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	sels, err := SelectSinger(b)
	require.NoError(t, err)
	return sels
}

func TestSelectSingerDiscoveredCatalogSelectsEverything(t *testing.T) {
	sels := selectSinger(t, discovered(t))
	require.Len(t, sels, len(Streams()))
	for i, s := range sels {
		assert.Equal(t, Streams()[i].Name, s.Stream.Name)
		assert.Equal(t, s.Stream.Incremental(), s.Incremental, s.Stream.Name)
		assert.Nil(t, s.Fields, s.Stream.Name)
	}
}

func TestSelectSingerStreamSelection(t *testing.T) {
	root := []any{}
	doc := discovered(t)
	setMetadata(t, doc, "events", root, "selected", false)
	setMetadata(t, doc, "metrics", root, "selected-by-default", false)
	setMetadata(t, doc, "lists", root, "selected-by-default", false)
	setMetadata(t, doc, "lists", root, "selected", true)
	setMetadata(t, doc, "tags", root, "inclusion", "unsupported")
	setMetadata(t, doc, "tags", root, "selected", true)
	got := names(selectSinger(t, doc))
	assert.NotContains(t, got, "events", "selected:false wins over selected-by-default")
	assert.NotContains(t, got, "metrics", "selected-by-default:false with no selected")
	assert.Contains(t, got, "lists", "selected:true wins over selected-by-default:false")
	assert.NotContains(t, got, "tags", "unsupported is never selected")
	assert.Contains(t, got, "profiles")
}

func TestSelectSingerWithoutOrWithEmptyMetadata(t *testing.T) {
	// No metadata at all: selected (Meltano SDK), incremental where possible.
	sels := selectSinger(t, map[string]any{"streams": []any{
		map[string]any{"tap_stream_id": "events", "schema": map[string]any{}},
		map[string]any{"stream": "lists"},
	}})
	assert.Equal(t, []string{"events", "lists"}, names(sels))
	assert.True(t, sels[0].Incremental)

	// Root metadata that decides nothing: not selected.
	sels = selectSinger(t, map[string]any{"streams": []any{
		map[string]any{"tap_stream_id": "events", "metadata": []any{map[string]any{"breadcrumb": []any{}, "metadata": map[string]any{"inclusion": "available"}}}},
	}})
	assert.Empty(t, sels)

	// The legacy flag in the schema selects a stream whose metadata does not decide.
	sels = selectSinger(t, map[string]any{"streams": []any{
		map[string]any{"tap_stream_id": "events", "schema": map[string]any{"selected": true},
			"metadata": []any{map[string]any{"breadcrumb": []any{}, "metadata": map[string]any{"selected-by-default": false}}}},
	}})
	assert.Equal(t, []string{"events"}, names(sels))
}

func TestSelectSingerReplicationMethod(t *testing.T) {
	root := []any{}
	doc := discovered(t)
	setMetadata(t, doc, "events", root, "replication-method", "FULL_TABLE")
	entry(t, doc, "profiles")["replication_method"] = "FULL_TABLE"
	delete(entry(t, doc, "profiles")["metadata"].([]any)[0].(map[string]any)["metadata"].(map[string]any), "replication-method")
	setMetadata(t, doc, "accounts", root, "replication-method", "INCREMENTAL")
	setMetadata(t, doc, "flows", root, "replication-method", "incremental")
	m := byStream(selectSinger(t, doc))
	assert.False(t, m["events"].Incremental, "metadata FULL_TABLE")
	assert.False(t, m["profiles"].Incremental, "replication_method on the entry")
	assert.False(t, m["accounts"].Incremental, "INCREMENTAL on a stream without cursor is a full table read")
	assert.True(t, m["flows"].Incremental, "method names are read case-insensitively")
	assert.True(t, m["lists"].Incremental)
}

func TestSelectSingerFields(t *testing.T) {
	doc := discovered(t)
	setMetadata(t, doc, "events", []any{"properties", "uuid"}, "selected", false)
	setMetadata(t, doc, "events", []any{"properties", "id"}, "selected", false)       // automatic: kept
	setMetadata(t, doc, "events", []any{"properties", "datetime"}, "selected", false) // replication key: kept
	setMetadata(t, doc, "events", []any{"properties", "metric_name"}, "inclusion", "unsupported")
	setMetadata(t, doc, "events", []any{"properties", "profile_id"}, "selected-by-default", false)
	setMetadata(t, doc, "events", []any{"properties", "nope"}, "selected", false)
	setMetadata(t, doc, "events", []any{"properties", "event_properties", "properties", "x"}, "selected", false)
	m := byStream(selectSinger(t, doc))
	assert.Equal(t, allFieldsBut(t, "events", "uuid", "metric_name", "profile_id"), m["events"].Fields)

	// An explicit selected:true beats selected-by-default:false, and keeps every field.
	setMetadata(t, doc, "events", []any{"properties", "uuid"}, "selected", true)
	setMetadata(t, doc, "events", []any{"properties", "metric_name"}, "inclusion", "available")
	setMetadata(t, doc, "events", []any{"properties", "profile_id"}, "selected", true)
	m = byStream(selectSinger(t, doc))
	assert.Nil(t, m["events"].Fields)
}

func TestSelectSingerErrors(t *testing.T) {
	md := func(v string) string {
		return `{"streams":[{"tap_stream_id":"events","metadata":[{"breadcrumb":[],"metadata":` + v + `}]}]}`
	}
	for _, tc := range []struct{ doc, want string }{
		{`nope`, `the catalog is not valid JSON (byte 2: invalid character 'o' in literal null (expecting 'u')); run --discover and select streams in its catalog`},
		{`"x"`, `top level: expected an object with "streams", found a string; run --discover and select streams in its catalog`},
		{`{"streams":null}`, `streams: missing; expected an array`},
		{`{"streams":[{}]}`, `streams[0].tap_stream_id: missing; every stream needs the tap_stream_id --discover gave it`},
		{`{"streams":[{"tap_stream_id":"events"},{"tap_stream_id":"foo"}]}`,
			`streams[1].tap_stream_id: "foo" is not a Klaviyo stream; run --discover and pick streams from its catalog`},
		{`{"streams":[{"stream":"foo"}]}`, `streams[0].stream: "foo" is not a Klaviyo stream; run --discover and pick streams from its catalog`},
		{`{"streams":[{"tap_stream_id":"events"},{"tap_stream_id":"events"}]}`, `streams[1].tap_stream_id: "events" appears twice; keep one entry per stream`},
		{`{"streams":[{"tap_stream_id":"events","metadata":{}}]}`, `streams[0].metadata: expected an array, found an object`},
		{`{"streams":[{"tap_stream_id":"events","metadata":[{"breadcrumb":"x"}]}]}`, `streams[0].metadata[0].breadcrumb: expected an array, found a string`},
		{`{"streams":[{"tap_stream_id":"events","metadata":[{"metadata":{"selected":false}}]}]}`, `streams[0].metadata[0].breadcrumb: missing; expected an array`},
		{`{"streams":[{"tap_stream_id":"events","metadata":[{"breadcrumb":["properties","uuid"],"metadata":{"inclusion":"maybe"}}]}]}`,
			`streams[0].metadata[0].metadata.inclusion: "maybe" is not an inclusion; use available, automatic or unsupported`},
		{`{"streams":[{"tap_stream_id":"events","metadata":[{"breadcrumb":[1]}]}]}`, `streams[0].metadata[0].breadcrumb[0]: expected a string, found a number`},
		{`{"streams":[{"tap_stream_id":"events","schema":{"selected":"yes"}}]}`, `streams[0].schema.selected: expected true or false, found a string`},
		{md(`{"selected":"true"}`), `streams[0].metadata[0].metadata.selected: expected true or false, found a string`},
		{md(`{"inclusion":"sometimes"}`), `streams[0].metadata[0].metadata.inclusion: "sometimes" is not an inclusion; use available, automatic or unsupported`},
		{md(`{"selected":true,"replication-method":"LOG_BASED"}`), `streams[0].metadata[0].metadata.replication-method: "LOG_BASED" is not supported; use "INCREMENTAL" or "FULL_TABLE"`},
		{md(`{"selected":true,"replication-key":"timestamp"}`), `streams[0].metadata[0].metadata.replication-key: "timestamp" is not a replication key of stream events; use "datetime" or remove it`},
		{`{"streams":[{"tap_stream_id":"events","replication_key":"uuid"}]}`, `streams[0].replication_key: "uuid" is not a replication key of stream events; use "datetime" or remove it`},
		{`{"streams":[{"tap_stream_id":"events","replication_method":"LOG_BASED"}]}`, `streams[0].replication_method: "LOG_BASED" is not supported; use "INCREMENTAL" or "FULL_TABLE"`},
	} {
		_, err := SelectSinger([]byte(tc.doc))
		assert.EqualError(t, err, tc.want, tc.doc)
	}
}
