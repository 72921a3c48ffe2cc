package klaviyo

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const flowValuesBody = `{"data":{"type":"flow-values-report","attributes":{"statistics":["opens"],` +
	`"timeframe":{"key":"last_30_days"},"conversion_metric_id":"M1"}}}`

// reportPage renders a flow values report page whose results are one row per flow message id.
func reportPage(next string, messages ...string) string {
	rows := make([]string, len(messages))
	for i, m := range messages {
		rows[i] = `{"groupings":{"flow_id":"F","flow_message_id":"` + m + `","send_channel":"email"},"statistics":{"opens":1}}`
	}
	nextJSON := "null"
	if next != "" {
		nextJSON = `"` + next + `"`
	}
	return `{"data":{"type":"flow-values-report","attributes":{"results":[` + strings.Join(rows, ",") +
		`]},"relationships":{"flows":{"data":[{"type":"flow","id":"F"}]}}},"links":{"self":"s","next":` + nextJSON + `}}`
}

func flowValuesRequest() PostRequest {
	return PostRequest{Request: Request{Endpoint: "/api/flow-values-reports", Budget: roomy(), Scopes: []string{"flows:read"}},
		Body: []byte(flowValuesBody)}
}

func TestPostSendsTheBodyWithKlaviyoHeadersAndFollowsNextWithTheSameBody(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var mu sync.Mutex
	var queries []string
	f.mux.HandleFunc("/api/flow-values-reports", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "Klaviyo-API-Key "+testKey, r.Header.Get("Authorization"))
		assert.Equal(t, Revision, r.Header.Get("revision"))
		assert.Equal(t, "application/vnd.api+json", r.Header.Get("Content-Type"))
		assert.Equal(t, "application/vnd.api+json", r.Header.Get("Accept"))
		assert.JSONEq(t, flowValuesBody, string(body), "every page is POSTed with the same body")
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		switch r.URL.Query().Get("page_cursor") {
		case "":
			writeJSON(w, 200, reportPage(f.origin()+basePath+"/api/flow-values-reports?fields%5Bflow-values-report%5D=results&page_cursor=p2", "m1", "m2"))
		case "p2":
			writeJSON(w, 200, reportPage("", "m3"))
		}
	})
	req := flowValuesRequest()
	req.Query = url.Values{"fields[flow-values-report]": {"results"}}
	var attempts atomic.Int32
	req.Sent = func() { attempts.Add(1) }
	var results []string
	for doc, err := range f.c.PostPages(context.Background(), req) {
		require.NoError(t, err)
		require.Len(t, doc.Data, 1)
		assert.Equal(t, "flow-values-report", doc.Data[0].Type)
		assert.Empty(t, doc.Data[0].ID, "a report object has no id")
		assert.Equal(t, []string{"F"}, doc.Data[0].Relationships["flows"].ToManyIDs())
		results = append(results, string(doc.Data[0].Attributes))
	}
	require.Len(t, results, 2)
	assert.Contains(t, results[0], `"m2"`)
	assert.Contains(t, results[1], `"m3"`)
	assert.Equal(t, []string{"fields[flow-values-report]=results", "fields%5Bflow-values-report%5D=results&page_cursor=p2"}, queries)
	assert.EqualValues(t, 2, attempts.Load())
	assert.EqualValues(t, 2, f.c.Stats().Pages)
}

func TestPostRetriesResendTheBodyAndCountEveryAttempt(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var calls atomic.Int32
	f.mux.HandleFunc("POST /api/flow-values-reports", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		assert.JSONEq(t, flowValuesBody, string(body), "a retry sends the whole body again")
		if calls.Add(1) == 1 {
			writeJSON(w, 503, `{"errors":[{"code":"error","title":"Service unavailable"}]}`)
			return
		}
		writeJSON(w, 200, reportPage("", "m1"))
	})
	req := flowValuesRequest()
	var attempts atomic.Int32
	req.Sent = func() { attempts.Add(1) }
	doc, err := f.c.Post(context.Background(), req)
	require.NoError(t, err)
	assert.Empty(t, doc.Next)
	assert.EqualValues(t, 2, attempts.Load(), "Klaviyo counts both attempts against the day")
	assert.Equal(t, int64(1), f.c.Stats().RetriesByReason["server_error"])
}

func TestPostDailyQuotaIsRateLimitedWithRetryAtAndClosesTheEndpoint(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *Config) { c.MaxRetryAfter = 10 * time.Minute })
	var calls atomic.Int32
	f.mux.HandleFunc("POST /api/flow-values-reports", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "43200")
		writeJSON(w, 429, `{"errors":[{"id":"1","code":"throttled","title":"Request was throttled.","detail":"Request was throttled. Expected available in 43200 seconds."}]}`)
	})
	now := f.clock.Now()
	_, err := f.c.Post(context.Background(), flowValuesRequest())
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindRateLimited, e.Kind)
	assert.True(t, e.RetryAt.Equal(now.Add(12*time.Hour)), "RetryAt %s", e.RetryAt)
	assert.Contains(t, err.Error(), "Klaviyo's rate limit for /api/flow-values-reports is used up until 2026-11-26T00:00:00Z")
	assert.Empty(t, f.clock.Sleeps(), "a daily quota is not waited out")

	for range f.c.PostPages(context.Background(), flowValuesRequest()) {
		break
	}
	_, err = f.c.Post(context.Background(), flowValuesRequest())
	assert.ErrorIs(t, err, KindRateLimited, "later queries fail fast until RetryAt")
	assert.EqualValues(t, 1, calls.Load(), "without spending a request")
}

func TestPostErrorsAreTypedAndMasked(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mux.HandleFunc("POST /api/flow-values-reports", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `{"errors":[{"id":"1","code":"invalid","title":"Invalid input.","detail":"'revenue' is not a valid choice for statistics (key `+testKey+`).","source":{"pointer":"/data/attributes/statistics"}}]}`)
	})
	_, err := f.c.Post(context.Background(), flowValuesRequest())
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindBadRequest, e.Kind)
	assert.Equal(t, 400, e.Status)
	assert.Contains(t, err.Error(), "'revenue' is not a valid choice for statistics")
	assert.NotContains(t, err.Error(), testKey)
	assert.Zero(t, f.c.Stats().Retries, "a rejected query is not retried")
}

func TestPostWithoutABodyIsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	f := setup(t)
	req := flowValuesRequest()
	req.Body = nil
	_, err := f.c.Post(context.Background(), req)
	require.ErrorContains(t, err, "POST /api/flow-values-reports has no body")
	for _, err := range f.c.PostPages(context.Background(), req) {
		require.ErrorContains(t, err, "has no body")
	}
	assert.Zero(t, f.c.Stats().Requests)
}

func TestDecodeReport(t *testing.T) {
	t.Parallel()
	doc, err := decodeReport([]byte(`{"data":{"type":"metric-aggregate","id":"e1","attributes":{"dates":[],"data":[]},` +
		`"links":{"self":"x"}},"links":{"self":"y","next":"https://a.klaviyo.com/api/metric-aggregates?page_cursor=c"}}`))
	require.NoError(t, err)
	assert.Equal(t, "e1", doc.Data[0].ID, "an aggregate keeps its ephemeral id")
	assert.Equal(t, "https://a.klaviyo.com/api/metric-aggregates?page_cursor=c", doc.Next)
	assert.JSONEq(t, `{"dates":[],"data":[]}`, string(doc.Data[0].Attributes))

	for name, body := range map[string]string{
		"truncated":          `{"data":{"type":"flow-values-report","attributes":{"results":[`,
		"no data":            `{"links":{}}`,
		"null data":          `{"data":null}`,
		"no type":            `{"data":{"attributes":{"results":[]}}}`,
		"two objects":        `{"data":[{"type":"a","attributes":{}},{"type":"b","attributes":{}}]}`,
		"attributes a list":  `{"data":{"type":"flow-values-report","attributes":[1]}}`,
		"attributes invalid": `{"data":{"type":"flow-values-report","attributes":{"results":[01]}}}`,
	} {
		_, err := decodeReport([]byte(body))
		assert.Error(t, err, name)
	}
}
