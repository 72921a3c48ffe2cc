package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
)

// stableSpec reads Klaviyo's OpenAPI document beside the project (../shared/klaviyo/stable.json).
func stableSpec(t *testing.T) map[string]any {
	t.Helper()
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "shared", "klaviyo", "stable.json"))
		if err == nil {
			var doc map[string]any
			require.NoError(t, json.Unmarshal(b, &doc))
			return doc
		}
		require.NotEqual(t, dir, filepath.Dir(dir), "shared/klaviyo/stable.json not found above the package")
		dir = filepath.Dir(dir)
	}
}

// dig follows a path of object keys.
func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "%v is not an object at %s", path, p)
		v = m[p]
	}
	return v
}

// enumOf resolves a schema property (following $ref, items) to its enum.
func enumOf(t *testing.T, spec map[string]any, prop any) []string {
	t.Helper()
	m := prop.(map[string]any)
	if items, ok := m["items"]; ok {
		m = items.(map[string]any)
	}
	if ref, ok := m["$ref"].(string); ok {
		m = dig(t, spec, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...).(map[string]any)
	}
	var out []string
	for _, e := range m["enum"].([]any) {
		out = append(out, e.(string))
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestKindsMatchStableJSON holds the kinds to Klaviyo's spec: path, scope, rate limits, data.type, statistics,
// group_by, required attributes, intervals, timeframe keys, measurements and dimensions.
func TestKindsMatchStableJSON(t *testing.T) {
	spec := stableSpec(t)
	for _, k := range Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			op := dig(t, spec, "paths", k.Endpoint, "post").(map[string]any)
			assert.Equal(t, []any{k.Scope}, op["x-klaviyo-scopes"])
			rl := op["x-klaviyo-ratelimit"].(map[string]any)
			assert.Equal(t, strconv.Itoa(k.Budget.Burst)+"/s", rl["burst"])
			assert.Equal(t, strconv.Itoa(k.Budget.PerMinute)+"/m", rl["steady"])
			if k.Daily > 0 {
				assert.Equal(t, strconv.Itoa(k.Daily)+"/d", rl["daily"])
			} else {
				assert.Nil(t, rl["daily"])
			}
			ref := dig(t, op, "requestBody", "content", "application/vnd.api+json", "schema", "$ref").(string)
			dto := dig(t, spec, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
			objRef := dig(t, dto, "properties", "data", "$ref").(string)
			obj := dig(t, spec, strings.Split(strings.TrimPrefix(objRef, "#/"), "/")...)
			assert.Equal(t, []string{k.Type}, enumOf(t, spec, dig(t, obj, "properties", "type")))
			attrs := dig(t, obj, "properties", "attributes", "properties").(map[string]any)
			required := dig(t, obj, "properties", "attributes", "required").([]any)
			if k.Aggregate {
				assert.Equal(t, sorted(k.Statistics), enumOf(t, spec, attrs["measurements"]))
				assert.Equal(t, sorted(k.GroupBy), enumOf(t, spec, attrs["by"]))
				assert.Equal(t, sorted(aggregateIntervals()), enumOf(t, spec, attrs["interval"]))
				return
			}
			assert.Equal(t, sorted(k.Statistics), enumOf(t, spec, attrs["statistics"]))
			assert.Equal(t, k.Messages, slices.Contains(required, any("conversion_metric_id")), "conversion_metric_id required")
			assert.Equal(t, k.Series, slices.Contains(required, any("interval")))
			if k.Series {
				assert.Equal(t, sorted(seriesIntervals()), enumOf(t, spec, attrs["interval"]))
			}
			if k.GroupBy == nil {
				assert.Nil(t, attrs["group_by"])
			} else {
				assert.Equal(t, sorted(k.GroupBy), enumOf(t, spec, attrs["group_by"]))
			}
			tfKeys := enumOf(t, spec, dig(t, spec, "components", "schemas", "Timeframe", "properties", "key"))
			assert.Equal(t, sorted(timeframeKeys()), tfKeys)
			for label, id := range k.Labels {
				assert.Contains(t, k.GroupBy, label)
				assert.Contains(t, k.GroupBy, id)
			}
		})
	}
}

func TestDefaultStreams(t *testing.T) {
	defs, err := Definitions(Config{}, nil)
	require.NoError(t, err)
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
		assert.True(t, d.Default)
		assert.Equal(t, DefaultLookbackDays, d.LookbackDays)
		assert.Equal(t, DefaultHistoryDays, d.HistoryDays)
		assert.True(t, d.Incremental())
		assert.Equal(t, d.Kind.Statistics, d.Statistics, "a default report asks for every statistic: one request carries them all")
	}
	assert.Equal(t, []string{"campaign_values_reports", "flow_values_reports", "flow_series_reports", "form_values_reports",
		"form_series_reports", "segment_values_reports", "segment_series_reports", "metric_aggregates"}, names)

	type want struct {
		key    []string
		cursor string
		scopes []string
	}
	for name, w := range map[string]want{
		"campaign_values_reports": {[]string{"campaign_id", "campaign_message_id", "send_channel", "conversion_metric_id"}, "", []string{"campaigns:read", "accounts:read", "metrics:read"}},
		"flow_values_reports":     {[]string{"flow_id", "flow_message_id", "send_channel", "conversion_metric_id", "period_start"}, "period_start", []string{"flows:read", "accounts:read", "metrics:read"}},
		"flow_series_reports":     {[]string{"flow_id", "flow_message_id", "send_channel", "conversion_metric_id", "date"}, "date", []string{"flows:read", "accounts:read", "metrics:read"}},
		"form_values_reports":     {[]string{"form_id", "period_start"}, "period_start", []string{"forms:read", "accounts:read"}},
		"form_series_reports":     {[]string{"form_id", "date"}, "date", []string{"forms:read", "accounts:read"}},
		"segment_values_reports":  {[]string{"segment_id", "period_start"}, "period_start", []string{"segments:read", "accounts:read"}},
		"segment_series_reports":  {[]string{"segment_id", "date"}, "date", []string{"segments:read", "accounts:read"}},
		"metric_aggregates":       {[]string{"metric_id", "date"}, "date", []string{"metrics:read", "accounts:read"}},
	} {
		d := defaultDef(t, name, Config{})
		assert.Equal(t, w.key, d.KeyProperties(), name)
		assert.Equal(t, w.cursor, d.CursorField(), name)
		assert.Equal(t, w.scopes, d.Scopes(), name)
	}
	d := defaultDef(t, "campaign_values_reports", Config{ConversionMetricID: "RESQ6t"})
	assert.Equal(t, "RESQ6t", d.ConversionMetricID)
	assert.Equal(t, []string{"campaigns:read", "accounts:read"}, d.Scopes(), "a configured conversion metric needs no metric lookup")
	assert.Equal(t, "Flow message performance per month (Klaviyo's /api/flow-values-reports).", defaultDef(t, "flow_values_reports", Config{}).Doc())
	assert.Equal(t, "Flow message performance, day by day (Klaviyo's /api/flow-series-reports).", defaultDef(t, "flow_series_reports", Config{}).Doc())
}

func TestUserDefinitions(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	lookback := 10
	cfg := Config{StartDate: start, LookbackDays: &lookback, Reports: []byte(`[
		{"name": "email_revenue", "type": "campaign_values", "statistics": ["conversion_value", "recipients", "conversion_value"],
		 "group_by": ["campaign_id", "campaign_message_id", "campaign_message_name", "tag_id", "tag_name"],
		 "filter": "equals(send_channel,\"email\")", "conversion_metric_id": "RESQ6t"},
		{"name": "flow_weekly", "type": "flow_series", "interval": "weekly", "statistics": ["opens"], "history_days": 90, "lookback_days": 14},
		{"name": "forms_by_version", "type": "form_values", "period": "week", "group_by": ["form_id", "form_version_id"]},
		{"name": "segments_last_month", "type": "segment_values", "timeframe": "last_month"},
		{"name": "flow_q1", "type": "flow_values", "timeframe": {"start": "2025-01-01", "end": "2025-04-01T00:00:00"}},
		{"name": "orders_by_message", "type": "metric_aggregates", "metric_id": "RESQ6t", "measurements": ["sum_value", "count"],
		 "by": ["$attributed_message", "Campaign Name"], "interval": "week", "filter": ["equals($attributed_channel,\"email\")"]}
	]`)}
	defs, err := Definitions(cfg, []string{"events", "profiles"})
	require.NoError(t, err)
	require.Len(t, defs, 8+6)
	u := defs[8:]

	assert.Equal(t, "reports[0]", u[0].Path)
	assert.Equal(t, []string{"conversion_value", "recipients"}, u[0].Statistics, "duplicates dropped, order kept")
	assert.Equal(t, []string{"campaign_id", "campaign_message_id", "tag_id", "conversion_metric_id"}, u[0].KeyProperties(),
		"a name is not a key when its id is grouped: a renamed campaign keeps its keys")
	assert.Equal(t, start, u[0].StartDate)
	assert.Equal(t, 10, u[0].LookbackDays)

	assert.Equal(t, "weekly", u[1].Interval)
	assert.Equal(t, 90, u[1].HistoryDays)
	assert.True(t, u[1].StartDate.IsZero(), "history_days replaces start_date")
	assert.Equal(t, 14, u[1].LookbackDays)
	assert.Equal(t, Kinds()[2].GroupByDefault, u[1].GroupBy)

	assert.Equal(t, "week", u[2].Period)
	assert.Equal(t, []string{"form_id", "form_version_id", "period_start"}, u[2].KeyProperties())

	assert.Equal(t, &Timeframe{Key: "last_month"}, u[3].Timeframe)
	assert.False(t, u[3].Incremental())
	assert.Equal(t, []string{"segment_id"}, u[3].KeyProperties(), "a snapshot is one row per segment")
	assert.Empty(t, u[3].CursorField())

	assert.Equal(t, &Timeframe{Start: "2025-01-01", End: "2025-04-01T00:00:00"}, u[4].Timeframe)

	assert.Equal(t, []string{"sum_value", "count"}, u[5].Statistics)
	assert.Equal(t, []string{"metric_id", "attributed_message", "campaign_name", "date"}, u[5].KeyProperties())
	assert.Equal(t, []string{`equals($attributed_channel,"email")`}, u[5].AggregateFilter)
	assert.Equal(t, "week", u[5].Interval)

	// Every user-defined schema is a valid JSON Schema whose properties are the columns.
	for _, d := range defs {
		_, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(d.Schema()))
		require.NoError(t, err, d.Name)
	}
}

// TestUserDefinitionErrors holds every refusal to one sentence that names the config path and what to do.
func TestUserDefinitionErrors(t *testing.T) {
	neg := -1
	cases := []struct {
		name, reports string
		cfg           Config
		want          []string
	}{
		{"not a list", `{"name":"x"}`, Config{}, []string{"reports must be a list of report definitions, each an object with name and type"}},
		{"not an object", `[3]`, Config{}, []string{"reports[0] must be an object with at least name and type"}},
		{"unknown type", `[{"name":"a","type":"campaign"}]`, Config{},
			[]string{`reports[0].type "campaign" is not a report type; use one of campaign_values, flow_values, flow_series, form_values, form_series, segment_values, segment_series, metric_aggregates`}},
		{"bad name and unknown property", `[{"name":"Flow Report","type":"flow_series","statstics":["opens"]}]`, Config{}, []string{
			`reports[0]: unknown property "statstics"; a report has name, type, statistics, measurements, group_by, by, interval, period, timeframe, history_days, filter, conversion_metric_id, metric_id, lookback_days`,
			"reports[0].name must be a stream name: lowercase letters, digits and _, starting with a letter, at most 63 characters"}},
		{"wrong type of a property", `[{"name":"a","type":"flow_series","statistics":"opens"}]`, Config{},
			[]string{"reports[0].statistics has the wrong type; see the README's report syntax"}},
		{"statistic of another report", `[{"name":"a","type":"segment_series","statistics":["opens"]}]`, Config{},
			[]string{`reports[0].statistics: "opens" is not one of the statistics of segment_series reports (members_added, members_removed, net_members_changed, total_members)`}},
		{"empty statistics", `[{"name":"a","type":"segment_series","statistics":[]}]`, Config{},
			[]string{"reports[0].statistics is empty: leave it out to read all of them, or name some of members_added, members_removed, net_members_changed, total_members"}},
		{"group_by without the message", `[{"name":"a","type":"flow_values","group_by":["flow_id","send_channel"]}]`, Config{},
			[]string{"reports[0].group_by must include flow_message_id: Klaviyo requires flow_id and flow_message_id"}},
		{"group_by prerequisite", `[{"name":"a","type":"form_series","group_by":["form_version_id"]}]`, Config{},
			[]string{"reports[0].group_by has form_version_id without form_id: Klaviyo needs them together"}},
		{"group_by on segments", `[{"name":"a","type":"segment_values","group_by":["segment_id"]}]`, Config{},
			[]string{"reports[0].group_by does not apply to segment_values reports: Klaviyo returns one row per segment"}},
		{"interval on values", `[{"name":"a","type":"flow_values","interval":"daily"}]`, Config{},
			[]string{"reports[0].interval does not apply to flow_values reports: a values report has one value per row; use a flow_series report for intervals"}},
		{"aggregate interval name", `[{"name":"a","type":"metric_aggregates","metric_id":"M","interval":"daily"}]`, Config{},
			[]string{`reports[0].interval "daily" is not an interval of metric aggregates (hour, day, week, month)`}},
		{"period on a series", `[{"name":"a","type":"flow_series","period":"week"}]`, Config{},
			[]string{"reports[0].period does not apply to flow_series reports: only flow, form and segment values reports are read period by period"}},
		{"timeframe and history", `[{"name":"a","type":"form_values","timeframe":"last_7_days","history_days":3}]`, Config{},
			[]string{"reports[0] has both timeframe and history_days: a report is either a snapshot of a timeframe or read incrementally from history_days ago"}},
		{"unknown timeframe key", `[{"name":"a","type":"form_values","timeframe":"last_2_days"}]`, Config{},
			[]string{`reports[0].timeframe key "last_2_days" is not one of Klaviyo's timeframes (today, yesterday, this_week, last_week, this_month, last_month, this_year, last_year, last_7_days, last_30_days, last_90_days, last_365_days, last_3_months, last_12_months)`}},
		{"values timeframe over a year", `[{"name":"a","type":"flow_values","timeframe":{"start":"2024-01-01","end":"2025-01-02"}}]`, Config{},
			[]string{"reports[0].timeframe is longer than a year, Klaviyo's longest timeframe for a values report; use a series report or a shorter timeframe"}},
		{"custom timeframe backwards", `[{"name":"a","type":"flow_series","timeframe":{"start":"2025-02-01","end":"2025-01-01"}}]`, Config{},
			[]string{"reports[0].timeframe ends before it starts: end must be after start"}},
		{"segments before their data", `[{"name":"a","type":"segment_series","timeframe":{"start":"2023-05-01","end":"2023-07-01"}}]`, Config{},
			[]string{"reports[0].timeframe starts before 2023-06-01: Klaviyo has no segment_series data before then"}},
		{"aggregate without metric", `[{"name":"a","type":"metric_aggregates","statistics":["count"]}]`, Config{}, []string{
			"reports[0].statistics does not apply to metric_aggregates reports: use measurements",
			"reports[0].metric_id is required: a metric aggregate reads one metric (the default stream metric_aggregates reads them all)"}},
		{"aggregate datetime filter", `[{"name":"a","type":"metric_aggregates","metric_id":"M","filter":["greater-or-equal(datetime,2025-01-01)"]}]`, Config{},
			[]string{"reports[0].filter must not filter on datetime: the connector sets the time range of every request"}},
		{"conversion metric on forms", `[{"name":"a","type":"form_series","conversion_metric_id":"M"}]`, Config{},
			[]string{"reports[0].conversion_metric_id does not apply to form_series reports: only campaign and flow reports have conversion statistics"}},
		{"name of a default stream", `[{"name":"flow_series_reports","type":"flow_series"}]`, Config{},
			[]string{`reports[0].name "flow_series_reports" is already a default report stream: choose another name`}},
		{"name of another stream", `[{"name":"events","type":"flow_series"}]`, Config{},
			[]string{`reports[0].name "events" is already another stream of the connector: choose another name`}},
		{"two reports of one name", `[{"name":"a","type":"flow_series"},{"name":"a","type":"form_series"}]`, Config{},
			[]string{`reports[1].name "a" is already the name of reports[0]: choose another name`}},
		{"lookback out of range", `[{"name":"a","type":"flow_series","lookback_days":400}]`, Config{LookbackDays: &neg}, []string{
			"report_lookback_days is -1: it must be between 0 and 365",
			"reports[0].lookback_days must be between 0 and 365"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Reports = []byte(c.reports)
			_, err := Definitions(c.cfg, []string{"events"})
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, c.want, ce.Problems)
		})
	}
}

func TestColumnNames(t *testing.T) {
	for in, want := range map[string]string{
		"$attributed_message": "attributed_message", "Campaign Name": "campaign_name", "$value_currency": "value_currency",
		"Bot Click": "bot_click", "form_id": "form_id", "URL": "url",
	} {
		assert.Equal(t, want, columnName(in))
	}
	var cols []string
	for _, d := range aggregateDimensions() {
		cols = append(cols, columnName(d))
	}
	assert.Len(t, slices.Compact(sorted(cols)), len(cols), "no two dimensions of Klaviyo share a column")
	assert.Equal(t, "", columnClash(aggregateDimensions()))
}
