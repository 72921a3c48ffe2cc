package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// readParents reads a child stream's tasks, one per parent. Incremental streams keep a cursor per parent and
// checkpoint them all in one state.
func (e *engine) readParents(ctx context.Context, r *streamRun, sp *streamPlan) error {
	var mu sync.Mutex
	cursors := maps.Clone(sp.parents)
	var lastEmit time.Time
	emitState := func() error {
		r.stateMu.Lock()
		defer r.stateMu.Unlock()
		var st []byte
		var err error
		mu.Lock()
		st, err = sp.state(cursorState{}, cursors)
		mu.Unlock()
		if err != nil {
			return err
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
	readTask := func(ctx context.Context, t task) error {
		if !sp.incremental {
			if err := e.readParentOnce(ctx, r, sp, t); err != nil {
				return err
			}
			r.taskDone()
			return nil
		}
		mu.Lock()
		prev := cursors[t.parentID]
		mu.Unlock()
		tr := newTracker(prev, e.syncStart)
		for _, rd := range t.reads {
			tr.add([]*window{rd.window})
		}
		save := func() error {
			c := tr.cursor()
			if c.At.IsZero() {
				return nil
			}
			mu.Lock()
			old := cursors[t.parentID]
			changed := !old.At.Equal(c.At) || len(old.IDs) != len(c.IDs)
			cursors[t.parentID] = c
			mu.Unlock()
			if changed && r.s.Cursor.Sort != "" {
				return pageState()
			}
			return nil
		}
		for _, rd := range t.reads {
			sc := readScope{parentID: t.parentID, window: rd.window, skip: prev.skip}
			observe := func(id string, c time.Time) { tr.observe(rd.window, id, c) }
			if err := e.pages(ctx, r, sp, rd.req, sc, observe, func(bool) error { return save() }); err != nil {
				return err
			}
			tr.finish(rd.window)
		}
		if err := save(); err != nil {
			return err
		}
		r.prog.done.Add(1)
		return emitState()
	}
	var err error
	if sp.lazy {
		var listed map[string]bool
		listed, err = e.readListedParents(ctx, r, sp, readTask)
		if err == nil {
			// The state keeps only the parents still present, as a plan that listed them first does.
			mu.Lock()
			maps.DeleteFunc(cursors, func(id string, _ cursorState) bool { return !listed[id] })
			mu.Unlock()
		}
	} else {
		err = runTasks(ctx, len(sp.tasks), e.planner().workers(len(sp.tasks)), func(ctx context.Context, i int) error {
			return readTask(ctx, sp.tasks[i])
		})
	}
	if serr := emitState(); err == nil {
		err = serr
	}
	return err
}

// readListedParents reads a child stream whose parents are listed while it reads (plan.go, lazy): the first
// parent's reads start as soon as the listing's first page is in, not after its last, so the child endpoint's
// budget does not sit idle through a listing of a thousand lists 10 a page. It returns every parent listed.
func (e *engine) readListedParents(ctx context.Context, r *streamRun, sp *streamPlan, read func(context.Context, task) error) (map[string]bool, error) {
	q := newTaskQueue()
	listed := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, q.close)
	defer stop()
	plan := e.planner()
	g.Go(func() error {
		defer q.close()
		err := e.parents.each(ctx, gctx, e, sp.stream.Parent, func(ids []string) {
			for _, id := range ids {
				listed[id] = true
			}
			ts := plan.parentTasks(sp, ids)
			r.prog.total.Add(int64(len(ts)))
			q.push(ts...)
		})
		if err != nil {
			return fmt.Errorf("listing the parents (%s) of stream %s: %w", sp.stream.Parent, sp.stream.Name, err)
		}
		return nil
	})
	for range max(e.cfg.MaxConcurrency, 1) {
		g.Go(func() error {
			for {
				t, ok := q.next()
				if !ok {
					return nil
				}
				if err := read(gctx, t); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return listed, ctx.Err()
}

// taskQueue hands tasks to workers as they are planned; next blocks until a task comes or the queue is closed.
type taskQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	tasks  []task
	closed bool
}

func newTaskQueue() *taskQueue {
	q := &taskQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *taskQueue) push(ts ...task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = append(q.tasks, ts...)
	q.cond.Broadcast()
}

// close ends the queue: next returns the tasks still queued, then false.
func (q *taskQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

func (q *taskQueue) next() (task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.tasks) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.tasks) == 0 {
		return task{}, false
	}
	t := q.tasks[0]
	q.tasks = q.tasks[1:]
	return t, true
}

// readParentOnce reads one parent's records without a cursor: each variant's pages, or its single resource.
func (e *engine) readParentOnce(ctx context.Context, r *streamRun, sp *streamPlan, t task) error {
	sc := readScope{parentID: t.parentID}
	for _, rd := range t.reads {
		if rd.object {
			if err := e.readObject(ctx, r, sp, rd.req, sc); err != nil {
				return err
			}
			continue
		}
		if err := e.pages(ctx, r, sp, rd.req, sc, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// readObject reads the single resource a parent has (a campaign's send job); 404 means it has none.
func (e *engine) readObject(ctx context.Context, r *streamRun, sp *streamPlan, req klaviyo.Request, sc readScope) error {
	doc, err := e.get(ctx, sp.reqs, req)
	var ke *klaviyo.Error
	if errors.As(err, &ke) && ke.Kind == klaviyo.KindNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = e.writePage(r, doc, sc, nil)
	return err
}

// parentCache lists each parent stream's ids once per sync: campaigns feed five child streams and tags four, and
// every one of them would otherwise page through the same parents again. A listing runs on its own goroutine and
// publishes ids page by page, so a child stream can read its first parents while the listing goes on.
type parentCache struct {
	mu      sync.Mutex
	entries map[string]*parentEntry
	// running counts the listings in flight, so a sync never returns with one still reading.
	running sync.WaitGroup
}

// parentEntry is one listing: the ids listed so far, in order, and how it ended.
type parentEntry struct {
	mu   sync.Mutex
	ids  []string
	seen map[string]bool
	// grew is closed (and replaced) whenever ids grow or the listing ends.
	grew chan struct{}
	done bool
	err  error
}

func newParentCache() *parentCache { return &parentCache{entries: map[string]*parentEntry{}} }

// add publishes newly listed ids; an id listed before (a parent under two grandparents) is not repeated.
func (en *parentEntry) add(ids []string) {
	en.mu.Lock()
	defer en.mu.Unlock()
	for _, id := range ids {
		if !en.seen[id] {
			en.seen[id] = true
			en.ids = append(en.ids, id)
		}
	}
	close(en.grew)
	en.grew = make(chan struct{})
}

func (en *parentEntry) finish(err error) {
	en.mu.Lock()
	defer en.mu.Unlock()
	en.done, en.err = true, err
	close(en.grew)
}

// entry returns the named stream's listing, starting it (under the sync's context, whoever asks first) when new.
func (p *parentCache) entry(ctx context.Context, e *engine, name string) *parentEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	en, ok := p.entries[name]
	if !ok {
		en = &parentEntry{seen: map[string]bool{}, grew: make(chan struct{})}
		p.entries[name] = en
		p.running.Go(func() { en.finish(p.list(ctx, e, name, en)) })
	}
	return en
}

// each calls fn with every id of the named stream, a batch as they are listed, and returns once the listing has
// ended (its error, if it failed) or wait is done. The listing runs under ctx, the sync's: a child stream that
// stops waiting (wait) does not stop it for the others.
func (p *parentCache) each(ctx, wait context.Context, e *engine, name string, fn func([]string)) error {
	en := p.entry(ctx, e, name)
	from := 0
	for {
		en.mu.Lock()
		batch, done, err, grew := en.ids[from:], en.done, en.err, en.grew
		en.mu.Unlock()
		if len(batch) > 0 {
			from += len(batch)
			fn(batch)
			continue
		}
		if done {
			return err
		}
		select {
		case <-grew:
		case <-wait.Done():
			return wait.Err()
		}
	}
}

// ids returns every id of the named stream once its listing has ended.
func (p *parentCache) ids(ctx context.Context, e *engine, name string) ([]string, error) {
	var all []string
	err := p.each(ctx, ctx, e, name, func(ids []string) { all = append(all, ids...) })
	if err != nil {
		return nil, err
	}
	return all, nil
}

// wait returns once every listing has ended.
func (p *parentCache) wait() { p.running.Wait() }

func (p *parentCache) list(ctx context.Context, e *engine, name string, en *parentEntry) error {
	s, ok := catalog.Lookup(name)
	if !ok {
		return fmt.Errorf("parent stream %q is not in the stream table", name)
	}
	if sh := e.shares.listing(e.cfg, s); sh != nil {
		// A selected stream reads these very responses: take its ids rather than page through them again.
		select {
		case <-sh.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if sh.err != nil {
			return fmt.Errorf("listing %s through stream %s: %w", name, sh.leader, sh.err)
		}
		en.add(sh.ids)
		return nil
	}
	reqs := newRequestBuilder(e.cfg, s, s.Fields)
	grand := []string{""}
	if s.Kind != catalog.Collection {
		var err error
		if grand, err = p.ids(ctx, e, s.Parent); err != nil {
			return err
		}
	}
	return runTasks(ctx, len(grand), e.planner().workers(len(grand)), func(ctx context.Context, i int) error {
		for _, v := range reqs.variants {
			for doc, err := range e.client.Pages(ctx, reqs.build(grand[i], v, nil)) {
				if err != nil {
					return fmt.Errorf("listing %s: %w", name, err)
				}
				ids := make([]string, len(doc.Data))
				for j, d := range doc.Data {
					ids[j] = d.ID
				}
				en.add(ids)
			}
		}
		return nil
	})
}
