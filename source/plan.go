package source

import (
	"context"
	"fmt"
	"maps"
	"math"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// A sync is planned before it reads: from the config, the selection and the state, each stream gets a list of
// tasks (windows of its cursor, its parents, its variants) and the exact request each starts with. Only two things
// come from Klaviyo while planning, both through planSource so tests can answer them from a table: where a
// windowed stream's data starts, and which parents a child stream fans out over.

// planSource is what planning asks of Klaviyo.
type planSource interface {
	// probe reads the one-record page a probe request asks for, with the stream's fallbacks (reqs).
	probe(ctx context.Context, reqs requestBuilder, req klaviyo.Request) (*klaviyo.Document, error)
	// parentIDs lists every id of the named parent stream.
	parentIDs(ctx context.Context, stream string) ([]string, error)
}

// planMode says how a stream's tasks are read and checkpointed.
type planMode int

const (
	// readOnce reads each variant once without cursor bounds, then writes one state.
	readOnce planMode = iota
	// readWindows reads a collection in windows of its cursor, in parallel, all tracked by one tracker:
	// incremental reads checkpoint the low-water mark as windows finish; a full refresh writes one state at the end.
	readWindows
	// readParents reads a child stream once per parent, each parent with its own cursor when incremental.
	readParents
)

// streamPlan is what a sync does for one stream.
type streamPlan struct {
	stream catalog.Stream
	mode   planMode
	// incremental is set when the stream keeps a cursor in its state.
	incremental bool
	// prev is the collection's previous checkpoint; parents the previous checkpoint of each parent still present.
	prev    cursorState
	parents map[string]cursorState
	// tasks are what workers take, in order: a window, or a parent with one read per variant.
	tasks []task
	// windows are every window of every task, for the tracker (readWindows).
	windows []*window
	reqs    requestBuilder
	// start is the stream's relative start_date as resolved at its first sync; zero for an absolute start_date
	// or none.
	start fixedStart
	// lookback is how far below its checkpoint an incremental read starts again (late records).
	lookback time.Duration
	// lazy is set when a child stream's parents are listed while it reads (readListedParents): its tasks come from
	// parentTasks as the listing goes, from parentStart (the start_date or fixed start), and sortedReads says
	// whether a parent's read checkpoints page by page.
	lazy        bool
	parentStart time.Time
	sortedReads bool
}

// state encodes the stream's state: its cursor (or each parent's), and its fixed start.
func (sp *streamPlan) state(cursor cursorState, parents map[string]cursorState) (json.RawMessage, error) {
	s := sp.stream
	if !sp.incremental {
		s = catalog.Stream{}
	}
	st, err := encodeState(s, cursor, parents)
	if err != nil {
		return nil, err
	}
	return withFixedStart(st, sp.start)
}

// task is one unit of work for a worker: reads done one after another.
type task struct {
	parentID string
	reads    []read
}

// read is one query and its pages, starting at req.
type read struct {
	// window bounds the read's cursor; nil means no bounds.
	window *window
	req    klaviyo.Request
	// object marks a single-resource GET, for which 404 means the parent has none.
	object bool
}

// planner plans the streams of one sync.
type planner struct {
	cfg       Config
	syncStart time.Time
	src       planSource
	// shares widens the sparse fieldset of a stream that reads for others (shared.go).
	shares shares
	// lazyParents has child streams plan their parents' tasks while they read, as the listing goes
	// (readListedParents), instead of listing every parent before the first read.
	lazyParents bool
}

// plan decodes a stream's previous state and decides its tasks.
func (p planner) plan(ctx context.Context, sel catalog.Selection, sh *shaper, prevRaw json.RawMessage) (*streamPlan, error) {
	s := sel.Stream
	prev, prevParents, err := decodeState(s, prevRaw)
	if err != nil {
		return nil, err
	}
	saved, err := decodeFixedStart(s, prevRaw)
	if err != nil {
		return nil, err
	}
	sp := &streamPlan{stream: s, incremental: sel.Incremental && s.Cursor != nil,
		reqs: newRequestBuilder(p.cfg, s, p.shares.sparseFor(s.Name, sh.sparseFields())), start: p.fixStart(saved)}
	start := p.cfg.StartDate
	if !sp.start.At.IsZero() {
		start = sp.start.At
	}
	if sp.incremental {
		// A full refresh starts from nothing, whatever the state says (it is still decoded: a state the user must
		// fix is said before anything is read).
		sp.prev = prev
	} else {
		prevParents = nil
	}
	switch {
	case s.Kind != catalog.Collection:
		sp.mode = readParents
		return sp, p.planParents(ctx, sp, sh, start, prevParents)
	case sp.incremental:
		sp.mode = readWindows
		lo := prev.At
		if s.LookbackOption != "" {
			sp.lookback = p.cfg.Minutes(s.LookbackOption)
			if !prev.From.IsZero() && prev.From.Before(prev.At) {
				// Re-read the lookback below the checkpoint: records that arrived late (with a cursor already
				// passed) are written; those the state lists as written are skipped. Only as far as the state
				// lists, so nothing is written twice; a state without a list (an older release's, or a first sync)
				// starts at its cursor, and lists its lookback from then on. A list that starts at or above the
				// cursor (written by an earlier build when a backfill was killed before its checkpoint moved) is
				// ignored: starting there would skip everything between the cursor and it.
				lo = later(prev.At.Add(-sp.lookback), prev.From)
			}
		}
		return sp, p.planWindows(ctx, sp, sh, later(start, lo), false)
	case s.Cursor != nil && s.Cursor.Upper != "":
		// A full refresh of a time-filterable stream still reads windows in parallel (a first sync of events is the
		// longest read there is), and reads through the filter, so a stream whose rows only the filter selects
		// (suppressed profiles) costs no more than an incremental read from the beginning.
		sp.mode = readWindows
		return sp, p.planWindows(ctx, sp, sh, start, p.cfg.EndDate.IsZero())
	}
	sp.mode = readOnce
	t := task{}
	for _, v := range sp.reqs.variants {
		t.reads = append(t.reads, read{req: sp.reqs.build("", v, nil)})
	}
	sp.tasks = []task{t}
	return sp, nil
}

// fixStart resolves a relative start_date (a period before the sync) at a stream's first sync, or keeps the one a
// previous sync resolved from the same setting; zero when start_date is absolute or absent.
func (p planner) fixStart(saved fixedStart) fixedStart {
	if p.cfg.StartPeriod == "" {
		return fixedStart{}
	}
	if !saved.At.IsZero() && saved.Setting == p.cfg.StartPeriod {
		return saved
	}
	return fixedStart{At: p.cfg.startBefore(p.syncStart), Setting: p.cfg.StartPeriod}
}

// later returns the later of two moments.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// planWindows splits [lo, syncStart) of every variant into windows worth reading in parallel. A full refresh
// (open) leaves the last window unbounded above, so future-dated records are copied too at no extra request: a
// full refresh costs what an incremental read from the same bound costs.
func (p planner) planWindows(ctx context.Context, sp *streamPlan, sh *shaper, lo time.Time, open bool) error {
	// open: a full refresh reads past the sync start, unless end_date bounds the read.
	if open && lo.IsZero() {
		// A window unbounded on both sides would send no cursor filter, and for some streams the filter is what
		// selects the records (global_exclusions reads only profiles with a suppression in the window): reading
		// from the beginning is reading from the Unix epoch.
		lo = time.Unix(0, 0).UTC()
	}
	for _, v := range sp.reqs.variants {
		ws, err := p.splitWindows(ctx, sp, sh, v, lo, open)
		if err != nil {
			return err
		}
		for _, w := range ws {
			sp.tasks = append(sp.tasks, task{reads: []read{{window: w, req: sp.reqs.build("", v, w)}}})
		}
		sp.windows = append(sp.windows, ws...)
	}
	return nil
}

// splitWindows splits [lo, syncStart) of one variant, or [lo, ∞) when open. It first asks for the earliest
// records (one request of a small page, probePage), so an account whose data starts last year is not split across
// a decade of empty windows, a stream with nothing new costs one request, and a stream whose span fits in that page
// costs that one request in all; a span too short to cut in more than two windows is one window without the probe.
func (p planner) splitWindows(ctx context.Context, sp *streamPlan, sh *shaper, variant string, lo time.Time, open bool) ([]*window, error) {
	c := sp.stream.Cursor
	sorted := c.Sort != "" && !sh.rules.perRowCursor
	hi := p.syncStart
	if !open && !lo.IsZero() && !lo.Before(hi) {
		// A state at or past the sync start (an abnormal, future state) leaves nothing to read: a cursor we write
		// never passes a sync's start, so there can be no record we owe.
		return nil, nil
	}
	end := hi // the upper bound of the last window
	if open {
		end = time.Time{}
	}
	if c.Upper == "" {
		// No upper-bound operator: one window from lo, unbounded above.
		return []*window{{variant: variant, lo: lo, sorted: sorted}}, nil
	}
	if sorted && !lo.IsZero() && p.windowCount(sp.stream, hi.Sub(lo)) <= 2 {
		// A short span (an hourly sync, its lookback included) is read as one window with no probe: the probe would
		// cost a request and a round trip to learn where the data starts, when one window's first page tells as much
		// and costs the same one request when there is nothing new. Busy hours still read in parallel: the window
		// splits as it runs (split.go).
		return []*window{{variant: variant, lo: lo, hi: end, sorted: true}}, nil
	}
	first := lo
	var probed *klaviyo.Document
	if c.Sort != "" {
		doc, err := p.src.probe(ctx, sp.reqs, sp.reqs.probe(variant, &window{variant: variant, lo: lo, hi: end, sorted: true}))
		if err != nil {
			return nil, err
		}
		if len(doc.Data) == 0 {
			return nil, nil
		}
		if doc.Next == "" {
			// The probe's page holds the whole span (most streams of most accounts are a page or two): the one
			// window writes it, and asks Klaviyo nothing more.
			return []*window{{variant: variant, lo: lo, hi: end, sorted: sorted, page: doc}}, nil
		}
		t, ok := sh.cursorOf(doc.Data[0], lo)
		if !ok {
			return []*window{{variant: variant, lo: lo, hi: end, sorted: sorted}}, nil
		}
		first = t
		probed = doc
	}
	if first.IsZero() || !first.Before(hi) {
		return []*window{{variant: variant, lo: lo, hi: end, sorted: sorted}}, nil
	}
	n := p.windowCount(sp.stream, hi.Sub(first))
	if probed != nil {
		n = min(n, expectedPages(sp.stream, sh, probed, first, hi))
	}
	span := hi.Sub(first) / time.Duration(n)
	ws := make([]*window, 0, n)
	start := first
	for i := 0; i < n; i++ {
		until := first.Add(span * time.Duration(i+1)).Truncate(time.Second)
		if i == n-1 || !until.Before(hi) {
			until = hi
		}
		if !until.After(start) {
			continue
		}
		ws = append(ws, &window{variant: variant, lo: start, hi: until, sorted: sorted})
		start = until
		if !start.Before(hi) {
			break
		}
	}
	// The first window starts at the requested bound, not at the probe's answer: it costs nothing when nothing is
	// there, and covers a record written below the probe's answer while the sync runs (a backfill).
	ws[0].lo = lo
	ws[len(ws)-1].hi = end
	return ws, nil
}

// windowWorkers is how many windows of a stream are read at once. Sorted windows split while they run (split.go),
// so they get the parallelism the endpoint's budget wants even when the plan cut fewer windows (an hourly sync's
// single window of a busy hour); unsorted windows cannot split, and get one worker each.
func (p planner) windowWorkers(sp *streamPlan) int {
	if len(sp.windows) == 0 {
		return 1
	}
	if !sp.windows[0].sorted {
		return p.workers(len(sp.tasks))
	}
	return p.windowCount(sp.stream, time.Duration(1<<62))
}

// expectedPages estimates how many pages [first, hi) holds from the probe's page: its records' density over the
// span they cover, times the whole span, doubled because accounts grow (the earliest records are the sparsest).
// More windows than pages would only add requests that come back nearly empty (a dozen templates, 10 a page, were
// 32 windows); a low estimate costs little, since windows split while they run. A page whose records share one
// moment says nothing of the density, and leaves the count to planner.windowCount.
func expectedPages(s catalog.Stream, sh *shaper, probed *klaviyo.Document, first, hi time.Time) int {
	last, ok := sh.cursorOf(probed.Data[len(probed.Data)-1], first)
	if !ok || !last.After(first) || s.PageSize <= 0 {
		return math.MaxInt
	}
	records := 2 * float64(len(probed.Data)) * hi.Sub(first).Seconds() / last.Sub(first).Seconds()
	return max(int(math.Ceil(records/float64(s.PageSize))), 1)
}

// windowCount sizes the split so each window is worth a share of the endpoint's budget: enough windows to keep
// the budget busy through request latency, never windows shorter than an hour. A window is read one page after
// another, and a sync that fits in a minute's allowance may send a whole burst each second (the client's budget
// allows it), so a window per request of the burst lets each burst go at once: with half as many, every burst
// took two round trips and a small sync's last one ended a round trip later (300 profile pages: 5.2 s against
// 4.9). The burst is the one the client counts (rate_limit_scale applied): windows beyond what it can keep busy
// would only add partial last pages. max_concurrency bounds it, since no more requests are in flight at once.
func (p planner) windowCount(s catalog.Stream, span time.Duration) int {
	burst := s.Rate.Burst
	if p.cfg.RateLimitScale > 0 {
		// Scaled as the client scales it, so both count the same burst.
		burst = klaviyo.Budget{Burst: burst, PerMinute: s.Rate.PerMinute}.Scaled(p.cfg.RateLimitScale).Burst
	}
	n := min(max(burst, 2), max(p.cfg.MaxConcurrency, 1))
	return max(min(n, int(span/time.Hour)), 1)
}

// planParents gives a child stream one task per parent: a read per variant, bounded below by the parent's own
// cursor when incremental (a parent already read up to the sync start has no task), or the parent's single
// resource for PerParentObject streams. With lazyParents the tasks are left to the read, which plans them as the
// parents are listed; the previous cursors are all kept until the listing says which parents are gone.
func (p planner) planParents(ctx context.Context, sp *streamPlan, sh *shaper, start time.Time, prevParents map[string]cursorState) error {
	s := sp.stream
	sp.parentStart = start
	sp.sortedReads = s.Cursor != nil && s.Cursor.Sort != "" && !sh.rules.perRowCursor
	if p.lazyParents {
		sp.lazy = true
		sp.parents = maps.Clone(prevParents)
		if sp.parents == nil {
			sp.parents = map[string]cursorState{}
		}
		return nil
	}
	ids, err := p.src.parentIDs(ctx, s.Parent)
	if err != nil {
		return fmt.Errorf("listing the parents (%s) of stream %s: %w", s.Parent, s.Name, err)
	}
	sp.parents = map[string]cursorState{}
	for _, id := range ids {
		if c, ok := prevParents[id]; ok {
			sp.parents[id] = c
		}
	}
	sp.tasks = p.parentTasks(sp, ids)
	return nil
}

// parentTasks plans the tasks of the given parents (planParents).
func (p planner) parentTasks(sp *streamPlan, ids []string) []task {
	s := sp.stream
	var tasks []task
	for _, id := range ids {
		t := task{parentID: id}
		switch {
		case s.Kind == catalog.PerParentObject:
			t.reads = []read{{req: sp.reqs.build(id, "", nil), object: true}}
		case !sp.incremental:
			for _, v := range sp.reqs.variants {
				t.reads = append(t.reads, read{req: sp.reqs.build(id, v, nil)})
			}
		default:
			lo := later(sp.parentStart, sp.parents[id].At)
			if !lo.IsZero() && !lo.Before(p.syncStart) {
				continue
			}
			for _, v := range sp.reqs.variants {
				w := &window{variant: v, lo: lo, hi: p.syncStart, sorted: sp.sortedReads}
				t.reads = append(t.reads, read{window: w, req: sp.reqs.build(id, v, w)})
			}
		}
		tasks = append(tasks, t)
	}
	return tasks
}

// workers is how many goroutines read a stream's tasks at once; the client's concurrency cap and the endpoint
// budgets decide the real pace, this only keeps idle goroutines bounded.
func (p planner) workers(tasks int) int {
	return max(min(p.cfg.MaxConcurrency, tasks), 1)
}
