package maps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// recorder is an emit.Writer that remembers every call as a line.
type recorder struct{ calls []string }

func (r *recorder) Record(stream string, data []byte) error {
	r.calls = append(r.calls, "RECORD "+stream+" "+string(data))
	return nil
}
func (r *recorder) State(stream string, st json.RawMessage) error {
	r.calls = append(r.calls, "STATE "+stream+" "+string(st))
	return nil
}
func (r *recorder) StreamStatus(stream string, s emit.Status, _ time.Time) error {
	r.calls = append(r.calls, "STATUS "+stream+" "+string(s))
	return nil
}
func (r *recorder) Log(level, msg string) error {
	r.calls = append(r.calls, "LOG "+level+" "+msg)
	return nil
}
func (r *recorder) Error(e emit.TraceError) error {
	r.calls = append(r.calls, "ERROR "+e.Stream+" "+e.Message)
	return nil
}
func (r *recorder) Flush() error { r.calls = append(r.calls, "FLUSH"); return nil }
func (r *recorder) Progress(p emit.Progress) error {
	r.calls = append(r.calls, "PROGRESS "+p.Text())
	return nil
}
func (r *recorder) Request(m emit.RequestMetric) error {
	r.calls = append(r.calls, "REQUEST "+m.Endpoint)
	return nil
}

const twoTables = `{"stream_maps":{"profiles":{"email":"md5(email)"},"profiles_pii":{"__source__":"profiles","email":"email","__else__":null},"metrics":null}}`

// TestWriterFansOut: records of a stream go to each output made from it; states and statuses go to every output
// with the stream's own state; a dropped stream emits nothing; the rest passes through.
func TestWriterFansOut(t *testing.T) {
	r := &recorder{}
	w := planFor(t, twoTables).Writer(r)
	require.NoError(t, w.StreamStatus("profiles", emit.Started, time.Time{}))
	require.NoError(t, w.Record("profiles", []byte(`{"id":"1","email":"a@b","updated":"u","first_name":"J"}`)))
	require.NoError(t, w.State("profiles", json.RawMessage(`{"updated":"u"}`)))
	require.NoError(t, w.Record("metrics", []byte(`{"id":"m"}`)))
	require.NoError(t, w.State("metrics", json.RawMessage(`{}`)))
	require.NoError(t, w.Record("events", []byte(`{"id":"e"}`)))
	require.NoError(t, w.Error(emit.TraceError{Stream: "profiles", Message: "boom"}))
	require.NoError(t, w.Error(emit.TraceError{Stream: "metrics", Message: "gone"}))
	require.NoError(t, w.Log("INFO", "hello"))
	require.NoError(t, w.Progress(emit.Progress{Stream: "profiles", Records: 1}))
	require.NoError(t, w.Progress(emit.Progress{Stream: "metrics", Records: 1}))
	require.NoError(t, w.Request(emit.RequestMetric{Endpoint: "/api/profiles"}))
	require.NoError(t, w.Flush())
	assert.Equal(t, []string{
		"STATUS profiles STARTED",
		"STATUS profiles_pii STARTED",
		`RECORD profiles {"id":"1","email":"` + md5Hex("a@b") + `","updated":"u","first_name":"J"}`,
		`RECORD profiles_pii {"id":"1","email":"a@b","updated":"u"}`,
		`STATE profiles {"updated":"u"}`,
		`STATE profiles_pii {"updated":"u"}`,
		`RECORD events {"id":"e"}`,
		"ERROR profiles boom",
		"ERROR profiles_pii boom",
		"ERROR  gone",
		"LOG INFO hello",
		"PROGRESS profiles: 1 records (0/s)",
		"PROGRESS profiles_pii: 1 records (0/s)",
		"REQUEST /api/profiles",
		"FLUSH",
	}, r.calls)
}

// TestWriterPassthrough: with no settings the writer is the inner writer itself, so identity costs nothing.
func TestWriterPassthrough(t *testing.T) {
	r := &recorder{}
	assert.Same(t, emit.Writer(r), planFor(t, `{}`).Writer(r))
}

// TestWriterWithAirbyte runs the decorator over the real Airbyte writer: each output gets a STATE counting its
// own records, which is what the platform checks.
func TestWriterWithAirbyte(t *testing.T) {
	var out bytes.Buffer
	p := planFor(t, `{"stream_maps":{"profiles":{"__filter__":"email != 'skip'"},"pii":{"__source__":"profiles","email":"email","__else__":null}}}`)
	sels, q, err := p.SelectAirbyte([]byte(`{"streams":[
		{"stream":{"name":"profiles"},"sync_mode":"incremental","destination_sync_mode":"append"},
		{"stream":{"name":"pii"},"sync_mode":"incremental","destination_sync_mode":"append"}]}`))
	require.NoError(t, err)
	require.Len(t, sels, 1)
	w := q.Writer(emit.NewAirbyte(&out, emit.Options{Now: fixedClock}))
	for _, e := range []string{"a", "skip", "c"} {
		require.NoError(t, w.Record("profiles", []byte(fmt.Sprintf(`{"id":"%s","email":"%s","updated":"u"}`, e, e))))
	}
	require.NoError(t, w.State("profiles", json.RawMessage(`{"updated":"u"}`)))
	require.NoError(t, w.Flush())
	var states []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(line, `"type":"STATE"`) {
			states = append(states, line)
		}
	}
	require.Len(t, states, 2)
	assert.Contains(t, states[0], `{"name":"profiles"}`)
	assert.Contains(t, states[0], `"recordCount":2.0`)
	assert.Contains(t, states[1], `{"name":"pii"}`)
	assert.Contains(t, states[1], `"recordCount":3.0`)
}

// TestSelection maps a configured catalog of outputs back to the connector streams to read.
func TestSelection(t *testing.T) {
	p := planFor(t, twoTables+"")
	p2 := planFor(t, `{"stream_maps":{"profiles":{"__alias__":"people"},"profiles_pii":{"__source__":"profiles","email":"email"}}}`)
	tests := []struct {
		name      string
		plan      *Plan
		catalog   string
		singer    bool
		streams   []string
		incr      []bool
		fields    [][]string
		outputs   []string
		errSubstr string
	}{
		{name: "both outputs of one stream read it once, incrementally when both ask",
			plan: p, catalog: `{"streams":[{"stream":{"name":"profiles","json_schema":{"properties":{"id":{}}}},"sync_mode":"incremental","destination_sync_mode":"append"},
				{"stream":{"name":"profiles_pii"},"sync_mode":"incremental","destination_sync_mode":"append"},
				{"stream":{"name":"events","json_schema":{"properties":{"id":{},"datetime":{}}}},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}`,
			streams: []string{"profiles", "events"}, incr: []bool{true, false}, fields: [][]string{nil, {"datetime", "id"}},
			outputs: []string{"profiles", "profiles_pii", "events"}},
		{name: "one full refresh output makes its stream a full refresh",
			plan: p, catalog: `{"streams":[{"stream":{"name":"profiles"},"sync_mode":"incremental","destination_sync_mode":"append"},
				{"stream":{"name":"profiles_pii"},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}`,
			streams: []string{"profiles"}, incr: []bool{false}, fields: [][]string{nil}, outputs: []string{"profiles", "profiles_pii"}},
		{name: "an alias is read as its stream",
			plan: p2, catalog: `{"streams":[{"stream":{"name":"people"},"sync_mode":"incremental","destination_sync_mode":"append"}]}`,
			streams: []string{"profiles"}, incr: []bool{true}, fields: [][]string{nil}, outputs: []string{"people"}},
		{name: "a stream the maps rename is not an output",
			plan: p2, catalog: `{"streams":[{"stream":{"name":"profiles"},"sync_mode":"incremental","destination_sync_mode":"append"}]}`,
			errSubstr: `streams[0].stream.name: "profiles" is not a stream of this connector with its stream maps`},
		{name: "a dropped stream is not an output",
			plan: p, catalog: `{"streams":[{"stream":{"name":"metrics"},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}`,
			errSubstr: `streams[0].stream.name: "metrics" is not a stream`},
		{name: "catalog errors keep their path",
			plan: p, catalog: `{"streams":[{"stream":{"name":"events"},"sync_mode":"full_refresh"},{"stream":{"name":"profiles_pii"},"sync_mode":"sideways"}]}`,
			errSubstr: "streams[1].sync_mode"},
		{name: "Singer: selected outputs, property metadata of mapped ones ignored",
			plan: p, singer: true, catalog: `{"streams":[
				{"tap_stream_id":"profiles_pii","schema":{},"metadata":[{"breadcrumb":[],"metadata":{"selected":true,"replication-method":"INCREMENTAL"}},
					{"breadcrumb":["properties","first_name"],"metadata":{"selected":false}}]},
				{"tap_stream_id":"profiles","schema":{},"metadata":[{"breadcrumb":[],"metadata":{"selected":false}}]},
				{"tap_stream_id":"events","schema":{},"metadata":[{"breadcrumb":[],"metadata":{"selected":true}},{"breadcrumb":["properties","uuid"],"metadata":{"selected":false}}]}]}`,
			streams: []string{"profiles", "events"}, incr: []bool{true, true}, outputs: []string{"profiles_pii", "events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := tt.plan.SelectAirbyte
			if tt.singer {
				sel = tt.plan.SelectSinger
			}
			sels, q, err := sel([]byte(tt.catalog))
			if tt.errSubstr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.errSubstr)
				return
			}
			require.NoError(t, err)
			var names []string
			for i, s := range sels {
				names = append(names, s.Stream.Name)
				assert.Equal(t, tt.incr[i], s.Incremental, s.Stream.Name)
				if tt.fields != nil {
					assert.Equal(t, tt.fields[i], s.Fields, s.Stream.Name)
				}
			}
			assert.Equal(t, tt.streams, names)
			assert.Equal(t, tt.outputs, outputNames(q))
		})
	}
	if sels, _, err := p.SelectSinger([]byte(`{"streams":[{"tap_stream_id":"events","schema":{},"metadata":[{"breadcrumb":["properties","uuid"],"metadata":{"selected":false}}]}]}`)); assert.NoError(t, err) {
		assert.NotContains(t, sels[0].Fields, "uuid", "an unmapped stream keeps its field selection")
	}
}

// TestSelectDefault: a Singer sync without a catalog reads the default streams and emits all their outputs.
func TestSelectDefault(t *testing.T) {
	sels, q := planFor(t, twoTables).SelectDefault()
	var names []string
	for _, s := range sels {
		names = append(names, s.Stream.Name)
	}
	assert.Contains(t, names, "profiles")
	assert.NotContains(t, names, "metrics")
	assert.Contains(t, outputNames(q), "profiles_pii")
}

// TestSourceStates: a state keyed by outputs resumes a stream only when all its outputs agree.
func TestSourceStates(t *testing.T) {
	p := planFor(t, twoTables)
	st := func(s string) json.RawMessage { return json.RawMessage(`{"updated":"` + s + `"}`) }
	got, warns := p.SourceStates(map[string]json.RawMessage{"profiles": st("a"), "profiles_pii": json.RawMessage(`{ "updated": "a" }`), "events": st("e"), "gone": st("g")})
	assert.Equal(t, map[string]json.RawMessage{"profiles": json.RawMessage(`{"updated":"a"}`), "events": st("e"), "gone": st("g")}, got)
	assert.Empty(t, warns)

	got, warns = p.SourceStates(map[string]json.RawMessage{"profiles": st("a")})
	assert.NotContains(t, got, "profiles", "profiles_pii is new: read profiles from its start")
	require.Len(t, warns, 1)
	assert.Contains(t, warns[0], "stream profiles is read from its start")

	got, _ = p.SourceStates(map[string]json.RawMessage{"profiles": st("a"), "profiles_pii": st("b")})
	assert.NotContains(t, got, "profiles")

	alias := planFor(t, `{"stream_maps":{"profiles":{"__alias__":"people"}}}`)
	got, warns = alias.SourceStates(map[string]json.RawMessage{"people": st("p"), "profiles": st("old")})
	assert.Equal(t, map[string]json.RawMessage{"profiles": st("p")}, got, "the output's state is the stream's; the old name's is not")
	assert.Empty(t, warns)
}

// TestDiscoverHelpers: the discovered catalogs list outputs with their schemas, keys and metadata.
func TestDiscoverHelpers(t *testing.T) {
	p := planFor(t, `{"stream_maps":{"profiles":{"email":"md5(email)","__key_properties__":["email"]},"pii":{"__source__":"profiles","email":"email","__else__":null},"metrics":null}}`)
	ab, err := catalog.AirbyteStreams()
	require.NoError(t, err)
	mapped, err := p.AirbyteStreams(ab)
	require.NoError(t, err)
	byName := map[string]catalog.AirbyteStream{}
	for _, s := range mapped {
		byName[s.Name] = s
	}
	assert.Len(t, mapped, len(ab)) // one dropped, one added
	assert.NotContains(t, byName, "metrics")
	assert.Equal(t, [][]string{{"email"}}, byName["profiles"].SourceDefinedPrimaryKey)
	assert.Equal(t, []string{"updated"}, byName["pii"].DefaultCursorField)
	assert.Equal(t, [][]string{{"id"}}, byName["pii"].SourceDefinedPrimaryKey)
	assert.NotContains(t, string(byName["pii"].JSONSchema), "first_name")
	assert.NotContains(t, string(byName["pii"].JSONSchema), "\n")
	for _, s := range ab {
		if s.Name == "events" {
			assert.Equal(t, s, byName["events"], "an unmapped stream is listed as it was")
		}
	}

	sg, err := catalog.SingerCatalog()
	require.NoError(t, err)
	doc, err := p.SingerCatalog(sg)
	require.NoError(t, err)
	var pii catalog.SingerStream
	for _, e := range doc.Streams {
		if e.TapStreamID == "pii" {
			pii = e
		}
		assert.NotEqual(t, "metrics", e.TapStreamID)
	}
	require.Equal(t, "pii", pii.Stream)
	assert.Equal(t, "updated", pii.ReplicationKey)
	crumbs := map[string]string{}
	for _, md := range pii.Metadata {
		if len(md.Breadcrumb) == 2 {
			crumbs[md.Breadcrumb[1]] = md.Metadata["inclusion"].(string)
		} else {
			assert.Equal(t, []string{"id"}, md.Metadata["table-key-properties"])
		}
	}
	assert.Equal(t, map[string]string{"id": "automatic", "updated": "automatic", "email": "available"}, crumbs)

	infos, err := p.SingerStreamInfos([]catalog.Selection{{Stream: mustLookup(t, "profiles"), Incremental: true}},
		func(catalog.Selection) (emit.StreamInfo, error) { return emit.StreamInfo{Name: "base"}, nil })
	require.NoError(t, err)
	require.Len(t, infos, 2)
	assert.Equal(t, "profiles", infos[0].Name)
	assert.Equal(t, []string{"updated"}, infos[1].BookmarkProperties)
	infos, err = p.SingerStreamInfos([]catalog.Selection{{Stream: mustLookup(t, "events")}},
		func(catalog.Selection) (emit.StreamInfo, error) { return emit.StreamInfo{Name: "base"}, nil })
	require.NoError(t, err)
	assert.Equal(t, "base", infos[0].Name, "an unmapped stream is described by the connector's own function")
}

func mustLookup(t *testing.T, name string) catalog.Stream {
	s, ok := catalog.Lookup(name)
	require.True(t, ok)
	return s
}

// What the catalog package refuses of a whole document, the mapped selection refuses too: an empty catalog, and
// an output configured twice.
func TestSelectionChecksTheWholeCatalog(t *testing.T) {
	p := planFor(t, twoTables)
	entry := `{"stream":{"name":"profiles_pii"},"sync_mode":"full_refresh","destination_sync_mode":"append"}`
	_, _, err := p.SelectAirbyte([]byte(`{"streams":[]}`))
	require.Error(t, err)
	_, _, err = p.SelectAirbyte([]byte(`{"streams":[` + entry + `,` + entry + `]}`))
	require.ErrorContains(t, err, `streams[1].stream.name: "profiles_pii" is configured twice`)
	_, _, err = p.SelectSinger([]byte(`{"streams":[{"tap_stream_id":"profiles_pii","metadata":[]},{"tap_stream_id":"profiles_pii","metadata":[]}]}`))
	require.ErrorContains(t, err, `streams[1].tap_stream_id: "profiles_pii" is configured twice`)
}
