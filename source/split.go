package source

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// A windowed stream is planned as equal spans of its cursor, but real accounts are not uniform: a growing account
// holds most of its events in its last months, and a Black Friday week can hold more than a year before it. With
// equal spans the sparse windows finish early and the dense ones are left to drain one page per round trip, with
// workers idle and the endpoint's budget unused. So a worker that finds no window left to start splits the unread
// rest of the running window with the most records still to come: the running read keeps the lower half (it stops
// at the first resource at or past the cut, tracker.admit) and the worker reads the upper half with a request of
// its own. Only sorted windows split: their read reaches the cut in cursor order, so no resource is read by both
// halves and none by neither. A split costs at most one page (the running read's page that crosses the cut), so
// a window is split only when a few pages are still to come.

// minSplitPages is how many pages a running window must still be expected to hold before an idle worker splits
// it: below that, the page a split wastes is a large share of what it saves.
const minSplitPages = 4

// windowPool hands a stream's windows to its workers, and splits a running one when a worker has nothing to start.
type windowPool struct {
	tr       *tracker
	pageSize int
	// horizon bounds an open window's (no upper bound) expected rest: records past the sync's start are few.
	horizon time.Time
	// onSplit is told of every window split off (the progress counts it).
	onSplit func()

	mu      sync.Mutex
	cond    *sync.Cond
	pending []*window
	running []*window
	stopped bool
	splits  int
}

func newWindowPool(tr *tracker, ws []*window, pageSize int, horizon time.Time, onSplit func()) *windowPool {
	p := &windowPool{tr: tr, pageSize: max(pageSize, 1), horizon: horizon, onSplit: onSplit, pending: slices.Clone(ws)}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// next returns the window a worker reads next: a planned one, else the upper half of a running one; false when
// every window is done or the read stopped. A worker with nothing to take waits while others read: their next
// page may show a window worth splitting.
func (p *windowPool) next() (*window, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.stopped {
			return nil, false
		}
		if len(p.pending) > 0 {
			w := p.pending[0]
			p.pending = p.pending[1:]
			p.running = append(p.running, w)
			return w, true
		}
		if len(p.running) == 0 {
			return nil, false
		}
		if w := p.tr.split(p.running, p.pageSize, p.horizon); w != nil {
			p.running = append(p.running, w)
			p.splits++
			if p.onSplit != nil {
				p.onSplit()
			}
			return w, true
		}
		p.cond.Wait()
	}
}

// splitCount is how many windows were split off.
func (p *windowPool) splitCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.splits
}

// progressed wakes the waiting workers after a page: the window's estimate changed.
func (p *windowPool) progressed() {
	p.cond.Broadcast()
}

// done removes a finished window from the running ones.
func (p *windowPool) done(w *window) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = slices.DeleteFunc(p.running, func(x *window) bool { return x == w })
	p.cond.Broadcast()
}

// stop ends the pool: waiting workers return.
func (p *windowPool) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.cond.Broadcast()
}

// run reads the pool's windows on the given number of workers until all are done; the first error stops the rest.
func (p *windowPool) run(ctx context.Context, workers int, read func(context.Context, *window) error) error {
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, p.stop)
	defer stop()
	for range max(workers, 1) {
		g.Go(func() error {
			for {
				w, ok := p.next()
				if !ok {
					return nil
				}
				if err := read(gctx, w); err != nil {
					p.stop()
					return err
				}
				p.done(w)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// split cuts the unread rest of the running window expected to hold the most records, if it is worth a split, and
// returns the upper half as a new window registered after it; nil when none is. A window's rest is estimated
// from its own density once it has read a page, else from the density of the window it was split from; a window
// with neither (its first page still in flight) is not split yet.
func (t *tracker) split(running []*window, pageSize int, horizon time.Time) *window {
	t.mu.Lock()
	defer t.mu.Unlock()
	var best *window
	var bestRest float64
	for _, w := range running {
		rest := w.expectedRest(horizon)
		if rest > bestRest {
			best, bestRest = w, rest
		}
	}
	if best == nil || bestRest < float64(minSplitPages*pageSize) {
		return nil
	}
	hi := best.hi
	if hi.IsZero() {
		hi = horizon
	}
	// Klaviyo's cursors and filters are whole seconds: the cut is a whole second above every resource the read
	// has let through.
	cut := best.last.Add(hi.Sub(best.last) / 2).Truncate(time.Second)
	if !cut.After(best.last) || !cut.Before(hi) {
		return nil
	}
	upper := &window{variant: best.variant, lo: cut, hi: best.hi, sorted: true, density: best.currentDensity()}
	best.hi = cut
	i := slices.Index(t.windows, best)
	t.windows = slices.Insert(t.windows, i+1, upper)
	return upper
}

// expectedRest is how many records a running window is expected still to return: its density times the cursor span
// left above the last resource it admitted. Zero when it cannot split: unsorted, or no page read yet.
func (w *window) expectedRest(horizon time.Time) float64 {
	if !w.sorted || w.done || w.final || w.admitted == 0 {
		return 0
	}
	hi := w.hi
	if hi.IsZero() {
		hi = horizon
	}
	left := hi.Sub(w.last)
	if left <= time.Second {
		return 0
	}
	return w.currentDensity() * left.Seconds()
}

// rank is how many records w is still expected to return, its read's klaviyo.Request.Rank: when a burst has fewer
// places than reads waiting for it, the reads with the most left go first. A window split off and not read yet
// ranks by the density it was split off with; one with neither (a planned window before its first page) ranks 0,
// level with every other such window.
func (t *tracker) rank(w *window) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.admitted == 0 && !w.final && !w.done {
		hi := w.hi
		if hi.IsZero() {
			hi = t.syncStart
		}
		return w.density * max(hi.Sub(w.lo).Seconds(), 0)
	}
	return w.expectedRest(t.syncStart)
}

// currentDensity is the window's records per second of cursor: the larger of its whole read's and its latest
// page's once its resources span some time, else the estimate it was split off with. The latest page counts
// because density changes within a window (an account grows, a sale starts): the average of a read that has just
// entered a burst week lags far behind what is left.
func (w *window) currentDensity() float64 {
	if span := w.last.Sub(w.first); w.admitted > 1 && span > 0 {
		return max(float64(w.admitted)/span.Seconds(), w.pageDensity)
	}
	return max(w.density, w.pageDensity)
}

// takePage hands a read the page planning's probe read for its window, if any (once: the window then holds no
// page). The window has nothing to split: that page is all of it.
func (t *tracker) takePage(w *window) *klaviyo.Document {
	t.mu.Lock()
	defer t.mu.Unlock()
	page := w.page
	w.page = nil
	if page != nil {
		w.final = true
	}
	return page
}

// pageRead notes that a read of w has written a page: the density of that page becomes w's latest. After the
// read's last page the window has nothing left to split.
func (t *tracker) pageRead(w *window, last bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.markN > 0 {
		if n, span := w.admitted-w.markN, w.last.Sub(w.markAt); n > 0 && span > 0 {
			w.pageDensity = float64(n) / span.Seconds()
		}
	}
	w.markN, w.markAt = w.admitted, w.last
	w.final = w.final || last
}
