package acceptance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/sandboxtest"
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
	return sandboxtest.Start(t, opts)
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

var validatorOnce sync.Once
var validator *protocol.Validator

// parseAirbyte validates every line of an Airbyte run's stdout against the protocol and decodes it with the
// protocol package. On top of the protocol it holds the connector to what it promises: every state is a STREAM
// state that carries its record count.
func parseAirbyte(t *testing.T, stdout []byte) protocol.Messages {
	t.Helper()
	validatorOnce.Do(func() { validator = protocol.NewAirbyteValidator(t) })
	require.NoError(t, validator.ValidateOutput(stdout), "the output is not valid Airbyte protocol")
	msgs, err := protocol.ParseAirbyteOutput(stdout)
	require.NoError(t, err)
	for _, m := range msgs {
		if m.State != nil {
			require.Equal(t, "STREAM", m.State.Type, "line %d", m.Line)
			require.NotNil(t, m.State.RecordCount, "line %d: state without sourceStats", m.Line)
		}
	}
	return msgs
}

// errorLines is every ERROR trace of a run as "failure_type: message", one a line: what the user is told, for
// assertions that look for a sentence whatever error carries it.
func errorLines(o protocol.Messages) string {
	var b strings.Builder
	for _, e := range o.Errors() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// stateFile writes what the platform would pass to the next read as --state: the last state of every stream.
func stateFile(t *testing.T, o protocol.Messages) string {
	t.Helper()
	b, err := o.StateFile()
	require.NoError(t, err)
	return writeJSON(t, "state.json", b)
}

// configuredCatalog selects streams (all when names is empty) from the discovered catalog.
func configuredCatalog(t *testing.T, cfgPath string, incremental bool, names ...string) string {
	t.Helper()
	r := runBin(t, "discover", "--config", cfgPath)
	require.Equal(t, 0, r.code, "discover failed: %s", r.stdout)
	cat := parseAirbyte(t, r.stdout).Catalog()
	require.NotNil(t, cat, "discover printed no CATALOG:\n%s", r.stdout)
	if len(names) == 0 {
		// Every stream of the table. The report streams (POSTs within a daily quota, 2 a minute) have end-to-end
		// tests of their own (source/reports_e2e_test.go).
		names = allStreamNames()
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var streams []map[string]any
	for _, s := range cat.Streams {
		if !want[s.Name] {
			continue
		}
		mode := "full_refresh"
		if incremental && contains(s.SupportedSyncModes, "incremental") {
			mode = "incremental"
		}
		streams = append(streams, map[string]any{"stream": s.Raw, "sync_mode": mode, "destination_sync_mode": "append"})
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
	s, err := schemas.Compile(stream)
	require.NoError(t, err)
	return s
}

// requireRecordsValid validates every record against its stream's schema, and parses every date-time value
// strictly (the schema check alone lets a bare date pass).
func requireRecordsValid(t *testing.T, o protocol.Messages) {
	t.Helper()
	requireDateTimesParse(t, o)
	for stream, recs := range o.RecordsByStream() {
		v := schemaValidator(t, stream)
		for _, rec := range recs {
			res, err := v.Validate(gojsonschema.NewBytesLoader(rec.RawData))
			require.NoError(t, err)
			if !res.Valid() {
				var errs []string
				for _, e := range res.Errors() {
					errs = append(errs, e.String())
				}
				require.Failf(t, "record does not match its schema", "stream %s: %s\nrecord: %.500s", stream, strings.Join(errs, "; "), rec.RawData)
			}
		}
	}
}

// requireStatuses checks the status sequence Airbyte's acceptance tests require of every configured stream.
func requireStatuses(t *testing.T, o protocol.Messages, streams []string, final string) {
	t.Helper()
	for _, s := range streams {
		st := o.StreamStatuses(s)
		require.GreaterOrEqual(t, len(st), 3, "stream %s statuses %v", s, st)
		require.Equal(t, "STARTED", st[0], "stream %s", s)
		require.Equal(t, final, st[len(st)-1], "stream %s statuses %v", s, st)
		for _, mid := range st[1 : len(st)-1] {
			require.Equal(t, "RUNNING", mid, "stream %s statuses %v", s, st)
		}
		require.NotEmpty(t, o.StatesOf(s), "stream %s got no state", s)
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
