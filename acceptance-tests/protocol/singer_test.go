package protocol_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

func TestParseSingerOutputReadsTheSingerWriter(t *testing.T) {
	var out, errOut bytes.Buffer
	s := emit.NewSinger(&out, []emit.StreamInfo{
		{
			Name:               "events",
			Schema:             json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"},"datetime":{"type":"string","format":"date-time"}}}`),
			KeyProperties:      []string{"id"},
			BookmarkProperties: []string{"datetime"},
		},
		{Name: "lists", Schema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`), KeyProperties: []string{"id"}},
	}, emit.SingerState{Bookmarks: map[string]json.RawMessage{"profiles": json.RawMessage(`{"updated":"p"}`)}},
		emit.Options{Now: func() time.Time { return clock }, Stderr: &errOut})
	require.NoError(t, s.Record("events", []byte(`{"id":"e1","datetime":"2026-01-01T00:00:00+00:00"}`)))
	require.NoError(t, s.State("events", json.RawMessage(`{"datetime":"2026-01-01T00:00:00+00:00"}`)))
	require.NoError(t, s.State("lists", json.RawMessage(`{}`)))
	require.NoError(t, s.Log("INFO", "not on stdout"))
	require.NoError(t, s.Flush())

	msgs, err := protocol.ParseSingerOutput(out.Bytes())
	require.NoError(t, err)
	var types []string
	for _, m := range msgs {
		types = append(types, m.Type)
	}
	assert.Equal(t, []string{"SCHEMA", "RECORD", "STATE", "SCHEMA", "STATE"}, types)

	schemas := msgs.Schemas()
	require.Contains(t, schemas, "events")
	assert.Equal(t, []string{"id"}, schemas["events"].KeyProperties)
	assert.Equal(t, []string{"datetime"}, schemas["events"].BookmarkProperties)

	recs := msgs.Records("events")
	require.Len(t, recs, 1)
	assert.Equal(t, "e1", recs[0].Record["id"])
	assert.True(t, recs[0].TimeExtracted.Equal(clock.Truncate(time.Second)), recs[0].TimeExtracted)
	assert.Len(t, msgs.RecordsByStream()["events"], 1)

	require.Len(t, msgs.States(), 2)
	assert.JSONEq(t, `{"bookmarks":{"events":{"datetime":"2026-01-01T00:00:00+00:00"},"lists":{},"profiles":{"updated":"p"}}}`, string(msgs.LastState()))
	assert.JSONEq(t, `{}`, string(msgs.States()[1].Bookmarks["lists"]))

	// The last state is exactly what the next run takes back.
	states, err := emit.ParseState(msgs.LastState())
	require.NoError(t, err)
	assert.Len(t, states, 3)
}

func TestParseSingerOutputChecksWhatTargetsRelyOn(t *testing.T) {
	schema := `{"type":"SCHEMA","stream":"s","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":["id"]}` + "\n"
	cases := map[string]string{
		`{"type":"RECORD","stream":"s","record":{"id":"1"}}` + "\n":                                   `a RECORD of stream "s" before any SCHEMA of it`,
		schema + `{"type":"RECORD","stream":"s","record":{"x":"1"}}` + "\n":                           `line 2: a RECORD of stream "s" without its key property "id"`,
		schema + `{"type":"RECORD","stream":"s","record":[]}` + "\n":                                  "whose record is not a JSON object",
		schema + `{"type":"RECORD","stream":"s","record":{"id":"1"},"time_extracted":"today"}` + "\n": "is not RFC 3339",
		schema + `{"type":"RECORD","record":{"id":"1"}}` + "\n":                                       "a RECORD message without stream",
		`{"type":"SCHEMA","stream":"s","schema":{"type":"object"}}` + "\n":                            "has no key_properties",
		`{"type":"SCHEMA","stream":"s","key_properties":[]}` + "\n":                                   "has no schema object",
		`{"type":"SCHEMA","stream":"s","schema":{"properties":{}},"key_properties":["id"]}` + "\n":    `names key property "id"`,
		`{"type":"STATE"}` + "\n":                         "a STATE message without value",
		`{"type":"ACTIVATE_VERSION","stream":"s"}` + "\n": "without version",
		`{"type":"LOG","message":"x"}` + "\n":             `unknown message type "LOG"`,
		`INFO starting` + "\n":                            "not one JSON object",
	}
	requireRejects(t, protocol.ParseSingerOutput, cases)

	msgs, err := protocol.ParseSingerOutput([]byte(`{"type":"schema","stream":"s","schema":{"type":"object"},"key_properties":[]}` + "\n" +
		`{"type":"record","stream":"s","record":{},"version":3}` + "\n" +
		`{"type":"activate_version","stream":"s","version":3}` + "\n"))
	require.NoError(t, err, "types are case-insensitive")
	require.Len(t, msgs, 3)
	assert.Equal(t, "RECORD", msgs[1].Type)
	assert.Equal(t, int64(3), *msgs[1].Record.Version)
	assert.Equal(t, int64(3), msgs[2].ActivateVersion.Version)
}

// TestParseSingerLineParsesOneLineOnItsOwn: a line read apart from its output parses as it does within it, and a
// RECORD needs no SCHEMA before it; everything a line can show on its own is still checked.
func TestParseSingerLineParsesOneLineOnItsOwn(t *testing.T) {
	schema := `{"type":"SCHEMA","stream":"s","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":["id"]}`
	record := `{"type":"RECORD","stream":"s","record":{"id":"1"},"time_extracted":"2026-01-01T00:00:00Z"}`
	state := `{"type":"STATE","value":{"bookmarks":{"s":{}}}}`
	out := schema + "\n" + record + "\n" + state + "\n"
	msgs, err := protocol.ParseSingerOutput([]byte(out))
	require.NoError(t, err)
	for i, l := range []string{schema, record, state} {
		m, err := protocol.ParseSingerLine([]byte(l))
		require.NoError(t, err, "line %d", i+1)
		assert.Zero(t, m.Line, "a lone line has no line number")
		m.Line = msgs[i].Line
		assert.Equal(t, msgs[i], m, "line %d", i+1)
	}

	m, err := protocol.ParseSingerLine([]byte(`{"type":"RECORD","stream":"s","record":{"x":"1"}}`))
	require.NoError(t, err, "no SCHEMA to hold a lone RECORD to")
	assert.JSONEq(t, `{"x":"1"}`, string(m.Record.RawRecord))

	cases := map[string]string{
		`{"type":"RECORD","stream":"s","record":[]}`:                                  "whose record is not a JSON object",
		`{"type":"RECORD","stream":"s","record":{"id":"1"},"time_extracted":"today"}`: "is not RFC 3339",
		`{"type":"RECORD","record":{"id":"1"}}`:                                       "a RECORD message without stream",
		`{"type":"SCHEMA","stream":"s","schema":{"type":"object"}}`:                   "has no key_properties",
		`{"type":"STATE"}`: "a STATE message without value",
		`{"type":"LOG"}`:   `unknown message type "LOG"`,
		`{"type":"STATE"`:  "not one JSON object",
		``:                 "not one JSON object",
	}
	requireRejects(t, protocol.ParseSingerLine, cases)
}

// TestParseSingerStateFileReadsWhatLastStateGives: the file a runner saves from the last STATE reads back as
// that STATE.
func TestParseSingerStateFileReadsWhatLastStateGives(t *testing.T) {
	msgs, err := protocol.ParseSingerOutput([]byte(`{"type":"STATE","value":{"bookmarks":{"s":{"at":"1"}},"currently_syncing":"s"}}` + "\n"))
	require.NoError(t, err)
	st, err := protocol.ParseSingerStateFile(append(msgs.LastState(), '\n'))
	require.NoError(t, err)
	assert.Equal(t, msgs.States()[0], *st)
	assert.JSONEq(t, `{"at":"1"}`, string(st.Bookmarks["s"]))

	st, err = protocol.ParseSingerStateFile([]byte(`{}`))
	require.NoError(t, err)
	assert.Nil(t, st.Bookmarks, "a state without bookmarks")

	const notObject = "the state file is not one JSON object"
	requireRejects(t, protocol.ParseSingerStateFile, map[string]string{
		``: notObject, `[]`: notObject, `null`: notObject, `{"bookmarks":{}} {}`: notObject, `{"bookmarks":`: notObject,
	})
}

// TestParseSingerCatalogReadsTheConnectorsCatalog parses the catalog --discover prints, rendered as the command
// renders it.
func TestParseSingerCatalogReadsTheConnectorsCatalog(t *testing.T) {
	doc, err := catalog.SingerCatalog()
	require.NoError(t, err)
	out, err := json.MarshalIndent(doc, "", "  ")
	require.NoError(t, err)

	cat, err := protocol.ParseSingerCatalog(append(out, '\n'))
	require.NoError(t, err)
	assert.JSONEq(t, string(out), string(cat.Raw))
	streams := catalog.Streams()
	require.Len(t, cat.Streams, len(streams))
	for i, s := range streams {
		got := cat.Streams[i]
		assert.Equal(t, s.Name, got.TapStreamID)
		assert.Equal(t, s.Name, got.Stream)
		assert.Equal(t, s.PrimaryKey, got.KeyProperties, "stream %s", s.Name)
		assert.NotEmpty(t, got.Schema, "stream %s", s.Name)
		assert.NotEmpty(t, got.Metadata, "stream %s", s.Name)
		if s.Cursor != nil {
			assert.Equal(t, s.Cursor.Field, got.ReplicationKey, "stream %s", s.Name)
			assert.Equal(t, "INCREMENTAL", got.ReplicationMethod, "stream %s", s.Name)
		} else {
			assert.Empty(t, got.ReplicationKey, "stream %s", s.Name)
		}
	}
}

func TestParseSingerCatalogChecksWhatTargetsRelyOn(t *testing.T) {
	stream := func(fields string) string {
		return `{"streams":[{"tap_stream_id":"s","schema":{"type":"object","properties":{"id":{},"at":{}}}` + fields + `}]}`
	}
	_, err := protocol.ParseSingerCatalog([]byte(stream(`,"key_properties":["id"],"replication_key":"at"`)))
	require.NoError(t, err)
	_, err = protocol.ParseSingerCatalog([]byte(stream(`,"key_properties":[]`)))
	require.NoError(t, err, "key_properties may be empty")

	cases := map[string]string{
		``:                            "not one JSON object",
		`[]`:                          "not one JSON object",
		`{"streams":[]} {}`:           "not one JSON object",
		`{}`:                          "no streams array",
		`{"streams":{}}`:              "no streams array",
		`{"streams":["s"]}`:           "streams[0]: not a stream object",
		`{"streams":[{"schema":{}}]}`: "streams[0]: a stream without tap_stream_id",
		`{"streams":[{"tap_stream_id":"s","schema":[],"key_properties":[]}]}`: `stream "s" has no schema object`,
		stream(``):                           `stream "s" has no key_properties`,
		stream(`,"key_properties":["nope"]`): `stream "s" names key property "nope"`,
		stream(`,"key_properties":["id"],"replication_key":"nope"`):                                                                 `stream "s" names replication_key "nope"`,
		`{"streams":[{"tap_stream_id":"s","schema":{},"key_properties":[]},{"tap_stream_id":"s","schema":{},"key_properties":[]}]}`: `streams[1]: tap_stream_id "s" is listed twice`,
	}
	requireRejects(t, protocol.ParseSingerCatalog, cases)
}

// BenchmarkValidateLine shows what validating every line of an end-to-end run costs.
func BenchmarkValidateLine(b *testing.B) {
	v := protocol.NewAirbyteValidator(b)
	var buf bytes.Buffer
	a := emit.NewAirbyte(&buf, emit.Options{})
	if err := a.Record("events", []byte(`{"id":"e1","datetime":"2026-01-01T00:00:00+00:00","event_properties":{"v":1}}`)); err != nil {
		b.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		b.Fatal(err)
	}
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := v.ValidateLine(line); err != nil {
			b.Fatal(err)
		}
	}
}
