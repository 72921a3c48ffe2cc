package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"golang.org/x/sync/errgroup"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// engine runs one sync: every selected stream concurrently, each planned into tasks (plan.go) that workers read,
// every request waiting on its endpoint's budget inside the client. It knows no stream by name: what differs
// between streams is a field of the stream table.
type engine struct {
	cfg       Config
	client    *klaviyo.Client
	out       emit.Writer
	syncStart time.Time
	parents   *parentCache
	// board follows the running streams for the progress reports.
	board *progressBoard
	// reports is what the sync's report streams share: the day's quota ledger and the account.
	reports *reportRun
	// shares are the streams that read the same requests (shared.go), set when the sync starts.
	shares shares
}

// planner returns the planner of this sync, asking Klaviyo through the engine.
func (e *engine) planner() planner {
	return planner{cfg: e.cfg, syncStart: e.syncStart, src: e, shares: e.shares, lazyParents: e.parents != nil}
}

// streamRun is the per-stream view the workers share.
type streamRun struct {
	s       catalog.Stream
	shape   *shaper
	prog    *streamProgress
	running sync.Once
	// stateMu orders state computation and emission, so a later state can never be written before an earlier one.
	stateMu sync.Mutex
	// wroteState is set (under stateMu) once the stream has written a state, and lastState is that state.
	wroteState bool
	lastState  json.RawMessage
	// also are the streams that follow this one's reads (shared.go): every page is written into them too. lists
	// is set when its reads are also a parent stream's listing, which takes the ids of every page.
	also  []*streamRun
	lists *share
}

// taskDone counts a finished task for the stream and the streams that follow its reads.
func (r *streamRun) taskDone() {
	r.prog.done.Add(1)
	for _, f := range r.also {
		f.prog.done.Add(1)
	}
}

// streamResult says how one stream ended.
type streamResult struct {
	name string
	err  error
}

// run reads every selection and returns the streams that failed. One stream's failure never stops the others.
func (e *engine) run(ctx context.Context, sels []catalog.Selection, states map[string]json.RawMessage) []streamResult {
	e.shares = planShares(e.cfg, sels)
	results := make([]streamResult, len(sels))
	var wg sync.WaitGroup
	for i, sel := range sels {
		wg.Go(func() {
			results[i] = streamResult{name: sel.Stream.Name, err: e.runStream(ctx, sel, states[sel.Stream.Name])}
		})
	}
	wg.Wait()
	if e.parents != nil {
		e.parents.wait()
	}
	var failed []streamResult
	for _, r := range results {
		if r.err != nil {
			failed = append(failed, r)
		}
	}
	return failed
}

// runStream plans and reads one stream between its status traces, and reports its failure as a trace error.
func (e *engine) runStream(ctx context.Context, sel catalog.Selection, prev json.RawMessage) error {
	name := sel.Stream.Name
	_ = e.out.StreamStatus(name, emit.Started, time.Time{})
	prog := e.board.start(name)
	err := e.readStream(ctx, sel, prog, prev)
	_ = e.out.Progress(e.board.end(prog))
	if err != nil {
		var until time.Time
		var ke *klaviyo.Error
		if errors.As(err, &ke) && ke.Kind == klaviyo.KindRateLimited {
			until = ke.RetryAt
		}
		if ctx.Err() != nil && failureType(err) == emit.SystemError {
			err = transientErrorf("the sync was interrupted before stream %q finished: %v", name, ctx.Err())
		}
		_ = e.out.Error(emit.TraceError{
			Message:  fmt.Sprintf("Stream %s did not finish: %s", name, err.Error()),
			Internal: err.Error(),
			Failure:  failureType(err),
			Stream:   name,
		})
		_ = e.out.StreamStatus(name, emit.Incomplete, until)
		return err
	}
	_ = e.out.StreamStatus(name, emit.Complete, time.Time{})
	return nil
}

// readStream plans a stream and executes its plan. However it ends, the stream ends on a state.
func (e *engine) readStream(ctx context.Context, sel catalog.Selection, prog *streamProgress, prev json.RawMessage) error {
	if sel.Stream.Kind == catalog.Report {
		return e.readReport(ctx, sel, prog, prev)
	}
	sh, err := newShaper(sel)
	if err != nil {
		e.shares.abandon(sel.Stream.Name, err)
		return err
	}
	r := &streamRun{s: sel.Stream, shape: sh, prog: prog}
	sp, err := e.planner().plan(ctx, sel, sh, prev)
	if err == nil {
		prog.planned(sp)
	}
	if shr, m := e.shares.follower(sel.Stream.Name); shr != nil {
		err = e.follow(ctx, shr, m, r, sp, err)
		e.endStream(r, prev)
		return err
	}
	if err == nil {
		err = e.shares.lead(ctx, r)
	}
	if err == nil {
		err = e.execute(ctx, r, sp)
	}
	e.shares.finish(sel.Stream.Name, err)
	e.endStream(r, prev)
	return err
}

// endStream marks a stream running (if it never wrote a record) and makes sure it ends on a state: a stream that
// failed before its first checkpoint (a daily quota on its first request) still gets one, the one it started
// from, so every configured stream has one and nothing moves.
func (e *engine) endStream(r *streamRun, prev json.RawMessage) {
	r.markRunning(e.out)
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	if r.wroteState {
		return
	}
	st := prev
	if len(st) == 0 || string(st) == "null" {
		st, _ = fullRefreshState()
	}
	_ = e.stateLocked(r, st)
}

func (r *streamRun) markRunning(out emit.Writer) {
	r.running.Do(func() { _ = out.StreamStatus(r.s.Name, emit.Running, time.Time{}) })
}

// execute reads a stream's plan.
func (e *engine) execute(ctx context.Context, r *streamRun, sp *streamPlan) error {
	switch sp.mode {
	case readWindows:
		return e.readWindows(ctx, r, sp)
	case readParents:
		return e.readParents(ctx, r, sp)
	}
	return e.readOnce(ctx, r, sp)
}

// readOnce reads every variant of a stream with no cursor bounds, then writes one state. The state is written
// even after a failure or an interruption, so every record written is followed by a state that counts it
// (Airbyte checks recordCount against what it received).
func (e *engine) readOnce(ctx context.Context, r *streamRun, sp *streamPlan) error {
	var err error
	for _, t := range sp.tasks {
		for _, rd := range t.reads {
			if err = e.pages(ctx, r, sp, rd.req, readScope{}, nil, nil); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
		r.taskDone()
	}
	if serr := e.writeFullRefreshState(r, sp); err == nil {
		err = serr
	}
	return err
}

// readWindows reads a collection's windows in parallel. Incremental reads checkpoint the low-water mark as they go;
// a full refresh writes one state at the end.
func (e *engine) readWindows(ctx context.Context, r *streamRun, sp *streamPlan) error {
	tr := newTracker(sp.prev, e.syncStart)
	tr.lookback = sp.lookback
	tr.add(sp.windows)
	emitState := func() error {
		if !sp.incremental {
			return nil
		}
		r.stateMu.Lock()
		defer r.stateMu.Unlock()
		st, err := sp.state(tr.cursor(), nil)
		if err != nil {
			return err
		}
		return e.stateLocked(r, st)
	}
	pool := newWindowPool(tr, sp.windows, sp.stream.PageSize, e.syncStart, func() { r.prog.total.Add(1) })
	err := pool.run(ctx, e.planner().windowWorkers(sp), func(ctx context.Context, w *window) error {
		afterPage := func(last bool) error {
			tr.pageRead(w, last)
			pool.progressed()
			if w.sorted {
				return emitState()
			}
			return nil
		}
		sc := readScope{window: w, skip: sp.prev.skip}
		if w.sorted {
			sc.admit = func(c time.Time) bool { return tr.admit(w, c) }
		}
		observe := func(id string, c time.Time) { tr.observe(w, id, c) }
		if page := tr.takePage(w); page != nil {
			// Planning's probe already read the whole window in one page.
			if _, err := e.writePage(r, page, sc, observe); err != nil {
				return err
			}
			if err := afterPage(true); err != nil {
				return err
			}
		} else {
			req := sp.reqs.build("", w.variant, w)
			req.Rank = func() float64 { return tr.rank(w) }
			if err := e.pages(ctx, r, sp, req, sc, observe, afterPage); err != nil {
				return err
			}
		}
		tr.finish(w)
		r.prog.done.Add(1)
		return emitState()
	})
	if n := pool.splitCount(); n > 0 {
		_ = e.out.Log("INFO", fmt.Sprintf("%s: split %d windows while reading them, where the data was denser than the plan's equal spans", r.s.Name, n))
	}
	if serr := emitState(); err == nil {
		err = serr
	}
	if !sp.incremental {
		if serr := e.writeFullRefreshState(r, sp); err == nil {
			err = serr
		}
	}
	return err
}

// writeFullRefreshState writes the state of a stream read without a cursor.
func (e *engine) writeFullRefreshState(r *streamRun, sp *streamPlan) error {
	st, err := sp.state(cursorState{}, nil)
	if err != nil {
		return err
	}
	return e.writeState(r, st)
}

// writeState writes a stream's state under the stream's state lock.
func (e *engine) writeState(r *streamRun, st json.RawMessage) error {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	return e.stateLocked(r, st)
}

// stateLocked writes a state; the caller holds r.stateMu. A state equal to the last one written is skipped:
// Airbyte rejects a repeated state with records in between, and records written after a checkpoint that did not
// move lie beyond it, so no state may claim them (a resume reads them again). A stream that completes always ends
// on a new state when it wrote records since the last one (a later cursor, or more ids at the same one), so
// only an interrupted stream ends with records after its last state.
func (e *engine) stateLocked(r *streamRun, st json.RawMessage) error {
	if r.wroteState && bytes.Equal(st, r.lastState) {
		return nil
	}
	r.wroteState, r.lastState = true, st
	return e.out.State(r.s.Name, st)
}

// pages follows a read's pages from req, writing each page's rows; observe is told every written resource's id
// and cursor, and afterPage runs once a page's rows are all written (where sorted windows checkpoint), told whether
// the page was the read's last. When a
// page fails on an optional field Klaviyo sometimes cannot serve, the read goes on from that same page without
// the field: the pages before it are never read again.
func (e *engine) pages(ctx context.Context, r *streamRun, sp *streamPlan, req klaviyo.Request, sc readScope, observe func(string, time.Time), afterPage func(last bool) error) error {
	for {
		at := req // the request of the page being read
		var failed error
		for doc, err := range e.client.Pages(ctx, req) {
			if err != nil {
				failed = err
				break
			}
			past, err := e.writePage(r, doc, sc, observe)
			if err != nil {
				return err
			}
			for _, f := range r.also {
				if _, err := e.writePage(f, doc, readScope{parentID: sc.parentID, until: sc.until}, nil); err != nil {
					return err
				}
			}
			if r.lists != nil {
				r.lists.listed(doc)
			}
			if afterPage != nil {
				if err := afterPage(past || doc.Next == ""); err != nil {
					return err
				}
			}
			if past {
				// The window was split below what this read asked for: the rest is the split-off window's.
				return nil
			}
			at.URL, at.Query = doc.Next, nil
		}
		if failed == nil {
			return nil
		}
		next, ok := e.withoutFallible(sp.reqs, at, failed)
		if !ok {
			return failed
		}
		req = next
	}
}

// get reads one page, with the same fallback as pages.
func (e *engine) get(ctx context.Context, reqs requestBuilder, req klaviyo.Request) (*klaviyo.Document, error) {
	doc, err := e.client.Get(ctx, req)
	if err != nil {
		if next, ok := e.withoutFallible(reqs, req, err); ok {
			return e.client.Get(ctx, next)
		}
	}
	return doc, err
}

// withoutFallible is requestBuilder.withoutFallible, said in the log.
func (e *engine) withoutFallible(reqs requestBuilder, req klaviyo.Request, err error) (klaviyo.Request, bool) {
	next, dropped, ok := reqs.withoutFallible(req, err)
	if ok {
		var ke *klaviyo.Error
		errors.As(err, &ke)
		_ = e.out.Log("WARN", fmt.Sprintf("Klaviyo failed %s on %s (%v); stream %s reads on from that page without it",
			strings.Join(dropped, ", "), req.Endpoint, ke.Status, reqs.s.Name))
	}
	return next, ok
}

// writePage shapes and writes every row of one page. It reports past when the read's scope refused a resource
// (a split window's read reached its new upper bound): in a sorted read every later resource is refused too.
func (e *engine) writePage(r *streamRun, doc *klaviyo.Document, sc readScope, observe func(string, time.Time)) (past bool, err error) {
	if len(doc.Data) == 0 {
		return false, nil
	}
	r.markRunning(e.out)
	sc.metricNames = r.shape.metricNames(doc.Included)
	sc.until = e.cfg.EndDate
	out := r.shape.getSink()
	defer r.shape.putSink(out)
	written := 0
	defer func() { r.prog.records.Add(int64(written)) }()
	for i := range doc.Data {
		res := doc.Data[i]
		out.reset()
		c, err := r.shape.rows(out, res, &sc)
		if err != nil {
			return false, fmt.Errorf("reshaping a %s record of stream %s: %w", res.Type, r.s.Name, err)
		}
		if c.ok && sc.admit != nil && !sc.admit(c.at) {
			return true, nil
		}
		start := 0
		for _, end := range out.ends {
			if err := e.out.Record(r.s.Name, out.buf[start:end]); err != nil {
				return false, fmt.Errorf("writing a record of stream %s: %w", r.s.Name, err)
			}
			written++
			start = end
		}
		if c.ok && observe != nil {
			observe(res.ID, c.at)
		}
	}
	return false, nil
}

// probe answers planning's question of where a window's data starts (planSource).
func (e *engine) probe(ctx context.Context, reqs requestBuilder, req klaviyo.Request) (*klaviyo.Document, error) {
	return e.get(ctx, reqs, req)
}

// parentIDs answers planning's question of which parents a child stream has (planSource).
func (e *engine) parentIDs(ctx context.Context, stream string) ([]string, error) {
	return e.parents.ids(ctx, e, stream)
}

// runTasks runs fn for task indexes [0, n) on at most `workers` goroutines, started in ascending order so windows
// finish roughly oldest first and the low-water mark keeps moving. The first error cancels the rest.
func runTasks(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	if n == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i := 0; i < n && gctx.Err() == nil; i++ {
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
