package source

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// A long sync says where it stands: every stream counts its records and its finished tasks (windows or parents),
// and a reporter hands a snapshot of each running stream to the writer every progress_interval_seconds (LOG and
// ESTIMATE in Airbyte, METRIC lines in Singer), plus a final one when the stream ends. On a terminal a live display
// shows the same figures.

// streamProgress is one stream's counters, updated by its workers without locks.
type streamProgress struct {
	name    string
	started time.Time
	records atomic.Int64
	done    atomic.Int64
	total   atomic.Int64
	unit    atomic.Pointer[string]
}

// planned records the size of the stream's plan.
func (p *streamProgress) planned(sp *streamPlan) {
	unit := "reads"
	switch sp.mode {
	case readWindows:
		unit = "windows"
	case readParents:
		unit = "parents"
	}
	p.unit.Store(&unit)
	p.total.Store(int64(len(sp.tasks)))
}

func (p *streamProgress) snapshot(now time.Time, final bool) emit.Progress {
	unit := "tasks"
	if u := p.unit.Load(); u != nil {
		unit = *u
	}
	return emit.Progress{Stream: p.name, Records: p.records.Load(), Elapsed: now.Sub(p.started),
		TasksDone: int(p.done.Load()), TasksTotal: int(p.total.Load()), Unit: unit, Final: final}
}

// progressBoard holds the streams of a sync that are running, in the order they started.
type progressBoard struct {
	now     func() time.Time
	mu      sync.Mutex
	running []*streamProgress
}

func newProgressBoard(now func() time.Time) *progressBoard { return &progressBoard{now: now} }

// start registers a stream that begins reading.
func (b *progressBoard) start(name string) *streamProgress {
	p := &streamProgress{name: name, started: b.now()}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running = append(b.running, p)
	return p
}

// end removes a stream that ended and returns its final snapshot.
func (b *progressBoard) end(p *streamProgress) emit.Progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, q := range b.running {
		if q == p {
			b.running = append(b.running[:i], b.running[i+1:]...)
			break
		}
	}
	return p.snapshot(b.now(), true)
}

// snapshots returns where every running stream stands.
func (b *progressBoard) snapshots() []emit.Progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	out := make([]emit.Progress, 0, len(b.running))
	for _, p := range b.running {
		out = append(out, p.snapshot(now, false))
	}
	return out
}

// report writes every running stream's progress.
func (b *progressBoard) report(out emit.Writer) {
	for _, p := range b.snapshots() {
		_ = out.Progress(p)
	}
}

// runReporter reports every interval, and refreshes the live display (when there is one) every refresh, until
// ctx is done. It returns a function that stops it and waits for it.
func (b *progressBoard) runReporter(ctx context.Context, out emit.Writer, interval time.Duration, display *liveDisplay) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		report := time.NewTicker(interval)
		defer report.Stop()
		var refresh <-chan time.Time
		if display != nil {
			t := time.NewTicker(displayRefresh)
			defer t.Stop()
			refresh = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-report.C:
				b.report(out)
			case <-refresh:
				display.draw(b.snapshots())
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		if display != nil {
			display.clear()
		}
	}
}
