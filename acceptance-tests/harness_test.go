package acceptance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
)

// binPath is the connector built once for the whole package: these tests run the real binary, as Airbyte does.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "source-klaviyo-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "source-klaviyo")
	build := exec.Command("go", buildArgs("-o", binPath, "../cmd/source-klaviyo")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the connector:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// testKey is recognisable so the secret-leak checks can search every byte of output for it.
const testKey = "pk_TESTKEY_e2e_5f1c9a7d3b"

// run is one invocation of the binary.
type run struct {
	stdout, stderr []byte
	code           int
}

// startSandbox starts an in-process sandbox with the test key (all scopes) plus any extra keys.
func startSandbox(t *testing.T, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	if opts.APIKeys == nil {
		opts.APIKeys = map[string][]string{testKey: nil}
	}
	srv, err := sandbox.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// writeJSON writes v into a temp file and returns its path.
func writeJSON(t *testing.T, name string, v any) string {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		var err error
		b, err = json.Marshal(v)
		require.NoError(t, err)
	}
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func configFor(t *testing.T, srv *sandbox.Server, extra map[string]any) string {
	// The sandbox serves without rate limits by default; scaling our budgets keeps S-tier fan-outs (1 request a
	// second at Klaviyo's real limits) from dominating the test time.
	cfg := map[string]any{"api_key": testKey, "base_url": srv.URL(), "rate_limit_scale": 10}
	for k, v := range extra {
		cfg[k] = v
	}
	return writeJSON(t, "config.json", cfg)
}

// runBin runs the connector with args and returns its output; it never fails the test by itself.
func runBin(t *testing.T, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	r := run{stdout: out.Bytes(), stderr: errb.Bytes(), code: code}
	requireNoSecret(t, r)
	return r
}

// requireNoSecret fails if the API key appears anywhere the process wrote.
func requireNoSecret(t *testing.T, r run) {
	t.Helper()
	require.NotContains(t, string(r.stdout), testKey, "the API key leaked to stdout")
	require.NotContains(t, string(r.stderr), testKey, "the API key leaked to stderr")
}

// msg is the part of an Airbyte message the tests look at.
type msg struct {
	Type   string `json:"type"`
	Record *struct {
		Stream    string          `json:"stream"`
		Data      json.RawMessage `json:"data"`
		EmittedAt int64           `json:"emitted_at"`
	} `json:"record"`
	State *struct {
		Type   string `json:"type"`
		Stream struct {
			Descriptor struct {
				Name string `json:"name"`
			} `json:"stream_descriptor"`
			State json.RawMessage `json:"stream_state"`
		} `json:"stream"`
		SourceStats *struct {
			RecordCount float64 `json:"recordCount"`
		} `json:"sourceStats"`
	} `json:"state"`
	Trace *struct {
		Type  string `json:"type"`
		Error *struct {
			Message     string `json:"message"`
			FailureType string `json:"failure_type"`
			Stream      *struct {
				Name string `json:"name"`
			} `json:"stream_descriptor"`
		} `json:"error"`
		StreamStatus *struct {
			Descriptor struct {
				Name string `json:"name"`
			} `json:"stream_descriptor"`
			Status string `json:"status"`
		} `json:"stream_status"`
	} `json:"trace"`
	ConnectionStatus *struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"connectionStatus"`
	Catalog *struct {
		Streams []json.RawMessage `json:"streams"`
	} `json:"catalog"`
	Spec json.RawMessage `json:"spec"`
}

// output is a parsed Airbyte run: every line validated against the protocol.
type output struct {
	msgs    []msg
	records map[string][]map[string]any
	raw     map[string][]json.RawMessage
	states  map[string][]json.RawMessage
	status  map[string][]string
	errors  []string
}

var validatorOnce sync.Once
var validator *protocol.Validator

func parseAirbyte(t *testing.T, stdout []byte) output {
	t.Helper()
	validatorOnce.Do(func() { validator = protocol.NewAirbyteValidator(t) })
	o := output{records: map[string][]map[string]any{}, raw: map[string][]json.RawMessage{}, states: map[string][]json.RawMessage{}, status: map[string][]string{}}
	for i, line := range bytes.Split(bytes.TrimRight(stdout, "\n"), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		require.NoError(t, validator.ValidateLine(line), "line %d is not a valid AirbyteMessage: %.300s", i+1, line)
		var m msg
		require.NoError(t, json.Unmarshal(line, &m), "line %d", i+1)
		o.msgs = append(o.msgs, m)
		switch {
		case m.Record != nil:
			var data map[string]any
			require.NoError(t, json.Unmarshal(m.Record.Data, &data))
			o.records[m.Record.Stream] = append(o.records[m.Record.Stream], data)
			o.raw[m.Record.Stream] = append(o.raw[m.Record.Stream], m.Record.Data)
		case m.State != nil:
			require.Equal(t, "STREAM", m.State.Type)
			require.NotNil(t, m.State.SourceStats, "state without sourceStats")
			o.states[m.State.Stream.Descriptor.Name] = append(o.states[m.State.Stream.Descriptor.Name], m.State.Stream.State)
		case m.Trace != nil && m.Trace.StreamStatus != nil:
			n := m.Trace.StreamStatus.Descriptor.Name
			o.status[n] = append(o.status[n], m.Trace.StreamStatus.Status)
		case m.Trace != nil && m.Trace.Error != nil:
			o.errors = append(o.errors, m.Trace.Error.FailureType+": "+m.Trace.Error.Message)
		}
	}
	return o
}

// lastState is the final state of a stream.
func (o output) lastState(stream string) json.RawMessage {
	s := o.states[stream]
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

// stateFile builds an Airbyte state file (array of STREAM states) from the final states of a run.
func (o output) stateFile(t *testing.T) string {
	var arr []map[string]any
	names := make([]string, 0, len(o.states))
	for n := range o.states {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		arr = append(arr, map[string]any{"type": "STREAM", "stream": map[string]any{
			"stream_descriptor": map[string]any{"name": n}, "stream_state": o.lastState(n)}})
	}
	return writeJSON(t, "state.json", arr)
}

// configuredCatalog selects streams (all when names is empty) from the discovered catalog.
func configuredCatalog(t *testing.T, cfgPath string, incremental bool, names ...string) string {
	t.Helper()
	r := runBin(t, "discover", "--config", cfgPath)
	require.Equal(t, 0, r.code, "discover failed: %s", r.stdout)
	o := parseAirbyte(t, r.stdout)
	var cat []json.RawMessage
	for _, m := range o.msgs {
		if m.Catalog != nil {
			cat = m.Catalog.Streams
		}
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var streams []map[string]any
	for _, raw := range cat {
		var s struct {
			Name  string   `json:"name"`
			Modes []string `json:"supported_sync_modes"`
		}
		require.NoError(t, json.Unmarshal(raw, &s))
		if len(names) > 0 && !want[s.Name] {
			continue
		}
		mode := "full_refresh"
		if incremental && contains(s.Modes, "incremental") {
			mode = "incremental"
		}
		streams = append(streams, map[string]any{"stream": raw, "sync_mode": mode, "destination_sync_mode": "append"})
	}
	return writeJSON(t, "configured_catalog.json", map[string]any{"streams": streams})
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// schemaValidators compiles every stream schema once.
func schemaValidator(t *testing.T, stream string) *gojsonschema.Schema {
	t.Helper()
	raw, err := schemas.Get(stream)
	require.NoError(t, err)
	s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
	require.NoError(t, err)
	return s
}

// requireRecordsValid validates every record against its stream's schema, and parses every date-time value
// strictly (the schema check alone lets a bare date pass).
func requireRecordsValid(t *testing.T, o output) {
	t.Helper()
	requireDateTimesParse(t, o)
	for stream, recs := range o.raw {
		v := schemaValidator(t, stream)
		for _, rec := range recs {
			res, err := v.Validate(gojsonschema.NewBytesLoader(rec))
			require.NoError(t, err)
			if !res.Valid() {
				var errs []string
				for _, e := range res.Errors() {
					errs = append(errs, e.String())
				}
				require.Failf(t, "record does not match its schema", "stream %s: %s\nrecord: %.500s", stream, strings.Join(errs, "; "), rec)
			}
		}
	}
}

// requireStatuses checks the status sequence Airbyte's acceptance tests require of every configured stream.
func requireStatuses(t *testing.T, o output, streams []string, final string) {
	t.Helper()
	for _, s := range streams {
		st := o.status[s]
		require.GreaterOrEqual(t, len(st), 3, "stream %s statuses %v", s, st)
		require.Equal(t, "STARTED", st[0], "stream %s", s)
		require.Equal(t, final, st[len(st)-1], "stream %s statuses %v", s, st)
		for _, mid := range st[1 : len(st)-1] {
			require.Equal(t, "RUNNING", mid, "stream %s statuses %v", s, st)
		}
		require.NotEmpty(t, o.states[s], "stream %s got no state", s)
	}
}

func allStreamNames() []string {
	var out []string
	for _, s := range catalog.Streams() {
		out = append(out, s.Name)
	}
	return out
}

// buildArgs adds -race when SOURCE_KLAVIYO_RACE=1, so the end-to-end suite can run the binary under the race
// detector.
func buildArgs(args ...string) []string {
	out := []string{"build"}
	if os.Getenv("SOURCE_KLAVIYO_RACE") == "1" {
		out = append(out, "-race")
	}
	return append(out, args...)
}
