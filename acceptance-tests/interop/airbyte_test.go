package interop_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
)

// pyScript is the path of one of the Python scripts the tests hand to the venvs' interpreters.
func pyScript(name string) string {
	return filepath.Join(repoRoot(), "acceptance-tests", "interop", "py", name)
}

// airbyteDiscover runs `discover` and returns the CATALOG's streams.
func airbyteDiscover(t *testing.T, dir, cfg string) []protocol.CatalogStream {
	t.Helper()
	r := runCmd(t, dir, nil, nil, built.connector, "discover", "--config", cfg)
	require.Equal(t, 0, r.code, "discover failed: %s", failure(t, r))
	msgs, err := protocol.ParseAirbyteOutput(r.stdout)
	require.NoError(t, err)
	cat := msgs.Catalog()
	require.NotNil(t, cat, "discover printed no CATALOG message: %s", tail(string(r.stdout), 2000))
	return cat.Streams
}

// configuredCatalog selects every stream, incremental where the stream supports it, as the Airbyte platform would.
func configuredCatalog(t *testing.T, path string, discovered []protocol.CatalogStream) string {
	t.Helper()
	streams := make([]map[string]any, len(discovered))
	for i, s := range discovered {
		mode := "full_refresh"
		if slices.Contains(s.SupportedSyncModes, "incremental") {
			mode = "incremental"
		}
		streams[i] = map[string]any{"stream": s.Raw, "sync_mode": mode, "destination_sync_mode": "append"}
	}
	return writeJSON(t, path, map[string]any{"streams": streams})
}

// failure explains a failed Airbyte command: the TRACE ERROR messages it printed on stdout (where an Airbyte
// source reports errors), then the end of its stderr. Lines that are not Airbyte messages are passed over: a
// failed run may print anything, and this explanation must not fail in its turn.
func failure(t *testing.T, r result) string {
	t.Helper()
	var msgs []string
	for _, line := range strings.Split(string(r.stdout), "\n") {
		m, err := protocol.ParseAirbyteLine([]byte(line))
		if err == nil && m.Trace != nil && m.Trace.Error != nil {
			msgs = append(msgs, fmt.Sprintf("TRACE ERROR (%s): %s", m.Trace.Error.FailureType, m.Trace.Error.Message))
		}
	}
	return fmt.Sprintf("exit %d\n%s\n%s", r.code, strings.Join(msgs, "\n"), tail(string(r.stderr), 2000))
}

// recordCounts counts RECORD messages per stream in an Airbyte read's stdout.
func recordCounts(t *testing.T, stdout []byte) map[string]int {
	t.Helper()
	msgs, err := protocol.ParseAirbyteOutput(stdout)
	require.NoError(t, err)
	out := map[string]int{}
	for name, recs := range msgs.RecordsByStream() {
		out[name] = len(recs)
	}
	return out
}

// stateFile writes a --state file from a read's output: the last state of each stream, as the platform stores
// them. The connector writes only per-stream states, each naming its stream.
func stateFile(t *testing.T, path string, stdout []byte) string {
	t.Helper()
	msgs, err := protocol.ParseAirbyteOutput(stdout)
	require.NoError(t, err)
	for _, s := range msgs.States() {
		require.Equal(t, "STREAM", s.Type, "a state that is not per-stream: %s", s.Raw)
		require.NotEmpty(t, s.Stream, "a STATE message without a stream descriptor: %s", s.Raw)
	}
	b, err := msgs.StateFile()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// TestEveryAirbyteMessageParsesWithProtocolModels runs spec, check, discover, a full read and an incremental
// read from that read's state, and parses every line of stdout with airbyte-protocol-models' AirbyteMessage
// (strictly: the payload that the type names must be there, and no field the protocol lacks).
func TestEveryAirbyteMessageParsesWithProtocolModels(t *testing.T) {
	t.Parallel()
	python := tool(t, "protocol-models", "python")
	dir := t.TempDir()
	sb := startSandbox(t)
	cfg := connectorConfig(t, dir, sb)
	cat := configuredCatalog(t, filepath.Join(dir, "configured_catalog.json"), airbyteDiscover(t, dir, cfg))

	var files []string
	lines := 0
	save := func(name string, r result) {
		p := filepath.Join(dir, name+".jsonl")
		require.NoError(t, os.WriteFile(p, r.stdout, 0o600))
		files = append(files, p)
		lines += bytes.Count(r.stdout, []byte("\n"))
	}
	spec := runCmd(t, dir, nil, nil, built.connector, "spec")
	require.Equal(t, 0, spec.code, "spec: %s", failure(t, spec))
	save("spec", spec)
	check := runCmd(t, dir, nil, nil, built.connector, "check", "--config", cfg)
	require.Equal(t, 0, check.code, "check: %s", failure(t, check))
	assert.Contains(t, string(check.stdout), `"status":"SUCCEEDED"`, "check against the sandbox must succeed")
	save("check", check)
	disc := runCmd(t, dir, nil, nil, built.connector, "discover", "--config", cfg)
	require.Equal(t, 0, disc.code)
	save("discover", disc)
	read := runCmd(t, dir, nil, nil, built.connector, "read", "--config", cfg, "--catalog", cat)
	save("read", read)
	assert.Equal(t, 0, read.code, "a full read must succeed: %s", failure(t, read))
	state := stateFile(t, filepath.Join(dir, "state.json"), read.stdout)
	sb.advance(t, 24*time.Hour)
	incr := runCmd(t, dir, nil, nil, built.connector, "read", "--config", cfg, "--catalog", cat, "--state", state)
	save("read-incremental", incr)
	assert.Equal(t, 0, incr.code, "an incremental read must succeed: %s", failure(t, incr))

	r := runCmd(t, dir, nil, nil, python, append([]string{pyScript("check_messages.py")}, files...)...)
	var summary struct {
		Lines      int            `json:"lines"`
		Types      map[string]int `json:"types"`
		Errors     []string       `json:"errors"`
		ErrorCount int            `json:"error_count"`
	}
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(r.stdout), &summary), "check_messages.py: %s", tail(r.combined(), 3000))
	assert.Equal(t, 0, r.code, "messages airbyte-protocol-models rejects (%d):\n%s", summary.ErrorCount, strings.Join(summary.Errors, "\n"))
	assert.Empty(t, summary.Errors)
	t.Logf("airbyte-protocol-models parsed %d lines: %v", summary.Lines, summary.Types)
	assert.Equal(t, lines, summary.Lines, "every line printed was parsed")
	assert.Equal(t, 1, summary.Types["SPEC"])
	assert.Equal(t, 1, summary.Types["CONNECTION_STATUS"])
	assert.Equal(t, 1, summary.Types["CATALOG"])
	assert.Greater(t, summary.Types["RECORD"], 0)
	assert.Greater(t, summary.Types["STATE"], 0)
	assert.Greater(t, summary.Types["TRACE"], 0, "stream statuses are TRACE messages")
}

// pyairbyteResult is the RESULT line pyairbyte_read.py prints.
type pyairbyteResult struct {
	Streams          []string       `json:"streams"`
	Counts           map[string]int `json:"counts"`
	Cache            string         `json:"cache"`
	DBPath           string         `json:"db_path"`
	ProcessedRecords int            `json:"processed_records"`
}

// TestPyAirbyteLocalExecutable runs the connector through PyAirbyte as a local executable: check, the stream
// list, and a read of every stream into the default DuckDB cache. PyAirbyte drops any line it cannot parse without
// a word, so its counts are compared both with the sandbox's and with a direct read of the same binary.
func TestPyAirbyteLocalExecutable(t *testing.T) {
	t.Parallel()
	python := tool(t, "pyairbyte", "python")
	dir := t.TempDir()
	sb := startSandbox(t)
	cfg := connectorConfig(t, dir, sb)
	discovered := airbyteDiscover(t, dir, cfg)
	names := make([]string, len(discovered))
	for i, s := range discovered {
		names[i] = s.Name
	}
	sort.Strings(names)

	direct := runCmd(t, dir, nil, nil, built.connector, "read", "--config", cfg, "--catalog",
		configuredCatalog(t, filepath.Join(dir, "configured_catalog.json"), discovered))
	require.Equal(t, 0, direct.code, "direct read: %s", failure(t, direct))
	sent := recordCounts(t, direct.stdout)

	r := runCmd(t, dir, nil, nil, python, pyScript("pyairbyte_read.py"), cfg, built.connector)
	require.Equal(t, 0, r.code, "PyAirbyte failed:\n%s", tail(r.combined(), 6000))
	var res pyairbyteResult
	for _, line := range strings.Split(string(r.stdout), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), &res))
		}
	}
	require.NotNil(t, res.Counts, "pyairbyte_read.py printed no RESULT line:\n%s", tail(r.combined(), 3000))

	t.Logf("PyAirbyte: %d streams available, %d records read into %s (%s)", len(res.Streams), res.ProcessedRecords, res.Cache, res.DBPath)
	got := append([]string(nil), res.Streams...)
	sort.Strings(got)
	assert.Equal(t, names, got, "get_available_streams() lists every discovered stream")
	assert.Equal(t, "DuckDBCache", res.Cache, "read() with no cache uses the default DuckDB cache")
	assert.True(t, strings.HasPrefix(res.DBPath, filepath.Join(dir, ".cache")), "the default cache lives under ./.cache, got %s", res.DBPath)

	for _, name := range names {
		assert.Equal(t, sent[name], res.Counts[name], "stream %s: rows in PyAirbyte's cache vs records the binary prints", name)
	}
	for stream, want := range sb.expectedCounts(t) {
		assert.Equal(t, want, res.Counts[stream], "stream %s: rows in PyAirbyte's cache vs the sandbox's count", stream)
	}
	total := 0
	for _, n := range sent {
		total += n
	}
	assert.Equal(t, total, res.ProcessedRecords, "records PyAirbyte processed")
}
