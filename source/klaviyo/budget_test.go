package klaviyo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sendAt sends one request on ep as a caller that arrives at at: it waits as long as ep says, then takes. It returns
// when the request was sent.
func sendAt(t *testing.T, ep *endpoint, at time.Time) time.Time {
	t.Helper()
	for range 1000 {
		if d := ep.tokenDelay(at); d > 0 {
			at = at.Add(d)
			continue
		}
		require.True(t, ep.take(at), "tokenDelay said yes at %s, take said no", at)
		return at
	}
	require.FailNow(t, "no request sent after 1000 waits")
	return at
}

// maxInWindow is the largest number of times inside any half-open window [t, t+w) that starts at one of them
// (which covers every window, sliding or fixed, wherever it starts). It sorts ts.
func maxInWindow(ts []time.Time, w time.Duration) int {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Before(ts[i].Add(w)) {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

func TestABurstGoesAtOnceAndTheNextWaitsForTheNextSecond(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(TierL(), 1, t0)
	for i := range 75 {
		require.Zero(t, ep.tokenDelay(t0), "request %d of the burst", i+1)
		require.True(t, ep.take(t0))
	}
	assert.Equal(t, shortWindow, ep.tokenDelay(t0), "the 76th waits until the burst is a second and the margin old")
	assert.False(t, ep.take(t0.Add(shortWindow-time.Nanosecond)))
	assert.Equal(t, time.Nanosecond, ep.tokenDelay(t0.Add(shortWindow-time.Nanosecond)))
	assert.True(t, ep.take(t0.Add(shortWindow)))
}

func TestAMinuteIsSpentInBurstsThenWaitsForTheMinute(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(TierL(), 1, t0)
	var sent []time.Time
	for range 750 {
		sent = append(sent, sendAt(t, ep, t0))
	}
	// 750 at 75 a second: ten bursts, one every second and margin.
	for i, at := range sent {
		require.Equal(t, t0.Add(time.Duration(i/75)*shortWindow), at, "request %d", i+1)
	}
	last := sent[len(sent)-1]
	assert.Equal(t, t0.Add(9*shortWindow), last, "the minute's 750 are spent in under 11 s")
	// The 751st waits for the first request to be a minute and the margin old, then the minute repeats.
	assert.Equal(t, t0.Add(longWindow), sendAt(t, ep, last))
	for range 74 {
		require.Equal(t, t0.Add(longWindow), sendAt(t, ep, last))
	}
	assert.Equal(t, t0.Add(longWindow+shortWindow), sendAt(t, ep, last))

	// Sends a long window old constrain nothing: the log keeps only the last minute's.
	later := t0.Add(5 * time.Minute)
	assert.Equal(t, later, sendAt(t, ep, later))
	assert.Len(t, ep.log.at, 1)
}

func TestAStartedSecondLeavesTheRestOfTheBurst(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(TierM(), 1, t0)
	for i := range 4 {
		sendAt(t, ep, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	// 4 of M's 10 went in the last 300 ms: 6 more may go now, the 11th when the first is a window old.
	now := t0.Add(300 * time.Millisecond)
	for range 6 {
		require.Equal(t, now, sendAt(t, ep, now))
	}
	assert.Equal(t, t0.Add(shortWindow), sendAt(t, ep, now))
}

// TestDrivenHardAnEndpointKeepsItsLimitsAndSpendsTheSteadyRate drives each budget as hard as it allows for ten
// minutes of virtual time: every 1 s and 60 s window (sliding, which covers Klaviyo's fixed ones) stays within the
// limits even when widened by the jitter margin, the bucket never binds at full speed, and the steady rate is spent
// but for the margin.
func TestDrivenHardAnEndpointKeepsItsLimitsAndSpendsTheSteadyRate(t *testing.T) {
	t.Parallel()
	for _, b := range []Budget{TierXS(), TierS(), TierM(), TierL(), TierXL(), {Burst: 1, PerMinute: 2}, {Burst: 5, PerMinute: 3}} {
		for _, scale := range []float64{1, 0.5, 0.1, 3} {
			ep := newEndpoint(b, scale, t0)
			end := t0.Add(10 * time.Minute)
			var sent []time.Time
			for now := t0; ; {
				if d := ep.tokenDelay(now); d > 0 {
					require.Equal(t, ep.log.delay(now), d, "%+v×%v: at full speed only the log waits", b, scale)
					now = now.Add(d)
					continue
				}
				if !now.Before(end) {
					break
				}
				require.True(t, ep.take(now))
				sent = append(sent, now)
			}
			hard := b.Scaled(scale)
			assert.LessOrEqual(t, maxInWindow(sent, shortWindow), hard.Burst, "%+v×%v per second", b, scale)
			assert.LessOrEqual(t, maxInWindow(sent, longWindow), hard.PerMinute, "%+v×%v per minute", b, scale)
			// Every long window starting in the ten minutes is spent in full.
			windows := int((10*time.Minute + longWindow - 1) / longWindow)
			assert.Equal(t, windows*hard.PerMinute, len(sent), "%+v×%v throughput", b, scale)
		}
	}
}

// TestNoFixedWindowEverHoldsMoreThanTheLimits is the property the limiter exists for. Random budgets are driven by
// random numbers of concurrent callers with random latencies (each sends, waits for its answer, sends again); each
// request reaches the server up to a random jitter (under the margin) after it was sent. In no 1 s or 60 s interval
// of arrival times, wherever it starts, and so in none of Klaviyo's fixed windows, are there more requests than the
// limits; and no interval of send times widened by the margin holds more either.
func TestNoFixedWindowEverHoldsMoreThanTheLimits(t *testing.T) {
	t.Parallel()
	for seed := range uint64(150) {
		rnd := rand.New(rand.NewPCG(seed, 12))
		burst := 1 + rnd.IntN(400)
		b := Budget{Burst: burst, PerMinute: burst + rnd.IntN(10*burst+20)}
		scale := []float64{1, 1, 0.1, 0.5, 2}[rnd.IntN(5)]
		callers := 1 + rnd.IntN(64)
		maxLatency := time.Duration(rnd.Int64N(int64(2 * time.Second)))
		jitter := time.Duration(rnd.Int64N(int64(jitterMargin)))
		t.Run(fmt.Sprintf("seed %d %+v×%v %d callers", seed, b, scale, callers), func(t *testing.T) {
			ep := newEndpoint(b, scale, t0)
			end := t0.Add(3 * time.Minute)
			// next[i] is when caller i next wants to send; the earliest goes first, as the scheduler would.
			next := make([]time.Time, callers)
			for i := range next {
				next[i] = t0.Add(time.Duration(rnd.Int64N(int64(3 * time.Second))))
			}
			var sent, arrived []time.Time
			for {
				i := 0
				for j := range next {
					if next[j].Before(next[i]) {
						i = j
					}
				}
				if !next[i].Before(end) {
					break
				}
				if d := ep.tokenDelay(next[i]); d > 0 {
					next[i] = next[i].Add(d)
					continue
				}
				require.True(t, ep.take(next[i]))
				sent = append(sent, next[i])
				arrived = append(arrived, next[i].Add(time.Duration(rnd.Int64N(int64(jitter)+1))))
				next[i] = next[i].Add(time.Duration(rnd.Int64N(int64(maxLatency) + 1)))
			}
			hard := b.Scaled(scale)
			require.NotEmpty(t, sent)
			assert.LessOrEqual(t, maxInWindow(arrived, time.Second), hard.Burst, "arrivals per second")
			assert.LessOrEqual(t, maxInWindow(arrived, time.Minute), hard.PerMinute, "arrivals per minute")
			assert.LessOrEqual(t, maxInWindow(sent, shortWindow), hard.Burst, "sends per second and margin")
			assert.LessOrEqual(t, maxInWindow(sent, longWindow), hard.PerMinute, "sends per minute and margin")
		})
	}
}

func TestACallerWithAnOlderClockReadingWaitsForTheLatestSend(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(Budget{Burst: 2, PerMinute: 100}, 1, t0)
	require.True(t, ep.take(t0.Add(time.Millisecond)))
	// A caller that read the clock a moment before the first sent is not logged out of order.
	assert.False(t, ep.take(t0))
	assert.Equal(t, time.Millisecond, ep.tokenDelay(t0))
	require.True(t, ep.take(t0.Add(time.Millisecond)))
	assert.Equal(t, shortWindow, ep.tokenDelay(t0.Add(time.Millisecond)))
}

func TestTheBucketHoldsAMinuteAtFullSpeedAndABurstShareWhenSlowed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		budget      Budget
		scale       float64
		perMinute   float64 // the bucket's rate, in requests a minute
		full, slow2 int     // bucket size at full speed and at half speed
	}{
		{TierXS(), 1, 15, 15, 1},
		{TierS(), 1, 60, 60, 1},
		{TierM(), 1, 150, 150, 5},
		{TierL(), 1, 750, 750, 37},
		{TierXL(), 1, 3500, 3500, 175},
		{TierL(), 0.1, 75, 75, 4},
		{TierXS(), 0.1, 2, 2, 1},
	}
	for _, tc := range cases {
		ep := newEndpoint(tc.budget, tc.scale, t0)
		assert.InDelta(t, tc.perMinute, float64(ep.base)*60, 1e-9, "%+v×%v", tc.budget, tc.scale)
		assert.Equal(t, tc.full, ep.lim.Burst(), "%+v×%v", tc.budget, tc.scale)
		ep.throttled(t0.Add(time.Second), t0.Add(time.Second), time.Time{})
		assert.Equal(t, tc.slow2, ep.lim.Burst(), "%+v×%v slowed", tc.budget, tc.scale)
	}
}

func TestEndpointSlowsDownOnceperBurstAndRecoversStepByStep(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(TierL(), 1, t0)
	base := ep.base

	t1 := t0.Add(time.Minute)
	down, r := ep.throttled(t1, t1.Add(-300*time.Millisecond), t1.Add(5*time.Second))
	assert.True(t, down)
	assert.InDelta(t, float64(base)/2, float64(r), 1e-9)
	assert.Equal(t, t1.Add(5*time.Second), ep.gate())
	assert.False(t, ep.take(t1.Add(4*time.Second)), "closed until the Retry-After")

	// Other requests of the same burst come back 429 too: one signal, not one halving each.
	down, _ = ep.throttled(t1.Add(10*time.Millisecond), t1.Add(-200*time.Millisecond), t1.Add(3*time.Second))
	assert.False(t, down)
	assert.Equal(t, t1.Add(5*time.Second), ep.gate(), "a shorter Retry-After does not shorten the gate")

	// A request sent after the slow-down that is still refused is new evidence.
	t2 := t1.Add(6 * time.Second)
	down, r = ep.throttled(t2, t2.Add(-time.Millisecond), time.Time{})
	assert.True(t, down)
	assert.InDelta(t, float64(base)/4, float64(r), 1e-9)
	assert.Equal(t, 18, ep.lim.Burst(), "a quarter of a second's burst")

	up, _ := ep.succeeded(t2.Add(9 * time.Second))
	assert.False(t, up, "no increase before recoverEvery")
	steps := 0
	for now := t2.Add(recoverEvery); ; now = now.Add(recoverEvery) {
		up, r = ep.succeeded(now)
		if !up {
			break
		}
		steps++
		require.Less(t, steps, 20)
	}
	assert.Equal(t, 8, steps, "0.25 → 1 in steps of 0.1")
	assert.InDelta(t, float64(base), float64(r), 1e-9)
	assert.Equal(t, 750, ep.lim.Burst(), "recovered, the bucket holds the minute again")

	// However many 429s, the endpoint keeps a sixteenth of its budget.
	now := t2.Add(time.Hour)
	for range 10 {
		now = now.Add(time.Second)
		ep.throttled(now, now, time.Time{})
	}
	assert.InDelta(t, float64(base)/16, float64(ep.lim.Limit()), 1e-9)
}

// TestASlowedEndpointPacesItself: after a 429 the minute's room is unknown, so a slowed endpoint no longer spends
// the burst: at half speed, a minute driven as hard as the endpoint allows holds half a second's burst and half a
// minute's steady rate, not the 750 the log alone would allow.
func TestASlowedEndpointPacesItself(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(TierL(), 1, t0)
	for range 750 {
		sendAt(t, ep, t0)
	}
	t1 := t0.Add(2 * time.Minute)
	down, r := ep.throttled(t1, t1, time.Time{})
	require.True(t, down)
	require.Equal(t, rate.Limit(750.0/60/2), r)
	var sent []time.Time
	for now := t1; now.Before(t1.Add(time.Minute)); {
		now = sendAt(t, ep, now)
		if now.Before(t1.Add(time.Minute)) {
			sent = append(sent, now)
		}
	}
	assert.InDelta(t, 37+375, len(sent), 1, "half a burst, then half the steady rate")
	assert.LessOrEqual(t, maxInWindow(sent, time.Second), 37+7, "half a burst and a second at half the steady rate")
}

func TestScaledBudgetsAreWholeRequests(t *testing.T) {
	t.Parallel()
	assert.Equal(t, Budget{Burst: 8, PerMinute: 75}, TierL().Scaled(0.1))
	assert.Equal(t, Budget{Burst: 1, PerMinute: 2}, TierXS().Scaled(0.1))
	assert.Equal(t, Budget{Burst: 1, PerMinute: 1}, TierXS().Scaled(0.001))
	assert.Equal(t, Budget{Burst: 150, PerMinute: 1500}, TierL().Scaled(2))
	assert.Equal(t, TierM(), TierM().Scaled(1))
}

func TestASendThatLeftLateCountsFromWhenItLeft(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(Budget{Burst: 3, PerMinute: 100}, 1, t0)
	for range 3 {
		require.True(t, ep.take(t0))
	}
	// One of the burst waited 400 ms for a new connection: it counts from then.
	ep.left(t0, t0.Add(400*time.Millisecond))
	assert.Equal(t, []time.Duration{0, 0, 400 * time.Millisecond}, ep.log.at, "the log stays in order")
	assert.Equal(t, shortWindow, ep.tokenDelay(t0), "the two sends still logged at t0 set the next slot")
	require.True(t, ep.take(t0.Add(shortWindow)))
	require.True(t, ep.take(t0.Add(shortWindow)))
	assert.Equal(t, 400*time.Millisecond, ep.tokenDelay(t0.Add(shortWindow)),
		"the sixth waits for the send that left late to be a window old, not for the moment it was logged")

	// A send that left no later than it was logged, or is no longer logged, changes nothing.
	ep.left(t0.Add(shortWindow), t0.Add(shortWindow))
	ep.left(t0.Add(-time.Hour), t0)
	assert.Equal(t, []time.Duration{0, 0, 400 * time.Millisecond, shortWindow, shortWindow}, ep.log.at)
}

func TestTheClientLogsASendWhenItIsWritten(t *testing.T) {
	t.Parallel()
	var f *fixture
	// The transport takes 300 ms (of the fake clock) to get a connection before it writes the request, as a new
	// connection's handshakes do.
	f = setup(t, func(c *Config) {
		c.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			_ = f.clock.Sleep(r.Context(), 300*time.Millisecond)
			return http.DefaultTransport.RoundTrip(r)
		})}
	})
	f.mux.HandleFunc("/api/x", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, page("")) })
	start := f.clock.Now()
	_, err := f.c.Get(context.Background(), Request{Endpoint: "/api/x", Path: "/api/x", Budget: Budget{Burst: 1, PerMinute: 10}})
	require.NoError(t, err)
	ep := f.c.endpoint(Request{Endpoint: "/api/x", Budget: Budget{Burst: 1, PerMinute: 10}})
	require.Len(t, ep.log.at, 1)
	assert.Equal(t, start.Add(300*time.Millisecond), ep.log.origin.Add(ep.log.at[0]),
		"the send is logged when it was written, after the wait for a connection")
}

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A 429 while the log kept the limits means Klaviyo saw the requests closer together than they left: the endpoint
// counts with a wider margin from then on, doubled at each slow-down up to maxJitterMargin.
func TestA429WidensTheMargin(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(Budget{Burst: 2, PerMinute: 1000}, 1, t0)
	require.True(t, ep.take(t0))
	require.True(t, ep.take(t0))
	assert.Equal(t, time.Second+jitterMargin, ep.tokenDelay(t0))

	down, _ := ep.throttled(t0.Add(time.Millisecond), t0, time.Time{})
	require.True(t, down)
	assert.Equal(t, time.Second+2*jitterMargin, ep.tokenDelay(t0), "the next burst waits out the wider margin")

	for i := 0; i < 10; i++ {
		ep.throttled(t0.Add(time.Duration(i+2)*time.Millisecond), t0.Add(time.Duration(i+2)*time.Millisecond), time.Time{})
	}
	assert.Equal(t, maxJitterMargin, ep.log.margin, "never wider than the bound")
}

// room counts what each limit still allows, on the same windows delay uses: a send is allowed exactly when both
// are positive.
func TestRoomIsWhatTheLimitsStillAllow(t *testing.T) {
	t.Parallel()
	l := newSendLog(Budget{Burst: 3, PerMinute: 5}, t0)
	l.record(t0)
	l.record(t0)
	burst, minute := l.room(t0)
	assert.Equal(t, [2]int{1, 3}, [2]int{burst, minute})
	burst, minute = l.room(t0.Add(shortWindow - time.Microsecond))
	assert.Equal(t, [2]int{1, 3}, [2]int{burst, minute}, "the burst's sends count until a short window has passed")
	burst, minute = l.room(t0.Add(shortWindow))
	assert.Equal(t, [2]int{3, 3}, [2]int{burst, minute})
	l.record(t0.Add(shortWindow))
	l.record(t0.Add(shortWindow))
	l.record(t0.Add(shortWindow))
	burst, minute = l.room(t0.Add(2 * shortWindow))
	assert.Equal(t, [2]int{3, 0}, [2]int{burst, minute}, "the minute's allowance is spent")
	assert.Positive(t, l.delay(t0.Add(2*shortWindow)))
}

// When a burst has fewer places than ranked requests waiting, those ranked highest go first; ties, requests without
// a rank and a minute with no more room than the burst leave everyone to go as they come.
func TestTheReadsWithTheMostLeftTakeTheBurstFirst(t *testing.T) {
	t.Parallel()
	ep := newEndpoint(Budget{Burst: 2, PerMinute: 100}, 1, t0)
	low, high, mid := ep.enter(1), ep.enter(5), ep.enter(3)
	assert.True(t, ep.outranked(low, 1, t0), "two requests ranked above it wait for the burst's two places")
	assert.False(t, ep.outranked(high, 5, t0))
	assert.False(t, ep.outranked(mid, 3, t0))

	require.True(t, ep.take(t0))
	ep.leave(high)
	assert.True(t, ep.outranked(low, 1, t0), "one place left, and one request above it")
	require.True(t, ep.take(t0))
	ep.leave(mid)
	assert.False(t, ep.outranked(low, 1, t0), "nobody above it: it waits for the next burst like anyone")

	// Its rank is the one it gives now: a read whose window was split has less left than when it began waiting.
	other := ep.enter(2)
	assert.False(t, ep.outranked(other, 0.5, t0.Add(shortWindow)))
	assert.False(t, ep.outranked(low, 0.1, t0.Add(shortWindow)), "one request above it, two places")

	tie := newEndpoint(Budget{Burst: 1, PerMinute: 100}, 1, t0)
	a, b := tie.enter(4), tie.enter(4)
	assert.False(t, tie.outranked(a, 4, t0), "equal ranks do not wait for each other")
	assert.False(t, tie.outranked(b, 4, t0))

	// Once the minute has no more room than the burst, the steady limit binds: requests go as they come, so a long
	// sync's oldest windows keep moving.
	tight := newEndpoint(Budget{Burst: 2, PerMinute: 3}, 1, t0)
	require.True(t, tight.take(t0))
	at := t0.Add(shortWindow)
	low2, _, _ := tight.enter(1), tight.enter(5), tight.enter(3)
	assert.False(t, tight.outranked(low2, 1, at), "the minute has 2 places left, no more than the burst")

	// After a 429 the endpoint paces itself, and ranks give way to that.
	slowed := newEndpoint(Budget{Burst: 2, PerMinute: 100}, 1, t0)
	low3, _, _ := slowed.enter(1), slowed.enter(5), slowed.enter(3)
	slowed.throttled(t0, t0, time.Time{})
	assert.False(t, slowed.outranked(low3, 1, t0.Add(time.Minute)))
}

// A ranked request that is outranked waits a moment, lets the requests above it take the burst, and then waits for
// the next burst; while they cannot send, it looks again less and less often.
func TestAnOutrankedRequestLetsTheOthersGoFirst(t *testing.T) {
	t.Parallel()
	f := setup(t)
	req := Request{Endpoint: "/api/x", Path: "/api/x", Budget: Budget{Burst: 2, PerMinute: 100}, Rank: func() float64 { return 1 }}
	ep := f.c.endpoint(req)
	above := []*waiter{ep.enter(9), ep.enter(7)}
	var theirs time.Time
	var pauses []time.Duration
	f.clock.hook = func(d time.Duration) {
		if d > maxRankPause || above == nil {
			return
		}
		pauses = append(pauses, d)
		if len(pauses) == 7 {
			// The two requests above it, held up until now (as by every place of max_concurrency in flight),
			// take their places and leave.
			theirs = f.clock.Now()
			for _, w := range above {
				require.True(t, ep.take(theirs))
				ep.leave(w)
			}
			above = nil
		}
	}
	taken, err := f.c.acquire(context.Background(), ep, req)
	require.NoError(t, err)
	<-f.c.sem
	require.False(t, theirs.IsZero(), "it waited for the requests ranked above it")
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{ms, 2 * ms, 4 * ms, 8 * ms, 16 * ms, 16 * ms, 16 * ms}, pauses,
		"each look that finds it still outranked doubles the pause, up to a bound: no spinning")
	assert.Equal(t, theirs.Add(shortWindow), taken, "and went in the next burst")
	assert.Empty(t, ep.waiting, "it left the endpoint's waiting requests")
}
