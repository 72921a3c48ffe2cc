package klaviyo

import (
	"context"
	"fmt"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// sandboxNow pins the sandbox clock so two sandboxes built with the same options serve the same account.
var sandboxNow = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func startSandbox(t *testing.T, tweak func(*sandbox.Options)) (*sandbox.Server, *Client) {
	t.Helper()
	opts := sandbox.Options{Seed: 7, Now: sandboxNow}
	if tweak != nil {
		tweak(&opts)
	}
	s, err := sandbox.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c, err := New(Config{BaseURL: s.URL(), APIKey: sandbox.DefaultAPIKey, MaxRetryAfter: time.Minute,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	require.NoError(t, err)
	return s, c
}

// placedOrder finds the Placed Order metric through GET /api/metrics, as a connector does.
func placedOrder(t *testing.T, c *Client) string {
	t.Helper()
	for doc, err := range c.Pages(context.Background(), Request{Endpoint: "/api/metrics", Budget: TierM(), Path: "/api/metrics"}) {
		require.NoError(t, err)
		for _, r := range doc.Data {
			var a struct{ Name string }
			require.NoError(t, json.Unmarshal(r.Attributes, &a))
			if a.Name == "Placed Order" {
				return r.ID
			}
		}
	}
	t.Fatal("the sandbox has no Placed Order metric")
	return ""
}

func reportsBudget() Budget { return Budget{Burst: 1, PerMinute: 2} }

// allResults posts a query and joins the results (or aggregate rows) of every page.
func allResults(t *testing.T, c *Client, req PostRequest, member string) (rows []json.RawMessage, pages int) {
	t.Helper()
	for doc, err := range c.PostPages(context.Background(), req) {
		require.NoError(t, err)
		var a map[string][]json.RawMessage
		require.NoError(t, json.Unmarshal(doc.Data[0].Attributes, &a))
		rows = append(rows, a[member]...)
		pages++
	}
	return rows, pages
}

func TestPostPagesReportsOfTheSandboxWithTheSameBody(t *testing.T) {
	t.Parallel()
	// A roomy budget: the reports' own (2/min) would make this test wait minutes; budgets are tested apart.
	_, paged := startSandbox(t, func(o *sandbox.Options) { o.ReportPageSize = 2 })
	_, whole := startSandbox(t, nil)
	conv := placedOrder(t, whole)
	body := fmt.Sprintf(`{"data":{"type":"flow-values-report","attributes":{"statistics":["opens","conversion_value"],`+
		`"timeframe":{"key":"last_365_days"},"conversion_metric_id":%q}}}`, conv)
	req := PostRequest{Request: Request{Endpoint: "/api/flow-values-reports", Budget: roomy(), Scopes: []string{"flows:read"}}, Body: []byte(body)}

	want, pages := allResults(t, whole, req, "results")
	require.Equal(t, 1, pages)
	require.Greater(t, len(want), 4, "enough flow messages for three pages of two")
	got, pages := allResults(t, paged, req, "results")
	assert.Equal(t, (len(want)+1)/2, pages, "links.next followed with the same body until the last page")
	assert.Equal(t, want, got, "pages partition the results in order")

	agg := fmt.Sprintf(`{"data":{"type":"metric-aggregate","attributes":{"metric_id":%q,"measurements":["count"],`+
		`"by":["$attributed_message"],"page_size":2,"timezone":"Europe/Paris",`+
		`"filter":["greater-or-equal(datetime,2025-03-01T00:00:00)","less-than(datetime,2026-03-01T00:00:00)"]}}}`, conv)
	rows, pages := allResults(t, whole, PostRequest{Request: Request{Endpoint: "/api/metric-aggregates", Budget: roomy()}, Body: []byte(agg)}, "data")
	assert.Greater(t, pages, 1, "metric aggregates page at page_size through links.next too")
	assert.True(t, len(rows) > 2*(pages-1) && len(rows) <= 2*pages, "%d rows in %d pages of 2", len(rows), pages)
}

func TestPostAgainstTheSandboxClassifiesRefusals(t *testing.T) {
	t.Parallel()
	s, c := startSandbox(t, func(o *sandbox.Options) {
		o.APIKeys = map[string][]string{sandbox.DefaultAPIKey: nil, "pk_forms_only": {"forms:read"}}
		o.Faults = sandbox.Faults{Spurious429: 1, RetryAfter: 86400, Only: "/api/segment-values-reports"}
	})
	conv := placedOrder(t, c)
	bad := fmt.Sprintf(`{"data":{"type":"flow-values-report","attributes":{"statistics":["revenue"],`+
		`"timeframe":{"key":"last_30_days"},"conversion_metric_id":%q}}}`, conv)
	_, err := c.Post(context.Background(), PostRequest{Request: Request{Endpoint: "/api/flow-values-reports", Budget: reportsBudget()}, Body: []byte(bad)})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindBadRequest, e.Kind)
	assert.Contains(t, e.Detail, `"revenue" is not a valid choice for statistics`)

	formsOnly, err := New(Config{BaseURL: s.URL(), APIKey: "pk_forms_only"})
	require.NoError(t, err)
	_, err = formsOnly.Post(context.Background(), PostRequest{Request: Request{Endpoint: "/api/flow-values-reports", Budget: reportsBudget(),
		Scopes: []string{"flows:read"}}, Body: []byte(bad)})
	require.ErrorIs(t, err, KindScope)
	assert.Contains(t, err.Error(), "the API key lacks scope flows:read needed for /api/flow-values-reports")

	seg := `{"data":{"type":"segment-values-report","attributes":{"statistics":["total_members"],"timeframe":{"key":"last_30_days"}}}}`
	_, err = c.Post(context.Background(), PostRequest{Request: Request{Endpoint: "/api/segment-values-reports", Budget: reportsBudget()}, Body: []byte(seg)})
	require.ErrorAs(t, err, &e)
	assert.Equal(t, KindRateLimited, e.Kind, "a Retry-After of a day is the daily quota: not waited out")
	assert.False(t, e.RetryAt.IsZero())
}
