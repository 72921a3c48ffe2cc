package klaviyo

import (
	"math"
	"sort"
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
	// jitterMargin lengthens both windows the client counts in (1 s + margin, 60 s + margin). Klaviyo counts a
	// request when it arrives, on its own clock; two requests whose trip times differ by d arrive up to d closer
	// together than they left. The log holds the moment a request is written to its connection (endpoint.left), so a
	// new connection's TCP and TLS handshakes and the client's own scheduling are not part of d; what is left is the
	// network's jitter and queueing on Klaviyo's side. 50 ms is many times a cloud region's jitter; it costs a small
	// sync 0.05 s per extra second of burst (300 profile pages: 0.2 s of 4.8) and a long sync 0.08% of the steady
	// rate. Beyond it (a lost packet's retransmission), a 429 can still come: the slow-down handles it.
	jitterMargin = 50 * time.Millisecond
	// minFactor is the slowest an endpoint gets after repeated 429s: 1/16 of its budget, so it still makes
	// progress and can observe that the pressure is gone.
	minFactor = 1.0 / 16
	// recoverStep is how much of the budget an endpoint regains per recoverEvery without a 429 (additive
	// increase): from half speed back to full in 50 s, a little under one steady window.
	recoverStep  = 0.1
	recoverEvery = 10 * time.Second
	// rankPause is how long an outranked request first waits before it looks again: long enough for the requests
	// ranked above it, which woke at the same moment, to take their places. Each look that finds it still
	// outranked doubles the wait, up to maxRankPause, so requests kept waiting behind ones that cannot send yet
	// (every place of max_concurrency in flight) do not spin.
	rankPause    = time.Millisecond
	maxRankPause = 16 * time.Millisecond
)

// Scaled multiplies a budget by f (rate_limit_scale). A budget counts whole requests, so each limit is rounded to
// the nearest whole number and kept at least 1 — the same rule the sandbox applies to its scaled tiers, so that a
// client and a sandbox given one factor agree on the budget exactly, and the rule the planner sizes windows by, so
// that it counts the burst the client counts.
func (b Budget) Scaled(f float64) Budget {
	if f == 1 {
		return b
	}
	round := func(n int) int { return max(1, int(math.Floor(float64(n)*f+0.5))) }
	return Budget{Burst: round(b.Burst), PerMinute: round(b.PerMinute)}
}

// sendLog enforces an endpoint's two hard limits on the times requests were sent: at most Burst in any interval of
// 1 s + margin and at most PerMinute in any interval of 60 s + margin.
//
// Holding in every interval, wherever it starts, makes the limits hold in Klaviyo's fixed windows whatever their
// alignment with our clock, which we cannot know. A token bucket cannot give that and still spend the burst: a
// bucket of size b refilled at r lets b + 60·r through in a minute, so a bucket that may hold the 75 requests of a
// second must refill below (750 - 75)/60 a second, 10% under the steady rate, while the log lets a small sync send
// 75 at once, 75 again a second later, and so on until the minute's 750 are spent, and a long sync sustain the
// whole steady rate.
//
// A send is allowed at t when the Burst-th most recent send is at least a short window before t, and the
// PerMinute-th most recent at least a long window before t: every window that holds t then holds at most Burst-1
// (PerMinute-1) earlier sends. Sends older than the widest long window constrain nothing and are dropped, so the log holds
// what the endpoint actually sent in the last minute (at most PerMinute), not what its budget would allow: at
// rate_limit_scale 1000 that budget is millions.
type sendLog struct {
	burst, perMinute int
	// margin is the jitter margin this endpoint counts with: jitterMargin, doubled after each slow-down up to
	// maxJitterMargin. A 429 on an endpoint whose log kept both limits means Klaviyo saw the requests closer
	// together than they left, by more than the margin: a network, a proxy or a busy server that jitters more than
	// a cloud region does. Widening the margin for the rest of the sync costs a little pace; drawing the same 429
	// at each burst would cost a retry and a halving each time.
	margin time.Duration
	// origin is the zero of the offsets in at, so they keep the monotonic clock reading of time.Time in 8 bytes.
	origin time.Time
	// at holds the offsets of the sends of the last long window, oldest first.
	at []time.Duration
}

const (
	// maxJitterMargin bounds the widening: 400 ms is a transatlantic round trip, beyond any queueing that the
	// slow-down itself does not absorb.
	maxJitterMargin = 400 * time.Millisecond
)

func newSendLog(b Budget, origin time.Time) *sendLog {
	return &sendLog{burst: max(1, b.Burst), perMinute: max(1, b.PerMinute), origin: origin, margin: jitterMargin}
}

// widen doubles the margin, up to maxJitterMargin.
func (l *sendLog) widen() {
	l.margin = min(2*l.margin, maxJitterMargin)
}

// windows are the two windows the log counts in at its current margin: a second and a minute, each lengthened by it.
func (l *sendLog) windows() (short, long time.Duration) {
	return time.Second + l.margin, time.Minute + l.margin
}

// recent is the offset of the k-th most recent send (k = 1 the latest), and false when the log holds fewer.
func (l *sendLog) recent(k int) (time.Duration, bool) {
	if k > len(l.at) {
		return 0, false
	}
	return l.at[len(l.at)-k], true
}

// delay is how long after t a send is allowed, 0 when it is allowed at t. A send is never logged before the latest
// one, so the log stays in order: callers read the clock before taking the lock, and one that read it a few
// microseconds before another sent waits those microseconds.
func (l *sendLog) delay(t time.Time) time.Duration {
	at := t.Sub(l.origin)
	short, long := l.windows()
	var d time.Duration
	if s, ok := l.recent(1); ok {
		d = max(d, s-at)
	}
	if s, ok := l.recent(l.burst); ok {
		d = max(d, s+short-at)
	}
	if s, ok := l.recent(l.perMinute); ok {
		d = max(d, s+long-at)
	}
	return d
}

// left moves a logged send from taken to left, when it left later than it was logged: a request waits for a
// connection (a new one's TCP and TLS handshakes) between taking its place in the log and going out. The send is
// found from the newest end, where it almost always is, and kept in order. A send no longer logged (dropped as
// older than a long window) or that left no later is left alone. Moving a send later only delays the sends that
// follow it; those decided while it was still waiting saw it as more recent than it is, which errs the safe way,
// unless it waited longer than a short window, where a 429 can come and the slow-down handles it.
func (l *sendLog) left(taken, left time.Time) {
	from, to := taken.Sub(l.origin), left.Sub(l.origin)
	if to <= from {
		return
	}
	i := len(l.at) - 1
	for i >= 0 && l.at[i] != from {
		i--
	}
	if i < 0 {
		return
	}
	for i+1 < len(l.at) && l.at[i+1] < to {
		l.at[i] = l.at[i+1]
		i++
	}
	l.at[i] = to
}

// room is how many more sends each limit allows at t: the burst less the sends of the last short window, and the
// steady limit less those of the last long window. A send is allowed at t when both are positive (delay).
func (l *sendLog) room(t time.Time) (burst, minute int) {
	at := t.Sub(l.origin)
	within := func(w time.Duration) int {
		return len(l.at) - sort.Search(len(l.at), func(i int) bool { return l.at[i]+w > at })
	}
	short, long := l.windows()
	return l.burst - within(short), l.perMinute - within(long)
}

// record logs a send at t, which the caller has checked delay allows, and drops the sends it makes irrelevant.
func (l *sendLog) record(t time.Time) {
	at := t.Sub(l.origin)
	old := 0
	// Kept for the widest margin, so a widening never finds a send it still needed dropped.
	for old < len(l.at) && l.at[old]+time.Minute+maxJitterMargin <= at {
		old++
	}
	// Reslicing drops the old sends in O(1); append reallocates once the array's tail is used, which keeps the
	// memory within a small multiple of the sends of one minute.
	l.at = append(l.at[old:], at)
}

// steadyBucket is the size of the adaptive token bucket at factor f of the steady rate.
//
// At full speed it holds a whole minute: PerMinute tokens, refilled at PerMinute/60 a second. Such a bucket, full
// at the start, refuses a send at t only if some span [s, t] would hold more than PerMinute + (t-s)·PerMinute/60
// sends. The log allows at most PerMinute in a span shorter than a long window, so at most (k+1)·PerMinute in
// [s, t] with k the whole long windows in t-s; as k·60 s ≤ t-s, that is within the bucket's allowance. At full
// speed the log alone decides, then, so a small sync spends the burst and a long one the whole steady rate.
//
// After a 429 the endpoint's budget is evidently being spent by someone else too (another integration on the same
// account, or Klaviyo counting differently from us), so the room left in Klaviyo's minute is unknown: a slowed
// endpoint paces itself at factor × the steady rate with at most factor × a second's burst in hand, and spends the
// minute at once again only when it has recovered fully.
func steadyBucket(b Budget, f float64) int {
	if f >= 1 {
		return max(1, b.PerMinute)
	}
	return max(1, int(math.Floor(f*float64(b.Burst))))
}

// endpoint is the shared rate state of one endpoint: every caller of the same Request.Endpoint waits on it, so
// concurrent streams and windows together stay within the endpoint's budget.
//
// Two limits apply together. The send log holds the published limits, which never change. The token bucket
// (golang.org/x/time/rate) is the adaptive steady rate: a 429 halves it, quiet spells raise it back, and at full
// speed it is sized so that it never binds (see steadyBucket).
type endpoint struct {
	budget Budget
	// hard is the scaled budget, the limits the log enforces; base is its steady rate, the bucket's rate at full
	// speed.
	hard Budget
	base rate.Limit
	lim  *rate.Limiter
	// mismatchLogged is set once a request declared another budget for the endpoint and that was logged.
	mismatchLogged bool

	mu  sync.Mutex
	log *sendLog
	// blockedUntil is the end of the latest Retry-After: nobody sends before it.
	blockedUntil time.Time
	// factor is the current share of the base rate, lowered on 429s and raised back step by step.
	factor float64
	// slowedAt and raisedAt are when factor last went down and up.
	slowedAt time.Time
	raisedAt time.Time
	// waiting holds the ranked requests (Request.Rank) waiting for a place, with their latest rank.
	waiting map[*waiter]struct{}
}

// waiter is a ranked request waiting in acquire, as its endpoint sees it.
type waiter struct {
	rank float64
}

func newEndpoint(b Budget, scale float64, now time.Time) *endpoint {
	hard := b.Scaled(scale)
	base := rate.Limit(float64(hard.PerMinute) / 60)
	return &endpoint{
		budget: b, hard: hard, base: base,
		lim:    rate.NewLimiter(base, steadyBucket(hard, 1)),
		log:    newSendLog(hard, now),
		factor: 1, raisedAt: now, slowedAt: now,
	}
}

// gate reports until when the endpoint is closed by a Retry-After.
func (e *endpoint) gate() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.blockedUntil
}

// tokenDelay is how long until both limits allow a request at now, without taking anything. Callers sleep that
// long and then try to take it, so the moment a request is logged is the moment it is sent, whatever else they
// waited for.
func (e *endpoint) tokenDelay(now time.Time) time.Duration {
	e.mu.Lock()
	d := e.log.delay(now)
	e.mu.Unlock()
	return max(d, e.steadyDelay(now))
}

// steadyDelay is how long until the token bucket holds one token.
func (e *endpoint) steadyDelay(now time.Time) time.Duration {
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

// take logs a send at now and takes its token, if no Retry-After closes the endpoint and both limits allow it.
func (e *endpoint) take(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.blockedUntil) || e.log.delay(now) > 0 || !e.lim.AllowN(now, 1) {
		return false
	}
	e.log.record(now)
	return true
}

// enter registers a ranked request that starts waiting for a place; leave removes it once it has one or gave up.
func (e *endpoint) enter(rank float64) *waiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := &waiter{rank: rank}
	if e.waiting == nil {
		e.waiting = map[*waiter]struct{}{}
	}
	e.waiting[w] = struct{}{}
	return w
}

func (e *endpoint) leave(w *waiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.waiting, w)
}

// outranked notes w's current rank and reports whether it should let others take the places open at now: more
// requests ranked above it are waiting than the burst has places. Ranks decide only while the minute has room for
// more than the burst, the burst-bound start of a sync: a sync that fits in a minute's allowance ends when its
// longest read does, and a read that misses a burst sends its last page a burst later, so the reads with the most
// left must not lose a place to one with little left. Once the steady limit binds, or after a 429, requests go as
// they come: a long sync's oldest windows then keep moving, and its checkpoint with them. Requests without a rank
// neither wait for ranked ones nor count against them.
func (e *endpoint) outranked(w *waiter, rank float64, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	w.rank = rank
	if e.factor < 1 {
		return false
	}
	burst, minute := e.log.room(now)
	if burst <= 0 || minute <= burst {
		return false
	}
	above := 0
	for o := range e.waiting {
		if o.rank > rank {
			above++
		}
	}
	return above >= burst
}

// left notes that the request logged at taken went out at at (see sendLog.left).
func (e *endpoint) left(taken, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log.left(taken, at)
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
	e.setFactor(now, math.Max(minFactor, e.factor/2))
	e.log.widen()
	e.slowedAt, e.raisedAt = now, now
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
	e.setFactor(now, math.Min(1, e.factor+recoverStep))
	e.raisedAt = now
	return true, e.lim.Limit()
}

// setFactor sets the bucket's rate and size for factor f; e.mu is held.
func (e *endpoint) setFactor(now time.Time, f float64) {
	// Ten steps of 0.1 add up to 0.9999999999999999: a factor that close to 1 is full speed.
	if f > 1-1e-9 {
		f = 1
	}
	e.factor = f
	e.lim.SetLimitAt(now, e.base*rate.Limit(f))
	e.lim.SetBurstAt(now, steadyBucket(e.hard, f))
}
