package source

import (
	"context"
	"fmt"
	"sync"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

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
	sh, err := newShaper(catalog.Selection{Stream: s})
	if err != nil {
		return nil, err
	}
	r := &streamRun{s: s, shape: sh}
	var grand []string
	if s.Kind != catalog.Collection {
		if grand, err = p.ids(ctx, e, s.Parent); err != nil {
			return nil, err
		}
	} else {
		grand = []string{""}
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	var ids []string
	err = runTasks(ctx, len(grand), e.workers(s, len(grand)), func(ctx context.Context, i int) error {
		for _, v := range variantsOf(s) {
			req := e.request(r, grand[i], v, nil)
			for doc, err := range e.client.Pages(ctx, req) {
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
