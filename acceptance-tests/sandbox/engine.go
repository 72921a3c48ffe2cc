package sandbox

import (
	"math"
	"sort"
	"strings"
	"time"
)

// position locates a record in a sorted listing: its sort key and its index, which breaks ties.
type position struct {
	Key any
	Idx int64
}

// source yields the records of one listing that match the query, in ascending (Key, Idx) order
// or descending when desc, strictly after `after` when it is set.
type source interface {
	each(desc bool, after *position, fn func(position) bool)
	render(p position) *record
}

// normKey makes sort keys comparable and JSON-stable (numbers as float64, instants as seconds).
func normKey(v any) any {
	switch k := v.(type) {
	case tval:
		return float64(int64(k) / int64(time.Second))
	case int:
		return float64(k)
	case int64:
		return float64(k)
	case []any:
		if len(k) == 0 {
			return nil
		}
		return normKey(k[0])
	}
	return v
}

func keyRank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case float64:
		return 2
	case string:
		return 3
	}
	return 4
}

func compareKeys(a, b any) int {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra - rb
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		if x == y {
			return 0
		}
		if !x {
			return -1
		}
		return 1
	case float64:
		return cmpFloat(x, b.(float64))
	case string:
		return strings.Compare(x, b.(string))
	}
	return 0
}

func comparePos(a, b position) int {
	if c := compareKeys(a.Key, b.Key); c != 0 {
		return c
	}
	switch {
	case a.Idx < b.Idx:
		return -1
	case a.Idx > b.Idx:
		return 1
	}
	return 0
}

// sliceSource is the general listing: materialise the kind's records, filter, sort. Small kinds
// (everything but events, profiles and memberships at scale) use it.
type sliceSource struct {
	recs []*record
	pos  []position
}

func newSliceSource(all []*record, filter []pred, sortField string) *sliceSource {
	s := &sliceSource{}
	for _, r := range all {
		if matchAll(r, filter) {
			var key any
			if sortField != "" {
				key = normKey(r.field(sortField))
			}
			s.recs = append(s.recs, r)
			s.pos = append(s.pos, position{Key: key, Idx: r.idx})
		}
	}
	sort.Sort(byPos{s})
	return s
}

type byPos struct{ s *sliceSource }

func (b byPos) Len() int           { return len(b.s.recs) }
func (b byPos) Less(i, j int) bool { return comparePos(b.s.pos[i], b.s.pos[j]) < 0 }
func (b byPos) Swap(i, j int) {
	b.s.recs[i], b.s.recs[j] = b.s.recs[j], b.s.recs[i]
	b.s.pos[i], b.s.pos[j] = b.s.pos[j], b.s.pos[i]
}

func matchAll(r *record, filter []pred) bool {
	for i := range filter {
		if !filter[i].matches(r.field(filter[i].field)) {
			return false
		}
	}
	return true
}

func (s *sliceSource) each(desc bool, after *position, fn func(position) bool) {
	eachPos(s.pos, desc, after, nil, fn)
}

// eachPos calls fn on the positions of a sorted run after the cursor after (nil: from the first), ascending or
// descending, skipping those whose index keep rejects (nil keeps all), until fn returns false.
func eachPos(pos []position, desc bool, after *position, keep func(int64) bool, fn func(position) bool) {
	n := len(pos)
	if !desc {
		i := 0
		if after != nil {
			i = sort.Search(n, func(i int) bool { return comparePos(pos[i], *after) > 0 })
		}
		for ; i < n; i++ {
			if (keep == nil || keep(pos[i].Idx)) && !fn(pos[i]) {
				return
			}
		}
		return
	}
	i := n - 1
	if after != nil {
		i = sort.Search(n, func(i int) bool { return comparePos(pos[i], *after) >= 0 }) - 1
	}
	for ; i >= 0; i-- {
		if (keep == nil || keep(pos[i].Idx)) && !fn(pos[i]) {
			return
		}
	}
}

func (s *sliceSource) render(p position) *record {
	i := sort.Search(len(s.pos), func(i int) bool { return comparePos(s.pos[i], p) >= 0 })
	if i < len(s.pos) && s.pos[i].Idx == p.Idx {
		return s.recs[i]
	}
	return nil
}

// monoSeq is an index range whose key never decreases with the index, so a cursor or a time
// window is found by binary search instead of a scan: events by datetime, profiles by created,
// memberships by joined_group_at. gidx maps the range index to the record's global index.
type monoSeq struct {
	n    int64
	key  func(i int64) int64
	gidx func(i int64) int64
	skip func(i int64) bool
}

// keyRange is an inclusive bound on monoSeq keys derived from range filters on the sort field.
type keyRange struct{ lo, hi int64 }

func fullRange() keyRange { return keyRange{lo: math.MinInt64, hi: math.MaxInt64} }

func (m *monoSeq) search(f func(i int64) bool) int64 {
	lo, hi := int64(0), m.n
	for lo < hi {
		mid := lo + (hi-lo)/2
		if f(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// after reports whether element i sorts strictly after (k, g).
func (m *monoSeq) after(i, k, g int64) bool {
	ki := m.key(i)
	return ki > k || ki == k && m.gidx(i) > g
}

type seqHead struct {
	m   *monoSeq
	i   int64
	end bool
}

// mergeSeqs walks several monoSeqs as one ordered listing.
type mergeSeqs struct {
	seqs []*monoSeq
	rng  keyRange
}

func posKey(p *position) (int64, int64, bool) {
	if p == nil {
		return 0, 0, false
	}
	f, ok := p.Key.(float64)
	if !ok {
		return 0, 0, false
	}
	return int64(f), p.Idx, true
}

func (ms *mergeSeqs) each(desc bool, after *position, fn func(position) bool) {
	ak, ag, hasAfter := posKey(after)
	heads := make([]*seqHead, 0, len(ms.seqs))
	for _, m := range ms.seqs {
		h := &seqHead{m: m}
		if !desc {
			start := m.search(func(i int64) bool { return m.key(i) >= ms.rng.lo })
			if hasAfter {
				if s2 := m.search(func(i int64) bool { return m.after(i, ak, ag) }); s2 > start {
					start = s2
				}
			}
			h.i = start
		} else {
			end := m.search(func(i int64) bool { return m.key(i) > ms.rng.hi }) - 1
			if hasAfter {
				if e2 := m.search(func(i int64) bool { return m.after(i, ak, ag-1) || (m.key(i) == ak && m.gidx(i) >= ag) }) - 1; e2 < end {
					end = e2
				}
			}
			h.i = end
		}
		ms.settle(h, desc)
		heads = append(heads, h)
	}
	for {
		var best *seqHead
		var bk, bg int64
		for _, h := range heads {
			if h.end {
				continue
			}
			k, g := h.m.key(h.i), h.m.gidx(h.i)
			if best == nil || (!desc && (k < bk || k == bk && g < bg)) || (desc && (k > bk || k == bk && g > bg)) {
				best, bk, bg = h, k, g
			}
		}
		if best == nil {
			return
		}
		if !fn(position{Key: float64(bk), Idx: bg}) {
			return
		}
		if desc {
			best.i--
		} else {
			best.i++
		}
		ms.settle(best, desc)
	}
}

// settle moves a head past skipped elements and marks it ended outside the key range.
func (ms *mergeSeqs) settle(h *seqHead, desc bool) {
	for {
		if h.i < 0 || h.i >= h.m.n {
			h.end = true
			return
		}
		k := h.m.key(h.i)
		if (!desc && k > ms.rng.hi) || (desc && k < ms.rng.lo) {
			h.end = true
			return
		}
		if h.m.skip != nil && h.m.skip(h.i) {
			if desc {
				h.i--
			} else {
				h.i++
			}
			continue
		}
		return
	}
}

// rangeFor turns range terms on the key fields into inclusive second bounds.
func rangeFor(preds []pred) keyRange {
	r := fullRange()
	for _, p := range preds {
		var lo, hi float64
		switch p.val.kind {
		case vTime:
			lo = float64(p.val.t) / float64(time.Second)
			hi = lo
		case vNumber:
			lo, hi = p.val.n, p.val.n
		default:
			continue
		}
		switch p.op {
		case "greater-than":
			setMax(&r.lo, int64(math.Floor(lo))+1)
		case "greater-or-equal":
			setMax(&r.lo, int64(math.Ceil(lo)))
		case "less-than":
			setMin(&r.hi, int64(math.Ceil(hi))-1)
		case "less-or-equal":
			setMin(&r.hi, int64(math.Floor(hi)))
		case "equals":
			if lo == math.Trunc(lo) {
				setMax(&r.lo, int64(lo))
				setMin(&r.hi, int64(lo))
			} else {
				r.lo, r.hi = 1, 0
			}
		}
	}
	return r
}

func setMax(v *int64, x int64) {
	if x > *v {
		*v = x
	}
}

func setMin(v *int64, x int64) {
	if x < *v {
		*v = x
	}
}

// pageResult is one page of a listing.
type pageResult struct {
	recs       []*record
	next, prev *cursor
}

// paginate reads one page after the query's cursor, in the query's direction.
func paginate(src source, q *query, size int) pageResult {
	var res pageResult
	sortName := q.sortKeyName()
	var after *position
	backwards := false
	if q.cursor != nil {
		after = &position{Key: q.cursor.Key, Idx: q.cursor.Idx}
		backwards = q.cursor.Dir == "p"
	}
	dir := q.desc != backwards
	var got []position
	src.each(dir, after, func(p position) bool {
		got = append(got, p)
		return len(got) <= size
	})
	more := len(got) > size
	if more {
		got = got[:size]
	}
	if backwards {
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
	}
	for _, p := range got {
		if r := src.render(p); r != nil {
			res.recs = append(res.recs, r)
		}
	}
	if len(got) == 0 {
		return res
	}
	first, last := got[0], got[len(got)-1]
	hasNext, hasPrev := more, after != nil
	if backwards {
		hasNext, hasPrev = true, more
	}
	if hasNext {
		res.next = &cursor{Dir: "n", Key: last.Key, Idx: last.Idx, Sort: sortName}
	}
	if hasPrev {
		res.prev = &cursor{Dir: "p", Key: first.Key, Idx: first.Idx, Sort: sortName}
	}
	return res
}

// countSource counts every matching record.
func countSource(src source) int {
	n := 0
	src.each(false, nil, func(position) bool { n++; return true })
	return n
}
