package klaviyo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBackoffDoublesWithJitterUpToTheCap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		failed int
		rnd    float64
		want   time.Duration
	}{
		{1, 0, 250 * time.Millisecond},
		{1, 0.5, 375 * time.Millisecond},
		{2, 0.5, 750 * time.Millisecond},
		{3, 0, time.Second},
		{7, 0.5, 22500 * time.Millisecond}, // 0.5·2⁶ = 32 s, capped at 30 s
		{1000, 0, 15 * time.Second},
		{1, 7, 375 * time.Millisecond}, // an out-of-range jitter source falls back to the middle
		{1, -1, 375 * time.Millisecond},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, backoff(tc.failed, tc.rnd), "backoff(%d, %v)", tc.failed, tc.rnd)
	}
	assert.Less(t, backoff(1, 0.9999999), 500*time.Millisecond+time.Microsecond)
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{"NaN", 0, false},
		{"99999999999999", 366 * 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range cases {
		got, ok := retryAfter(tc.header, now)
		assert.Equal(t, tc.ok, ok, "%q", tc.header)
		assert.Equal(t, tc.want, got, "%q", tc.header)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestTransportReason(t *testing.T) {
	t.Parallel()
	assert.Equal(t, reasonTimeout, transportReason(fmt.Errorf("get: %w", context.DeadlineExceeded)))
	assert.Equal(t, reasonTimeout, transportReason(timeoutErr{}))
	assert.Equal(t, reasonNetwork, transportReason(errors.New("connection reset by peer")))
}
