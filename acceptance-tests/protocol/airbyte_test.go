package protocol_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

var clock = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)

// requireRejects gives parse each input of cases, in a subtest of its own, and requires an error that contains
// the case's text.
func requireRejects[T any](t *testing.T, parse func([]byte) (T, error), cases map[string]string) {
	t.Helper()
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			_, err := parse([]byte(in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
}

// airbyteOutput drives the emit Airbyte writer through every message it can produce, as a read, check, spec and
// discover would, and returns what it printed.
func airbyteOutput(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, emit.WriteSpec(&buf, json.RawMessage(`{
		"documentationUrl": "https://github.com/source-klaviyo/source-klaviyo",
		"connectionSpecification": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
			"required": ["api_key"], "properties": {"api_key": {"type": "string", "airbyte_secret": true}}},
		"supportsIncremental": true, "protocol_version": "0.2.0"}`)))
	require.NoError(t, emit.WriteCatalog(&buf, map[string]any{"streams": []map[string]any{{
		"name":                       "events",
		"json_schema":                map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}},
		"supported_sync_modes":       []string{"full_refresh", "incremental"},
		"source_defined_cursor":      true,
		"default_cursor_field":       []string{"datetime"},
		"source_defined_primary_key": [][]string{{"id"}},
		"is_resumable":               true,
	}}}))
	require.NoError(t, emit.WriteConnectionStatus(&buf, true, ""))
	require.NoError(t, emit.WriteConnectionStatus(&buf, false, "The API key pk_abc was refused.", "pk_abc"))

	a := emit.NewAirbyte(&buf, emit.Options{Secrets: []string{"pk_abc"}, Now: func() time.Time { return clock }})
	require.NoError(t, a.Log("INFO", "starting with key pk_abc"))
	for _, level := range []string{"FATAL", "ERROR", "WARN", "DEBUG", "TRACE"} {
		require.NoError(t, a.Log(level, level+" line"))
	}
	require.NoError(t, a.StreamStatus("events", emit.Started, time.Time{}))
	require.NoError(t, a.StreamStatus("events", emit.Running, time.Time{}))
	require.NoError(t, a.Record("events", []byte(`{"id":"e1","datetime":"2026-01-01T00:00:00+00:00"}`)))
	require.NoError(t, a.Record("events", []byte(`{"id":"e2","datetime":"2026-01-01T00:00:01+00:00"}`)))
	require.NoError(t, a.StreamStatus("events", emit.Running, clock.Add(time.Minute)))
	require.NoError(t, a.State("events", json.RawMessage(`{"datetime":"2026-01-01T00:00:01+00:00"}`)))
	require.NoError(t, a.StreamStatus("events", emit.Complete, time.Time{}))
	require.NoError(t, a.StreamStatus("lists", emit.Started, time.Time{}))
	require.NoError(t, a.State("lists", json.RawMessage(`{}`)))
	require.NoError(t, a.Error(emit.TraceError{Message: "Klaviyo refused key pk_abc.", Internal: "HTTP 401", Failure: emit.ConfigError, Stream: "lists"}))
	require.NoError(t, a.Error(emit.TraceError{Message: "Klaviyo is down.", Failure: emit.TransientError}))
	require.NoError(t, a.Error(emit.TraceError{Message: "bug"}))
	require.NoError(t, a.StreamStatus("lists", emit.Incomplete, time.Time{}))
	require.NoError(t, a.ConnectionStatus(false, "pk_abc cannot read lists"))
	require.NoError(t, a.Flush())
	return buf.Bytes()
}

func TestEveryAirbyteWriterMessageIsAValidAirbyteMessage(t *testing.T) {
	v := protocol.NewAirbyteValidator(t)
	out := airbyteOutput(t)
	require.NoError(t, v.ValidateOutput(out))
	assert.NotContains(t, string(out), "pk_abc", "secrets are masked everywhere")

	msgs, err := protocol.ParseAirbyteOutput(out)
	require.NoError(t, err)
	types := map[string]int{}
	for _, m := range msgs {
		types[m.Type]++
	}
	assert.Equal(t, map[string]int{
		"SPEC": 1, "CATALOG": 1, "CONNECTION_STATUS": 3, "LOG": 6, "RECORD": 2, "STATE": 2, "TRACE": 9,
	}, types)
}

func TestParseAirbyteOutputGivesTypedViews(t *testing.T) {
	msgs, err := protocol.ParseAirbyteOutput(airbyteOutput(t))
	require.NoError(t, err)

	spec := msgs.Spec()
	require.NotNil(t, spec)
	assert.Equal(t, "https://github.com/source-klaviyo/source-klaviyo", spec.DocumentationURL)
	assert.Equal(t, "0.2.0", spec.ProtocolVersion)
	assert.True(t, spec.SupportsIncremental)
	assert.Contains(t, string(spec.ConnectionSpecification), `"airbyte_secret":true`)

	cat := msgs.Catalog()
	require.NotNil(t, cat)
	require.Len(t, cat.Streams, 1)
	s := cat.Streams[0]
	assert.Equal(t, "events", s.Name)
	assert.Equal(t, []string{"full_refresh", "incremental"}, s.SupportedSyncModes)
	assert.Equal(t, [][]string{{"id"}}, s.SourceDefinedPrimaryKey)
	assert.Equal(t, []string{"datetime"}, s.DefaultCursorField)
	require.NotNil(t, s.IsResumable)
	assert.True(t, *s.IsResumable)
	assert.JSONEq(t, `{"name":"events","json_schema":{"type":"object","properties":{"id":{"type":"string"}}},
		"supported_sync_modes":["full_refresh","incremental"],"source_defined_cursor":true,
		"default_cursor_field":["datetime"],"source_defined_primary_key":[["id"]],"is_resumable":true}`, string(s.Raw),
		"Raw is the stream as printed, ready to go into a configured catalog")

	require.NotNil(t, msgs.ConnectionStatus())
	assert.Equal(t, "SUCCEEDED", msgs.ConnectionStatus().Status)
	statuses := msgs.OfType("CONNECTION_STATUS")
	assert.Equal(t, "The API key **** was refused.", statuses[1].ConnectionStatus.Message)

	recs := msgs.Records("events")
	require.Len(t, recs, 2)
	assert.Equal(t, "e1", recs[0].Data["id"])
	assert.Equal(t, clock.UnixMilli(), recs[0].EmittedAt)
	assert.JSONEq(t, `{"id":"e2","datetime":"2026-01-01T00:00:01+00:00"}`, string(recs[1].RawData))
	assert.Len(t, msgs.RecordsByStream()["events"], 2)
	assert.Equal(t, []map[string]any{
		{"id": "e1", "datetime": "2026-01-01T00:00:00+00:00"},
		{"id": "e2", "datetime": "2026-01-01T00:00:01+00:00"},
	}, msgs.Rows("events"))
	assert.Empty(t, msgs.Rows("lists"))

	st := msgs.StatesOf("events")
	require.Len(t, st, 1)
	assert.Equal(t, "STREAM", st[0].Type)
	assert.JSONEq(t, `{"datetime":"2026-01-01T00:00:01+00:00"}`, string(st[0].StreamState))
	require.NotNil(t, st[0].RecordCount)
	assert.Equal(t, 2.0, *st[0].RecordCount)
	assert.Equal(t, "2.0", st[0].RecordCountLiteral)
	assert.Equal(t, "0.0", msgs.StatesOf("lists")[0].RecordCountLiteral)
	assert.Len(t, msgs.States(), 2)
	assert.JSONEq(t, `{"datetime":"2026-01-01T00:00:01+00:00"}`, string(msgs.LastStreamState("events")))
	assert.JSONEq(t, `{}`, string(msgs.LastStreamState("lists")))
	assert.Nil(t, msgs.LastStreamState("flows"), "a stream that wrote no state has none")

	assert.Equal(t, []string{"STARTED", "RUNNING", "RUNNING", "COMPLETE"}, msgs.StreamStatuses("events"))
	assert.Equal(t, map[string][]string{
		"events": {"STARTED", "RUNNING", "RUNNING", "COMPLETE"},
		"lists":  {"STARTED", "INCOMPLETE"},
	}, msgs.StatusesByStream())
	var limited []protocol.StatusReason
	for _, tr := range msgs.Traces() {
		if tr.StreamStatus != nil && len(tr.StreamStatus.Reasons) > 0 {
			limited = append(limited, tr.StreamStatus.Reasons...)
		}
	}
	assert.Equal(t, []protocol.StatusReason{{Type: "RATE_LIMITED", QuotaReset: clock.Add(time.Minute).UnixMilli()}}, limited)

	errs := msgs.Errors()
	require.Len(t, errs, 3)
	assert.Equal(t, protocol.TraceError{Message: "Klaviyo refused key ****.", InternalMessage: "HTTP 401", FailureType: "config_error", Stream: "lists"}, errs[0])
	assert.Equal(t, "transient_error", errs[1].FailureType)
	assert.Equal(t, "system_error", errs[2].FailureType)
	assert.Equal(t, "config_error: Klaviyo refused key ****.", errs[0].String())
	assert.Equal(t, "[config_error: Klaviyo refused key ****. transient_error: Klaviyo is down. system_error: bug]", fmt.Sprint(errs),
		"a failed assertion prints errors as the user reads them")

	logs := msgs.Logs()
	require.Len(t, logs, 6)
	assert.Equal(t, protocol.Log{Level: "INFO", Message: "starting with key ****"}, logs[0])
	assert.Equal(t, 1, msgs[0].Line)
}

// TestStateFileIsAcceptedBackByTheConnector checks the loop a second read relies on: the state file built from a
// read's output parses with emit.ParseState into each stream's last state.
func TestStateFileIsAcceptedBackByTheConnector(t *testing.T) {
	var buf bytes.Buffer
	a := emit.NewAirbyte(&buf, emit.Options{Now: func() time.Time { return clock }})
	require.NoError(t, a.State("events", json.RawMessage(`{"datetime":"1"}`)))
	require.NoError(t, a.State("lists", json.RawMessage(`{}`)))
	require.NoError(t, a.Record("events", []byte(`{"id":"x"}`)))
	require.NoError(t, a.State("events", json.RawMessage(`{"datetime":"2"}`)))
	msgs, err := protocol.ParseAirbyteOutput(buf.Bytes())
	require.NoError(t, err)
	file, err := msgs.StateFile()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(file), `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"}`), string(file))

	assert.JSONEq(t, `{"datetime":"2"}`, string(msgs.LastStreamState("events")), "the last state of a stream wins")

	states, err := emit.ParseState(file)
	require.NoError(t, err)
	assert.Equal(t, map[string]json.RawMessage{
		"events": json.RawMessage(`{"datetime":"2"}`),
		"lists":  json.RawMessage(`{}`),
	}, states)

	empty, err := protocol.Messages(nil).StateFile()
	require.NoError(t, err)
	assert.Equal(t, "[]", string(empty))
}

// TestParseAirbyteStateFileReadsWhatStateFileWrites: a test that resumes from a state file reads it back as the
// states the output carried.
func TestParseAirbyteStateFileReadsWhatStateFileWrites(t *testing.T) {
	msgs, err := protocol.ParseAirbyteOutput(airbyteOutput(t))
	require.NoError(t, err)
	file, err := msgs.StateFile()
	require.NoError(t, err)
	states, err := protocol.ParseAirbyteStateFile(file)
	require.NoError(t, err)
	assert.Equal(t, msgs.States(), states)

	legacy, err := protocol.ParseAirbyteStateFile([]byte(" [{\"type\":\"LEGACY\",\"data\":{}}]\n"))
	require.NoError(t, err, "a state file is the platform's, not held to what a source writes")
	require.Len(t, legacy, 1)
	assert.Equal(t, "LEGACY", legacy[0].Type)
	assert.Nil(t, legacy[0].RecordCount)
	empty, err := protocol.ParseAirbyteStateFile([]byte(`[]`))
	require.NoError(t, err)
	assert.Empty(t, empty)

	cases := map[string]string{
		``:                      "not one JSON array",
		`{}`:                    "not one JSON array",
		`[] []`:                 "not one JSON array",
		`[{"type":"STREAM"}`:    "not one JSON array",
		`[null]`:                "element 0: a STATE message without state",
		`[{"type":"STREAM"},5]`: "element 1: bad state",
	}
	requireRejects(t, protocol.ParseAirbyteStateFile, cases)
}

// TestParseAirbyteLineParsesOneLineAsTheOutputParserDoes: the streaming readers see each line exactly as a test that
// holds the whole output does, and get the same complaint about a bad one.
func TestParseAirbyteLineParsesOneLineAsTheOutputParserDoes(t *testing.T) {
	out := airbyteOutput(t)
	msgs, err := protocol.ParseAirbyteOutput(out)
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
	require.Len(t, lines, len(msgs))
	for i, l := range lines {
		m, err := protocol.ParseAirbyteLine(l)
		require.NoError(t, err, "line %d", i+1)
		assert.Zero(t, m.Line, "a lone line has no line number")
		m.Line = msgs[i].Line
		assert.Equal(t, msgs[i], m, "line %d", i+1)
	}

	_, err = protocol.ParseAirbyteLine([]byte(`{"type":"TRACE"}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a TRACE message without trace")
	_, err = protocol.ParseAirbyteLine([]byte(`{"type":"LOG"`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not one JSON object")
}

func TestParseAirbyteOutputRejectsBadFraming(t *testing.T) {
	good := `{"type":"LOG","log":{"level":"INFO","message":"hi"}}`
	cases := map[string]string{
		good + "\nnot json\n":                   "line 2: not one JSON object",
		good + "\n\n" + good + "\n":             "line 2 is empty",
		good:                                    "does not end with a newline",
		`[1]` + "\n":                            "line 1: not one JSON object",
		`{"type":"DESTINATION_CATALOG"}` + "\n": `line 1: unknown message type "DESTINATION_CATALOG"`,
		`{"type":"NOPE"}` + "\n":                `line 1: unknown message type "NOPE"`,
		`{"type":"RECORD"}` + "\n":              "line 1: a RECORD message without record",
		`{"type":"RECORD","record":{"stream":"s","data":[],"emitted_at":1}}` + "\n":   `line 1: record data of stream "s" is not a JSON object`,
		`{"type":"RECORD","record":{"stream":"s","data":{},"emitted_at":1.5}}` + "\n": "line 1: bad record",
		`{"type":"STATE"}` + "\n":             "line 1: a STATE message without state",
		`{"type":"TRACE"}` + "\n":             "line 1: a TRACE message without trace",
		`{"type":"LOG"}` + "\n":               "line 1: a LOG message without log",
		`{"type":"SPEC"}` + "\n":              "line 1: a SPEC message without spec",
		`{"type":"CATALOG"}` + "\n":           "line 1: a CATALOG message without catalog",
		`{"type":"CONNECTION_STATUS"}` + "\n": "line 1: a CONNECTION_STATUS message without connectionStatus",
		`{"type":"CONTROL"}` + "\n":           "line 1: a CONTROL message without control",
	}
	requireRejects(t, protocol.ParseAirbyteOutput, cases)
	msgs, err := protocol.ParseAirbyteOutput(nil)
	require.NoError(t, err)
	assert.Empty(t, msgs)
}

func TestValidatorRejectsWhatThePlatformWouldNot(t *testing.T) {
	v := protocol.NewAirbyteValidator(t)
	state := func(extra string) string {
		return `{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"e"` + extra + `},"stream_state":{}},"sourceStats":{"recordCount":1.0}}}`
	}
	require.NoError(t, v.ValidateLine([]byte(state(""))))
	require.NoError(t, v.ValidateLine([]byte(state(`,"namespace":"ns"`))))
	require.NoError(t, v.ValidateLine([]byte(`{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG","emitted_at":1.5,"connectorConfig":{"config":{"namespace":""}}}}`)))

	cases := map[string]string{
		`{"type":"RECORD","record":{"stream":"e","data":{},"emitted_at":"1"}}`:                                                                "emitted_at",
		`{"type":"RECORD","record":{"stream":"e","data":{},"emitted_at":1.5}}`:                                                                "emitted_at",
		`{"type":"RECORD","record":{"stream":"e","emitted_at":1}}`:                                                                            "data",
		`{"type":"RECORD","record":{"stream":"e","data":{"namespace":""},"emitted_at":1,"namespace":""}}`:                                     `record.namespace is ""`,
		`{"type":"RECORD","log":{"level":"INFO","message":"x"}}`:                                                                              `without its "record" object`,
		`{"type":"LOG","log":{"level":"INFO","message":"x"},"trace":{"type":"ERROR","emitted_at":1,"error":{"message":"m"}}}`:                 `carries a "trace" payload`,
		`{"type":"LOG","log":{"level":"VERBOSE","message":"x"}}`:                                                                              "level",
		`{"type":"TRACE","trace":{"type":"STREAM_STATUS","stream_status":{"stream_descriptor":{"name":"e"},"status":"RUNNING"}}}`:             "emitted_at",
		`{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1,"stream_status":{"stream_descriptor":{"name":"e"},"status":"DONE"}}}`: "status",
		`{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1}}`:                                                                    `without its "stream_status" object`,
		`{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1,"error":{"message":"m","failure_type":"user_error"}}}`:                        "failure_type",
		`{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1,"error":{"message":"m","stream_descriptor":{"name":"e","namespace":""}}}}`:    `namespace is ""`,
		`{"type":"CONNECTION_STATUS","connectionStatus":{"status":"OK"}}`:                                                                     "status",
		`{"type":"DESTINATION_CATALOG","destination_catalog":{"operations":[]}}`:                                                              "not a message a source sends",
		`{"type":"SOMETHING"}`:                                 "type",
		`{"type":"STATE","state":{"type":"LEGACY","data":{}}}`: `state type "LEGACY"`,
		`{"type":"STATE","state":{"data":{}}}`:                 `state type ""`,
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"e"},"stream_state":{}}}}`:                                   "without sourceStats.recordCount",
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"e"},"stream_state":{}},"sourceStats":{"recordCount":250}}}`: "no decimal point",
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{},"stream_state":{}},"sourceStats":{"recordCount":1.0}}}`:           "name",
		`{"type":"CATALOG","catalog":{"streams":[{"name":"e","json_schema":{},"supported_sync_modes":[]}]}}`:                                         "supported_sync_modes",
		`{"type":"CATALOG","catalog":{"streams":[{"name":"e","json_schema":{},"supported_sync_modes":["full_refresh"],"namespace":""}]}}`:            `namespace is ""`,
		`{"type":"SPEC","spec":{"documentationUrl":"https://x"}}`:                                                                                    "connectionSpecification",
		"{\"type\":\"LOG\",\n\"log\":{\"level\":\"INFO\",\"message\":\"x\"}}":                                                                        "several lines",
		`{"type":"LOG","log":{"level":"INFO","message":"x"}} {}`:                                                                                     "not valid JSON",
		`"LOG"`: "not a JSON object",
	}
	requireRejects(t, func(line []byte) (struct{}, error) { return struct{}{}, v.ValidateLine(line) }, cases)

	err := v.ValidateOutput([]byte(state("") + "\n" + `{"type":"NOPE"}` + "\n" + `{"type":"STATE","state":{"data":{}}}` + "\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2: ")
	assert.Contains(t, err.Error(), "line 3: ")
	assert.NotContains(t, err.Error(), "line 1: ")
}

func TestFindProtocolFile(t *testing.T) {
	found, err := protocol.FindProtocolFile()
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(filepath.ToSlash(found), "shared/airbyte/airbyte_protocol.yaml"), found)

	t.Run("from a directory with no shared folder above", func(t *testing.T) {
		t.Setenv(protocol.ProtocolFileEnv, "")
		t.Chdir(t.TempDir())
		_, err := protocol.FindProtocolFile()
		require.Error(t, err)
		assert.Contains(t, err.Error(), protocol.ProtocolFileEnv)
	})
	t.Run("from the environment", func(t *testing.T) {
		abs, err := filepath.Abs(found)
		require.NoError(t, err)
		t.Setenv(protocol.ProtocolFileEnv, abs)
		t.Chdir(t.TempDir())
		got, err := protocol.FindProtocolFile()
		require.NoError(t, err)
		assert.Equal(t, abs, got)
		_, err = protocol.LoadAirbyteValidator(got)
		require.NoError(t, err)
	})
	t.Run("a missing file named by the environment", func(t *testing.T) {
		t.Setenv(protocol.ProtocolFileEnv, filepath.Join(t.TempDir(), "nope.yaml"))
		_, err := protocol.FindProtocolFile()
		require.Error(t, err)
	})
	t.Run("a file that is not the protocol", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "other.yaml")
		require.NoError(t, os.WriteFile(p, []byte("definitions: {}\n"), 0o600))
		_, err := protocol.LoadAirbyteValidator(p)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no definitions.AirbyteMessage")
	})
}
