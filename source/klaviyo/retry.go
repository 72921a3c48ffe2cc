package klaviyo

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// reason says why an attempt is retried; each has a counter in Stats.RetriesByReason.
type reason int

const (
	reasonRateLimited reason = iota // 429
	reasonServer                    // 5xx other than 501
	reasonNetwork                   // connection refused/reset, EOF before the response
	reasonTimeout                   // the attempt's deadline passed
	reasonBody                      // a 2xx body that is truncated, malformed or not a JSON:API document
	numReasons
)

func (r reason) String() string {
	switch r {
	case reasonRateLimited:
		return "rate_limited"
	case reasonServer:
		return "server_error"
	case reasonNetwork:
		return "network"
	case reasonTimeout:
		return "timeout"
	case reasonBody:
		return "bad_body"
	default:
		return "unknown"
	}
}

const (
	backoffMin = 500 * time.Millisecond
	backoffMax = 30 * time.Second
)

// backoff is the wait before attempt n+1 after n failed attempts: 0.5 s doubling up to 30 s, of which a random
// half is dropped (jitter in [50%, 100%]) so callers that failed together do not come back together.
func backoff(failed int, rnd float64) time.Duration {
	d := float64(backoffMax)
	if failed < 32 {
		d = math.Min(float64(backoffMin)*math.Pow(2, float64(failed-1)), float64(backoffMax))
	}
	if rnd < 0 || rnd >= 1 || math.IsNaN(rnd) {
		rnd = 0.5
	}
	return time.Duration(d * (0.5 + rnd/2))
}

// retryAfter parses a Retry-After header: delay-seconds (Klaviyo's form; a fraction is tolerated) or an HTTP date.
// ok is false when the header is absent or unreadable; a date in the past gives 0.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(h, 64); err == nil {
		if math.IsNaN(secs) || secs < 0 {
			return 0, false
		}
		// Anything beyond a year is as good as "not today"; capping keeps the Duration from overflowing.
		secs = math.Min(secs, 366*24*3600)
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// transportReason classifies an error from sending a request or reading its body: a deadline is a timeout,
// anything else a network failure. Both are retried; the caller has already checked its own context.
func transportReason(err error) reason {
	if errors.Is(err, context.DeadlineExceeded) {
		return reasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return reasonTimeout
	}
	return reasonNetwork
}
