package sandbox

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
)

// reportFixture holds ids a report test needs, read through the sandbox's GET endpoints.
type reportFixture struct {
	s                         *Server
	placedOrder, openedEmail  string
	form, version, segment    string
	flow, flowMessage, tagged string
}

func newReportFixture(t *testing.T, s *Server) reportFixture {
	t.Helper()
	ids := metricIDs(t, s)
	f := reportFixture{s: s, placedOrder: ids["Placed Order"], openedEmail: ids["Opened Email"]}
	f.form = collectAll(t, s, "/api/forms")[0]["id"].(string)
	f.version = collectAll(t, s, "/api/forms/"+f.form+"/form-versions")[0]["id"].(string)
	f.segment = collectAll(t, s, "/api/segments")[0]["id"].(string)
	return f
}

// validBodies is one valid request per endpoint, by path.
func (f reportFixture) validBodies() map[string]map[string]any {
	return map[string]map[string]any{
		"/api/campaign-values-reports": {"statistics": []string{"opens", "open_rate", "conversion_value"}, "timeframe": map[string]any{"key": "last_365_days"},
			"conversion_metric_id": f.placedOrder},
		"/api/flow-values-reports": {"statistics": []string{"opens", "conversions"}, "timeframe": map[string]any{"key": "last_30_days"},
			"conversion_metric_id": f.placedOrder, "group_by": []string{"flow_id", "flow_message_id", "send_channel", "flow_name", "tag_id", "tag_name"}},
		"/api/flow-series-reports": {"statistics": []string{"opens", "conversion_value"}, "timeframe": map[string]any{"key": "last_7_days"},
			"interval": "daily", "conversion_metric_id": f.placedOrder},
		"/api/form-values-reports": {"statistics": []string{"viewed_form", "submit_rate"}, "timeframe": map[string]any{"key": "last_30_days"},
			"group_by": []string{"form_id", "form_version_id"}},
		"/api/form-series-reports": {"statistics": []string{"submits"}, "timeframe": map[string]any{"key": "yesterday"}, "interval": "hourly",
			"filter": fmt.Sprintf("equals(form_id,%q)", f.form)},
		"/api/segment-values-reports": {"statistics": []string{"members_added", "members_removed", "net_members_changed", "total_members"},
			"timeframe": map[string]any{"key": "last_90_days"}},
		"/api/segment-series-reports": {"statistics": []string{"total_members"}, "timeframe": map[string]any{"key": "last_12_months"},
			"interval": "weekly", "filter": fmt.Sprintf("any(segment_id,[%q])", f.segment)},
		"/api/metric-aggregates": {"metric_id": f.placedOrder, "measurements": []string{"count", "sum_value", "unique"}, "interval": "week",
			"by": []string{"$attributed_message", "Campaign Name"}, "timezone": "America/New_York",
			"filter": []string{"greater-or-equal(datetime,2025-09-01T00:00:00)", "less-than(datetime,2025-10-01T00:00:00)"}},
	}
}

func typeOf(path string) string {
	if path == "/api/metric-aggregates" {
		return "metric-aggregate"
	}
	return strings.TrimSuffix(strings.TrimPrefix(path, "/api/"), "s")
}

// with returns a copy of attrs with a member set (nil deletes it).
func with(attrs map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range attrs {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// TestReportResponsesMatchSpecSchemas validates a 200 of every report endpoint, and of the
// variants that widen it (series, tags, sparse fields, a second page), against stable.json.
func TestReportResponsesMatchSpecSchemas(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.ReportPageSize = 2 })
	f := newReportFixture(t, s)
	o := loadOpenAPI(t)
	bodies := f.validBodies()
	paths := make([]string, 0, len(bodies))
	for p := range bodies {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	require.Len(t, paths, len(s.reports), "every report endpoint has a case")
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			rep := s.reports[path]
			r := post(t, s, path, reportBody(t, rep.Type, bodies[path]))
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, "application/vnd.api+json", r.header.Get("Content-Type"))
			validate(t, o.schemaFor(t, rep.Response), r.body)
			a := r.doc["data"].(map[string]any)["attributes"].(map[string]any)
			member := "results"
			if rep.Measurements != nil {
				member = "data"
			}
			assert.NotEmpty(t, results(a, member), "the sandbox account has data for every report")
			if next := r.link("next"); next != "" { // campaign and flow reports page at ReportPageSize
				r2 := post(t, s, strings.TrimPrefix(next, s.URL()), reportBody(t, rep.Type, bodies[path]))
				require.Equal(t, http.StatusOK, r2.status, string(r2.body))
				validate(t, o.schemaFor(t, rep.Response), r2.body)
			}
		})
	}
}

func validate(t *testing.T, sc *gojsonschema.Schema, body []byte) {
	t.Helper()
	res, err := sc.Validate(gojsonschema.NewBytesLoader(body))
	require.NoError(t, err)
	var msgs []string
	for _, e := range res.Errors() {
		msgs = append(msgs, e.String())
	}
	assert.True(t, res.Valid(), "%s\n%s", strings.Join(msgs, "\n"), body)
}

// TestReportValidation sends requests Klaviyo rejects: each is a 400 (or the auth and method
// statuses) whose errors[] matches the spec's ClientError schema and points at the culprit.
func TestReportValidation(t *testing.T) {
	s := startSmall(t, func(o *Options) {
		o.APIKeys = map[string][]string{DefaultAPIKey: nil, "pk_flows": {"flows:read"}}
	})
	f := newReportFixture(t, s)
	clientError := clientErrorSchema(t)
	valid := f.validBodies()
	cv, fs, fv := valid["/api/campaign-values-reports"], valid["/api/flow-series-reports"], valid["/api/flow-values-reports"]
	fo, sg, ma := valid["/api/form-values-reports"], valid["/api/segment-values-reports"], valid["/api/metric-aggregates"]
	tf := func(start, end string) map[string]any { return map[string]any{"start": start, "end": end} }
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprint(i))
	}
	cases := []struct {
		name, path, body string
		status           int
		pointer, detail  string
	}{
		{"bad json", "/api/campaign-values-reports", `{"data":{"type":`, 400, "", "JSON parse error"},
		{"no data", "/api/campaign-values-reports", `{"meta":{}}`, 400, "/data", "primary data"},
		{"no type", "/api/campaign-values-reports", `{"data":{"attributes":{}}}`, 400, "/data/type", "required"},
		{"wrong type", "/api/campaign-values-reports", reportBody(t, "flow-values-report", cv), 400, "/data/type", "flow-values-report"},
		{"no attributes", "/api/flow-values-reports", `{"data":{"type":"flow-values-report"}}`, 400, "/data/attributes", "required"},
		{"missing statistics", "/api/flow-values-reports", reportBody(t, "flow-values-report", with(fv, "statistics", nil)), 400, "/data/attributes/statistics", "required"},
		{"empty statistics", "/api/flow-values-reports", reportBody(t, "flow-values-report", with(fv, "statistics", []string{})), 400, "/data/attributes/statistics", "At least one"},
		{"unknown statistic", "/api/flow-values-reports", reportBody(t, "flow-values-report", with(fv, "statistics", []string{"opens", "revenue"})), 400, "/data/attributes/statistics", `"revenue"`},
		{"statistic of another report", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "statistics", []string{"members_added"})), 400, "/data/attributes/statistics", `"members_added"`},
		{"form statistic on flows", "/api/flow-series-reports", reportBody(t, "flow-series-report", with(fs, "statistics", []string{"submits"})), 400, "/data/attributes/statistics", `"submits"`},
		{"statistics not a list", "/api/form-values-reports", reportBody(t, "form-values-report", with(fo, "statistics", "submits")), 400, "/data/attributes/statistics", "list"},
		{"conversion statistic without conversion_metric_id", "/api/flow-series-reports", reportBody(t, "flow-series-report", with(fs, "conversion_metric_id", nil)), 400, "/data/attributes/conversion_metric_id", "required"},
		{"campaign report without conversion_metric_id", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "statistics", []string{"opens"}, "conversion_metric_id", nil)), 400, "/data/attributes/conversion_metric_id", "required"},
		{"unknown conversion metric", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "conversion_metric_id", "NOPE00")), 400, "/data/attributes/conversion_metric_id", "NOPE00"},
		{"missing timeframe", "/api/segment-values-reports", reportBody(t, "segment-values-report", with(sg, "timeframe", nil)), 400, "/data/attributes/timeframe", "required"},
		{"unknown timeframe key", "/api/segment-values-reports", reportBody(t, "segment-values-report", with(sg, "timeframe", map[string]any{"key": "last_2_days"})), 400, "/data/attributes/timeframe/key", "last_2_days"},
		{"key and start", "/api/segment-values-reports", reportBody(t, "segment-values-report", with(sg, "timeframe", map[string]any{"key": "today", "start": "2025-01-01T00:00:00"})), 400, "/data/attributes/timeframe", "either"},
		{"custom timeframe without end", "/api/form-values-reports", reportBody(t, "form-values-report", with(fo, "timeframe", map[string]any{"start": "2025-10-01T00:00:00"})), 400, "/data/attributes/timeframe/end", "required"},
		{"end before start", "/api/form-values-reports", reportBody(t, "form-values-report", with(fo, "timeframe", tf("2025-10-02T00:00:00", "2025-10-01T00:00:00"))), 400, "/data/attributes/timeframe", "after"},
		{"bad datetime", "/api/form-values-reports", reportBody(t, "form-values-report", with(fo, "timeframe", tf("yesterday", "2025-10-01T00:00:00"))), 400, "/data/attributes/timeframe/start", "yesterday"},
		{"timeframe over a year", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "timeframe", tf("2024-09-30T00:00:00", "2025-10-01T00:00:00"))), 400, "/data/attributes/timeframe", "1 year"},
		{"segment data before June 2023", "/api/segment-values-reports", reportBody(t, "segment-values-report", with(sg, "timeframe", tf("2023-05-31T00:00:00", "2023-07-01T00:00:00"))), 400, "/data/attributes/timeframe", "2023-06-01"},
		{"missing interval", "/api/flow-series-reports", reportBody(t, "flow-series-report", with(fs, "interval", nil)), 400, "/data/attributes/interval", "required"},
		{"unknown interval", "/api/flow-series-reports", reportBody(t, "flow-series-report", with(fs, "interval", "yearly")), 400, "/data/attributes/interval", "yearly"},
		{"hourly over 7 days", "/api/flow-series-reports", reportBody(t, "flow-series-report", with(fs, "interval", "hourly", "timeframe", tf("2025-10-01T00:00:00", "2025-10-08T00:00:01"))), 400, "/data/attributes/interval", "7 days"},
		{"daily over 60 days", "/api/form-series-reports", reportBody(t, "form-series-report", with(valid["/api/form-series-reports"], "interval", "daily", "timeframe", map[string]any{"key": "last_90_days"})), 400, "/data/attributes/interval", "60 days"},
		{"monthly over 52 weeks", "/api/segment-series-reports", reportBody(t, "segment-series-report", with(valid["/api/segment-series-reports"], "interval", "monthly", "timeframe", map[string]any{"key": "last_365_days"})), 400, "/data/attributes/interval", "364 days"},
		{"group_by without a required attribute", "/api/flow-values-reports", reportBody(t, "flow-values-report", with(fv, "group_by", []string{"flow_id", "send_channel"})), 400, "/data/attributes/group_by", "flow_message_id"},
		{"unknown group_by", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "group_by", []string{"campaign_id", "campaign_message_id", "flow_id"})), 400, "/data/attributes/group_by", `"flow_id"`},
		{"group_by prerequisite", "/api/form-values-reports", reportBody(t, "form-values-report", with(fo, "group_by", []string{"form_version_id"})), 400, "/data/attributes/group_by", "form_id"},
		{"filter with or", "/api/flow-values-reports", reportBody(t, "flow-values-report", with(fv, "filter", `or(equals(flow_id,"a"),equals(flow_id,"b"))`)), 400, "/data/attributes/filter", "or"},
		{"filter on an unknown field", "/api/flow-values-reports", reportBody(t, "flow-values-report", with(fv, "filter", `equals(campaign_id,"a")`)), 400, "/data/attributes/filter", "campaign_id"},
		{"two filters on one attribute", "/api/flow-values-reports", reportBody(t, "flow-values-report", with(fv, "filter", `and(equals(flow_id,"a"),contains-any(flow_id,["b"]))`)), 400, "/data/attributes/filter", "one filter"},
		{"send_channel value", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "filter", `equals(send_channel,"fax")`)), 400, "/data/attributes/filter", "fax"},
		{"list filter over 100 items", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "filter", "contains-any(campaign_id,["+strings.Join(many, ",")+"])")), 400, "/data/attributes/filter", "100"},
		{"contains-all on a scalar", "/api/campaign-values-reports", reportBody(t, "campaign-values-report", with(cv, "filter", `contains-all(campaign_id,["a"])`)), 400, "/data/attributes/filter", "contains-all"},
		{"aggregate without filter", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "filter", nil)), 400, "/data/attributes/filter", "required"},
		{"aggregate without time range", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "filter", []string{"greater-or-equal(datetime,2025-09-01T00:00:00)"})), 400, "/data/attributes/filter", "time range"},
		{"aggregate with a quoted datetime", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "filter", []string{"greater-or-equal(datetime,'2025-09-01')", "less-than(datetime,2025-10-01)"})), 400, "/data/attributes/filter", "must not be quoted"},
		{"aggregate measurement", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "measurements", []string{"average"})), 400, "/data/attributes/measurements", "average"},
		{"aggregate by", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "by", []string{"Colour"})), 400, "/data/attributes/by", "Colour"},
		{"aggregate interval", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "interval", "daily")), 400, "/data/attributes/interval", "daily"},
		{"aggregate timezone", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "timezone", "Europe/Kyiv")), 400, "/data/attributes/timezone", "Europe/Kyiv"},
		{"aggregate page_size", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "page_size", 0)), 400, "/data/attributes/page_size", "positive"},
		{"aggregate metric", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "metric_id", "NOPE00")), 400, "/data/attributes/metric_id", "NOPE00"},
		{"aggregate sort", "/api/metric-aggregates", reportBody(t, "metric-aggregate", with(ma, "sort", "datetime")), 400, "/data/attributes/sort", "datetime"},
		{"fields of another type", "/api/flow-values-reports?fields[campaign-values-report]=results", reportBody(t, "flow-values-report", fv), 400, "", ""},
		{"unknown sparse field", "/api/flow-values-reports?fields[flow-values-report]=rows", reportBody(t, "flow-values-report", fv), 400, "", "rows"},
		{"page_cursor where none is declared", "/api/form-values-reports?page_cursor=abc", reportBody(t, "form-values-report", fo), 400, "", "page_cursor"},
		{"invalid page_cursor", "/api/flow-values-reports?page_cursor=abc", reportBody(t, "flow-values-report", fv), 400, "", "cursor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, s, c.path, c.body)
			require.Equal(t, c.status, r.status, string(r.body))
			e := r.firstError()
			require.NotNil(t, e, string(r.body))
			assert.Contains(t, e["detail"], c.detail)
			if c.pointer != "" {
				assert.Equal(t, c.pointer, errorPointer(r))
			}
			if strings.Contains(c.path, "?") && c.pointer == "" && c.detail != "JSON parse error" {
				assert.NotEmpty(t, r.errorParameter(), "query parameter errors name the parameter")
			}
			validate(t, clientError, r.body)
		})
	}
	t.Run("auth, scopes, revision and method as for GETs", func(t *testing.T) {
		body := reportBody(t, "campaign-values-report", cv)
		for _, c := range []struct {
			status int
			code   string
			hdr    []string
		}{
			{401, "not_authenticated", []string{"Authorization", ""}},
			{401, "authentication_failed", []string{"Authorization", "Klaviyo-API-Key pk_nobody"}},
			{403, "permission_denied", []string{"Authorization", "Klaviyo-API-Key pk_flows"}},
			{400, "invalid", []string{"revision", ""}},
			{400, "invalid", []string{"revision", "2031-01-01"}},
		} {
			r := post(t, s, "/api/campaign-values-reports", body, c.hdr...)
			assert.Equal(t, c.status, r.status, "%v: %s", c.hdr, r.body)
			assert.Equal(t, c.code, r.firstError()["code"], c.hdr)
			validate(t, clientError, r.body)
		}
		assert.Contains(t, post(t, s, "/api/campaign-values-reports", body, "Authorization", "Klaviyo-API-Key pk_flows").firstError()["detail"], "campaigns:read")
		assert.Equal(t, 200, post(t, s, "/api/flow-values-reports/", reportBody(t, "flow-values-report", fv), "Authorization", "Klaviyo-API-Key pk_flows").status,
			"flows:read is enough for flow reports, and a trailing slash is accepted")
		r := get(t, s, "/api/campaign-values-reports")
		assert.Equal(t, 405, r.status)
		assert.Equal(t, "POST", r.header.Get("Allow"))
		st := s.Stats()
		assert.Equal(t, 1, st.ByPath["/api/campaign-values-reports"]["405"], "report requests are counted under their path")
		assert.Equal(t, 1, st.ByPath["/api/flow-values-reports"]["200"])
	})
}

// TestReportSparseFieldsAndPages checks fields[<type>] and that page_cursor pages partition the results.
func TestReportSparseFieldsAndPages(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.ReportPageSize = 3; o.Scale = Scale{Events: 20000} })
	f := newReportFixture(t, s)
	body := f.validBodies()["/api/flow-values-reports"]
	r := post(t, s, "/api/flow-series-reports?fields[flow-series-report]=results", reportBody(t, "flow-series-report", f.validBodies()["/api/flow-series-reports"]))
	require.Equal(t, 200, r.status, string(r.body))
	a := r.doc["data"].(map[string]any)["attributes"].(map[string]any)
	assert.Contains(t, a, "results")
	assert.NotContains(t, a, "date_times")

	all := startSmall(t, func(o *Options) { o.Scale = Scale{Events: 20000} })
	want := results(postOK(t, all, "/api/flow-values-reports", "flow-values-report", body), "results")
	require.Greater(t, len(want), 3, "enough rows for several pages")
	var got []map[string]any
	next := "/api/flow-values-reports"
	for pages := 0; next != ""; pages++ {
		require.Less(t, pages, 100)
		r := post(t, s, next, reportBody(t, "flow-values-report", body))
		require.Equal(t, 200, r.status, string(r.body))
		page := results(r.doc["data"].(map[string]any)["attributes"].(map[string]any), "results")
		assert.LessOrEqual(t, len(page), 3)
		got = append(got, page...)
		// Relationships name the flows and messages of this page.
		rel := r.doc["data"].(map[string]any)["relationships"].(map[string]any)["flow-messages"].(map[string]any)["data"].([]any)
		assert.NotEmpty(t, rel)
		next = strings.TrimPrefix(r.link("next"), s.URL())
		if next != "" {
			other := post(t, s, next, reportBody(t, "flow-values-report", with(body, "statistics", []string{"clicks"})))
			assert.Equal(t, 400, other.status, "a cursor belongs to the body it was issued for")
			assert.Equal(t, "page_cursor", other.errorParameter())
		}
	}
	assert.Equal(t, fmt.Sprint(want), fmt.Sprint(got), "pages partition the results in order")
}

// TestMetricAggregatePages pages metric aggregate rows at page_size, by links.next or by the
// cursor in attributes.page_cursor.
func TestMetricAggregatePages(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.Scale = Scale{Events: 20000} })
	f := newReportFixture(t, s)
	body := with(f.validBodies()["/api/metric-aggregates"], "by", []string{"$attributed_message"})
	want := results(postOK(t, s, "/api/metric-aggregates", "metric-aggregate", body), "data")
	require.Greater(t, len(want), 2)
	for _, inBody := range []bool{false, true} {
		var got []map[string]any
		paged := with(body, "page_size", 2)
		next := "/api/metric-aggregates"
		for pages := 0; next != ""; pages++ {
			require.Less(t, pages, 100)
			r := post(t, s, next, reportBody(t, "metric-aggregate", paged))
			require.Equal(t, 200, r.status, string(r.body))
			got = append(got, results(r.doc["data"].(map[string]any)["attributes"].(map[string]any), "data")...)
			next = strings.TrimPrefix(r.link("next"), s.URL())
			if inBody && next != "" {
				u := strings.SplitN(next, "page_cursor=", 2)
				paged = with(paged, "page_cursor", u[1])
				next = "/api/metric-aggregates"
			}
		}
		assert.Equal(t, fmt.Sprint(want), fmt.Sprint(got), "cursor in the body: %v", inBody)
	}
}
