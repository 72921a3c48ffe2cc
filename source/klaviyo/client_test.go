package klaviyo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGetSendsKlaviyoHeadersAndQuery(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.UserAgent = "source-klaviyo/9.9 (test)" })
	var calls atomic.Int32
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		assert.Equal(t, "Klaviyo-API-Key "+testKey, r.Header.Get("Authorization"))
		assert.Equal(t, "2026-07-15", r.Header.Get("revision"))
		assert.Equal(t, "application/vnd.api+json", r.Header.Get("Accept"))
		assert.Equal(t, "source-klaviyo/9.9 (test)", r.Header.Get("User-Agent"))
		assert.Equal(t, basePath+"/api/profiles", strings.SplitN(r.RequestURI, "?", 2)[0])
		assert.Equal(t,
			"additional-fields[profile]=subscriptions&filter=greater-or-equal%28updated%2C2024-01-01T00%3A00%3A00Z%29"+
				"&page[size]=100&sort=updated", r.URL.RawQuery)
		assert.Equal(t, "greater-or-equal(updated,2024-01-01T00:00:00Z)", r.URL.Query().Get("filter"))
		writeJSON(w, http.StatusOK, page("", "p1", "p2"))
	})
	req := profilesRequest()
	req.Query = url.Values{
		"page[size]":                 {"100"},
		"filter":                     {"greater-or-equal(updated,2024-01-01T00:00:00Z)"},
		"sort":                       {"updated"},
		"additional-fields[profile]": {"subscriptions"},
	}
	doc, err := f.c.Get(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, []string{"p1", "p2"}, ids(doc))
	assert.Empty(t, doc.Next)
	assert.EqualValues(t, 1, calls.Load())

	st := f.c.Stats()
	assert.EqualValues(t, 1, st.Requests)
	assert.EqualValues(t, 1, st.Pages)
	assert.EqualValues(t, 2, st.Records)
	assert.EqualValues(t, len(page("", "p1", "p2")), st.Bytes)
	assert.Zero(t, st.Retries)
	assert.Empty(t, f.clock.Sleeps(), "a roomy budget never waits")
}

func TestEncodeQueryKeepsKlaviyoStyle(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "", encodeQuery(nil))
	assert.Equal(t, "fields[event]=datetime%2Cuuid&filter=equals%28name%2C%22a%20b%2Bc%22%29&include=metric",
		encodeQuery(url.Values{
			"include":       {"metric"},
			"fields[event]": {"datetime,uuid"},
			"filter":        {`equals(name,"a b+c")`},
		}))
	// Whatever the encoding, a standard parser reads the values back unchanged.
	back, err := url.ParseQuery(encodeQuery(url.Values{"filter": {`any(id,["a&b","c=d"])`}, "page[cursor]": {"x/y+z"}}))
	require.NoError(t, err)
	assert.Equal(t, `any(id,["a&b","c=d"])`, back.Get("filter"))
	assert.Equal(t, "x/y+z", back.Get("page[cursor]"))
}

func TestPagesFollowsNextAcrossThreePagesThenStops(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var seen []string
	var mu sync.Mutex
	f.mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RawQuery)
		mu.Unlock()
		next := func(cursor string) string {
			return f.origin() + basePath + "/api/events?page%5Bcursor%5D=" + cursor + "&page%5Bsize%5D=2"
		}
		switch r.URL.Query().Get("page[cursor]") {
		case "":
			writeJSON(w, http.StatusOK, page(next("c2"), "e1", "e2"))
		case "c2":
			writeJSON(w, http.StatusOK, page(next("c3"), "e3", "e4"))
		case "c3":
			writeJSON(w, http.StatusOK, page("", "e5"))
		default:
			writeJSON(w, http.StatusBadRequest, `{"errors":[{"code":"invalid","title":"bad cursor","detail":"bad cursor"}]}`)
		}
	})
	req := Request{Endpoint: "/api/events", Budget: roomy(), Path: "/api/events", Query: url.Values{"page[size]": {"2"}}}
	var docs []*Document
	for doc, err := range f.c.Pages(context.Background(), req) {
		require.NoError(t, err)
		docs = append(docs, doc)
	}
	assert.Equal(t, []string{"e1", "e2", "e3", "e4", "e5"}, ids(docs...))
	assert.Equal(t, []string{"page[size]=2", "page%5Bcursor%5D=c2&page%5Bsize%5D=2", "page%5Bcursor%5D=c3&page%5Bsize%5D=2"},
		seen, "page 1 from Path+Query, then links.next verbatim, and nothing after a page without next")
}

func TestPagesStopsWhenTheConsumerStops(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var calls atomic.Int32
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, http.StatusOK, page(f.origin()+basePath+"/api/profiles?page%5Bcursor%5D=more", "p1"))
	})
	for doc, err := range f.c.Pages(context.Background(), profilesRequest()) {
		require.NoError(t, err)
		require.NotNil(t, doc)
		break
	}
	assert.EqualValues(t, 1, calls.Load())
}

func TestPagesResolvesARelativeNext(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page[cursor]") == "" {
			writeJSON(w, http.StatusOK, page(basePath+"/api/profiles?page%5Bcursor%5D=2", "p1"))
			return
		}
		writeJSON(w, http.StatusOK, page("", "p2"))
	})
	var docs []*Document
	for doc, err := range f.c.Pages(context.Background(), profilesRequest()) {
		require.NoError(t, err)
		docs = append(docs, doc)
	}
	assert.Equal(t, []string{"p1", "p2"}, ids(docs...))
}

func TestPagesRefusesANextOnAnotherOrigin(t *testing.T) {
	t.Parallel()
	for name, next := range map[string]func(f *fixture) string{
		"other host":   func(*fixture) string { return "http://elsewhere.example/api/profiles?page%5Bcursor%5D=2" },
		"other scheme": func(f *fixture) string { return strings.Replace(f.origin(), "http://", "https://", 1) + "/api/x" },
		"other port":   func(*fixture) string { return "http://127.0.0.1:1/api/profiles?page%5Bcursor%5D=2" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			var calls atomic.Int32
			f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				writeJSON(w, http.StatusOK, page(next(f), "p1"))
			})
			var got []string
			var last error
			for doc, err := range f.c.Pages(context.Background(), profilesRequest()) {
				if err != nil {
					last = err
					continue
				}
				got = append(got, ids(doc)...)
			}
			assert.Equal(t, []string{"p1"}, got, "the first page is still delivered")
			require.Error(t, last)
			var e *Error
			require.ErrorAs(t, last, &e)
			assert.Equal(t, KindBadRequest, e.Kind)
			assert.Contains(t, last.Error(), "the API key is only sent to base_url")
			assert.EqualValues(t, 1, calls.Load())
		})
	}
}

func TestPagesRefusesANextThatRepeats(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var calls atomic.Int32
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, http.StatusOK, page(f.origin()+basePath+"/api/profiles?page%5Bcursor%5D=same", "p1"))
	})
	var errs []error
	for _, err := range f.c.Pages(context.Background(), profilesRequest()) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], KindBadRequest)
	assert.EqualValues(t, 2, calls.Load())
}

// hangUp closes the connection without an answer; with linger 0 the client sees a reset.
func hangUp(t *testing.T, w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if !assert.NoError(t, err) {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

func TestRetriesTransientFailuresThenSucceeds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		fail   func(t *testing.T, w http.ResponseWriter)
		reason string
	}{
		{"500", func(_ *testing.T, w http.ResponseWriter) {
			writeJSON(w, 500, `{"errors":[{"id":"1","code":"error","title":"A server error occurred.","detail":"boom"}]}`)
		}, "server_error"},
		{"502 html", func(_ *testing.T, w http.ResponseWriter) { writeJSON(w, 502, "<html>Bad Gateway</html>") }, "server_error"},
		{"503", func(_ *testing.T, w http.ResponseWriter) { writeJSON(w, 503, "") }, "server_error"},
		{"connection reset", func(t *testing.T, w http.ResponseWriter) { hangUp(t, w, true) }, "network"},
		{"closed before answering", func(t *testing.T, w http.ResponseWriter) { hangUp(t, w, false) }, "network"},
		{"body cut short", func(_ *testing.T, w http.ResponseWriter) {
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"data":[{"type":"profile","id":"p1","attr`)
		}, "network"},
		{"truncated document", func(_ *testing.T, w http.ResponseWriter) {
			writeJSON(w, 200, `{"data":[{"type":"profile","id":"p1","attributes":{"a":1}`)
		}, "bad_body"},
		{"malformed attributes", func(_ *testing.T, w http.ResponseWriter) {
			writeJSON(w, 200, `{"data":[{"type":"profile","id":"p1","attributes":{"a" 1}}]}`)
		}, "bad_body"},
		{"not JSON", func(_ *testing.T, w http.ResponseWriter) { writeJSON(w, 200, "<html>maintenance</html>") }, "bad_body"},
		{"no data", func(_ *testing.T, w http.ResponseWriter) { writeJSON(w, 200, `{}`) }, "bad_body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			var calls atomic.Int32
			f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					tc.fail(t, w)
					return
				}
				writeJSON(w, 200, page("", "p1", "p2"))
			})
			doc, err := f.c.Get(context.Background(), profilesRequest())
			require.NoError(t, err)
			assert.Equal(t, []string{"p1", "p2"}, ids(doc))
			assert.EqualValues(t, 2, calls.Load())
			st := f.c.Stats()
			assert.EqualValues(t, 2, st.Requests)
			assert.EqualValues(t, 1, st.Retries)
			assert.Equal(t, map[string]int64{tc.reason: 1}, st.RetriesByReason)
			assert.Equal(t, []time.Duration{375 * time.Millisecond}, f.clock.Sleeps(), "one backoff: 0.5 s with jitter 0.5")
			require.Len(t, f.logs.Lines(), 1)
			assert.Contains(t, f.logs.Lines()[0], "WARN: Klaviyo /api/profiles: attempt 1 of 8 failed")
		})
	}
}

func TestRetriesATimedOutAttempt(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	var calls atomic.Int32
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done() // never answers; the client's per-attempt deadline ends it
			return
		}
		writeJSON(w, 200, page("", "p1"))
	})
	doc, err := f.c.Get(context.Background(), profilesRequest())
	require.NoError(t, err)
	assert.Equal(t, []string{"p1"}, ids(doc))
	assert.Equal(t, map[string]int64{"timeout": 1}, f.c.Stats().RetriesByReason)
}

func TestMaxAttemptsIsEnforced(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.MaxAttempts = 3 })
	var calls atomic.Int32
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, 503, `{"errors":[{"id":"1","code":"unavailable","title":"Service unavailable","detail":"try later"}]}`)
	})
	_, err := f.c.Get(context.Background(), profilesRequest())
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindTransient, e.Kind)
	assert.Equal(t, 503, e.Status)
	assert.Equal(t, "/api/profiles", e.Endpoint)
	assert.Equal(t, "Klaviyo did not answer /api/profiles successfully (3 attempts, the last: status 503: "+
		"Service unavailable try later): try again later", err.Error())
	assert.EqualValues(t, 3, calls.Load(), "exactly MaxAttempts requests")
	assert.Equal(t, []time.Duration{375 * time.Millisecond, 750 * time.Millisecond}, f.clock.Sleeps())
	assert.EqualValues(t, 2, f.c.Stats().Retries)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	for name, header := range map[string]func(now time.Time) string{
		"seconds":   func(time.Time) string { return "7" },
		"HTTP date": func(now time.Time) string { return now.Add(7 * time.Second).Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			var calls atomic.Int32
			f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					w.Header().Set("Retry-After", header(f.clock.Now()))
					writeJSON(w, 429, `{"errors":[{"id":"1","code":"throttled","title":"Request was throttled.","detail":"Expected available in 7 seconds."}]}`)
					return
				}
				writeJSON(w, 200, page("", "p1"))
			})
			doc, err := f.c.Get(context.Background(), profilesRequest())
			require.NoError(t, err)
			assert.Equal(t, []string{"p1"}, ids(doc))
			assert.Equal(t, []time.Duration{7 * time.Second}, f.clock.Sleeps(),
				"waits the Retry-After (longer than the 375 ms backoff), and the endpoint gate has passed by then")
			st := f.c.Stats()
			assert.EqualValues(t, 1, st.RateLimited)
			assert.EqualValues(t, 1, st.SlowDowns)
			assert.Equal(t, map[string]int64{"rate_limited": 1}, st.RetriesByReason)
			assert.Contains(t, strings.Join(f.logs.Lines(), "\n"), "rate limited (429), slowing to")
		})
	}
}

func TestRetryAfterHoldsBackEveryCallerOfTheEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t)
	start := f.clock.Now()
	var (
		mu  sync.Mutex
		log []string
	)
	f.mux.HandleFunc("GET /api/lists/{id}/profiles", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := len(log) == 0
		log = append(log, fmt.Sprintf("%s@%s", r.PathValue("id"), f.clock.Now().Sub(start)))
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "30")
			writeJSON(w, 429, `{"errors":[]}`)
			return
		}
		writeJSON(w, 200, page("", "p-"+r.PathValue("id")))
	})
	f.mux.HandleFunc("GET /api/metrics", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		log = append(log, fmt.Sprintf("metrics@%s", f.clock.Now().Sub(start)))
		mu.Unlock()
		writeJSON(w, 200, page("", "m1"))
	})
	members := func(id string) Request {
		return Request{Endpoint: "/api/lists/{id}/profiles", Budget: roomy(), Path: "/api/lists/" + id + "/profiles"}
	}
	// While caller A sleeps out its 429, callers B (same endpoint, another list) and C (another endpoint) start.
	var (
		started    atomic.Bool
		docB, docC *Document
		errB, errC error
	)
	f.clock.hook = func(time.Duration) {
		if started.CompareAndSwap(false, true) { // only in A's sleep, not in B's own
			docC, errC = f.c.Get(context.Background(), Request{Endpoint: "/api/metrics", Budget: roomy(), Path: "/api/metrics"})
			docB, errB = f.c.Get(context.Background(), members("B"))
		}
	}
	docA, errA := f.c.Get(context.Background(), members("A"))
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.NoError(t, errC)
	assert.Equal(t, []string{"p-A"}, ids(docA))
	assert.Equal(t, []string{"p-B"}, ids(docB))
	assert.Equal(t, []string{"m1"}, ids(docC))
	assert.Equal(t, []string{"A@0s", "metrics@0s", "B@30s", "A@1m0s"}, log,
		"B waits for the endpoint's Retry-After although it never saw the 429; another endpoint does not wait")
	assert.Equal(t, []time.Duration{30 * time.Second, 30 * time.Second}, f.clock.Sleeps())
}

func TestALongRetryAfterFailsFastWithRetryAt(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.MaxRetryAfter = time.Minute })
	var calls atomic.Int32
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "86400")
		writeJSON(w, 429, `{"errors":[{"id":"1","code":"throttled","title":"Request was throttled.","detail":"daily quota"}]}`)
	})
	f.mux.HandleFunc("GET /api/metrics", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, page("", "m1"))
	})
	now := f.clock.Now()
	_, err := f.c.Get(context.Background(), profilesRequest())
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindRateLimited, e.Kind)
	assert.True(t, e.RetryAt.Equal(now.Add(24*time.Hour)), "RetryAt %s", e.RetryAt)
	assert.Equal(t, "Klaviyo's rate limit for /api/profiles is used up until 2026-11-26T12:00:00Z: retry the sync "+
		"after then (Klaviyo asked to wait 24h0m0s, longer than the 1m0s the connector waits)", err.Error())
	assert.Empty(t, f.clock.Sleeps(), "no waiting on a daily quota")
	assert.EqualValues(t, 1, calls.Load())

	// Other callers of the endpoint fail fast too, without spending a request; other endpoints carry on.
	_, err = f.c.Get(context.Background(), profilesRequest())
	assert.ErrorIs(t, err, KindRateLimited)
	assert.EqualValues(t, 1, calls.Load())
	doc, err := f.c.Get(context.Background(), Request{Endpoint: "/api/metrics", Budget: roomy(), Path: "/api/metrics"})
	require.NoError(t, err)
	assert.Equal(t, []string{"m1"}, ids(doc))
}

func TestClientErrorsAreTypedAndNotRetried(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		body   string
		kind   Kind
		msg    string
	}{
		{"401", 401, `{"errors":[{"id":"1","code":"not_authenticated","title":"Authentication credentials were not provided.","detail":"Missing or invalid private key."}]}`,
			KindAuth, "Klaviyo refused the API key (401) on /api/profiles: check api_key in the config " +
				"(Klaviyo said: Authentication credentials were not provided. Missing or invalid private key.)"},
		{"400 naming the key", 400, `{"errors":[{"id":"1","code":"invalid","title":"Invalid API key","detail":"The API key specified is invalid."}]}`,
			KindAuth, "Klaviyo refused the API key (400) on /api/profiles: check api_key in the config " +
				"(Klaviyo said: Invalid API key The API key specified is invalid.)"},
		{"403", 403, `{"errors":[{"id":"1","code":"permission_denied","title":"You do not have permission to perform this action.","detail":"x"}]}`,
			KindScope, "the API key lacks scope profiles:read needed for /api/profiles: add it to the key in Klaviyo"},
		{"404", 404, `{"errors":[{"id":"1","code":"not_found","title":"Not found.","detail":"Not found."}]}`,
			KindNotFound, "Klaviyo found nothing at /api/profiles (404): the resource may have been deleted (Not found.)"},
		{"400 bad filter", 400, `{"errors":[{"id":"1","code":"invalid","title":"Invalid input.","detail":"'updatd' is not a valid field for the resource 'profile'.","source":{"parameter":"filter"}}]}`,
			KindBadRequest, "Klaviyo rejected the request to /api/profiles (400) (Invalid input. 'updatd' is not a valid " +
				"field for the resource 'profile'. [parameter filter]): check the config values the request uses " +
				"(start_date, filters), and report it if they look right"},
		{"410", 410, `{"errors":[]}`, KindBadRequest, ""},
		{"422", 422, `not json`, KindBadRequest, ""},
		{"501", 501, ``, KindBadRequest, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			var calls atomic.Int32
			f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				writeJSON(w, tc.status, tc.body)
			})
			_, err := f.c.Get(context.Background(), profilesRequest())
			require.Error(t, err)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.kind, e.Kind)
			assert.ErrorIs(t, err, tc.kind)
			assert.Equal(t, tc.status, e.Status)
			assert.Equal(t, "/api/profiles", e.Endpoint)
			if tc.msg != "" {
				assert.Equal(t, tc.msg, err.Error())
			}
			assert.EqualValues(t, 1, calls.Load(), "not retried")
			assert.Empty(t, f.clock.Sleeps())
			assert.Zero(t, f.c.Stats().Retries)
		})
	}
}

func TestRedirectToAnotherHostIsNotFollowed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.example/steal", http.StatusFound)
	})
	_, err := f.c.Get(context.Background(), profilesRequest())
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindBadRequest, e.Kind)
	assert.Equal(t, http.StatusFound, e.Status)
}

func TestTheAPIKeyNeverAppearsInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.MaxAttempts = 2; c.MaxRetryAfter = time.Minute })
	echo := func(r *http.Request) string { return r.Header.Get("Authorization") }
	f.mux.HandleFunc("GET /api/echo/{status}", func(w http.ResponseWriter, r *http.Request) {
		var status int
		_, _ = fmt.Sscan(r.PathValue("status"), &status)
		if status == 429 {
			w.Header().Set("Retry-After", "3600")
		}
		// Klaviyo-style error document echoing the header, and a plain-text variant.
		if status%2 == 0 {
			writeJSON(w, status, fmt.Sprintf(`{"errors":[{"id":"1","code":"invalid","title":"Bad key %s","detail":"you sent %q"}]}`,
				echo(r), echo(r)))
		} else {
			writeJSON(w, status, "you sent "+echo(r))
		}
	})
	f.mux.HandleFunc("GET /api/bad-body", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"data":[{"type":"x","id":"y","attributes":{"`+testKey+`" "`+testKey+`"}}]}`)
	})
	f.mux.HandleFunc("GET /api/bad-next", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, page("http://"+testKey+".example/api/x?key="+testKey, "p1"))
	})
	var outputs []string
	for _, status := range []int{400, 401, 403, 404, 410, 422, 429, 500, 501, 503} {
		_, err := f.c.Get(context.Background(), Request{Endpoint: "/api/echo/{status}", Budget: roomy(),
			Path: fmt.Sprintf("/api/echo/%d", status)})
		require.Error(t, err, "status %d", status)
		outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
	}
	for _, path := range []string{"/api/bad-body", "/api/bad-next"} {
		var last error
		for _, err := range f.c.Pages(context.Background(), Request{Endpoint: path, Budget: roomy(), Path: path}) {
			if err != nil {
				last = err
			}
		}
		require.Error(t, last, path)
		outputs = append(outputs, last.Error(), fmt.Sprintf("%#v", last))
		if u := errors.Unwrap(last); u != nil {
			outputs = append(outputs, u.Error())
		}
	}
	outputs = append(outputs, f.logs.Lines()...)
	all := strings.Join(outputs, "\n")
	assert.NotContains(t, all, testKey)
	assert.NotContains(t, all, "SECRETSECRET")
	assert.Contains(t, all, "Klaviyo-API-Key ****", "the echoes were there, masked")
}

func TestConcurrencyIsCappedAcrossEndpoints(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.MaxConcurrency = 2 })
	var inFlight, peak atomic.Int32
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	handler := func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		writeJSON(w, 200, page("", "x"))
	}
	f.mux.HandleFunc("GET /api/profiles", handler)
	f.mux.HandleFunc("GET /api/events", handler)
	const callers = 6
	var wg sync.WaitGroup
	for i := range callers {
		path := []string{"/api/profiles", "/api/events"}[i%2]
		wg.Go(func() {
			_, err := f.c.Get(context.Background(), Request{Endpoint: path, Budget: roomy(), Path: path})
			assert.NoError(t, err)
		})
	}
	<-arrived
	<-arrived
	// Give any request that slipped past the cap the time to show up before anything is released.
	time.Sleep(50 * time.Millisecond)
	for range callers - 2 {
		release <- struct{}{}
		<-arrived
	}
	release <- struct{}{}
	release <- struct{}{}
	wg.Wait()
	assert.EqualValues(t, 2, peak.Load())
	assert.EqualValues(t, callers, f.c.Stats().Requests)
}

func TestCancellationStopsAWaitingRequest(t *testing.T) {
	t.Parallel()
	t.Run("waiting out a Retry-After", func(t *testing.T) {
		t.Parallel()
		served := make(chan struct{}, 1)
		f := setup(t, func(c *Config) { c.Sleep = nil }) // real sleeping
		f.c.now = time.Now
		f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "300")
			writeJSON(w, 429, `{"errors":[]}`)
			served <- struct{}{}
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-served; cancel() }()
		_, err := f.c.Get(ctx, profilesRequest())
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		var e *Error
		assert.False(t, errors.As(err, &e), "cancellation is not a Klaviyo failure")
		assert.EqualValues(t, 1, f.c.Stats().Requests)
	})
	t.Run("waiting for the rate budget", func(t *testing.T) {
		t.Parallel()
		waiting := make(chan time.Duration, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := setup(t, func(c *Config) {
			c.Sleep = func(ctx context.Context, d time.Duration) error {
				waiting <- d
				return sleep(ctx, d)
			}
		})
		f.c.now = time.Now
		f.mux.HandleFunc("GET /api/segments", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, page("", "s1")) })
		req := Request{Endpoint: "/api/segments", Budget: TierXS(), Path: "/api/segments"}
		_, err := f.c.Get(ctx, req) // XS's one request a second
		require.NoError(t, err)
		go func() { <-waiting; cancel() }()
		_, err = f.c.Get(ctx, req) // the next may go 1.1 s later
		assert.ErrorIs(t, err, context.Canceled)
		assert.EqualValues(t, 1, f.c.Stats().Requests)
	})
	t.Run("already cancelled", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.c.Get(ctx, profilesRequest())
		assert.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, f.c.Stats().Requests)
	})
}

func TestBudgetWaitsUseTheInjectedClock(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /api/segments", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, page("", "s1")) })
	req := Request{Endpoint: "/api/segments", Budget: TierM(), Path: "/api/segments"}
	for range 21 {
		_, err := f.c.Get(context.Background(), req)
		require.NoError(t, err)
	}
	// M allows 10 requests a second: each burst of 10 goes at once, and the 11th and 21st wait for the next second
	// (and the jitter margin).
	assert.Equal(t, []time.Duration{shortWindow, shortWindow}, f.clock.Sleeps())
	assert.Equal(t, 2*shortWindow, f.c.Stats().Wait)
}

func TestGetRejectsIncompleteRequests(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.c.Get(context.Background(), Request{Budget: roomy(), Path: "/api/x"})
	assert.ErrorContains(t, err, "Endpoint is empty")
	_, err = f.c.Get(context.Background(), Request{Endpoint: "/api/x", Path: "/api/x"})
	assert.ErrorContains(t, err, "no rate budget")
	assert.Zero(t, f.c.Stats().Requests)
}

func TestNewValidatesAndDefaults(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no key":         {BaseURL: "https://a.klaviyo.com"},
		"blank key":      {BaseURL: "https://a.klaviyo.com", APIKey: "  "},
		"key with space": {BaseURL: "https://a.klaviyo.com", APIKey: testKey + " x"},
		"no scheme":      {BaseURL: "a.klaviyo.com", APIKey: testKey},
		"ftp":            {BaseURL: "ftp://a.klaviyo.com", APIKey: testKey},
		"query":          {BaseURL: "https://a.klaviyo.com?x=1", APIKey: testKey},
		"user info":      {BaseURL: "https://" + testKey + "@a.klaviyo.com", APIKey: testKey},
	} {
		_, err := New(cfg)
		if assert.Error(t, err, name) {
			assert.NotContains(t, err.Error(), testKey, name)
		}
	}
	c, err := New(Config{BaseURL: "https://a.klaviyo.com/", APIKey: " " + testKey + "\n"})
	require.NoError(t, err)
	assert.Equal(t, testKey, c.cfg.APIKey, "surrounding whitespace from a pasted key is dropped")
	assert.Equal(t, 60*time.Second, c.cfg.Timeout)
	assert.Equal(t, 8, c.cfg.MaxAttempts)
	assert.Equal(t, 10*time.Minute, c.cfg.MaxRetryAfter)
	assert.Equal(t, 1.0, c.cfg.RateScale)
	assert.Equal(t, 128, c.cfg.MaxConcurrency)
	tr, ok := c.http.Transport.(*http.Transport)
	require.True(t, ok)
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 128)
	target, err := c.target(Request{Path: "/api/profiles", Query: url.Values{"page[size]": {"10"}}})
	require.NoError(t, err)
	assert.Equal(t, "https://a.klaviyo.com/api/profiles?page[size]=10", target)
}

// BenchmarkGetEventsPage is the client's whole per-page cost against a local server: budget, request, body read,
// decode and the relationship lookups the engine makes. The server's own cost is in the figure too.
func BenchmarkGetEventsPage(b *testing.B) {
	body := eventsPage(1000)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		_, _ = w.Write(body)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Endpoint: "/api/events", Budget: Budget{Burst: 1 << 20, PerMinute: 1 << 30}, Path: "/api/events"}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		doc, err := c.Get(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		for i := range doc.Data {
			if _, ok := doc.Data[i].Relationships["metric"].ToOneID(); !ok {
				b.Fatal("no metric id")
			}
		}
		records += len(doc.Data)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

func TestAnEndpointKeepsItsFirstBudget(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("GET /api/profiles", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, page("", "p1")) })
	req := profilesRequest()
	for _, b := range []Budget{roomy(), TierXS(), TierXS()} {
		req.Budget = b
		_, err := f.c.Get(context.Background(), req)
		require.NoError(t, err)
	}
	assert.Empty(t, f.clock.Sleeps(), "still the roomy budget")
	assert.Equal(t, []string{"WARN: Klaviyo /api/profiles: a request declares budget 1/s 15/min, the endpoint keeps its first 1000/s 60000/min"},
		f.logs.Lines(), "logged once")
}
