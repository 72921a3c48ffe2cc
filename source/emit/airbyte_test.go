package emit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// clock is the fixed time every test writes: 2026-01-02T03:04:05.678Z.
var clock = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)

const clockMS = "1767323045678"

func fixedNow() time.Time { return clock }

func newAirbyte(buf *bytes.Buffer, secrets ...string) *emit.Airbyte {
	return emit.NewAirbyte(buf, emit.Options{Secrets: secrets, Now: fixedNow})
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestAirbyteRecordIsWrittenVerbatim(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	require.NoError(t, a.Record("events", []byte(`{"id":"e1","n":1.50,"s":"<&>"}`)))
	require.NoError(t, a.Record("events", []byte("{\"id\":\"e2\"}\n"))) // json.Encoder's newline is dropped
	require.NoError(t, a.Flush())
	assert.Equal(t,
		`{"type":"RECORD","record":{"stream":"events","data":{"id":"e1","n":1.50,"s":"<&>"},"emitted_at":`+clockMS+"}}\n"+
			`{"type":"RECORD","record":{"stream":"events","data":{"id":"e2"},"emitted_at":`+clockMS+"}}\n",
		buf.String())
}

func TestAirbyteRecordRejectsWhatIsNotOneObjectOnOneLine(t *testing.T) {
	for name, data := range map[string]string{
		"empty":     "",
		"array":     `[{"id":1}]`,
		"string":    `"x"`,
		"multiline": "{\n\"id\": 1\n}",
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			a := newAirbyte(&buf)
			err := a.Record("events", []byte(data))
			require.Error(t, err)
			assert.Contains(t, err.Error(), `record of stream "events"`)
			require.NoError(t, a.Flush())
			assert.Empty(t, buf.String())
		})
	}
}

func TestAirbyteRefusesAnEmptyStreamName(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	require.Error(t, a.Record("", []byte(`{}`)))
	require.Error(t, a.State("", json.RawMessage(`{}`)))
	require.Error(t, a.StreamStatus("", emit.Started, time.Time{}))
	require.NoError(t, a.Flush())
	assert.Empty(t, buf.String())
}

func TestAirbyteStreamNameIsEscaped(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	require.NoError(t, a.Record(`we"ird`, []byte(`{}`)))
	require.NoError(t, a.State(`we"ird`, json.RawMessage(`{}`)))
	var m map[string]any
	for _, l := range lines(buf.String()) {
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
	}
	assert.Contains(t, buf.String(), `"stream":"we\"ird"`)
	assert.Contains(t, buf.String(), `"stream_descriptor":{"name":"we\"ird"}`)
}

func TestAirbyteStateCountsRecordsPerStreamSinceItsPreviousState(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	rec := func(stream string, n int) {
		for i := 0; i < n; i++ {
			require.NoError(t, a.Record(stream, []byte(fmt.Sprintf(`{"id":"%d"}`, i))))
		}
	}
	state := func(stream, v string) { require.NoError(t, a.State(stream, json.RawMessage(v))) }

	rec("profiles", 3)
	rec("events", 2)
	rec("profiles", 247)
	state("profiles", `{"updated":"2026-01-01T00:00:00Z"}`) // 250 profiles
	state("events", `{"datetime":"2026-01-01T00:00:00Z"}`)  // 2 events
	state("events", `{"datetime":"2026-01-01T00:00:00Z"}`)  // same, nothing in between: skipped
	state("lists", `{}`)                                    // first state of a stream with no records: written
	state("lists", ` { } `)                                 // same after compaction: skipped
	rec("events", 1)
	state("events", `{"datetime":"2026-01-01T00:00:00Z"}`)  // same state but a record in between: written
	state("profiles", `{"updated":"2026-01-02T00:00:00Z"}`) // changed, no records: written with 0.0

	var states []string
	for _, l := range lines(buf.String()) {
		if strings.HasPrefix(l, `{"type":"STATE"`) {
			states = append(states, l)
		}
	}
	assert.Equal(t, []string{
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"profiles"},"stream_state":{"updated":"2026-01-01T00:00:00Z"}},"sourceStats":{"recordCount":250.0}}}`,
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":{"datetime":"2026-01-01T00:00:00Z"}},"sourceStats":{"recordCount":2.0}}}`,
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"lists"},"stream_state":{}},"sourceStats":{"recordCount":0.0}}}`,
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":{"datetime":"2026-01-01T00:00:00Z"}},"sourceStats":{"recordCount":1.0}}}`,
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"profiles"},"stream_state":{"updated":"2026-01-02T00:00:00Z"}},"sourceStats":{"recordCount":0.0}}}`,
	}, states)
}

func TestAirbyteStateIsCompactedAndMustBeAnObject(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	require.NoError(t, a.State("events", json.RawMessage("{\n  \"datetime\": \"x\"\n}")))
	assert.Contains(t, buf.String(), `"stream_state":{"datetime":"x"}`)
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"))

	for _, bad := range []string{`null`, `[]`, `"x"`, `{`, ``} {
		err := a.State("events", json.RawMessage(bad))
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), `state of stream "events"`)
	}
}

// writeLog records what reaches the underlying writer, to observe buffering.
type writeLog struct{ bytes.Buffer }

func TestAirbyteBuffersRecordsAndFlushesAtEveryOtherMessage(t *testing.T) {
	var out writeLog
	a := emit.NewAirbyte(&out, emit.Options{Now: fixedNow})
	require.NoError(t, a.Record("events", []byte(`{"id":"1"}`)))
	assert.Zero(t, out.Len(), "records stay in the buffer")

	require.NoError(t, a.State("events", json.RawMessage(`{"c":1}`)))
	got := lines(out.String())
	require.Len(t, got, 2, "the state flushes the record before it and itself")
	assert.True(t, strings.HasPrefix(got[0], `{"type":"RECORD"`))
	assert.True(t, strings.HasPrefix(got[1], `{"type":"STATE"`))

	for _, write := range []func() error{
		func() error { return a.Log("INFO", "hello") },
		func() error { return a.StreamStatus("events", emit.Running, time.Time{}) },
		func() error { return a.Error(emit.TraceError{Message: "boom"}) },
		func() error { return a.ConnectionStatus(true, "") },
	} {
		require.NoError(t, a.Record("events", []byte(`{"id":"2"}`)))
		before := out.Len()
		require.NoError(t, write())
		assert.Equal(t, 2, strings.Count(out.String()[before:], "\n"), "the record and the message are both out")
	}
}

func TestAirbyteStreamStatus(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	require.NoError(t, a.StreamStatus("events", emit.Started, time.Time{}))
	require.NoError(t, a.StreamStatus("events", emit.Running, time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)))
	assert.Equal(t, []string{
		`{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":` + clockMS + `,"stream_status":{"stream_descriptor":{"name":"events"},"status":"STARTED"}}}`,
		`{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":` + clockMS + `,"stream_status":{"stream_descriptor":{"name":"events"},"status":"RUNNING","reasons":[{"type":"RATE_LIMITED","rate_limited":{"quota_reset":1767323100000}}]}}}`,
	}, lines(buf.String()))

	err := a.StreamStatus("events", emit.Status("DONE"), time.Time{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"DONE"`)
}

func TestAirbyteLogMasksSecretsAndChecksLevels(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf, "pk_live_123", "", "pk_live_123456")
	require.NoError(t, a.Log("info", `key pk_live_123456 and pk_live_123 and "quoted" <b>`))
	require.NoError(t, a.Log("WARNING", "w"))
	assert.Equal(t, []string{
		`{"type":"LOG","log":{"level":"INFO","message":"key **** and **** and \"quoted\" <b>"}}`,
		`{"type":"LOG","log":{"level":"WARN","message":"w"}}`,
	}, lines(buf.String()))

	err := a.Log("LOUD", "x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"LOUD"`)
}

func TestAirbyteErrorTrace(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf, "sekret")
	require.NoError(t, a.Error(emit.TraceError{
		Message: "Klaviyo rejected the API key sekret.", Internal: "401 for key sekret",
		Failure: emit.ConfigError, Stream: "events",
	}))
	require.NoError(t, a.Error(emit.TraceError{Message: "oops", Failure: "made_up"}))
	assert.Equal(t, []string{
		`{"type":"TRACE","trace":{"type":"ERROR","emitted_at":` + clockMS + `,"error":{"message":"Klaviyo rejected the API key ****.","internal_message":"401 for key ****","failure_type":"config_error","stream_descriptor":{"name":"events"}}}}`,
		`{"type":"TRACE","trace":{"type":"ERROR","emitted_at":` + clockMS + `,"error":{"message":"oops","failure_type":"system_error"}}}`,
	}, lines(buf.String()))
	assert.NotContains(t, buf.String(), "sekret")
	assert.NotContains(t, buf.String(), "namespace")
}

func TestAirbyteRecordDataIsNeverMasked(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf, "abc")
	require.NoError(t, a.Record("profiles", []byte(`{"first_name":"abc"}`)))
	require.NoError(t, a.Flush())
	assert.Contains(t, buf.String(), `"data":{"first_name":"abc"}`)
}

func TestOneShotMessages(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, emit.WriteSpec(&buf, json.RawMessage("{\n \"connectionSpecification\": {\"type\": \"object\"}\n}")))
	require.NoError(t, emit.WriteCatalog(&buf, map[string]any{"streams": []any{}}))
	require.NoError(t, emit.WriteCatalog(&buf, json.RawMessage(`{"streams": []}`)))
	require.NoError(t, emit.WriteConnectionStatus(&buf, false, "key pk_1 cannot read events", "pk_1"))
	require.NoError(t, emit.WriteConnectionStatus(&buf, true, ""))
	assert.Equal(t, []string{
		`{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}`,
		`{"type":"CATALOG","catalog":{"streams":[]}}`,
		`{"type":"CATALOG","catalog":{"streams":[]}}`,
		`{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"key **** cannot read events"}}`,
		`{"type":"CONNECTION_STATUS","connectionStatus":{"status":"SUCCEEDED"}}`,
	}, lines(buf.String()))

	require.Error(t, emit.WriteSpec(&buf, json.RawMessage(`[]`)))
	require.Error(t, emit.WriteCatalog(&buf, "not a catalog"))
}

// failingWriter fails every write, like a closed stdout.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteErrorsAreReported(t *testing.T) {
	a := emit.NewAirbyte(failingWriter{}, emit.Options{Now: fixedNow})
	require.NoError(t, a.Record("events", []byte(`{}`)), "buffered, not yet written")
	err := a.State("events", json.RawMessage(`{}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken pipe")
	require.Error(t, a.Log("INFO", "x"))
	require.Error(t, emit.WriteConnectionStatus(failingWriter{}, true, ""))
}

// TestAirbyteConcurrentStreamsKeepCountsAndOrder runs one goroutine per stream, as the engine does, and checks
// that every state's recordCount equals the records of its stream printed since that stream's previous state.
func TestAirbyteConcurrentStreamsKeepCountsAndOrder(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	const streams, pages, perPage = 4, 20, 7
	var wg sync.WaitGroup
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			for p := 0; p < pages; p++ {
				for r := 0; r < perPage; r++ {
					assert.NoError(t, a.Record(name, []byte(fmt.Sprintf(`{"page":%d,"r":%d}`, p, r))))
				}
				assert.NoError(t, a.State(name, json.RawMessage(fmt.Sprintf(`{"page":%d}`, p))))
			}
		}(fmt.Sprintf("s%d", s))
	}
	wg.Wait()
	require.NoError(t, a.Flush())

	pending := map[string]int{}
	states := map[string]int{}
	for _, l := range lines(buf.String()) {
		var m struct {
			Type   string
			Record struct{ Stream string }
			State  struct {
				Stream struct {
					StreamDescriptor struct{ Name string } `json:"stream_descriptor"`
				}
				SourceStats struct{ RecordCount float64 } `json:"sourceStats"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		switch m.Type {
		case "RECORD":
			pending[m.Record.Stream]++
		case "STATE":
			name := m.State.Stream.StreamDescriptor.Name
			assert.Equal(t, float64(pending[name]), m.State.SourceStats.RecordCount, name)
			pending[name] = 0
			states[name]++
		}
	}
	for s := 0; s < streams; s++ {
		assert.Equal(t, pages, states[fmt.Sprintf("s%d", s)])
		assert.Zero(t, pending[fmt.Sprintf("s%d", s)], "every record is covered by a state")
	}
}
