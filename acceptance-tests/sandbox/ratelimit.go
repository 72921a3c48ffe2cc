package sandbox

import (
	"sync"
	"time"
)

// limiter enforces Klaviyo's fixed windows per key and endpoint: burst per second, steady per minute.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time // wall clock; tests pin it to make windows deterministic
}

type bucket struct {
	sec, min   int64
	nSec, nMin int
}

type rateResult struct {
	ok                      bool
	retryAfter              int
	limit, remaining, reset int
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}, now: time.Now} }

func scaled(n int, f float64) int {
	v := int(float64(n)*f + 0.5)
	if v < 1 {
		v = 1
	}
	return v
}

func (l *limiter) take(key string, rl RateLimits, burst, steady int) rateResult {
	if burst <= 0 {
		burst = 1
	}
	if steady <= 0 {
		steady = 1
	}
	if rl.Mode == RateKlaviyo {
		burst, steady = scaled(burst, rl.Factor), scaled(steady, rl.Factor)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	sec := l.now().Unix()
	min := sec / 60
	b := l.buckets[key]
	if b == nil {
		b = &bucket{}
		l.buckets[key] = b
	}
	if b.sec != sec {
		b.sec, b.nSec = sec, 0
	}
	if b.min != min {
		b.min, b.nMin = min, 0
	}
	reset := int((min+1)*60 - sec)
	if rl.Mode == RateKlaviyo {
		if b.nMin >= steady {
			return rateResult{retryAfter: reset}
		}
		if b.nSec >= burst {
			return rateResult{retryAfter: 1}
		}
	}
	b.nSec++
	b.nMin++
	rem := steady - b.nMin
	if rem < 0 {
		rem = 0
	}
	return rateResult{ok: true, limit: steady, remaining: rem, reset: reset}
}

// setClock pins the rate limiter's wall clock (tests only need it to be deterministic).
func (l *limiter) setClock(now func() time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = now
}
