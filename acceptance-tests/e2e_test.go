package acceptance_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./acceptance-tests -run %s -update", t.Name())
	require.Equal(t, string(want), string(got), "output differs from %s; if intended, run with -update", path)
}

// indented pretty-prints a message's payload, as printed, for a readable golden file.
func indented(t *testing.T, payload json.RawMessage) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, payload, "", "  "))
	buf.WriteByte('\n')
	return buf.Bytes()
}

func TestSpecGolden(t *testing.T) {
	r := runBin(t, "spec")
	require.Equal(t, 0, r.code, "%s", r.stderr)
	o := parseAirbyte(t, r.stdout)
	require.Len(t, o, 1, "expected exactly one message, got:\n%s", r.stdout)
	require.NotNil(t, o[0].Spec, "%s", r.stdout)
	golden(t, "spec.golden.json", indented(t, o[0].Spec.Raw))
	assert.Contains(t, string(r.stdout), source.Version)
}

func TestDiscoverGoldenListsEveryStream(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{})
	r := runBin(t, "discover", "--config", configFor(t, srv, nil))
	require.Equal(t, 0, r.code, "%s", r.stdout)
	o := parseAirbyte(t, r.stdout)
	require.Len(t, o, 1, "expected exactly one message, got:\n%s", r.stdout)
	require.NotNil(t, o[0].Catalog, "%s", r.stdout)
	var names []string
	for _, s := range o[0].Catalog.Streams {
		names = append(names, s.Name)
	}
	// The table's streams, then the report streams that exist with only an api_key.
	reports := []string{"campaign_values_reports", "flow_values_reports", "flow_series_reports", "form_values_reports",
		"form_series_reports", "segment_values_reports", "segment_series_reports", "metric_aggregates"}
	require.Equal(t, append(allStreamNames(), reports...), names)
	golden(t, "discover.golden.json", indented(t, o[0].Catalog.Raw))
}

func TestVersionFlag(t *testing.T) {
	r := runBin(t, "--version")
	require.Equal(t, 0, r.code)
	require.Equal(t, source.Version, strings.TrimSpace(string(r.stdout)))
}

func TestCheck(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{APIKeys: map[string][]string{
		testKey:          nil,
		"pk_partial_key": {"accounts:read", "profiles:read", "events:read", "metrics:read"},
		"pk_no_scopes":   {},
	}})
	cases := []struct {
		name, key, status string
		contains          []string
	}{
		{"all scopes", testKey, "SUCCEEDED", []string{"all"}},
		{"wrong key", "pk_wrong", "FAILED", []string{"refused the API key"}},
		{"some scopes", "pk_partial_key", "SUCCEEDED", []string{"flows (needs flows:read)", "lists (needs lists:read)"}},
		{"no scopes", "pk_no_scopes", "FAILED", []string{"none of the Klaviyo streams"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeJSON(t, "config.json", map[string]any{"api_key": tc.key, "base_url": srv.URL()})
			r := runBin(t, "check", "--config", cfg)
			require.Equal(t, 0, r.code, "%s", r.stdout)
			o := parseAirbyte(t, r.stdout)
			require.Len(t, o, 1, "check prints exactly one CONNECTION_STATUS")
			cs := o[0].ConnectionStatus
			require.NotNil(t, cs)
			require.Equal(t, tc.status, cs.Status, cs.Message)
			for _, c := range tc.contains {
				require.Contains(t, cs.Message, c)
			}
			require.NotContains(t, string(r.stdout), tc.key)
		})
	}
}

// TestFullRefreshEveryStreamMatchesSandbox reads every stream in full refresh and compares each row, by primary
// key and value, with what the sandbox holds.
func TestFullRefreshEveryStreamMatchesSandbox(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 11})
	// Predictive analytics on, so every property of every schema can be checked for a value.
	cfg := configFor(t, srv, map[string]any{"profile_predictive_analytics": true})
	r := runBin(t, "read", "--config", cfg, "--catalog", configuredCatalog(t, cfg, false))
	require.Equal(t, 0, r.code, "read failed:\n%s", tail(r.stdout))
	o := parseAirbyte(t, r.stdout)
	require.Empty(t, o.Errors())
	requireRecordsValid(t, o)
	requireStatuses(t, o, allStreamNames(), "COMPLETE")
	for _, s := range catalog.Streams() {
		t.Run(s.Name, func(t *testing.T) {
			want := expectedRows(t, srv, s, "predictive_analytics")
			requireSameRows(t, s, want, o.Rows(s.Name))
			requireNoDuplicates(t, s, o.Rows(s.Name))
		})
	}
	requireStateCounts(t, o)
	requireEveryPropertyFilled(t, o)
}

// requireEveryPropertyFilled checks that each top-level property of every stream's schema has a non-null value
// in some record: a schema property nothing fills is either dead or a field the connector drops.
func requireEveryPropertyFilled(t *testing.T, o protocol.Messages) {
	t.Helper()
	for _, s := range catalog.Streams() {
		for prop := range schemaProps(t, s.Name) {
			filled := false
			for _, rec := range o.Rows(s.Name) {
				if v, ok := rec[prop]; ok && v != nil {
					filled = true
					break
				}
			}
			assert.True(t, filled, "stream %s: no record fills property %s", s.Name, prop)
		}
	}
}

// requireStateCounts checks that each state's recordCount equals the records of its stream since the last one,
// and that no state repeats the previous one of its stream with records in between (Airbyte fails such syncs).
func requireStateCounts(t *testing.T, o protocol.Messages, uncommitted ...string) {
	t.Helper()
	since := map[string]int{}
	last := map[string]string{}
	for _, m := range o {
		switch {
		case m.Record != nil:
			since[m.Record.Stream]++
		case m.State != nil:
			n := m.State.Stream
			require.NotNil(t, m.State.RecordCount, "stream %s: state without sourceStats", n)
			require.Equal(t, float64(since[n]), *m.State.RecordCount, "stream %s recordCount", n)
			if prev, ok := last[n]; ok && since[n] > 0 {
				require.NotEqual(t, prev, string(m.State.StreamState), "stream %s repeats its state after %d records", n, since[n])
			}
			last[n] = string(m.State.StreamState)
			since[n] = 0
		}
	}
	for n, c := range since {
		if contains(uncommitted, n) {
			continue
		}
		require.Zero(t, c, "stream %s has %d records after its last state", n, c)
	}
}

func requireNoDuplicates(t *testing.T, s catalog.Stream, rows []map[string]any) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rows {
		k := pkOf(s, r)
		require.False(t, seen[k], "stream %s: duplicate row %s", s.Name, k)
		seen[k] = true
	}
}

func incrementalStreams() []catalog.Stream {
	var out []catalog.Stream
	for _, s := range catalog.Streams() {
		if s.Cursor != nil {
			out = append(out, s)
		}
	}
	return out
}

func names(ss []catalog.Stream) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// cursorOf reads a row's cursor value as a time.
func cursorOf(t *testing.T, s catalog.Stream, row map[string]any) time.Time {
	v, _ := row[s.Cursor.Field].(string)
	ts, err := time.Parse(time.RFC3339, v)
	require.NoError(t, err, "stream %s cursor %q", s.Name, v)
	return ts
}

// TestIncrementalSecondReadBringsOnlyNewAndUpdated syncs every incremental stream, advances the sandbox clock
// (new records appear, some are updated) and syncs again from the final state: the second read brings nothing
// older than the state, and the two reads merged by primary key equal the sandbox's data.
func TestIncrementalSecondReadBringsOnlyNewAndUpdated(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 5})
	cfg := configFor(t, srv, nil)
	inc := incrementalStreams()
	cat := configuredCatalog(t, cfg, true, names(inc)...)
	first := runBin(t, "read", "--config", cfg, "--catalog", cat)
	require.Equal(t, 0, first.code, "%s", tail(first.stdout))
	o1 := parseAirbyte(t, first.stdout)
	requireStatuses(t, o1, names(inc), "COMPLETE")

	srv.Advance(72 * time.Hour)
	second := runBin(t, "read", "--config", cfg, "--catalog", cat, "--state", stateFile(t, o1))
	require.Equal(t, 0, second.code, "%s", tail(second.stdout))
	o2 := parseAirbyte(t, second.stdout)
	requireRecordsValid(t, o2)
	requireStateCounts(t, o1)
	requireStateCounts(t, o2)
	requireStatuses(t, o2, names(inc), "COMPLETE")

	total1, total2 := 0, 0
	for _, s := range inc {
		t.Run(s.Name, func(t *testing.T) {
			total1 += len(o1.Rows(s.Name))
			total2 += len(o2.Rows(s.Name))
			if s.Kind == catalog.Collection {
				var st map[string]any
				require.NoError(t, json.Unmarshal(o1.LastStreamState(s.Name), &st))
				if from, ok := st[s.Cursor.Field].(string); ok {
					fromT, err := time.Parse(time.RFC3339, from)
					require.NoError(t, err)
					for _, row := range o2.Rows(s.Name) {
						require.False(t, cursorOf(t, s, row).Before(fromT), "stream %s re-read a row older than its state %s", s.Name, from)
					}
				}
			}
			merged := map[string]map[string]any{}
			for _, rows := range [][]map[string]any{o1.Rows(s.Name), o2.Rows(s.Name)} {
				for _, row := range rows {
					merged[pkOf(s, row)] = row
				}
			}
			var got []map[string]any
			for _, row := range merged {
				got = append(got, row)
			}
			want := expectedRows(t, srv, s)
			if s.Cursor.Upper != "" {
				// The sync reads up to its start; records dated later (future-dated events) come in a later sync.
				want = beforeNow(t, s, want)
			}
			requireSameRows(t, s, want, got)
		})
	}
	require.Less(t, total2, total1, "the second read should bring fewer rows than the first")
	require.Positive(t, total2, "advancing the clock should bring new rows")
}

func beforeNow(t *testing.T, s catalog.Stream, rows []map[string]any) []map[string]any {
	now := time.Now()
	var out []map[string]any
	for _, r := range rows {
		if cursorOf(t, s, r).Before(now) {
			out = append(out, r)
		}
	}
	return out
}

// TestFutureStateReadsNothing gives every incremental stream a state far in the future.
func TestFutureStateReadsNothing(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 3})
	cfg := configFor(t, srv, nil)
	inc := incrementalStreams()
	var arr []map[string]any
	for _, s := range inc {
		st := map[string]any{s.Cursor.Field: "2999-01-01T00:00:00Z"}
		if s.Kind == catalog.PerParent {
			parents := map[string]any{}
			for _, id := range parentIDs(t, srv, s.Parent) {
				parents[id] = map[string]any{s.Cursor.Field: "2999-01-01T00:00:00Z"}
			}
			st = map[string]any{"parents": parents}
		}
		arr = append(arr, map[string]any{"type": "STREAM", "stream": map[string]any{
			"stream_descriptor": map[string]any{"name": s.Name}, "stream_state": st}})
	}
	r := runBin(t, "read", "--config", cfg, "--catalog", configuredCatalog(t, cfg, true, names(inc)...), "--state", writeJSON(t, "state.json", arr))
	require.Equal(t, 0, r.code, "%s", tail(r.stdout))
	o := parseAirbyte(t, r.stdout)
	for _, s := range inc {
		require.Empty(t, o.Rows(s.Name), "stream %s read records despite a future state", s.Name)
		require.NotEmpty(t, o.StatesOf(s.Name), "stream %s emitted no state", s.Name)
	}
	requireStatuses(t, o, names(inc), "COMPLETE")
}

// TestReadWithoutAScopeFailsOnlyThatStream: a key without flows:read fails the flow streams clearly while the
// others complete, and the exit code says the sync was not whole.
func TestReadWithoutAScopeFailsOnlyThatStream(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{APIKeys: map[string][]string{testKey: {"metrics:read", "flows:read"}}})
	cfg := configFor(t, srv, nil)
	cat := configuredCatalog(t, cfg, false, "metrics", "flows", "lists")
	r := runBin(t, "read", "--config", cfg, "--catalog", cat)
	require.Equal(t, 1, r.code)
	o := parseAirbyte(t, r.stdout)
	requireStatuses(t, o, []string{"metrics", "flows"}, "COMPLETE")
	st := o.StreamStatuses("lists")
	require.Equal(t, "INCOMPLETE", st[len(st)-1])
	joined := errorLines(o)
	require.Contains(t, joined, "config_error: Stream lists did not finish")
	require.Contains(t, joined, "lists:read")
	require.NotEmpty(t, o.Rows("metrics"))
}

func tail(b []byte) string {
	s := string(b)
	if len(s) > 3000 {
		s = "..." + s[len(s)-3000:]
	}
	return s
}

// TestEventMetricIDsReadsOnlyThoseMetrics: event_metric_ids narrows events to the chosen metrics, each read in
// full (incrementally, with its own windows).
func TestEventMetricIDsReadsOnlyThoseMetrics(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 9})
	metrics := sandboxResources(t, srv, "/api/metrics", nil)
	require.GreaterOrEqual(t, len(metrics), 3)
	chosen := []string{metrics[0].ID, metrics[2].ID}
	cfg := configFor(t, srv, map[string]any{"event_metric_ids": chosen})
	r := runBin(t, "read", "--config", cfg, "--catalog", configuredCatalog(t, cfg, true, "events"))
	require.Equal(t, 0, r.code, "%s", tail(r.stdout))
	o := parseAirbyte(t, r.stdout)
	want := 0
	for _, id := range chosen {
		n, err := srv.Count("/api/events", url.Values{"filter": {fmt.Sprintf("equals(metric_id,%q),less-than(datetime,%s)", id, time.Now().UTC().Format(time.RFC3339))}})
		require.NoError(t, err)
		want += n
	}
	require.Positive(t, want)
	require.Len(t, o.Rows("events"), want)
	for _, rec := range o.Rows("events") {
		require.Contains(t, chosen, rec["metric_id"])
	}
}
