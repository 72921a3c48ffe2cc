package sandbox

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

func TestEndpointTableIsCurrent(t *testing.T) {
	b, err := os.ReadFile(stableJSON)
	require.NoError(t, err)
	table, err := specgen.Build(b)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(table, endpointsJSON), "endpoints.json is stale: run go generate ./acceptance-tests/sandbox")
}

func TestAuthentication(t *testing.T) {
	s := startSmall(t, func(o *Options) {
		o.APIKeys = map[string][]string{"pk_full": nil, "pk_events": {"events:read"}}
	})
	cases := []struct {
		name, auth string
		status     int
		code       string
	}{
		{"missing", "", 401, "not_authenticated"},
		{"wrong scheme", "Bearer pk_full", 401, "not_authenticated"},
		{"unknown key", "Klaviyo-API-Key pk_secret_unknown_123", 401, "authentication_failed"},
		{"missing scope", "Klaviyo-API-Key pk_events", 403, "permission_denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, s, "/api/profiles", "Authorization", c.auth)
			require.Equal(t, c.status, r.status)
			e := r.firstError()
			require.NotNil(t, e, string(r.body))
			assert.Equal(t, c.code, e["code"])
			assert.EqualValues(t, c.status, e["status"])
			for _, k := range []string{"id", "title", "detail"} {
				assert.NotEmpty(t, e[k], k)
			}
			assert.NotContains(t, string(r.body), "pk_", "an API key must never be echoed")
		})
	}
	r := get(t, s, "/api/events", "Authorization", "Klaviyo-API-Key pk_events")
	assert.Equal(t, 200, r.status)
	r = get(t, s, "/api/profiles", "Authorization", "Klaviyo-API-Key pk_full")
	assert.Equal(t, 200, r.status)
}

func TestRevisionHeader(t *testing.T) {
	s := startSmall(t, nil)
	for rev, status := range map[string]int{
		"":                400,
		"garbage":         400,
		"2026-13-45":      400,
		"2027-01-15":      400,
		"2019-01-01":      400,
		"2026-07-15":      200,
		"2024-10-15":      200,
		"2026-07-15.pre":  200,
		"2026-07-15; x=1": 400,
	} {
		r := get(t, s, "/api/metrics", "revision", rev)
		assert.Equal(t, status, r.status, "revision %q", rev)
		if status == 400 {
			assert.Equal(t, "revision", r.errorParameter(), "revision %q", rev)
		}
	}
}

func TestTrailingSlashAndMethods(t *testing.T) {
	s := startSmall(t, nil)
	a := get(t, s, "/api/lists")
	b := get(t, s, "/api/lists/")
	require.Equal(t, 200, a.status)
	require.Equal(t, 200, b.status)
	assert.Equal(t, ids(a.data()), ids(b.data()))
	assert.Equal(t, 404, get(t, s, "/api/nothing-here").status)
	assert.Equal(t, 404, get(t, s, "/api/lists/NOPE00").status)
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/api/lists", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Klaviyo-API-Key "+DefaultAPIKey)
	req.Header.Set("revision", LatestRevision)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 405, resp.StatusCode)
}

func TestDocumentShape(t *testing.T) {
	s := startSmall(t, nil)
	r := get(t, s, "/api/events?page[size]=3&include=metric,profile&filter="+url.QueryEscape("greater-than(datetime,2025-01-01T00:00:00Z)"))
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "application/vnd.api+json", r.header.Get("Content-Type"))
	data := r.data()
	require.Len(t, data, 3)
	ev := data[0]
	attrs := ev["attributes"].(map[string]any)
	dt, err := time.Parse(time.RFC3339, attrs["datetime"].(string))
	require.NoError(t, err)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`, attrs["datetime"])
	assert.EqualValues(t, dt.Unix(), attrs["timestamp"], "timestamp is Unix seconds of datetime")
	rels := ev["relationships"].(map[string]any)
	for _, name := range []string{"profile", "metric"} {
		rel := rels[name].(map[string]any)
		d := rel["data"].(map[string]any)
		assert.Equal(t, name, d["type"])
		assert.NotEmpty(t, d["id"])
		links := rel["links"].(map[string]any)
		assert.True(t, strings.HasPrefix(links["self"].(string), s.URL()+"/api/events/"))
		assert.True(t, strings.HasPrefix(links["related"].(string), s.URL()+"/api/events/"))
	}
	assert.Equal(t, s.URL()+"/api/events/"+ev["id"].(string)+"/", ev["links"].(map[string]any)["self"])
	// included has each metric and profile once
	inc, _ := r.doc["included"].([]any)
	seen := map[string]int{}
	for _, e := range inc {
		m := e.(map[string]any)
		seen[m["type"].(string)+"/"+m["id"].(string)]++
	}
	for _, ev := range data {
		rel := ev["relationships"].(map[string]any)
		for _, name := range []string{"profile", "metric"} {
			d := rel[name].(map[string]any)["data"].(map[string]any)
			assert.Equal(t, 1, seen[d["type"].(string)+"/"+d["id"].(string)])
		}
	}
	// no included without include
	r = get(t, s, "/api/events?page[size]=3")
	_, has := r.doc["included"]
	assert.False(t, has)
}
