package source

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// testEngine builds an engine on a client that never sleeps, against base.
func testEngine(t *testing.T, base string, cfg Config, out *bytes.Buffer) *engine {
	t.Helper()
	client, err := klaviyo.New(klaviyo.Config{
		BaseURL: base, APIKey: "pk_test", MaxAttempts: 3, RateScale: 1000,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		Rand:  func() float64 { return 0.5 },
	})
	require.NoError(t, err)
	cfg.BaseURL, cfg.APIKey, cfg.MaxConcurrency = base, "pk_test", 4
	return &engine{cfg: cfg, client: client, out: emit.NewAirbyte(out, emit.Options{}),
		syncStart: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC), parents: newParentCache()}
}

// Klaviyo answers predictive analytics with 503s at times: the profiles stream must still complete, reading those
// pages without predictions.
func TestPredictiveAnalytics503FallsBackWithoutPredictions(t *testing.T) {
	var withPredictive, without atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		if strings.Contains(r.URL.Query().Get("additional-fields[profile]"), "predictive_analytics") {
			withPredictive.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"errors":[{"id":"x","code":"service_unavailable","title":"Unavailable","detail":"try later"}]}`))
			return
		}
		without.Add(1)
		_, _ = w.Write([]byte(`{"data":[{"type":"profile","id":"p1","attributes":{"email":"a@example.com","updated":"2026-01-02T00:00:00+00:00"},"links":{"self":"x"}}],"links":{"self":"x"}}`))
	}))
	defer srv.Close()

	var out bytes.Buffer
	e := testEngine(t, srv.URL, Config{ProfilePredictive: true}, &out)
	s, _ := catalog.Lookup("profiles")
	failed := e.run(context.Background(), []catalog.Selection{{Stream: s}}, nil)
	require.Empty(t, failed, "%s", out.String())
	require.Positive(t, withPredictive.Load(), "predictive analytics was asked for first")
	require.Positive(t, without.Load(), "then the page was read without it")
	require.Contains(t, out.String(), `"id":"p1"`)
	require.Contains(t, out.String(), "reading those profiles without predictions")
	require.Contains(t, out.String(), `"status":"COMPLETE"`)
}
