package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// engine runs one sync: every selected stream concurrently, each split into windows or parents read by workers,
// every request waiting on its endpoint's budget inside the client.
type engine struct {
	cfg       Config
	client    *klaviyo.Client
	out       emit.Writer
	syncStart time.Time
	parents   *parentCache
}

// streamRun is the per-stream view the workers share.
type streamRun struct {
	s       catalog.Stream
	sel     catalog.Selection
	shape   *shaper
	running sync.Once
	// stateMu orders state computation and emission, so a later state can never be written before an earlier one.
	stateMu sync.Mutex
	// wroteState is set (under stateMu) once the stream has written a state, and lastState is that state.
	wroteState bool
	lastState  json.RawMessage
}

// streamResult says how one stream ended.
type streamResult struct {
	name string
	err  error
}

// run reads every selection and returns the streams that failed. One stream's failure never stops the others.
func (e *engine) run(ctx context.Context, sels []catalog.Selection, states map[string]json.RawMessage) []streamResult {
	results := make([]streamResult, len(sels))
	var wg sync.WaitGroup
	for i, sel := range sels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = streamResult{name: sel.Stream.Name, err: e.runStream(ctx, sel, states[sel.Stream.Name])}
		}()
	}
	wg.Wait()
	var failed []streamResult
	for _, r := range results {
		if r.err != nil {
			failed = append(failed, r)
		}
	}
	return failed
}

// runStream wraps one stream's read in its status traces and reports its failure as a trace error.
func (e *engine) runStream(ctx context.Context, sel catalog.Selection, prev json.RawMessage) error {
	name := sel.Stream.Name
	_ = e.out.StreamStatus(name, emit.Started, time.Time{})
	sh, err := newShaper(sel)
	if err == nil {
		r := &streamRun{s: sel.Stream, sel: sel, shape: sh}
		err = e.readStream(ctx, r, prev)
		r.markRunning(e.out)
		r.stateMu.Lock()
		if !r.wroteState {
			// A stream that failed before its first checkpoint (a daily quota on its first request) still gets a
			// state, the one it started from, so every configured stream has one and nothing moves.
			st := prev
			if len(st) == 0 || string(st) == "null" {
				st = json.RawMessage(`{}`)
			}
			_ = e.stateLocked(r, st)
		}
		r.stateMu.Unlock()
	}
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

func (r *streamRun) markRunning(out emit.Writer) {
	r.running.Do(func() { _ = out.StreamStatus(r.s.Name, emit.Running, time.Time{}) })
}

// readStream dispatches on the stream's kind and cursor.
func (e *engine) readStream(ctx context.Context, r *streamRun, prevRaw json.RawMessage) error {
	prev, prevParents, err := decodeState(r.s, prevRaw)
	if err != nil {
		return err
	}
	incremental := r.sel.Incremental && r.s.Cursor != nil
	switch r.s.Kind {
	case catalog.Collection:
		if incremental {
			return e.readWindows(ctx, r, prev, false)
		}
		if r.s.Cursor != nil && r.s.Cursor.Upper != "" && r.s.Shape == catalog.Flat {
			// A full refresh of a time-filterable stream still reads windows in parallel: a first sync of events
			// is the longest read there is.
			return e.readWindows(ctx, r, cursorState{}, true)
		}
		return e.readFull(ctx, r, "")
	default:
		return e.readPerParent(ctx, r, incremental, prevParents)
	}
}

// lowerBound is where an incremental read starts: the later of the state and start_date.
func (e *engine) lowerBound(prev time.Time) time.Time {
	if e.cfg.StartDate.After(prev) {
		return e.cfg.StartDate
	}
	return prev
}

// readFull reads every record of a stream (or of one parent) with no cursor filter, then writes one state.
func (e *engine) readFull(ctx context.Context, r *streamRun, parentID string) error {
	var err error
	for _, v := range e.variants(r.s) {
		req := e.request(r, parentID, v, nil)
		if err = e.pages(ctx, r, req, parentID, nil, nil, nil); err != nil {
			break
		}
	}
	if parentID == "" {
		// Written even after a failure or an interruption, so every record written is followed by a state that
		// counts it (Airbyte checks recordCount against what it received).
		if serr := e.writeState(r, encodeState(r.s, cursorState{}, nil)); err == nil {
			err = serr
		}
	}
	return err
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

// readWindows reads a collection in parallel windows. Incremental reads checkpoint the low-water mark as they go;
// a full refresh (full) also reads past the sync start, so future-dated records are not left out, and writes one
// empty state at the end.
func (e *engine) readWindows(ctx context.Context, r *streamRun, prev cursorState, full bool) error {
	tr := newTracker(prev, e.syncStart)
	lo := e.lowerBound(prev.At)
	if full {
		// A full refresh ignores state but honours start_date, as a first incremental sync does.
		lo = e.cfg.StartDate
	}
	var all []*window
	for _, v := range e.variants(r.s) {
		ws, err := e.planWindows(ctx, r, v, lo)
		if err != nil {
			return err
		}
		if full {
			ws = append(ws, &window{variant: v, lo: e.syncStart})
		}
		tr.add(ws)
		all = append(all, ws...)
	}
	emitState := func() error {
		r.stateMu.Lock()
		defer r.stateMu.Unlock()
		if full {
			return nil
		}
		return e.stateLocked(r, encodeState(r.s, tr.cursor(), nil))
	}
	err := runTasks(ctx, len(all), e.workers(r.s, len(all)), func(ctx context.Context, i int) error {
		w := all[i]
		req := e.request(r, "", w.variant, w)
		err := e.pages(ctx, r, req, "", prev.skip, func(id string, c time.Time) { tr.observe(w, id, c) }, func() error {
			if w.sorted {
				return emitState()
			}
			return nil
		})
		if err != nil {
			return err
		}
		tr.finish(w)
		return emitState()
	})
	if serr := emitState(); err == nil {
		err = serr
	}
	if full {
		if serr := e.writeState(r, encodeState(catalog.Stream{}, cursorState{}, nil)); err == nil {
			err = serr
		}
	}
	return err
}

// planWindows splits [lo, syncStart) of one variant into windows worth reading in parallel. It first asks for the
// earliest record (one request of one record), so an account whose data starts last year is not split across a
// decade of empty windows, and a stream with nothing new costs one request.
func (e *engine) planWindows(ctx context.Context, r *streamRun, variant string, lo time.Time) ([]*window, error) {
	c := r.s.Cursor
	sorted := c.Sort != "" && r.s.Shape == catalog.Flat
	hi := e.syncStart
	if !lo.IsZero() && !lo.Before(hi) {
		// A state at or past the sync start (an abnormal, future state) leaves nothing to read: a cursor we write
		// never passes a sync's start, so there can be no record we owe.
		return nil, nil
	}
	if c.Upper == "" {
		// No upper-bound operator: one window from lo, unbounded above.
		return []*window{{variant: variant, lo: lo, sorted: sorted}}, nil
	}
	first := lo
	if c.Sort != "" {
		probe := &window{variant: variant, lo: lo, hi: hi, sorted: true}
		req := e.request(r, "", variant, probe)
		req.Query.Set("page[size]", "1")
		doc, err := e.get(ctx, req)
		if err != nil {
			return nil, err
		}
		if len(doc.Data) == 0 {
			return nil, nil
		}
		t, ok := r.shape.cursorOf(doc.Data[0])
		if !ok {
			return []*window{{variant: variant, lo: lo, hi: hi, sorted: sorted}}, nil
		}
		first = t
	}
	if first.IsZero() {
		return []*window{{variant: variant, hi: hi, sorted: sorted}}, nil
	}
	n := windowCount(r.s, hi.Sub(first))
	span := hi.Sub(first) / time.Duration(n)
	ws := make([]*window, 0, n)
	start := first
	for i := 0; i < n; i++ {
		end := first.Add(span * time.Duration(i+1)).Truncate(time.Second)
		if i == n-1 || !end.Before(hi) {
			end = hi
		}
		if !end.After(start) {
			continue
		}
		ws = append(ws, &window{variant: variant, lo: start, hi: end, sorted: sorted})
		start = end
		if !start.Before(hi) {
			break
		}
	}
	if len(ws) > 0 {
		// The first window starts at the requested bound, not at the probe's answer: it costs nothing when nothing
		// is there, and covers a record written below the probe's answer while the sync runs (a backfill).
		ws[0].lo = lo
	}
	return ws, nil
}

// windowCount sizes the split so each window is worth a share of the endpoint's budget: enough windows to keep
// the budget busy through request latency, never windows shorter than an hour.
func windowCount(s catalog.Stream, span time.Duration) int {
	n := s.Rate.Burst / 10
	switch {
	case n < 2:
		n = 2
	case n > 32:
		n = 32
	}
	if max := int(span / time.Hour); max < n {
		n = max
	}
	if n < 1 {
		n = 1
	}
	return n
}

// workers is how many goroutines read a stream's tasks at once; the client's concurrency cap and the endpoint
// budgets decide the real pace, this only keeps idle goroutines bounded.
func (e *engine) workers(s catalog.Stream, tasks int) int {
	n := e.cfg.MaxConcurrency
	if n > tasks {
		n = tasks
	}
	if n < 1 {
		n = 1
	}
	return n
}

// readPerParent fans a child stream out over its parent's ids, keeping a cursor per parent when it has one.
func (e *engine) readPerParent(ctx context.Context, r *streamRun, incremental bool, prevParents map[string]cursorState) error {
	ids, err := e.parents.ids(ctx, e, r.s.Parent)
	if err != nil {
		return fmt.Errorf("listing the parents (%s) of stream %s: %w", r.s.Parent, r.s.Name, err)
	}
	var mu sync.Mutex
	cursors := map[string]cursorState{}
	for _, id := range ids {
		if t, ok := prevParents[id]; ok {
			cursors[id] = t
		}
	}
	var lastEmit time.Time
	emitState := func() error {
		r.stateMu.Lock()
		defer r.stateMu.Unlock()
		mu.Lock()
		st := encodeState(r.s, cursorState{}, cursors)
		mu.Unlock()
		if !incremental || r.s.Cursor == nil {
			st = encodeState(catalog.Stream{}, cursorState{}, nil)
		}
		lastEmit = time.Now()
		return e.stateLocked(r, st)
	}
	// pageState checkpoints inside a parent, so a kill in the middle of a million-member list loses at most a
	// page. Each state carries every parent's cursor, so with many parents it is written at most once a second.
	pageState := func() error {
		mu.Lock()
		many := len(cursors) > 100
		mu.Unlock()
		r.stateMu.Lock()
		recent := many && time.Since(lastEmit) < time.Second
		r.stateMu.Unlock()
		if recent {
			return nil
		}
		return emitState()
	}
	err = runTasks(ctx, len(ids), e.workers(r.s, len(ids)), func(ctx context.Context, i int) error {
		id := ids[i]
		switch {
		case r.s.Kind == catalog.PerParentObject:
			return e.readObject(ctx, r, id)
		case !incremental:
			return e.readFull(ctx, r, id)
		}
		mu.Lock()
		prev := cursors[id]
		mu.Unlock()
		tr := newTracker(prev, e.syncStart)
		lo := e.lowerBound(prev.At)
		if !lo.IsZero() && !lo.Before(e.syncStart) {
			return nil
		}
		var ws []*window
		for _, v := range e.variants(r.s) {
			ws = append(ws, &window{variant: v, lo: lo, hi: e.syncStart, sorted: r.s.Cursor.Sort != ""})
		}
		tr.add(ws)
		save := func() error {
			c := tr.cursor()
			if c.At.IsZero() {
				return nil
			}
			mu.Lock()
			old := cursors[id]
			changed := !old.At.Equal(c.At) || len(old.IDs) != len(c.IDs)
			cursors[id] = c
			mu.Unlock()
			if changed && r.s.Cursor.Sort != "" {
				return pageState()
			}
			return nil
		}
		for _, w := range ws {
			req := e.request(r, id, w.variant, w)
			if err := e.pages(ctx, r, req, id, prev.skip, func(rid string, c time.Time) { tr.observe(w, rid, c) }, save); err != nil {
				return err
			}
			tr.finish(w)
		}
		if err := save(); err != nil {
			return err
		}
		return emitState()
	})
	if serr := emitState(); err == nil {
		err = serr
	}
	return err
}

// readObject reads the single resource a parent has (a campaign's send job); 404 means it has none.
func (e *engine) readObject(ctx context.Context, r *streamRun, parentID string) error {
	req := e.request(r, parentID, "", nil)
	doc, err := e.get(ctx, req)
	var ke *klaviyo.Error
	if errors.As(err, &ke) && ke.Kind == klaviyo.KindNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	return e.writePage(r, doc, parentID, nil, nil)
}

// pages follows a query's pages, writing each page's rows. skip drops resources a previous sync already wrote
// (those at its checkpoint's exact timestamp); observe is told every written resource's id and cursor; afterPage
// runs once a page's rows are all written (where sorted windows checkpoint).
func (e *engine) pages(ctx context.Context, r *streamRun, req klaviyo.Request, parentID string, skip func(string, time.Time) bool, observe func(string, time.Time), afterPage func() error) error {
	for doc, err := range e.client.Pages(ctx, req) {
		if err != nil {
			if fallback, ok := e.withoutPredictive(req, err); ok {
				return e.pages(ctx, r, fallback, parentID, skip, observe, afterPage)
			}
			return err
		}
		if err := e.writePage(r, doc, parentID, skip, observe); err != nil {
			return err
		}
		if afterPage != nil {
			if err := afterPage(); err != nil {
				return err
			}
		}
	}
	return nil
}

// get reads one page, with the same predictive-analytics fallback as pages.
func (e *engine) get(ctx context.Context, req klaviyo.Request) (*klaviyo.Document, error) {
	doc, err := e.client.Get(ctx, req)
	if err != nil {
		if fallback, ok := e.withoutPredictive(req, err); ok {
			return e.client.Get(ctx, fallback)
		}
	}
	return doc, err
}

// withoutPredictive answers Klaviyo's habit of failing predictive analytics with 503s: the page is asked again
// without them, so the profile still arrives (predictive_analytics null) and the sync goes on.
func (e *engine) withoutPredictive(req klaviyo.Request, err error) (klaviyo.Request, bool) {
	var ke *klaviyo.Error
	if !errors.As(err, &ke) || ke.Kind != klaviyo.KindTransient {
		return req, false
	}
	q := req.Query
	if req.URL != "" {
		u, perr := url.Parse(req.URL)
		if perr != nil {
			return req, false
		}
		q = u.Query()
	}
	af := q.Get("additional-fields[profile]")
	if !strings.Contains(af, "predictive_analytics") {
		return req, false
	}
	var keep []string
	for _, f := range strings.Split(af, ",") {
		if f != "predictive_analytics" {
			keep = append(keep, f)
		}
	}
	q = cloneValues(q)
	if len(keep) == 0 {
		q.Del("additional-fields[profile]")
	} else {
		q.Set("additional-fields[profile]", strings.Join(keep, ","))
	}
	out := req
	out.URL = ""
	out.Query = q
	out.Endpoint = strings.TrimSuffix(req.Endpoint, predictiveSuffix)
	out.Budget = klaviyo.Budget{Burst: 75, PerMinute: 750}
	_ = e.out.Log("WARN", fmt.Sprintf("Klaviyo failed predictive analytics on %s (%v); reading those profiles without predictions", req.Endpoint, ke.Status))
	return out, true
}

// writePage shapes and writes every row of one page.
func (e *engine) writePage(r *streamRun, doc *klaviyo.Document, parentID string, skip func(string, time.Time) bool, observe func(string, time.Time)) error {
	if len(doc.Data) == 0 {
		return nil
	}
	r.markRunning(e.out)
	metricNames := r.shape.metricNames(doc.Included)
	buf := r.shape.getBuf()
	defer r.shape.putBuf(buf)
	var ends []int
	for i := range doc.Data {
		res := doc.Data[i]
		c, hasCursor := r.shape.cursorOf(res)
		if hasCursor && skip != nil && skip(res.ID, c) {
			continue
		}
		var err error
		*buf, ends, err = r.shape.rows((*buf)[:0], ends[:0], res, parentID, metricNames)
		if err != nil {
			return fmt.Errorf("reshaping a %s record of stream %s: %w", res.Type, r.s.Name, err)
		}
		start := 0
		for _, end := range ends {
			if err := e.out.Record(r.s.Name, (*buf)[start:end]); err != nil {
				return fmt.Errorf("writing a record of stream %s: %w", r.s.Name, err)
			}
			start = end
		}
		if hasCursor && observe != nil {
			observe(res.ID, c)
		}
	}
	return nil
}

// predictiveSuffix keys profile requests that ask for predictive analytics to their own, stricter budget.
const predictiveSuffix = "#predictive_analytics"

// request builds the query for a stream (and parent, variant, window).
func (e *engine) request(r *streamRun, parentID, variant string, w *window) klaviyo.Request {
	s := r.s
	path := strings.ReplaceAll(s.Path, "{id}", url.PathEscape(parentID))
	q := url.Values{}
	if s.PageSize > 0 {
		q.Set("page[size]", strconv.Itoa(s.PageSize))
	}
	var filters []string
	if s.Filter != "" {
		filters = append(filters, strings.ReplaceAll(s.Filter, "{id}", parentID))
	}
	if variant != "" {
		filters = append(filters, variant)
	}
	if w != nil && s.Cursor != nil {
		filters = append(filters, windowFilters(*s.Cursor, w.lo, w.hi)...)
		if s.Cursor.Sort != "" {
			q.Set("sort", s.Cursor.Sort)
		}
	}
	if len(filters) > 0 {
		q.Set("filter", strings.Join(filters, ","))
	}
	if len(s.Include) > 0 {
		q.Set("include", strings.Join(s.Include, ","))
		if contains(s.Include, "metric") {
			q.Set("fields[metric]", "name")
		}
	}
	if fields := r.shape.sparseFields(); len(fields) > 0 {
		q.Set("fields["+s.ResourceType+"]", strings.Join(fields, ","))
	}
	endpoint, budget := s.Path, klaviyo.Budget{Burst: s.Rate.Burst, PerMinute: s.Rate.PerMinute}
	additional := append([]string(nil), s.AdditionalFields...)
	if s.Name == "profiles" {
		if e.cfg.WantSubscriptions() {
			additional = append(additional, "subscriptions")
		}
		if e.cfg.ProfilePredictive {
			additional = append(additional, "predictive_analytics")
			// Klaviyo allows predictive analytics only the M tier.
			endpoint, budget = s.Path+predictiveSuffix, klaviyo.Budget{Burst: 10, PerMinute: 150}
		}
	}
	if len(additional) > 0 {
		q.Set("additional-fields["+s.ResourceType+"]", strings.Join(additional, ","))
	}
	return klaviyo.Request{Endpoint: endpoint, Budget: budget, Scopes: s.Scopes, Path: path, Query: q}
}

// windowFilters expresses [lo, hi) with the operators the endpoint has. Klaviyo timestamps are whole seconds, so
// greater-than(lo - 1s) equals greater-or-equal(lo), and less-or-equal(hi - 1s) equals less-than(hi).
func windowFilters(c catalog.Cursor, lo, hi time.Time) []string {
	field := c.Field
	if c.FilterField != "" {
		field = c.FilterField
	}
	var out []string
	if !lo.IsZero() {
		switch c.Lower {
		case "greater-than":
			out = append(out, fmt.Sprintf("greater-than(%s,%s)", field, lo.Add(-time.Second).UTC().Format(cursorFormat)))
		default:
			out = append(out, fmt.Sprintf("greater-or-equal(%s,%s)", field, lo.UTC().Format(cursorFormat)))
		}
	}
	if !hi.IsZero() && c.Upper != "" {
		switch c.Upper {
		case "less-or-equal":
			out = append(out, fmt.Sprintf("less-or-equal(%s,%s)", field, hi.Add(-time.Second).UTC().Format(cursorFormat)))
		default:
			out = append(out, fmt.Sprintf("less-than(%s,%s)", field, hi.UTC().Format(cursorFormat)))
		}
	}
	return out
}

// variants are the filters a stream is read once each with: the table's, and for events the chosen metrics
// (event_metric_ids), one query per metric since Klaviyo's metric_id filter takes a single value.
func (e *engine) variants(s catalog.Stream) []string {
	if s.Name == "events" && len(e.cfg.EventMetricIDs) > 0 {
		out := make([]string, 0, len(e.cfg.EventMetricIDs))
		for _, id := range e.cfg.EventMetricIDs {
			out = append(out, fmt.Sprintf("equals(metric_id,%s)", quoteFilter(id)))
		}
		return out
	}
	return variantsOf(s)
}

// quoteFilter writes a string literal for Klaviyo's filter syntax: double quotes, inner quotes and backslashes
// escaped with a backslash.
func quoteFilter(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

func variantsOf(s catalog.Stream) []string {
	if len(s.Variants) == 0 {
		return []string{""}
	}
	return s.Variants
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// runTasks runs fn for task indexes [0, n) on `workers` goroutines, in ascending order of start so windows
// finish roughly oldest first and the low-water mark keeps moving. The first error cancels the rest.
func runTasks(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}
