package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startSmall starts a default-scale sandbox at a fixed clock and stops it with the test.
func startSmall(t testing.TB, mod func(*Options)) *Server {
	t.Helper()
	opts := Options{Seed: 42, Now: fixedNow}
	if mod != nil {
		mod(&opts)
	}
	s, err := Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var fixedNow = mustTime("2025-11-01T00:00:00Z")

func mustTime(s string) (t timeT) {
	t, err := parseTime(s)
	if err != nil {
		panic(err)
	}
	return t
}

type response struct {
	status int
	header http.Header
	body   []byte
	doc    map[string]any
}

// get sends an authenticated GET with the current revision.
func get(t testing.TB, s *Server, pathAndQuery string, hdr ...string) response {
	t.Helper()
	r := send(t, s, http.MethodGet, pathAndQuery, nil, hdr...)
	_ = json.Unmarshal(r.body, &r.doc)
	return r
}

// send sends an authenticated request with the current revision; hdr pairs set headers (an
// empty value deletes one). The body is read, not decoded.
func send(t testing.TB, s *Server, method, pathAndQuery string, body io.Reader, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+pathAndQuery, body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Klaviyo-API-Key "+DefaultAPIKey)
	req.Header.Set("revision", LatestRevision)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// data returns the primary data array of a collection response.
func (r response) data() []map[string]any {
	arr, _ := r.doc["data"].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, e := range arr {
		m, _ := e.(map[string]any)
		out = append(out, m)
	}
	return out
}

func (r response) link(name string) string {
	links, _ := r.doc["links"].(map[string]any)
	s, _ := links[name].(string)
	return s
}

// firstError returns errors[0] of an error response.
func (r response) firstError() map[string]any {
	errs, _ := r.doc["errors"].([]any)
	if len(errs) == 0 {
		return nil
	}
	m, _ := errs[0].(map[string]any)
	return m
}

func (r response) errorParameter() string {
	e := r.firstError()
	src, _ := e["source"].(map[string]any)
	p, _ := src["parameter"].(string)
	return p
}

// collectAll follows links.next from a first page and returns every resource.
func collectAll(t testing.TB, s *Server, pathAndQuery string) []map[string]any {
	t.Helper()
	var out []map[string]any
	eachPage(t, s, pathAndQuery, func(r response) { out = append(out, r.data()...) })
	return out
}

// eachPage GETs a first page and every page links.next leads to, handing each 200 to fn.
func eachPage(t testing.TB, s *Server, pathAndQuery string, fn func(response)) {
	t.Helper()
	next := pathAndQuery
	for pages := 0; next != ""; pages++ {
		require.Less(t, pages, 100000, "pagination does not end")
		r := get(t, s, next)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		fn(r)
		next = ""
		if l := r.link("next"); l != "" {
			u, err := url.Parse(l)
			require.NoError(t, err)
			next = u.RequestURI()
		}
	}
}

func ids(recs []map[string]any) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		id, _ := r["id"].(string)
		out = append(out, id)
	}
	return out
}

type timeT = time.Time

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }
