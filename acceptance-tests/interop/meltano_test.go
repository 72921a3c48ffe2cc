package interop_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// meltanoStreams are the streams the Meltano test selects: incremental streams whose bookmark is one cursor value,
// so "the second run brings only what is newer than the first run's bookmark" is checkable record by record.
var meltanoStreams = []string{"profiles", "events", "lists", "segments", "flows", "templates"}

// meltanoProject builds a Meltano project in a temp directory from the repository's meltano.yml. The tap-klaviyo
// definition is used exactly as users copy it (its executable, bin/source-klaviyo, is placed under the project
// root where that relative path points); only the loaders are pointed at setup.sh's venvs instead of being
// installed from pip_url, and the dev environment gets the test's connection settings.
func meltanoProject(t *testing.T, sb *sandbox) string {
	t.Helper()
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "meltano.yml"))
	require.NoError(t, err, "the repository's meltano.yml")
	var project map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &project), "meltano.yml is not YAML")

	plugins, _ := project["plugins"].(map[string]any)
	require.NotNil(t, plugins, "meltano.yml has no plugins")
	extractors, _ := plugins["extractors"].([]any)
	require.Len(t, extractors, 1, "meltano.yml should define exactly the tap-klaviyo extractor")
	tap, _ := extractors[0].(map[string]any)
	require.Equal(t, "tap-klaviyo", tap["name"])
	require.Equal(t, "bin/source-klaviyo", tap["executable"], "the executable must work from the repo root after make build")
	require.ElementsMatch(t, []any{"about", "catalog", "discover", "state", "stream-maps", "schema-flattening", "activate-version"}, tap["capabilities"])
	requireSensitiveAPIKey(t, tap)
	requireAboutAgrees(t, tap)

	plugins["loaders"] = []any{map[string]any{
		"name":       "target-jsonl",
		"namespace":  "target_jsonl",
		"executable": tool(t, "target-jsonl", "target-jsonl"),
		"settings":   []any{map[string]any{"name": "destination_path"}, map[string]any{"name": "do_timestamp_file", "kind": "boolean"}},
	}}
	// Per-environment config leaves the plugin definition untouched. rate_limit_scale is a YAML number here: set
	// through an environment variable, Meltano 4.4 turns a decimal setting into a Decimal it then cannot serialise.
	project["environments"] = []any{map[string]any{
		"name": "dev",
		"config": map[string]any{"plugins": map[string]any{"extractors": []any{map[string]any{
			"name":   "tap-klaviyo",
			"config": map[string]any{"base_url": sb.url, "rate_limit_scale": 10},
		}}}},
	}}
	out, err := yaml.Marshal(project)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "meltano.yml"), out, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "bin"), 0o755))
	require.NoError(t, os.Symlink(built.connector, filepath.Join(dir, "bin", "source-klaviyo")))
	return dir
}

// requireSensitiveAPIKey checks that Meltano will treat the API key as a secret (masked in `meltano config`).
func requireSensitiveAPIKey(t *testing.T, tap map[string]any) {
	t.Helper()
	settings, _ := tap["settings"].([]any)
	for _, s := range settings {
		m, _ := s.(map[string]any)
		if m["name"] == "api_key" {
			require.Equal(t, true, m["sensitive"], "api_key must be sensitive: true")
			return
		}
	}
	t.Fatal("meltano.yml declares no api_key setting")
}

// requireAboutAgrees checks meltano.yml against what the binary says of itself with --about: every capability
// Meltano is told of is one the tap claims, and every setting Meltano offers is one the tap accepts.
func requireAboutAgrees(t *testing.T, tap map[string]any) {
	t.Helper()
	r := runCmd(t, t.TempDir(), nil, nil, built.connector, "--about", "--format", "json")
	require.Equal(t, 0, r.code, "--about: %s", r.stderr)
	var about struct {
		Capabilities []string `json:"capabilities"`
		Settings     struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"settings"`
	}
	require.NoError(t, json.Unmarshal(r.stdout, &about), "--about --format json is not JSON: %s", r.stdout)
	caps, _ := tap["capabilities"].([]any)
	for _, c := range caps {
		assert.Contains(t, about.Capabilities, c, "meltano.yml declares capability %v that --about does not", c)
	}
	settings, _ := tap["settings"].([]any)
	for _, s := range settings {
		name, _ := s.(map[string]any)["name"].(string)
		assert.Contains(t, about.Settings.Properties, name, "meltano.yml offers setting %q the tap does not accept", name)
	}
	for name := range about.Settings.Properties {
		found := false
		for _, s := range settings {
			found = found || s.(map[string]any)["name"] == name
		}
		assert.True(t, found, "the tap accepts setting %q that meltano.yml does not declare", name)
	}
}

// meltanoRun runs `meltano run tap-klaviyo target-jsonl` writing JSONL files into out, and returns the records
// per stream and Meltano's own output (which carries the tap's log lines).
func meltanoRun(t *testing.T, meltano, project, out string) (map[string][]map[string]any, string) {
	t.Helper()
	sel, err := json.Marshal(selectPatterns())
	require.NoError(t, err)
	env := []string{
		"TAP_KLAVIYO_API_KEY=" + testKey,
		"TAP_KLAVIYO__SELECT=" + string(sel),
		"TARGET_JSONL_DESTINATION_PATH=" + out,
		"TARGET_JSONL_DO_TIMESTAMP_FILE=false",
	}
	r := runCmd(t, project, env, nil, meltano, "run", "tap-klaviyo", "target-jsonl")
	require.Equal(t, 0, r.code, "meltano run failed:\n%s", tail(r.combined(), 6000))

	records := map[string][]map[string]any{}
	files, err := filepath.Glob(filepath.Join(out, "*.jsonl"))
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		records[strings.TrimSuffix(filepath.Base(f), ".jsonl")] = jsonLines(t, b)
	}
	return records, string(r.combined())
}

// requireMetrics checks that Meltano's output of a run shows the tap's progress: the Singer SDK's record_count
// METRIC lines of every selected stream and http_request_duration timers.
func requireMetrics(t *testing.T, output string) {
	t.Helper()
	require.Contains(t, output, "http_request_duration", "Meltano's output shows request metrics")
	for _, s := range meltanoStreams {
		require.Regexp(t, `METRIC: \{.*record_count.*\b`+s+`\b`, output, "Meltano's output shows the record_count of %s", s)
	}
}

// selectPatterns selects the test's streams and deselects one property, which must then be missing from records.
func selectPatterns() []string {
	p := make([]string, 0, len(meltanoStreams)+1)
	for _, s := range meltanoStreams {
		p = append(p, s+".*")
	}
	return append(p, "!profiles.location")
}

// bookmarks reads the cursor values in the Singer state Meltano stored for the pipeline: stream -> the value
// bookmarked for the stream's replication key (the tap may keep more in a bookmark; only the cursor matters here).
func bookmarks(t *testing.T, meltano, project string, cursors map[string]string) map[string]time.Time {
	t.Helper()
	r := runCmd(t, project, nil, nil, meltano, "state", "get", "dev:tap-klaviyo-to-target-jsonl")
	require.Equal(t, 0, r.code, "meltano state get: %s", tail(r.combined(), 3000))
	var st struct {
		SingerState struct {
			Bookmarks map[string]map[string]any `json:"bookmarks"`
		} `json:"singer_state"`
	}
	require.NoError(t, json.Unmarshal(r.stdout, &st), "meltano state get printed: %s", r.stdout)
	out := map[string]time.Time{}
	for _, s := range meltanoStreams {
		v, _ := st.SingerState.Bookmarks[s][cursors[s]].(string)
		at, err := time.Parse(time.RFC3339, v)
		require.NoError(t, err, "stream %s: the stored state %v holds no %s timestamp", s, st.SingerState.Bookmarks[s], cursors[s])
		out[s] = at
	}
	return out
}

// TestMeltanoRunIncremental runs the repository's extractor definition with `meltano run` into target-jsonl twice,
// moving the sandbox clock between runs: the second run must start from the state Meltano stored and bring only
// records at or after the first run's bookmarks.
func TestMeltanoRunIncremental(t *testing.T) {
	t.Parallel()
	meltano := tool(t, "meltano", "meltano")
	sb := startSandbox(t)
	project := meltanoProject(t, sb)
	want := sb.expectedCounts(t)
	_, cat := discoverSinger(t, t.TempDir(), connectorConfig(t, t.TempDir(), sb))
	cursors := map[string]string{}
	for _, s := range cat.Streams {
		cursors[s.TapStreamID] = s.ReplicationKey
	}
	for _, s := range meltanoStreams {
		require.NotEmpty(t, cursors[s], "stream %s has no replication_key in the catalog", s)
	}

	first, output := meltanoRun(t, meltano, project, filepath.Join(project, "out-1"))
	requireMetrics(t, output)
	firstTotal := 0
	for _, s := range meltanoStreams {
		assert.Len(t, first[s], want[s], "first run, stream %s vs the sandbox's count", s)
		firstTotal += len(first[s])
	}
	require.Len(t, first, len(meltanoStreams), "the first run wrote streams %v; only %v were selected", keysOf(first), meltanoStreams)
	for _, rec := range first["profiles"] {
		require.NotContains(t, rec, "location", "profiles.location was deselected but is in a record")
		require.Contains(t, rec, "id", "the key property is always sent")
	}
	marks := bookmarks(t, meltano, project, cursors)

	sb.advance(t, 72*time.Hour)
	second, _ := meltanoRun(t, meltano, project, filepath.Join(project, "out-2"))
	secondTotal := 0
	for _, s := range keysOf(second) {
		require.Contains(t, meltanoStreams, s, "the second run wrote an unselected stream")
		cursor := cursors[s]
		// A record with the same id and cursor value as one the first run delivered is neither new nor updated.
		seen := map[string]bool{}
		for _, rec := range first[s] {
			seen[fmt.Sprint(rec["id"], "@", rec[cursor])] = true
		}
		for _, rec := range second[s] {
			v, _ := rec[cursor].(string)
			at, err := time.Parse(time.RFC3339, v)
			require.NoError(t, err, "%s record %v has no %s timestamp", s, rec["id"], cursor)
			assert.False(t, at.Before(marks[s]), "%s record %v has %s %s, before the first run's bookmark %s",
				s, rec["id"], cursor, v, marks[s].Format(time.RFC3339))
			assert.False(t, seen[fmt.Sprint(rec["id"], "@", v)], "%s record %v (%s %s) was already delivered by the first run", s, rec["id"], cursor, v)
		}
		secondTotal += len(second[s])
	}
	t.Logf("first run %d records, second run %d", firstTotal, secondTotal)
	assert.Greater(t, secondTotal, 0, "the clock moved 72h: the second run must bring the new and updated records")
	assert.Less(t, secondTotal, firstTotal, "the second run must start from the stored state, not from scratch")

	later := bookmarks(t, meltano, project, cursors)
	for _, s := range meltanoStreams {
		assert.False(t, later[s].Before(marks[s]), "stream %s: the state moved backwards from %s to %s", s, marks[s], later[s])
	}
}

// keysOf lists a map's keys in order, for stable messages.
func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestMeltanoRunReportStream runs the extractor with `meltano run` selecting a report stream (Klaviyo's flow series
// report, read through the Reporting API's POST within its daily quota) into target-jsonl: its rows arrive with
// their keys, and Meltano stores the stream's state.
func TestMeltanoRunReportStream(t *testing.T) {
	t.Parallel()
	meltano := tool(t, "meltano", "meltano")
	sb := startSandbox(t)
	project := meltanoProject(t, sb)
	out := filepath.Join(project, "out-reports")
	env := []string{
		"TAP_KLAVIYO_API_KEY=" + testKey,
		`TAP_KLAVIYO__SELECT=["flow_series_reports.*"]`,
		"TARGET_JSONL_DESTINATION_PATH=" + out,
		"TARGET_JSONL_DO_TIMESTAMP_FILE=false",
	}
	r := runCmd(t, project, env, nil, meltano, "run", "tap-klaviyo", "target-jsonl")
	require.Equal(t, 0, r.code, "meltano run failed:\n%s", tail(r.combined(), 6000))
	b, err := os.ReadFile(filepath.Join(out, "flow_series_reports.jsonl"))
	require.NoError(t, err, "target-jsonl wrote no flow_series_reports file")
	rows := jsonLines(t, b)
	require.NotEmpty(t, rows)
	for _, row := range rows {
		for _, k := range []string{"flow_id", "flow_message_id", "date"} {
			require.Contains(t, row, k, "a flow series row carries its key %s", k)
		}
	}
	st := runCmd(t, project, nil, nil, meltano, "state", "get", "dev:tap-klaviyo-to-target-jsonl")
	require.Equal(t, 0, st.code, "meltano state get: %s", tail(st.combined(), 3000))
	require.Contains(t, string(st.stdout), "flow_series_reports", "Meltano stored the report stream's state")
	require.Contains(t, string(st.stdout), "final_to")
}
