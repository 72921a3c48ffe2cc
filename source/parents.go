package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

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
	err := runTasks(ctx, len(sp.tasks), e.planner().workers(len(sp.tasks)), func(ctx context.Context, i int) error {
		t := sp.tasks[i]
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
	})
	if serr := emitState(); err == nil {
		err = serr
	}
	return err
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
// every one of them would otherwise page through the same parents again.
type parentCache struct {
	mu      sync.Mutex
	entries map[string]*parentEntry
}

type parentEntry struct {
	done chan struct{}
	ids  []string
	err  error
}

func newParentCache() *parentCache { return &parentCache{entries: map[string]*parentEntry{}} }

// ids returns every id of the named stream, reading it (and its own parents) on first use. Concurrent callers
// wait for the first reader instead of reading again.
func (p *parentCache) ids(ctx context.Context, e *engine, name string) ([]string, error) {
	p.mu.Lock()
	en, ok := p.entries[name]
	if !ok {
		en = &parentEntry{done: make(chan struct{})}
		p.entries[name] = en
		p.mu.Unlock()
		en.ids, en.err = p.list(ctx, e, name)
		close(en.done)
	} else {
		p.mu.Unlock()
	}
	select {
	case <-en.done:
		return en.ids, en.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *parentCache) list(ctx context.Context, e *engine, name string) ([]string, error) {
	s, ok := catalog.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("parent stream %q is not in the stream table", name)
	}
	if sh := e.shares.listing(e.cfg, s); sh != nil {
		// A selected stream reads these very responses: take its ids rather than page through them again.
		select {
		case <-sh.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if sh.err != nil {
			return nil, fmt.Errorf("listing %s through stream %s: %w", name, sh.leader, sh.err)
		}
		return sh.ids, nil
	}
	reqs := newRequestBuilder(e.cfg, s, s.Fields)
	grand := []string{""}
	if s.Kind != catalog.Collection {
		var err error
		if grand, err = p.ids(ctx, e, s.Parent); err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	var ids []string
	err := runTasks(ctx, len(grand), e.planner().workers(len(grand)), func(ctx context.Context, i int) error {
		for _, v := range reqs.variants {
			for doc, err := range e.client.Pages(ctx, reqs.build(grand[i], v, nil)) {
				if err != nil {
					return fmt.Errorf("listing %s: %w", name, err)
				}
				mu.Lock()
				for _, d := range doc.Data {
					if !seen[d.ID] {
						seen[d.ID] = true
						ids = append(ids, d.ID)
					}
				}
				mu.Unlock()
			}
		}
		return nil
	})
	return ids, err
}
