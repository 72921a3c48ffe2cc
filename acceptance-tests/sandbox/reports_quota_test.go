package sandbox

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// steppedClock pins the rate limiter's wall clock and returns a function moving it forward.
func steppedClock(s *Server, start time.Time) func(time.Duration) {
	var mu sync.Mutex
	cur := start
	s.limits.setClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return cur })
	return func(d time.Duration) { mu.Lock(); defer mu.Unlock(); cur = cur.Add(d) }
}

func TestReportRateLimitsAndDailyQuota(t *testing.T) {
	s := startSmall(t, func(o *Options) {
		o.RateLimits = RateLimits{Mode: RateKlaviyo, Factor: 1}
		o.APIKeys = map[string][]string{DefaultAPIKey: nil, "k1": nil, "k2": nil}
	})
	step := steppedClock(s, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	f := newReportFixture(t, s)
	const path = "/api/segment-values-reports"
	body := reportBody(t, "segment-values-report", f.validBodies()[path])
	as := func(key string) []string { return []string{"Authorization", "Klaviyo-API-Key " + key} }
	clientError := clientErrorSchema(t)

	// Burst 1/s and steady 2/m, from the spec's x-klaviyo-ratelimit.
	r := post(t, s, path, body, as("k1")...)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, "2", r.header.Get("RateLimit-Limit"))
	assert.Equal(t, "1", r.header.Get("RateLimit-Remaining"))
	r = post(t, s, path, body, as("k1")...)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	step(time.Second)
	require.Equal(t, http.StatusOK, post(t, s, path, body, as("k1")...).status)
	step(time.Second)
	r = post(t, s, path, body, as("k1")...)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "58", r.header.Get("Retry-After"), "the minute window ends at 12:01:00")
	step(58 * time.Second)

	// Daily: 225 per key and endpoint, counted on the sandbox clock. Two are spent; two a minute
	// stay under the steady limit.
	for i := 2; i < 225; i++ {
		require.Equal(t, http.StatusOK, post(t, s, path, body, as("k1")...).status, "request %d", i+1)
		step(30 * time.Second)
	}
	r = post(t, s, path, body, as("k1")...)
	require.Equal(t, http.StatusTooManyRequests, r.status, "the 226th request of the day")
	assert.Equal(t, "86400", r.header.Get("Retry-After"), "until the next midnight (UTC) of the sandbox clock")
	assert.Equal(t, "throttled", r.firstError()["code"])
	validate(t, clientError, r.body)
	step(time.Hour)
	assert.Equal(t, http.StatusTooManyRequests, post(t, s, path, body, as("k1")...).status, "wall-clock time does not refill the day")
	assert.Equal(t, http.StatusOK, post(t, s, path, body, as("k2")...).status, "quotas are per key")
	assert.Equal(t, http.StatusOK, post(t, s, "/api/form-values-reports", reportBody(t, "form-values-report", f.validBodies()["/api/form-values-reports"]), as("k1")...).status,
		"quotas are per endpoint")
	step(time.Minute)

	s.Advance(6 * time.Hour)
	r = post(t, s, path, body, as("k1")...)
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, "64800", r.header.Get("Retry-After"), "the wait shrinks as the sandbox clock moves")
	s.Advance(18 * time.Hour)
	assert.Equal(t, http.StatusOK, post(t, s, path, body, as("k1")...).status, "a new day, a new quota")

	st := s.Stats()
	assert.Equal(t, 225+1+1, st.ByPath[path]["200"], "k1's day, k2, and k1 the next day")
	assert.Equal(t, 2+3, st.ByPath[path]["429"])
	assert.GreaterOrEqual(t, st.Throttled, int64(5))
	assert.Equal(t, 1, st.ByPath["/api/form-values-reports"]["200"])
}

func TestReportDailyQuotaOnlyWithKlaviyoLimits(t *testing.T) {
	s := startSmall(t, nil) // rate limits off, the default
	f := newReportFixture(t, s)
	body := reportBody(t, "form-values-report", f.validBodies()["/api/form-values-reports"])
	for i := 0; i < 230; i++ {
		require.Equal(t, http.StatusOK, post(t, s, "/api/form-values-reports", body).status, "request %d", i+1)
	}
	scaled := startSmall(t, func(o *Options) { o.RateLimits = RateLimits{Mode: RateKlaviyo, Factor: 0.02} }) // 225/d -> 5/d
	step := steppedClock(scaled, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	for i := 0; i < 5; i++ {
		require.Equal(t, http.StatusOK, post(t, scaled, "/api/form-values-reports", body).status, "request %d", i+1)
		step(time.Minute)
	}
	assert.Equal(t, http.StatusTooManyRequests, post(t, scaled, "/api/form-values-reports", body).status, "the daily quota scales with the tiers")
}
