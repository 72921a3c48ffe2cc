package source_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
	"github.com/source-klaviyo/source-klaviyo/source/reports"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
)

// defaultReports are the report streams that exist with only an api_key.
var defaultReports = []string{"campaign_values_reports", "flow_values_reports", "flow_series_reports", "form_values_reports",
	"form_series_reports", "segment_values_reports", "segment_series_reports", "metric_aggregates"}

// The report streams end to end: discover lists the defaults and a user-defined one with their schemas; a read of
// all of them completes in both dialects, every row valid against its stream's schema and unique by its key.
func TestReportStreams(t *testing.T) {
	srv := startSandbox(t, releaseOptions())
	now := srv.Now()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{
		"reports": []any{map[string]any{"name": "flows_weekly", "type": "flow_series", "interval": "weekly"}},
	}))
	all := append(append([]string{}, defaultReports...), "flows_weekly")

	r := invoke(t, now, "discover", "--config", cfg)
	require.Equal(t, 0, r.code, r.stdout)
	cat := oneMessage(t, r.stdout).Catalog
	schemas := map[string]*gojsonschema.Schema{}
	keys := map[string][]string{}
	for _, s := range cat.Streams {
		for _, want := range all {
			if s.Name == want {
				sc, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(s.JSONSchema))
				require.NoError(t, err, s.Name)
				schemas[s.Name] = sc
				for _, k := range s.SourceDefinedPrimaryKey {
					keys[s.Name] = append(keys[s.Name], k[0])
				}
			}
		}
	}
	require.Len(t, schemas, len(all), "discover lists every report stream")

	check := func(t *testing.T, o *syncOutput) {
		t.Helper()
		for _, name := range all {
			rows := o.rows(name)
			require.NotEmpty(t, rows, "stream %s wrote rows", name)
			seen := map[string]bool{}
			for _, raw := range rows {
				res, err := schemas[name].Validate(gojsonschema.NewBytesLoader(raw))
				require.NoError(t, err)
				require.True(t, res.Valid(), "%s row %s: %v", name, raw, res.Errors())
				var rec map[string]any
				require.NoError(t, json.Unmarshal(raw, &rec))
				var key []string
				for _, k := range keys[name] {
					key = append(key, fmt.Sprint(rec[k]))
				}
				id := strings.Join(key, "|")
				require.False(t, seen[id], "%s: key %s written twice", name, id)
				seen[id] = true
			}
		}
	}
	t.Run("airbyte", func(t *testing.T) {
		res, o := airbyteRead(t, now, cfg, airbyteCatalog(t, dir, cfg, true, all...), "")
		requireCompleted(t, res, o, all)
		check(t, o)
		require.Contains(t, strings.Join(o.logs, "\n"), "report requests on ", "the log says what the day's quota has left")
	})
	t.Run("singer", func(t *testing.T) {
		res, o := singerSync(t, now, cfg, singerCatalog(t, dir, cfg, all...), "")
		require.Equal(t, 0, res.code, res.stderr)
		check(t, o)
	})
}

// collected keeps the rows a direct read of the reports package writes.
type collected struct{ rows []string }

func (c *collected) Row(b []byte) error    { c.rows = append(c.rows, string(b)); return nil }
func (c *collected) State([]byte) error    { return nil }
func (c *collected) Log(level, msg string) {}

// sortedRows sorts a copy of rows as text, for comparing row sets whose order the engine does not fix.
func sortedRows(rows []string) []string {
	out := slices.Clone(rows)
	slices.Sort(out)
	return out
}

// The connector's report rows are the reports package's, read straight from the sandbox: that package's tests
// prove them against the events the sandbox serves (source/reports/agreement_test.go), so the connector's reports
// agree with data we can count. After the clock moves, a second sync writes only rows that are new or changed
// (re-attributed days), under the same keys.
func TestReportRowsAgreeAndOnlyChangesComeAgain(t *testing.T) {
	srv := startSandbox(t, releaseOptions())
	now := srv.Now()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, nil))
	streams := []string{"flow_series_reports", "campaign_values_reports", "segment_series_reports"}
	cat := airbyteCatalog(t, dir, cfg, true, streams...)
	res, first := airbyteRead(t, now, cfg, cat, "")
	requireCompleted(t, res, first, streams)

	client, err := klaviyo.New(klaviyo.Config{BaseURL: srv.URL(), APIKey: testKey, RateScale: 1000})
	require.NoError(t, err)
	defs, err := reports.Definitions(reports.Config{}, nil)
	require.NoError(t, err)
	acct, err := reports.Discover(context.Background(), client, true)
	require.NoError(t, err)
	for _, def := range defs {
		if !slices.Contains(streams, def.Name) {
			continue
		}
		p, err := def.Plan(reports.State{}, now, acct, reports.NewLedger(now, 1000))
		require.NoError(t, err)
		direct := &collected{}
		require.NoError(t, p.Read(context.Background(), client, direct))
		require.NotEmpty(t, direct.rows, def.Name)
		require.Equal(t, sortedRows(direct.rows), sortedStrings(first.rows(def.Name)), "%s: the connector writes the package's rows", def.Name)
	}

	// Three days later: new days, and old days whose numbers changed, and nothing else.
	final := checkAirbyteStates(t, first, nil, now)
	srv.Advance(72 * time.Hour)
	later := srv.Now()
	_, second := airbyteRead(t, later, cfg, cat, writeFile(t, dir, "state.json", airbyteStateFile(final)))
	for _, name := range streams {
		if name == "campaign_values_reports" {
			continue // a full refresh: every sync writes every row
		}
		before := map[string]bool{}
		for _, r := range first.rows(name) {
			before[string(r)] = true
		}
		for _, r := range second.rows(name) {
			require.False(t, before[string(r)], "%s: a row written again unchanged: %s", name, r)
		}
	}
	require.NotEmpty(t, second.rows("flow_series_reports"), "the new days arrive")
}

// A backfill bigger than the day's quota (report_daily_quota 4) reads what fits, ends INCOMPLETE with a transient
// error saying when it can go on, and the next days carry on from the state. When it is done, every row is there
// (each key one sync with room for all writes), and no row was written twice unchanged.
func TestReportBackfillSpansDays(t *testing.T) {
	srv := startSandbox(t, releaseOptions())
	dir := t.TempDir()
	const stream = "flow_series_reports"
	roomy := writeFile(t, dir, "roomy.json", configFor(srv, nil))
	cat := airbyteCatalog(t, dir, roomy, true, stream)
	tight := writeFile(t, dir, "tight.json", configFor(srv, map[string]any{"report_daily_quota": 4}))
	key := func(raw json.RawMessage) string {
		var r struct {
			Flow, Message, Metric, Date string
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		r.Flow, r.Message, r.Metric, r.Date = fmt.Sprint(m["flow_id"]), fmt.Sprint(m["flow_message_id"]), fmt.Sprint(m["conversion_metric_id"]), fmt.Sprint(m["date"])
		return strings.Join([]string{r.Flow, r.Message, r.Metric, r.Date}, "|")
	}
	last := map[string]string{}
	written := map[string]bool{}
	var state map[string]json.RawMessage
	// The days pass on the sandbox's clock, which the connector's follows: the quota's day turns, and the
	// account lives on (new events, new days to report).
	now := srv.Now()
	days := 0
	for ; days < 10; days++ {
		stateFile := ""
		if state != nil {
			stateFile = writeFile(t, dir, fmt.Sprintf("state-%d.json", days), airbyteStateFile(state))
		}
		res, o := airbyteRead(t, now, tight, cat, stateFile)
		for _, r := range o.rows(stream) {
			require.False(t, written[string(r)], "a row written twice unchanged: %s", r)
			written[string(r)] = true
			last[key(r)] = string(r)
		}
		state = checkAirbyteStates(t, o, state, now)
		if res.code == 0 {
			break
		}
		require.Len(t, o.errors, 2, "the stream's error and the summary")
		require.Equal(t, "transient_error", o.errors[0].FailureType)
		require.Contains(t, o.errors[0].Message, "is used up until")
		require.Equal(t, []string{"STARTED", "RUNNING", "INCOMPLETE"}, o.statuses[stream])
		srv.Advance(24 * time.Hour)
		now = srv.Now()
	}
	require.Positive(t, days, "the backfill needed more than one day's quota")
	require.Less(t, days, 10, "the backfill finished")

	// One sync with room for all, at the end: its history starts days later than the backfill's did (two years
	// before its own start); every row with activity it writes, the backfill wrote too. (Rows of zeros depend on
	// the window a request covers: Klaviyo reports every day of a window for each message active in it.)
	_, whole := airbyteRead(t, now, roomy, cat, "")
	require.NotEmpty(t, whole.rows(stream))
	active := 0
	for _, r := range whole.rows(stream) {
		if !hasActivity(t, r) {
			continue
		}
		active++
		_, ok := last[key(r)]
		require.True(t, ok, "the backfill lost the row of %s", key(r))
	}
	require.Positive(t, active)
}

// hasActivity reports whether a report row has a statistic above zero.
func hasActivity(t *testing.T, raw json.RawMessage) bool {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	for _, v := range m {
		if n, ok := v.(float64); ok && n > 0 {
			return true
		}
	}
	return false
}
