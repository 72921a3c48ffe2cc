package source

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var splitBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// readInto admits n resources evenly spread over [from, to) into w, as a read of its pages would.
func readInto(t *testing.T, tr *tracker, w *window, n int, from, to time.Time) {
	t.Helper()
	step := to.Sub(from) / time.Duration(n)
	for i := range n {
		c := from.Add(step * time.Duration(i)).Truncate(time.Second)
		require.True(t, tr.admit(w, c), "a resource inside the window is admitted")
		tr.observe(w, "id", c)
	}
}

func TestSplitCutsTheDensestRunningWindowInTheMiddleOfItsRest(t *testing.T) {
	h := func(n int) time.Time { return splitBase.Add(time.Duration(n) * time.Hour) }
	sparse := &window{lo: h(0), hi: h(10), sorted: true}
	dense := &window{lo: h(10), hi: h(20), sorted: true}
	after := &window{lo: h(20), hi: h(30), sorted: true}
	tr := newTracker(cursorState{}, h(30))
	tr.add([]*window{sparse, dense, after})
	readInto(t, tr, sparse, 10, h(0), h(1))   // 10 an hour: 90 to come, under 4 pages of 100
	readInto(t, tr, dense, 200, h(10), h(11)) // 200 an hour: 1,800 to come

	upper := tr.split([]*window{sparse, dense}, 100, h(30))
	require.NotNil(t, upper, "the dense window has 18 pages to come")
	last := dense.last
	cut := last.Add(h(20).Sub(last) / 2).Truncate(time.Second)
	assert.Equal(t, cut, dense.hi, "the running read keeps the lower half of its rest")
	assert.Equal(t, cut, upper.lo)
	assert.Equal(t, h(20), upper.hi, "the split-off window reads up to the old bound")
	assert.True(t, upper.sorted)
	assert.InDelta(t, dense.currentDensity(), upper.density, 1e-9, "the new window starts from its parent's density")
	assert.Equal(t, []*window{sparse, dense, upper, after}, tr.windows, "the new window is registered in cursor order")

	assert.False(t, tr.admit(dense, cut), "the running read stops at the cut")
	assert.False(t, tr.admit(dense, cut.Add(time.Minute)))
	assert.True(t, tr.admit(dense, cut.Add(-time.Second)), "below the cut the read goes on")

	assert.Nil(t, tr.split([]*window{sparse}, 100, h(30)), "90 records to come is not worth a page lost to the split")
}

func TestSplitLeavesWindowsItCannotEstimateOrOrder(t *testing.T) {
	h := func(n int) time.Time { return splitBase.Add(time.Duration(n) * time.Hour) }
	unsorted := &window{lo: h(0), hi: h(10)}
	unread := &window{lo: h(10), hi: h(20), sorted: true}
	tr := newTracker(cursorState{}, h(20))
	tr.add([]*window{unsorted, unread})
	readInto(t, tr, unsorted, 500, h(0), h(1))
	assert.Nil(t, tr.split([]*window{unsorted, unread}, 100, h(20)),
		"an unsorted read cannot stop at a cut, and a read with no page yet has no density")
}

func TestSplitOfAnOpenWindowKeepsTheUpperHalfOpen(t *testing.T) {
	h := func(n int) time.Time { return splitBase.Add(time.Duration(n) * time.Hour) }
	open := &window{lo: h(0), sorted: true}
	tr := newTracker(cursorState{}, h(10))
	tr.add([]*window{open})
	readInto(t, tr, open, 300, h(0), h(1))
	upper := tr.split([]*window{open}, 100, h(10))
	require.NotNil(t, upper)
	assert.True(t, upper.hi.IsZero(), "a full refresh's last window stays unbounded above")
	assert.True(t, open.hi.After(h(1)) && open.hi.Before(h(10)), "the cut lies between the read and the sync's start: %s", open.hi)
}

func TestCheckpointFollowsASplitWindow(t *testing.T) {
	h := func(n int) time.Time { return splitBase.Add(time.Duration(n) * time.Hour) }
	w := &window{lo: h(0), hi: h(10), sorted: true}
	tr := newTracker(cursorState{}, h(10))
	tr.add([]*window{w})
	readInto(t, tr, w, 400, h(0), h(2))
	upper := tr.split([]*window{w}, 100, h(10))
	require.NotNil(t, upper)
	// The split-off window reads ahead: its records are not below the safe point while the lower half runs.
	require.True(t, tr.admit(upper, w.hi.Add(time.Hour)))
	tr.observe(upper, "ahead", w.hi.Add(time.Hour))
	assert.Equal(t, w.last, tr.cursor().At, "the checkpoint stays at what the lower half has written")
	tr.finish(w)
	assert.Equal(t, w.hi.Add(time.Hour), tr.cursor().At, "once the lower half is done the upper half's progress counts")
}

func TestWindowPoolSplitsForIdleWorkersAndEndsWhenAllAreDone(t *testing.T) {
	h := func(n int) time.Time { return splitBase.Add(time.Duration(n) * time.Hour) }
	dense := &window{lo: h(0), hi: h(10), sorted: true}
	tr := newTracker(cursorState{}, h(10))
	tr.add([]*window{dense})
	splits := 0
	pool := newWindowPool(tr, []*window{dense}, 10, h(10), func() { splits++ })

	// Each read writes one resource a minute across its window, a page of 10 at a time, and tells the pool after
	// every page; the pool's windows must cover [0h, 10h) exactly once between them.
	var mu sync.Mutex
	written := map[time.Time]int{}
	err := pool.run(context.Background(), 4, func(_ context.Context, w *window) error {
		// The account's resources lie on whole minutes, wherever the window starts.
		first := w.lo.Truncate(time.Minute)
		if first.Before(w.lo) {
			first = first.Add(time.Minute)
		}
		for c, inPage := first, 0; ; c = c.Add(time.Minute) {
			if !c.Before(h(10)) { // the end of the account
				return nil
			}
			if !tr.admit(w, c) {
				return nil
			}
			tr.observe(w, "id", c)
			mu.Lock()
			written[c]++
			mu.Unlock()
			if inPage++; inPage == 10 {
				inPage = 0
				pool.progressed()
				waitForASplit(t, pool)
			}
		}
	})
	require.NoError(t, err)
	assert.Equal(t, 600, len(written), "every minute of the ten hours is written")
	for c, n := range written {
		require.Equal(t, 1, n, "the minute %s is written once", c)
	}
	assert.Positive(t, splits, "idle workers split the one planned window")
	assert.Equal(t, splits, pool.splitCount())
}

// waitForASplit holds a read after its page until some idle worker has split a window, as a round trip to Klaviyo
// would: without it the first read could finish the whole account before another goroutine runs.
func waitForASplit(t *testing.T, pool *windowPool) {
	for range 5000 {
		if pool.splitCount() > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("no idle worker split a window within 5,000 pauses")
}

func TestWindowPoolStopsWaitingWorkersOnError(t *testing.T) {
	h := func(n int) time.Time { return splitBase.Add(time.Duration(n) * time.Hour) }
	ws := []*window{{lo: h(0), hi: h(1), sorted: true}, {lo: h(1), hi: h(2), sorted: true}}
	tr := newTracker(cursorState{}, h(2))
	tr.add(ws)
	pool := newWindowPool(tr, ws, 100, h(2), nil)
	release := make(chan struct{})
	err := pool.run(context.Background(), 4, func(ctx context.Context, w *window) error {
		if w == ws[0] {
			<-release
			return nil
		}
		close(release)
		return assert.AnError
	})
	assert.ErrorIs(t, err, assert.AnError)
}

// A window's read ranks by the records it is still expected to return (klaviyo.Request.Rank): a running one by its
// own density, one split off and not read yet by its parent's, a planned one before its first page at 0, and one
// whose read is over at 0.
func TestAReadRanksByWhatItsWindowStillHolds(t *testing.T) {
	h := func(n int) time.Time { return splitBase.Add(time.Duration(n) * time.Hour) }
	dense := &window{lo: h(0), hi: h(10), sorted: true}
	sparse := &window{lo: h(10), hi: h(20), sorted: true}
	planned := &window{lo: h(20), hi: h(30), sorted: true}
	tr := newTracker(cursorState{}, h(30))
	tr.add([]*window{dense, sparse, planned})
	readInto(t, tr, dense, 200, h(0), h(1))   // 200 an hour, 9 hours to go
	readInto(t, tr, sparse, 10, h(10), h(11)) // 10 an hour

	assert.InDelta(t, dense.expectedRest(h(30)), tr.rank(dense), 1e-9)
	assert.InDelta(t, 1800, tr.rank(dense), 60, "about 9 hours at 200 an hour")
	assert.Greater(t, tr.rank(dense), tr.rank(sparse), "the denser read has more left")
	assert.Zero(t, tr.rank(planned), "nothing is known of a window before its first page")

	upper := tr.split([]*window{dense}, 100, h(30))
	require.NotNil(t, upper)
	assert.InDelta(t, upper.density*upper.hi.Sub(upper.lo).Seconds(), tr.rank(upper), 1e-9,
		"a split-off window ranks by the density it was split off with")
	assert.Greater(t, tr.rank(upper), tr.rank(sparse))

	tr.pageRead(sparse, true)
	assert.Zero(t, tr.rank(sparse), "a read past its last page has nothing left")
}
