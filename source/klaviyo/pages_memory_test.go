package klaviyo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A page being consumed keeps its place in memory: with PagesInMemory 1, a second body is not read until the
// first consumer is done, while the request itself may already have been sent.
func TestPagesInMemoryBoundsPagesHeldByConsumers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		_, _ = w.Write([]byte(`{"data":[{"type":"event","id":"e1","attributes":{}}],"links":{"self":"x"}}`))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, APIKey: "pk_test", PagesInMemory: 1, MaxConcurrency: 4, RateScale: 1000})
	require.NoError(t, err)
	req := Request{Endpoint: "/api/events", Budget: TierXL(), Path: "/api/events"}
	ctx := context.Background()

	hold, first := make(chan struct{}), make(chan struct{})
	consumer := make(chan struct{})
	go func() {
		defer close(consumer)
		for doc, err := range c.Pages(ctx, req) {
			if err == nil && doc != nil {
				close(first)
				<-hold
			}
		}
	}()
	<-first
	second := make(chan error, 1)
	go func() { _, err := c.Get(ctx, req); second <- err }()
	select {
	case <-second:
		t.Fatal("a second page was read while the first was still being consumed")
	case <-time.After(200 * time.Millisecond):
	}
	close(hold)
	require.NoError(t, <-second)
	<-consumer
}
