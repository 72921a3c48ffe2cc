package emit_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

func TestProgressFigures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        emit.Progress
		text     string
		estimate int64
		left     time.Duration
	}{
		{
			name: "a quarter of the windows done",
			p: emit.Progress{Stream: "events", Records: 1234567, Elapsed: 100 * time.Second, TasksDone: 8, TasksTotal: 32,
				Unit: "windows"},
			text:     "events: 1,234,567 records (12,346/s), 8 of 32 windows done, about 5m0s left",
			estimate: 4938268, left: 300 * time.Second,
		},
		{
			name: "still planning: no total, no estimate",
			p:    emit.Progress{Stream: "profiles", Records: 0, Elapsed: 2 * time.Second, Unit: "windows"},
			text: "profiles: 0 records (0/s)",
		},
		{
			name: "nothing finished yet: no estimate",
			p:    emit.Progress{Stream: "list_memberships", Records: 999, Elapsed: time.Second, TasksTotal: 10, Unit: "parents"},
			text: "list_memberships: 999 records (999/s), 0 of 10 parents done",
		},
		{
			name: "final",
			p: emit.Progress{Stream: "lists", Records: 10, Elapsed: 1500 * time.Millisecond, TasksDone: 1, TasksTotal: 1,
				Unit: "windows", Final: true},
			text: "lists: 10 records (7/s), 1 of 1 windows done, finished in 1.5s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.text, tc.p.Text())
			est, ok := tc.p.RowEstimate()
			assert.Equal(t, tc.estimate != 0, ok)
			assert.Equal(t, tc.estimate, est)
			left, ok := tc.p.Remaining()
			assert.Equal(t, tc.left != 0, ok)
			assert.Equal(t, tc.left, left)
		})
	}
}

// Airbyte gets an INFO LOG and, when the total can be extrapolated, a STREAM ESTIMATE; both are valid protocol
// messages.
func TestAirbyteProgressWritesALogAndAnEstimate(t *testing.T) {
	var buf bytes.Buffer
	a := newAirbyte(&buf)
	require.NoError(t, a.Progress(emit.Progress{Stream: "events", Records: 500, Elapsed: 10 * time.Second, TasksDone: 1, TasksTotal: 4, Unit: "windows"}))
	require.NoError(t, a.Progress(emit.Progress{Stream: "events", Records: 2000, Elapsed: 40 * time.Second, TasksDone: 4, TasksTotal: 4, Unit: "windows", Final: true}))
	require.NoError(t, a.Request(emit.RequestMetric{Endpoint: "/api/events", Status: 200, OK: true}))
	assert.Equal(t, []string{
		`{"type":"LOG","log":{"level":"INFO","message":"progress: events: 500 records (50/s), 1 of 4 windows done, about 30s left"}}`,
		`{"type":"TRACE","trace":{"type":"ESTIMATE","emitted_at":` + clockMS + `,"estimate":{"name":"events","type":"STREAM","row_estimate":2000}}}`,
		`{"type":"LOG","log":{"level":"INFO","message":"progress: events: 2,000 records (50/s), 4 of 4 windows done, finished in 40s"}}`,
	}, lines(buf.String()), "no estimate once the stream ended, and nothing for a request")
	v := protocol.NewAirbyteValidator(t)
	require.NoError(t, v.ValidateOutput(buf.Bytes()))
}

// Singer gets the SDK's METRIC lines on stderr: a record_count counter per report holding the records since the
// previous report, a sync_duration timer at the end, and an http_request_duration timer per request.
func TestSingerProgressWritesMetricLines(t *testing.T) {
	var out, stderr bytes.Buffer
	s := emit.NewSinger(&out, nil, emit.SingerState{}, emit.Options{Now: fixedNow, Stderr: &stderr})
	require.NoError(t, s.Progress(emit.Progress{Stream: "events", Records: 500, Elapsed: 10 * time.Second}))
	require.NoError(t, s.Progress(emit.Progress{Stream: "events", Records: 1200, Elapsed: 25 * time.Second, Final: true}))
	require.NoError(t, s.Request(emit.RequestMetric{Endpoint: "/api/events", Status: 200, Duration: 250 * time.Millisecond, OK: true}))
	require.NoError(t, s.Request(emit.RequestMetric{Endpoint: "/api/events", Duration: time.Second}))
	assert.Empty(t, out.String(), "metrics never reach stdout, which targets read")
	assert.Equal(t, []string{
		`INFO METRIC: {"metric":"record_count","tags":{"stream":"events"},"type":"counter","value":500}`,
		`INFO METRIC: {"metric":"record_count","tags":{"stream":"events"},"type":"counter","value":700}`,
		`INFO METRIC: {"metric":"sync_duration","tags":{"status":"succeeded","stream":"events"},"type":"timer","value":25}`,
		`INFO METRIC: {"metric":"http_request_duration","tags":{"endpoint":"/api/events","http_status_code":200,"status":"succeeded"},"type":"timer","value":0.25}`,
		`INFO METRIC: {"metric":"http_request_duration","tags":{"endpoint":"/api/events","status":"failed"},"type":"timer","value":1}`,
	}, lines(stderr.String()))
}
