package klaviyo

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Budget is an endpoint's published rate limit, as the spec's x-klaviyo-ratelimit states it: at most Burst requests
// in one second and PerMinute requests in one minute, each counted by Klaviyo in fixed windows per account.
type Budget struct {
	Burst     int
	PerMinute int
}

const (
	// steadyShare is the fraction of the published steady rate we sustain. Klaviyo counts fixed windows on its own
	// clock; the 5% left over absorbs network jitter that moves a request into the next window.
	steadyShare = 0.95
	// minFactor is the slowest an endpoint gets after repeated 429s: 1/16 of its budget, so it still makes
	// progress and can observe that the pressure is gone.
	minFactor = 1.0 / 16
	// recoverStep is how much of the budget an endpoint regains per recoverEvery without a 429 (additive
	// increase): from half speed back to full in 50 s, a little under one steady window.
	recoverStep  = 0.1
	recoverEvery = 10 * time.Second
)

// scaled multiplies a budget by f. A budget counts whole requests, so each limit is rounded to the nearest whole
// number and kept at least 1 — the same rule the sandbox applies to its scaled tiers, so that a client and a
// sandbox given one factor agree on the budget exactly.
func (b Budget) scaled(f float64) Budget {
	if f == 1 {
		return b
	}
	round := func(n int) int { return max(1, int(math.Floor(float64(n)*f+0.5))) }
	return Budget{Burst: round(b.Burst), PerMinute: round(b.PerMinute)}
}

// limits turns a budget, scaled by scale, into token-bucket parameters (sustained rate per second, bucket size).
//
// A token bucket of size b refilled at r tokens a second lets through at most b + r·w requests in any window of w
// seconds: the bucket may be full when the window opens, and it refills during it. Klaviyo counts fixed 1 s and 60 s
// windows, so a bucket sized only by the burst (75 for L) would allow 75 + 60·12.5 = 825 requests in a minute that
// starts with a full bucket, over the 750 allowed. The parameters therefore satisfy, with P and B the scaled
// PerMinute and Burst:
//
//	r = 0.95·P/60                      sustain 95% of the steady rate, the margin absorbing network jitter;
//	                                   lowered to (P-1)/60 when needed so a 1-token bucket still fits below;
//	                                   never above 0.95·B, the per-second budget
//	b + 60·r ≤ P  → b = ⌊P - 60·r⌋     a full bucket plus a minute of refill stays within the minute;
//	b + r ≤ B     → b = ⌊B - r⌋        a full bucket plus a second of refill stays within the second;
//	b ≥ 1                              a request needs one whole token.
//
// At scale 1 that gives XS 0.233/s b=1, S 0.95/s b=2, M 2.375/s b=7, L 11.875/s b=37, XL 55.42/s b=175. Requests
// come in whole numbers, so XS's 1 + 0.233 still means one request in any second.
func limits(b Budget, scale float64) (rate.Limit, int) {
	b = b.scaled(scale)
	perMinute := float64(b.PerMinute)
	burst := float64(b.Burst)
	r := steadyShare * perMinute / 60
	if perMinute > 1 && perMinute-60*r < 1 {
		r = (perMinute - 1) / 60
	}
	if r > steadyShare*burst {
		r = steadyShare * burst
	}
	// The epsilon keeps float rounding (60 - 60·0.95 = 2.9999…) from losing a whole token.
	const eps = 1e-9
	bucket := math.Min(math.Floor(perMinute-60*r+eps), math.Floor(burst-r+eps))
	if bucket < 1 {
		bucket = 1
	}
	return rate.Limit(r), int(bucket)
}

// endpoint is the shared rate state of one endpoint: every caller of the same Request.Endpoint waits on it, so
// concurrent streams and windows together stay within the endpoint's budget.
type endpoint struct {
	budget Budget
	base   rate.Limit
	lim    *rate.Limiter
	// mismatchLogged is set once a request declared another budget for the endpoint and that was logged.
	mismatchLogged bool

	mu sync.Mutex
	// blockedUntil is the end of the latest Retry-After: nobody sends before it.
	blockedUntil time.Time
	// factor is the current share of the base rate, lowered on 429s and raised back step by step.
	factor float64
	// slowedAt and raisedAt are when factor last went down and up.
	slowedAt time.Time
	raisedAt time.Time
}

func newEndpoint(b Budget, scale float64, now time.Time) *endpoint {
	r, bucket := limits(b, scale)
	return &endpoint{budget: b, base: r, lim: rate.NewLimiter(r, bucket), factor: 1, raisedAt: now, slowedAt: now}
}

// gate reports until when the endpoint is closed by a Retry-After.
func (e *endpoint) gate() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.blockedUntil
}

// tokenDelay is how long until one token is available at now, without taking it. Callers sleep that long and then
// try to take it, so the moment a token is taken is the moment the request is sent, whatever else they waited for.
func (e *endpoint) tokenDelay(now time.Time) time.Duration {
	tokens := e.lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	limit := float64(e.lim.Limit())
	if limit <= 0 {
		return time.Second
	}
	// Rounded up, plus a microsecond, so that after sleeping d float rounding cannot leave the bucket a hair short
	// of a token and send the caller round again.
	return time.Duration(math.Ceil((1-tokens)/limit*float64(time.Second))) + time.Microsecond
}

// take takes one token at now if one is there and no Retry-After closes the endpoint.
func (e *endpoint) take(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.blockedUntil) {
		return false
	}
	return e.lim.AllowN(now, 1)
}

// throttled records a 429 for a request sent at sentAt. It closes the endpoint until until (when set) and halves its
// rate, unless the request was sent before the last slow-down: concurrent requests of one burst all come back 429
// and count as one signal, not as one halving each. It reports whether the rate went down and the new rate.
func (e *endpoint) throttled(now, sentAt, until time.Time) (bool, rate.Limit) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if until.After(e.blockedUntil) {
		e.blockedUntil = until
	}
	if sentAt.Before(e.slowedAt) || e.factor <= minFactor {
		return false, e.lim.Limit()
	}
	e.factor = math.Max(minFactor, e.factor/2)
	e.slowedAt, e.raisedAt = now, now
	e.lim.SetLimitAt(now, e.base*rate.Limit(e.factor))
	return true, e.lim.Limit()
}

// succeeded gives back recoverStep of the budget when the endpoint has gone recoverEvery without a slow-down
// (additive increase). It reports whether the rate went up and the new rate.
func (e *endpoint) succeeded(now time.Time) (bool, rate.Limit) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.factor >= 1 || now.Sub(e.raisedAt) < recoverEvery {
		return false, e.lim.Limit()
	}
	e.factor = math.Min(1, e.factor+recoverStep)
	e.raisedAt = now
	e.lim.SetLimitAt(now, e.base*rate.Limit(e.factor))
	return true, e.lim.Limit()
}
