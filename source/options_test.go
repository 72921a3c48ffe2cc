package source_test

import (
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// What the config options, field selection and the accepted argument forms change in a sync, each measured
// against the release's goldens: an option must change exactly what it says and nothing else.

// goldenWhere returns the sorted golden lines of stream in run whose data keep accepts.
func goldenWhere(t *testing.T, run, stream string, keep func(map[string]json.RawMessage) bool) []string {
	t.Helper()
	var out []string
	for _, r := range goldenRecords(t, run, stream) {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(r.data, &m))
		if keep(m) {
			out = append(out, r.line)
		}
	}
	return out
}

// field reads a string field of a record.
func field(m map[string]json.RawMessage, name string) string {
	var s string
	_ = json.Unmarshal(m[name], &s)
	return s
}

// notBefore keeps records whose field is at or after start.
func notBefore(name string, start time.Time) func(map[string]json.RawMessage) bool {
	return func(m map[string]json.RawMessage) bool {
		ts, err := time.Parse(time.RFC3339, field(m, name))
		return err == nil && !ts.Before(start)
	}
}

func TestStartDate(t *testing.T) {
	srv := shared(t)
	dir := t.TempDir()
	start := srv.Now().Add(-30 * 24 * time.Hour)
	cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"start_date": start.Format(time.RFC3339)}))
	for _, c := range []struct {
		stream, run string
		incremental bool
		keep        func(map[string]json.RawMessage) bool
	}{
		// Incremental reads start at start_date, windowed collections and per-parent cursors alike.
		{"events", runIncremental, true, notBefore("datetime", start)},
		{"profiles", runIncremental, true, notBefore("updated", start)},
		{"list_memberships", runIncremental, true, notBefore("joined_group_at", start)},
		// A full refresh of a windowed stream honours it too, as a first incremental sync does.
		{"events", runFullRefresh, false, notBefore("datetime", start)},
		// Streams read without a time filter are read whole.
		{"metrics", runFullRefresh, false, func(map[string]json.RawMessage) bool { return true }},
	} {
		t.Run(c.stream+"/"+c.run, func(t *testing.T) {
			r, o := airbyteRead(t, srv.Now(), cfg, airbyteCatalog(t, dir, cfg, c.incremental, c.stream), "")
			requireCompleted(t, r, o, []string{c.stream})
			checkAirbyteStates(t, o, nil, srv.Now())
			want := goldenWhere(t, c.run, c.stream, c.keep)
			require.NotEmpty(t, want, "the start date leaves records to read")
			require.Equal(t, want, o.sortedRecords(c.stream))
		})
	}
}

func TestEventMetricIDs(t *testing.T) {
	srv := shared(t)
	dir := t.TempDir()
	// Two metrics that have events, in the order the golden names them.
	var ids []string
	for _, d := range goldenData(t, runIncremental, "events") {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(d, &m))
		if id := field(m, "metric_id"); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	require.GreaterOrEqual(t, len(ids), 3)
	ids = ids[:2]
	cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"event_metric_ids": ids}))
	r, o := airbyteRead(t, srv.Now(), cfg, airbyteCatalog(t, dir, cfg, true, "events"), "")
	requireCompleted(t, r, o, []string{"events"})
	checkAirbyteStates(t, o, nil, srv.Now())
	want := goldenWhere(t, runIncremental, "events", func(m map[string]json.RawMessage) bool { return slices.Contains(ids, field(m, "metric_id")) })
	require.Equal(t, want, o.sortedRecords("events"), "exactly the events of the chosen metrics")
}

// TestProfileOptions: consent is on by default and can be switched off; predictive analytics can be added. The
// profiles are the same, only those attributes come and go.
func TestProfileOptions(t *testing.T) {
	srv := shared(t)
	dir := t.TempDir()
	golden := map[string]map[string]json.RawMessage{}
	for _, d := range goldenData(t, runFullRefresh, "profiles") {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(d, &m))
		require.Contains(t, m, "subscriptions", "consent is read by default")
		require.NotContains(t, m, "predictive_analytics")
		golden[field(m, "id")] = m
	}
	for _, c := range []struct {
		name    string
		options map[string]any
		dropped string
		added   string
	}{
		{name: "without consent", options: map[string]any{"profile_subscriptions": false}, dropped: "subscriptions"},
		{name: "with predictive analytics", options: map[string]any{"profile_predictive_analytics": true}, added: "predictive_analytics"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "-")+".json", configFor(srv, c.options))
			r, o := airbyteRead(t, srv.Now(), cfg, airbyteCatalog(t, dir, cfg, false, "profiles"), "")
			requireCompleted(t, r, o, []string{"profiles"})
			require.Len(t, o.records["profiles"], len(golden))
			for _, d := range o.rows("profiles") {
				var m map[string]json.RawMessage
				require.NoError(t, json.Unmarshal(d, &m))
				want, ok := golden[field(m, "id")]
				require.True(t, ok, "profile %s is not in the golden", field(m, "id"))
				if c.dropped != "" {
					require.NotContains(t, m, c.dropped)
				}
				if c.added != "" {
					require.Contains(t, m, c.added)
				}
				for k, v := range want {
					if k != c.dropped {
						require.JSONEq(t, string(v), string(m[k]), "profile %s field %s", field(m, "id"), k)
					}
				}
			}
		})
	}
}

// TestFieldSelection: a configured catalog that keeps some properties gets rows of exactly those (plus the key
// and cursor, which are always kept), with the values of the release's full rows; Singer's SCHEMA loses the
// deselected properties too.
func TestFieldSelection(t *testing.T) {
	srv := shared(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, nil))
	keep := []string{"datetime", "id", "metric_id", "metric_name"}

	project := func(t *testing.T, d json.RawMessage, fields []string) string {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(d, &m))
		out := map[string]json.RawMessage{}
		for _, f := range fields {
			if v, ok := m[f]; ok {
				out[f] = v
			}
		}
		b, err := json.Marshal(out)
		require.NoError(t, err)
		return string(b)
	}
	want := func(t *testing.T, run string, fields []string) []string {
		var out []string
		for _, d := range goldenData(t, run, "events") {
			out = append(out, project(t, d, fields))
		}
		sort.Strings(out)
		return out
	}
	got := func(t *testing.T, o *syncOutput, fields []string) []string {
		var out []string
		for _, d := range o.rows("events") {
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(d, &m))
			names := make([]string, 0, len(m))
			for k := range m {
				names = append(names, k)
			}
			sort.Strings(names)
			require.Equal(t, fields, names, "row fields")
			out = append(out, project(t, d, fields))
		}
		sort.Strings(out)
		return out
	}

	t.Run("airbyte", func(t *testing.T) {
		// A trimmed json_schema: only metric_id is kept besides what is automatic (id, datetime).
		var full struct {
			Streams []map[string]any `json:"streams"`
		}
		raw, err := os.ReadFile(airbyteCatalog(t, dir, cfg, true, "events"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &full))
		schema := full.Streams[0]["stream"].(map[string]any)["json_schema"].(map[string]any)
		props := schema["properties"].(map[string]any)
		for k := range props {
			if k != "metric_id" {
				delete(props, k)
			}
		}
		cat := writeFile(t, dir, "trimmed.json", full)
		r, o := airbyteRead(t, srv.Now(), cfg, cat, "")
		requireCompleted(t, r, o, []string{"events"})
		fields := []string{"datetime", "id", "metric_id"}
		require.Equal(t, want(t, runIncremental, fields), got(t, o, fields))
	})
	t.Run("singer", func(t *testing.T) {
		// Every property deselected but keep's; metric_name is not an attribute, so it exercises the splice.
		var doc struct {
			Streams []map[string]any `json:"streams"`
		}
		raw, err := os.ReadFile(singerCatalog(t, dir, cfg, "events"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &doc))
		for _, md := range doc.Streams[0]["metadata"].([]any) {
			m := md.(map[string]any)
			bc := m["breadcrumb"].([]any)
			if len(bc) == 2 && !slices.Contains(keep, bc[1].(string)) {
				m["metadata"].(map[string]any)["selected"] = false
			}
		}
		cat := writeFile(t, dir, "deselected.json", doc)
		r, o := singerSync(t, srv.Now(), cfg, cat, "")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, want(t, runSinger, keep), got(t, o, keep))
		sch, ok := o.schemas["events"]
		require.True(t, ok, "no SCHEMA for events")
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(sch.Schema, &schema))
		names := make([]string, 0, len(schema.Properties))
		for k := range schema.Properties {
			names = append(names, k)
		}
		sort.Strings(names)
		require.Equal(t, keep, names, "the SCHEMA lists only the selected properties")
	})
}

// TestSingerWithoutCatalog: a Singer sync with no --catalog reads every stream selected by default, incrementally
// where it can, which is what the discovered catalog proposes: the output is the Singer golden.
func TestSingerWithoutCatalog(t *testing.T) {
	srv := shared(t)
	cfg := writeFile(t, t.TempDir(), "config.json", configFor(srv, nil))
	r, o := singerSync(t, srv.Now(), cfg, "", "")
	require.Equal(t, 0, r.code, r.stderr)
	final, _ := checkSingerStates(t, o, nil, srv.Now())
	for _, s := range catalog.Streams() {
		requireSameLines(t, runSinger, s.Name, o.sortedRecords(s.Name))
		require.Equal(t, string(goldenFinal(t, runSinger, s.Name)), string(final[s.Name]), s.Name)
	}
}

// TestArgumentForms: --flag=value, --properties for --catalog, several --config files merged with the later
// winning, and unknown flags (which platforms add over time) ignored.
func TestArgumentForms(t *testing.T) {
	srv := shared(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, nil))
	// The first file's key is refused by the sandbox; the second file's key replaces it.
	first := writeFile(t, dir, "first.json", configFor(srv, map[string]any{"api_key": unknownKey, "max_concurrency": 4}))
	second := writeFile(t, dir, "second.json", map[string]any{"api_key": testKey})
	abCat := airbyteCatalog(t, dir, cfg, true, "metrics")
	sgCat := singerCatalog(t, dir, cfg, "metrics")
	want, err := readGolden(runIncremental, "metrics")
	require.NoError(t, err)
	wantSinger, err := readGolden(runSinger, "metrics")
	require.NoError(t, err)

	t.Run("airbyte --flag=value and unknown flags", func(t *testing.T) {
		r := invoke(t, srv.Now(), "read", "--config="+cfg, "--catalog="+abCat, "--debug", "--state="+dir+"/absent.json")
		o := parseAirbyte(t, r.stdout)
		requireCompleted(t, r, o, []string{"metrics"})
		require.Equal(t, splitLines(want), o.sortedRecords("metrics"))
		require.Contains(t, o.logs, "WARN state file "+dir+"/absent.json does not exist: syncing every stream from its start")
	})
	t.Run("singer --properties and merged configs", func(t *testing.T) {
		r := invoke(t, srv.Now(), "--config", first, "--config", second, "--properties", sgCat, "--state", dir+"/absent.json")
		require.Equal(t, 0, r.code, r.stderr)
		o := parseSinger(t, r.stdout)
		require.Equal(t, splitLines(wantSinger), o.sortedRecords("metrics"))
		require.Contains(t, r.stderr, "WARNING state file "+dir+"/absent.json does not exist")
	})
}

// TestDailyQuota: a 429 asking to wait longer than max_retry_wait_seconds (Klaviyo's daily quotas) ends that
// stream at once with a transient error and a RATE_LIMITED status carrying the quota reset; the other streams
// complete, and the failed stream still checkpoints the state it started from.
func TestDailyQuota(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 5, Now: releaseOptions().Now, APIKeys: map[string][]string{testKey: nil},
		Faults: sandbox.Faults{Spurious429: 1, RetryAfter: 86400, Only: "/api/metrics"}})
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"max_retry_wait_seconds": 60}))
	cat := airbyteCatalog(t, dir, cfg, true, "metrics", "accounts")
	r, o := airbyteRead(t, srv.Now(), cfg, cat, "")
	require.Equal(t, 1, r.code)
	require.Equal(t, []string{"STARTED", "RUNNING", "COMPLETE"}, o.statuses["accounts"])
	require.Equal(t, "INCOMPLETE", o.statuses["metrics"][len(o.statuses["metrics"])-1])
	require.Contains(t, r.stdout, `"reasons":[{"type":"RATE_LIMITED","rate_limited":{"quota_reset":`)
	require.Len(t, o.errors, 2)
	require.Equal(t, "metrics", o.errors[0].Stream)
	require.Equal(t, "transient_error", o.errors[0].FailureType)
	require.Equal(t, "transient_error", o.errors[1].FailureType, "the summary takes the failure's type")
	require.Contains(t, o.errors[1].Message, "1 of 2 streams did not sync: metrics")
	final := checkAirbyteStates(t, o, nil, srv.Now())
	require.JSONEq(t, `{}`, string(final["metrics"]))
	require.Empty(t, o.records["metrics"])
}
