package sandbox

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// profileSourceBefore is /api/profiles as it was before the keyed index (keyed.go): every request
// sorted by email or a suppression timestamp rendered every profile, kept those matching the whole
// filter and sorted them. It stays here, verbatim but for its name, as the reference the index's
// pages must equal byte for byte.
func (c *rctx) profileSourceBefore() (source, *apiError) {
	w := c.w
	p := w.pop(kProfile)
	render := func(i int64) *record { return c.profile(i, profVariantPlain) }
	switch c.q.sortField {
	case "", "id", "created":
		seq := &monoSeq{n: p.total(), key: p.created, gidx: identity}
		return &indexSource{ms: &mergeSeqs{seqs: []*monoSeq{seq}, rng: rangeFor(c.q.predsOn("created"))},
			match: c.profileMatcher("created", profVariantPlain), rend: render}, nil
	case "updated":
		base := &monoSeq{n: p.total(), key: p.baseUpdated, gidx: identity, skip: func(i int64) bool { _, ok := p.overrides[i]; return ok }}
		return &indexSource{ms: &mergeSeqs{seqs: []*monoSeq{base, ovrSeq(p.overList)}, rng: rangeFor(c.q.predsOn("updated"))},
			match: c.profileMatcher("updated", profVariantPlain), rend: render}, nil
	}
	ks := &keyedSourceBefore{rend: render}
	match := c.profileMatcher("", profVariantPlain)
	for i := int64(0); i < p.total(); i++ {
		if match != nil && !match(i) {
			continue
		}
		r := render(i)
		ks.pos = append(ks.pos, position{Key: normKey(r.field(c.q.sortField)), Idx: i})
	}
	sort.Slice(ks.pos, func(a, b int) bool { return comparePos(ks.pos[a], ks.pos[b]) < 0 })
	return ks, nil
}

type keyedSourceBefore struct {
	pos  []position
	rend func(int64) *record
}

func (k *keyedSourceBefore) each(desc bool, after *position, fn func(position) bool) {
	(&sliceSource{pos: k.pos}).each(desc, after, fn)
}

func (k *keyedSourceBefore) render(p position) *record { return k.rend(p.Idx) }

// paths serves /api/profiles through the code before the keyed index (old) or the current one.
type paths struct {
	s   *Server
	cur handler
}

func newPaths(s *Server) *paths { return &paths{s: s, cur: s.routes["/api/profiles"]} }

// serve answers pathAndQuery in process, through the old code or the current one. Requests run
// on the caller's goroutine, so swapping the route between them races with nothing.
func (p *paths) serve(t testing.TB, pathAndQuery string, old bool) (int, []byte) {
	t.Helper()
	if old {
		p.s.routes["/api/profiles"] = handler{list: func(c *rctx) (source, *apiError) { return c.profileSourceBefore() }}
		defer func() { p.s.routes["/api/profiles"] = p.cur }()
	}
	return serveInProcess(p.s, pathAndQuery)
}

func serveInProcess(s *Server, pathAndQuery string) (int, []byte) {
	req := httptest.NewRequest(http.MethodGet, s.URL()+pathAndQuery, nil)
	req.Header.Set("Authorization", "Klaviyo-API-Key "+DefaultAPIKey)
	req.Header.Set("revision", LatestRevision)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// keyedQueries are requests of every keyed sort (both directions) under the filters the
// exclusion streams send (a window, an open lower end) and under others the index must leave to
// the per-record matcher: equals on the sort field, reasons, list ids, updated, email.
func keyedQueries(listID string) []string {
	const (
		sup  = "subscriptions.email.marketing.suppression.timestamp"
		lsup = "subscriptions.email.marketing.list_suppressions.timestamp"
	)
	filters := func(f string) []string {
		return []string{
			"",
			"greater-or-equal(" + f + ",2025-07-01T00:00:00Z),less-than(" + f + ",2025-09-15T12:30:00Z)",
			"less-than(" + f + ",2025-10-01T00:00:00Z)",
			"greater-than(" + f + ",2025-10-20T00:00:00Z)",
			"less-or-equal(" + f + ",2025-08-01T00:00:00Z),greater-than(" + f + ",2025-06-01T00:00:00Z),greater-or-equal(" + f + ",2025-06-15T00:00:00Z)",
			"greater-or-equal(" + f + ",2025-09-01T00:00:00Z),less-than(" + f + ",2025-08-01T00:00:00Z)",
			"greater-than(" + f + ",2025-08-01T00:00:00Z),equals(subscriptions.email.marketing.suppression.reason,'SPAM_COMPLAINT')",
			"greater-than(" + f + ",2025-08-01T00:00:00Z),equals(subscriptions.email.marketing.list_suppressions.list_id,'" + listID + "')",
			"greater-or-equal(" + f + ",2025-05-01T00:00:00Z),less-than(updated,2025-10-01T00:00:00Z)",
			"greater-than(" + f + ",1990-01-01T00:00:00Z),less-than(" + f + ",2100-01-01T00:00:00Z)",
		}
	}
	var out []string
	add := func(sort, filter, extra string) {
		q := "/api/profiles?sort=" + sort + extra
		if filter != "" {
			q += "&filter=" + url.QueryEscape(filter)
		}
		out = append(out, q)
	}
	for _, f := range []string{sup, lsup} {
		for i, flt := range filters(f) {
			size := []string{"&page[size]=100", "&page[size]=7", "&page[size]=13&additional-fields[profile]=subscriptions", ""}[i%4]
			add(f, flt, size)
			add("-"+f, flt, size)
		}
		// A null bound is a term on the sort field the index does not take: it goes to the matcher.
		add(f, "greater-than("+f+",null)", "&page[size]=5")
		add("-"+f, "less-than("+f+",2025-09-03T10:00:00Z),less-than("+f+",null)", "&page[size]=5")
		add("-"+f, "greater-or-equal("+f+",2025-09-20T00:00:00Z),less-than("+f+",2025-09-24T00:00:00Z)", "&page[size]=1&additional-fields[profile]=subscriptions")
		add(f, "less-than("+f+",2025-09-10T00:00:00Z),greater-or-equal("+f+",2025-09-01T00:00:00Z)", "&page[size]=3&include=push-tokens&fields[profile]=email,subscriptions&additional-fields[profile]=subscriptions,predictive_analytics")
	}
	add("email", "", "&page[size]=37")
	add("-email", "equals(email,'guest.shopper.7@example.com')", "&page[size]=37")
	add("-email", "greater-than(created,2024-01-01T00:00:00Z)", "&page[size]=100")
	return out
}

// boundQueries are windows of each suppression timestamp whose bounds are instants profiles hold,
// so that each bound's operator decides whether those profiles are read.
func boundQueries(t *testing.T, w *world) []string {
	t.Helper()
	c := &rctx{w: w}
	n := w.pop(kProfile).total()
	var out []string
	for _, f := range []string{"subscriptions.email.marketing.suppression.timestamp", "subscriptions.email.marketing.list_suppressions.timestamp"} {
		var held []string
		for i := n / 4; i < n && len(held) < 2; i += n / 4 {
			for j := i; j < n; j++ {
				if v, ok := c.profile(j, profVariantPlain).field(f).([]any); ok && len(v) == 1 {
					held = append(held, v[0].(string))
					break
				}
			}
		}
		require.Len(t, held, 2, f)
		lo, hi := min(held[0], held[1]), max(held[0], held[1])
		for _, flt := range []string{
			"greater-or-equal(" + f + "," + lo + "),less-or-equal(" + f + "," + hi + ")",
			"greater-than(" + f + "," + lo + "),less-than(" + f + "," + hi + ")",
			"greater-or-equal(" + f + "," + hi + "),less-or-equal(" + f + "," + hi + ")",
			"greater-than(" + f + "," + lo + "),less-or-equal(" + f + "," + lo + ")",
		} {
			for _, sort := range []string{f, "-" + f} {
				out = append(out, "/api/profiles?page[size]=6&sort="+sort+"&filter="+url.QueryEscape(flt))
			}
		}
	}
	return out
}

// walkBoth follows links.next from a first page to the end, then links.prev from the last page
// back to the first, through both paths, and requires every body to be the same bytes. It
// returns the second page's URI (for a stale cursor after the world changes) and the pages read.
func walkBoth(t *testing.T, p *paths, first string) (second string, pages int) {
	t.Helper()
	step := func(pq string) (next, prev string) {
		oldStatus, oldBody := p.serve(t, pq, true)
		newStatus, newBody := p.serve(t, pq, false)
		require.Equal(t, oldStatus, newStatus, pq)
		require.Equal(t, string(oldBody), string(newBody), pq)
		require.Equal(t, http.StatusOK, newStatus, "%s: %s", pq, newBody)
		pages++
		var r response
		r.body = newBody
		require.NoError(t, json.Unmarshal(newBody, &r.doc))
		return uriOf(t, r.link("next")), uriOf(t, r.link("prev"))
	}
	var last string
	for next := first; next != ""; {
		require.Less(t, pages, 5000, "pagination does not end")
		last = next
		n, _ := step(next)
		if second == "" && n != "" {
			second = n
		}
		next = n
	}
	for prev := last; prev != ""; {
		require.Less(t, pages, 10000, "pagination does not end")
		_, prev = step(prev)
	}
	return second, pages
}

func uriOf(t *testing.T, link string) string {
	if link == "" {
		return ""
	}
	u, err := url.Parse(link)
	require.NoError(t, err)
	return u.RequestURI()
}

// TestKeyedPagesMatchThePathBefore serves the keyed sorts through the code before the index and
// through the index, across every page both ways, before and after the world changes (an Advance
// that updates profiles and so moves suppression timestamps, with late events and removals on,
// then a quiet one), and requires the same bytes, as well as the same Count and Resources.
func TestKeyedPagesMatchThePathBefore(t *testing.T) {
	s := startSmall(t, func(o *Options) {
		o.Scale.Profiles = 300
		o.Removals = 3
		o.LateEvents = LateEvents{PerAdvance: 4}
	})
	p := newPaths(s)
	listID := s.world.Load().listID(2)
	var stale []string
	total := 0
	check := func(label string) {
		queries := append(keyedQueries(listID), boundQueries(t, s.world.Load())...)
		for _, q := range queries {
			second, pages := walkBoth(t, p, q)
			total += pages
			if second != "" {
				stale = append(stale, second)
			}
			path, raw, _ := strings.Cut(q, "?")
			v, err := url.ParseQuery(raw)
			require.NoError(t, err)
			cur := p.cur
			n, err := s.Count(path, v)
			require.NoError(t, err)
			res, err := s.Resources(path, v)
			require.NoError(t, err)
			p.s.routes["/api/profiles"] = handler{list: func(c *rctx) (source, *apiError) { return c.profileSourceBefore() }}
			nOld, err := s.Count(path, v)
			require.NoError(t, err)
			resOld, err := s.Resources(path, v)
			p.s.routes["/api/profiles"] = cur
			require.NoError(t, err)
			assert.Equal(t, nOld, n, "%s: %s", label, q)
			assert.Equal(t, resOld, res, "%s: %s", label, q)
		}
	}
	check("at the start")
	s.Advance(36 * time.Hour)
	check("after an Advance")
	// Cursors issued before the Advance are read against the new world.
	for _, pq := range stale {
		walkBoth(t, p, pq)
	}
	s.AdvanceQuiet(2 * time.Hour)
	check("after a quiet Advance")
	s.Advance(5 * 24 * time.Hour)
	check("after a long Advance")
	assert.Greater(t, total, 800, "the walks read many pages")
}

// TestKeyedIndexIsBuiltOncePerWorld asks many requests at once of a world whose index is not
// built yet (run it with -race), then checks the index keeps one list per keyed sort field and
// that a new world starts without one.
func TestKeyedIndexIsBuiltOncePerWorld(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.Scale.Profiles = 500 })
	p := newPaths(s)
	s.Advance(3 * time.Hour)
	qs := keyedQueries(s.world.Load().listID(1))
	want := make([][]byte, len(qs))
	for i, q := range qs {
		_, want[i] = p.serve(t, q, true)
	}
	var wg sync.WaitGroup
	got := make([][]byte, 4*len(qs))
	for g := range got {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			_, got[g] = serveInProcess(s, qs[g%len(qs)])
		}(g)
	}
	wg.Wait()
	for g := range got {
		assert.Equal(t, string(want[g%len(qs)]), string(got[g]), qs[g%len(qs)])
	}
	w := s.world.Load()
	assert.ElementsMatch(t, []string{"email", "subscriptions.email.marketing.suppression.timestamp",
		"subscriptions.email.marketing.list_suppressions.timestamp"}, w.keyed.fields())
	for _, f := range []string{"subscriptions.email.marketing.suppression.timestamp", "subscriptions.email.marketing.list_suppressions.timestamp"} {
		l := w.keyed.list(w, f)
		assert.True(t, l.ranged, "%s: windows are found by binary search", f)
		assert.NotEmpty(t, l.times, f)
		assert.Len(t, l.pos, int(w.pop(kProfile).total()), f)
	}
	assert.Empty(t, w.keyed.list(w, "email").times, "emails hold no instants")
	s.Advance(time.Second)
	assert.Empty(t, s.world.Load().keyed.fields(), "an Advance starts a new index")
	s.AdvanceQuiet(time.Second)
	assert.Empty(t, s.world.Load().keyed.fields(), "so does a quiet one")
}

// TestInstantsMirrorsRangeTerms checks the instants a range term compares in a field value: a
// list's, nested or not, an RFC 3339 string's, none in anything else.
func TestInstantsMirrorsRangeTerms(t *testing.T) {
	at := timeOf(mustTime("2025-09-01T10:00:00Z"))
	for _, tc := range []struct {
		v    any
		n    int
		want tval
	}{
		{nil, 0, 0},
		{[]any{}, 0, 0},
		{"2025-09-01T10:00:00Z", 1, at},
		{"2025-09-01T10:00:00+00:00", 1, at},
		{[]any{"2025-09-01T10:00:00+00:00"}, 1, at},
		{[]any{"not a time", []any{at}}, 1, at},
		{[]any{"2025-09-01T10:00:00Z", "2025-09-02T10:00:00Z"}, 2, 0},
		{"guest.shopper.7@example.com", 0, 0},
		{float64(1756720800), 0, 0},
		{map[string]any{"timestamp": "2025-09-01T10:00:00Z"}, 0, 0},
	} {
		got, n := instants(tc.v)
		assert.Equal(t, tc.n, n, "%#v", tc.v)
		if tc.n == 1 {
			assert.Equal(t, tc.want, got, "%#v", tc.v)
		}
	}
}

// fields names the sort fields whose lists the index holds.
func (x *keyedIndex) fields() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for f := range x.lists {
		out = append(out, f)
	}
	return out
}

// BenchmarkExclusionPage is one page of global_exclusions or list_exclusions as the connector
// asks for it (a window of the suppression timestamp, sorted by it, 100 a page, subscriptions
// included) at 50,000 profiles, served in process so only the sandbox's work is measured.
func BenchmarkExclusionPage(b *testing.B) {
	s, err := Start(Options{Seed: 1, Now: fixedNow, Scale: Scale{Profiles: 50_000}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, f := range []string{"suppression", "list_suppressions"} {
		field := "subscriptions.email.marketing." + f + ".timestamp"
		pq := "/api/profiles?additional-fields[profile]=subscriptions&page[size]=100&sort=" + field + "&filter=" +
			url.QueryEscape("greater-or-equal("+field+",2025-09-01T00:00:00Z),less-than("+field+",2025-09-04T00:00:00Z)")
		page := func(b *testing.B) {
			if status, body := serveInProcess(s, pq); status != http.StatusOK || !strings.Contains(string(body), `"next":`) {
				b.Fatalf("status %d, a page without next: %.300s", status, body)
			}
		}
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				page(b)
			}
		})
		// The first page after the world changes builds the world's sorted list.
		b.Run(f+"/first-in-world", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s.AdvanceQuiet(time.Second)
				b.StartTimer()
				page(b)
			}
		})
	}
}
