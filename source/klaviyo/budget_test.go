package klaviyo

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func TestLimitsPerTier(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		budget    Budget
		scale     float64
		perMinute float64 // sustained requests a minute
		bucket    int
	}{
		{"XS", TierXS(), 1, 14, 1}, // lowered from 14.25 so a 1-token bucket fits the minute
		{"S", TierS(), 1, 57, 2},
		{"M", TierM(), 1, 142.5, 7},
		{"L", TierL(), 1, 712.5, 37},
		{"XL", TierXL(), 1, 3325, 175},
		{"L at 1/10", TierL(), 0.1, 71.25, 3},
		{"XL at 1/10", TierXL(), 0.1, 332.5, 17},
		{"XS at 1/10", TierXS(), 0.1, 1, 1}, // 1/s 2/min once rounded, as the sandbox scales it
		{"M at 4x", TierM(), 4, 570, 30},
		{"reporting 1/s 2/m", Budget{Burst: 1, PerMinute: 2}, 1, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, bucket := limits(tc.budget, tc.scale)
			assert.InDelta(t, tc.perMinute, float64(r)*60, 1e-9)
			assert.Equal(t, tc.bucket, bucket)
		})
	}
}

// TestLimitsNeverOverrunKlaviyoWindows drives each budget's limiter as hard as it allows on a virtual clock for ten
// minutes and counts requests in every 1 s and 60 s window (sliding, which covers Klaviyo's fixed ones).
func TestLimitsNeverOverrunKlaviyoWindows(t *testing.T) {
	t.Parallel()
	for _, b := range []Budget{TierXS(), TierS(), TierM(), TierL(), TierXL(), {Burst: 1, PerMinute: 2}} {
		for _, scale := range []float64{1, 0.5, 0.1, 3} {
			r, bucket := limits(b, scale)
			lim := rate.NewLimiter(r, bucket)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			end := start.Add(10 * time.Minute)
			var sent []time.Time
			for now := start; ; {
				res := lim.ReserveN(now, 1)
				require.True(t, res.OK())
				now = now.Add(res.DelayFrom(now))
				if !now.Before(end) {
					break
				}
				sent = append(sent, now)
			}
			perSecond := float64(b.scaled(scale).Burst)
			perMinute := float64(b.scaled(scale).PerMinute)
			assert.LessOrEqual(t, float64(maxInWindow(sent, time.Second)), perSecond, "%+v×%v per second", b, scale)
			assert.LessOrEqual(t, float64(maxInWindow(sent, time.Minute)), perMinute, "%+v×%v per minute", b, scale)
			if perMinute >= 20 {
				// The budget is used, not just respected: at least 90% of the steady rate over the ten minutes.
				assert.GreaterOrEqual(t, float64(len(sent)), 0.9*perMinute*10, "%+v×%v throughput", b, scale)
			}
		}
	}
}

// maxInWindow is the largest number of times inside any half-open window [t, t+w) that starts at one of them.
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

func TestEndpointSlowsDownOnceperBurstAndRecoversStepByStep(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
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

	// However many 429s, the endpoint keeps a sixteenth of its budget.
	now := t2.Add(time.Hour)
	for range 10 {
		now = now.Add(time.Second)
		ep.throttled(now, now, time.Time{})
	}
	assert.InDelta(t, float64(base)/16, float64(ep.lim.Limit()), 1e-9)
}

func TestScaledBudgetsAreWholeRequests(t *testing.T) {
	t.Parallel()
	assert.Equal(t, Budget{Burst: 8, PerMinute: 75}, TierL().scaled(0.1))
	assert.Equal(t, Budget{Burst: 1, PerMinute: 2}, TierXS().scaled(0.1))
	assert.Equal(t, Budget{Burst: 1, PerMinute: 1}, TierXS().scaled(0.001))
	assert.Equal(t, Budget{Burst: 150, PerMinute: 1500}, TierL().scaled(2))
	assert.Equal(t, TierM(), TierM().scaled(1))
}
