package sandbox

import (
	"math"
	"sort"
	"time"
)

const (
	day  = int64(24 * 3600)
	year = 365 * day
)

// epoch is one Advance of the clock, [from, to) in Unix seconds.
type epoch struct{ from, to int64 }

// world is an immutable snapshot of the account at one clock reading. Every record is a pure
// function of (seed, kind, index, epochs); Advance builds a new world rather than mutating one,
// so requests in flight keep a consistent view.
type world struct {
	seed   uint64
	sc     Scale
	start  int64
	now    int64
	epochs []epoch
	pops   map[string]*population
	base   string // server base URL, for links
	// late and lateIdx are the opt-in late events (late.go); removals, removed and removedLog the
	// opt-in membership removals (removals.go). All are empty when the options are off.
	late       LateEvents
	lateIdx    []ovr
	removals   int
	removed    map[membership]int64
	removedLog []removal
	// keyed is the memo of this world's profiles in each keyed sort order (keyed.go); derive gives
	// every new world an empty one.
	keyed *keyedIndex
}

// population is the index space of one kind: base records spread over [start-span, start), then
// records created during each epoch, plus the records whose `updated` moved in an epoch.
type population struct {
	salt      uint64
	base      int64
	span      int64 // seconds of history of the base records
	updSpan   int64 // base records' updated timestamps lie in [start-updSpan, start)
	updFrac   float64
	startMs   int64
	epochs    []epoch
	cum       []int64 // cum[k] = records existing at the end of epoch k
	overrides map[int64]int64
	overList  []ovr // overrides sorted by (t, idx)
	// curve, when set, places the base records by a skewed daily density (skew.go) instead of evenly.
	curve *curve
}

// ovr is a record placed out of its index order: its timestamp and its index.
type ovr struct{ t, idx int64 }

// sortOvrs orders by (t, idx), the order listings walk, so an []ovr is a monotonic sequence.
func sortOvrs(list []ovr) {
	sort.Slice(list, func(a, b int) bool {
		if list[a].t != list[b].t {
			return list[a].t < list[b].t
		}
		return list[a].idx < list[b].idx
	})
}

// ovrSeq walks a sorted []ovr as a monotonic sequence keyed by t.
func ovrSeq(list []ovr) *monoSeq {
	return &monoSeq{n: int64(len(list)), key: func(i int64) int64 { return list[i].t }, gidx: func(i int64) int64 { return list[i].idx }}
}

func newPopulation(salt uint64, base int64, span, updSpan int64, updFrac float64, start int64) *population {
	if updSpan > span {
		updSpan = span
	}
	return &population{salt: salt, base: base, span: span, updSpan: updSpan, updFrac: updFrac, startMs: start * 1000}
}

// total is how many records exist now.
func (p *population) total() int64 {
	if len(p.cum) == 0 {
		return p.base
	}
	return p.cum[len(p.cum)-1]
}

// createdMs is record i's creation instant in Unix milliseconds, strictly increasing in i: record
// i falls at a jittered point of its own slot, so timestamps look irregular yet stay ordered. Under
// a skew curve it is only non-decreasing on days holding more records than milliseconds.
func (p *population) createdMs(i int64) int64 {
	if i < p.base && p.curve != nil {
		return p.curve.createdMs(i, p.jitter)
	}
	if i < p.base {
		spanMs := p.span * 1000
		step := max64(1, spanMs/p.base)
		return p.startMs - spanMs + i*step + p.jitter(i, step)
	}
	k := sort.Search(len(p.cum), func(k int) bool { return p.cum[k] > i })
	if k == len(p.cum) {
		k = len(p.cum) - 1
	}
	prev := p.base
	if k > 0 {
		prev = p.cum[k-1]
	}
	n := p.cum[k] - prev
	e := p.epochs[k]
	step := max64(1, (e.to-e.from)*1000/(n+1))
	return e.from*1000 + (i-prev+1)*step + p.jitter(i, step) // after `from`: new since the old clock
}

// jitter is a deterministic offset in [0, step).
func (p *population) jitter(i, step int64) int64 {
	return int64(mix(p.salt, uint64(i), 0x71) % uint64(step))
}

func (p *population) created(i int64) int64 { return floorDiv(p.createdMs(i), 1000) }

// baseUpdated is the updated timestamp ignoring Advance updates; non-decreasing in i.
func (p *population) baseUpdated(i int64) int64 {
	c := p.created(i)
	if i >= p.base {
		return c
	}
	stepMs := max64(1, p.updSpan*1000/p.base)
	u := floorDiv(p.startMs-p.updSpan*1000+i*stepMs+p.jitter(i^0x5a5a, stepMs), 1000)
	if u < c {
		return c
	}
	return u
}

// updated is the latest change of record i.
func (p *population) updated(i int64) int64 {
	if t, ok := p.overrides[i]; ok {
		return t
	}
	return p.baseUpdated(i)
}

// advance returns the population after the epoch e: new records created inside it and a share
// of the existing ones updated inside it.
func (p *population) advance(e epoch, k int) *population {
	q := *p
	q.epochs = append(append([]epoch(nil), p.epochs...), e)
	before := p.total()
	d := e.to - e.from
	n := int64(0)
	if p.base > 0 && d > 0 {
		n = int64(math.Ceil(float64(p.base) * float64(d) / float64(p.span) * p.pace()))
	}
	q.cum = append(append([]int64(nil), p.cum...), before+n)
	if p.updFrac > 0 && before > 0 && d > 0 {
		share := math.Min(1, float64(d)/float64(day))
		u := int64(math.Ceil(float64(before) * p.updFrac * share))
		q.overrides = make(map[int64]int64, len(p.overrides)+int(u))
		for i, t := range p.overrides {
			q.overrides[i] = t
		}
		for j := int64(0); j < u; j++ {
			h := mix(p.salt, 0xadc0, uint64(k), uint64(j))
			idx := int64(h % uint64(before))
			t := e.from + 1 + int64(mix(h, 7)%uint64(d)) // in (from, to]
			if t < p.created(idx) {
				continue
			}
			q.overrides[idx] = t
		}
		q.overList = make([]ovr, 0, len(q.overrides))
		for i, t := range q.overrides {
			q.overList = append(q.overList, ovr{t: t, idx: i})
		}
		sortOvrs(q.overList)
	}
	return &q
}

// pace is how many records an Advance creates per second of its epoch, as a multiple of the base records' mean
// rate: 1, or the skewed curve's rate on its last day.
func (p *population) pace() float64 {
	if p.curve == nil {
		return 1
	}
	return p.curve.endRate
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// kind names used as population keys.
const (
	kProfile          = "profile"
	kEvent            = "event"
	kMetric           = "metric"
	kList             = "list"
	kSegment          = "segment"
	kFlow             = "flow"
	kCampaign         = "campaign"
	kTemplate         = "template"
	kTag              = "tag"
	kTagGroup         = "tag-group"
	kCoupon           = "coupon"
	kCouponCode       = "coupon-code"
	kCatalogItem      = "catalog-item"
	kCatalogVariant   = "catalog-variant"
	kCatalogCategory  = "catalog-category"
	kImage            = "image"
	kForm             = "form"
	kReview           = "review"
	kWebhook          = "webhook"
	kPushToken        = "push-token"
	kUniversalContent = "template-universal-content"
	kWebFeed          = "web-feed"
	kCustomMetric     = "custom-metric"
)

// futureEvents is how many of the configured events are dated 60-400 days after the clock start.
func futureEvents(total int64) int64 {
	f := total / 2000
	if f < 3 {
		f = 3
	}
	if f > total/2 {
		f = total / 2
	}
	return f
}

// newWorld is the account at the clock start; opts are normalised (StartAddr did it).
func newWorld(opts Options, base string) *world {
	sc := opts.Scale
	w := &world{seed: uint64(opts.Seed), sc: sc, start: opts.Now.Unix(), now: opts.Now.Unix(), base: base, pops: map[string]*population{},
		late: opts.LateEvents, removals: opts.Removals, keyed: newKeyedIndex()}
	st := w.start
	add := func(kind string, n int, span, updSpan int64, updFrac float64) {
		w.pops[kind] = newPopulation(mix(w.seed, hashString(kind)), int64(n), span, updSpan, updFrac, st)
	}
	add(kProfile, sc.Profiles, 3*year, 180*day, 0.03)
	add(kEvent, int(int64(sc.Events)-futureEvents(int64(sc.Events))), year, year, 0)
	if ev := w.pops[kEvent]; opts.EventSkew.on() && ev.base > 0 {
		ev.curve = newCurve(opts.EventSkew, ev.base, ev.span, ev.startMs)
	}
	add(kMetric, sc.Metrics, 2*year, 90*day, 0.05)
	add(kList, sc.Lists, 2*year, 60*day, 0.1)
	add(kSegment, sc.Segments, 2*year, 60*day, 0.1)
	add(kFlow, sc.Flows, 2*year, 60*day, 0.1)
	add(kCampaign, sc.Campaigns, year, 60*day, 0.05)
	add(kTemplate, sc.Templates, 2*year, 90*day, 0.1)
	add(kTag, sc.Tags, 2*year, 2*year, 0)
	add(kTagGroup, sc.TagGroups, 2*year, 2*year, 0)
	add(kCoupon, sc.Coupons, year, year, 0)
	add(kCouponCode, sc.CouponCodes, year, year, 0)
	add(kCatalogItem, sc.CatalogItems, 2*year, 90*day, 0.05)
	add(kCatalogVariant, sc.CatalogVariants, 2*year, 90*day, 0.05)
	add(kCatalogCategory, sc.CatalogCategories, 2*year, 90*day, 0.05)
	add(kImage, sc.Images, year, 180*day, 0.05)
	add(kForm, sc.Forms, year, 90*day, 0.1)
	add(kReview, sc.Reviews, year, 60*day, 0.05)
	add(kWebhook, sc.Webhooks, year, 90*day, 0.05)
	add(kPushToken, sc.PushTokens, year, 90*day, 0)
	add(kUniversalContent, sc.UniversalContent, year, 90*day, 0.05)
	add(kWebFeed, sc.WebFeeds, year, 90*day, 0.05)
	add(kCustomMetric, sc.CustomMetrics, year, 90*day, 0.05)
	return w
}

// advance returns the world d later.
func (w *world) advance(d time.Duration) *world {
	sec := int64(d / time.Second)
	if sec <= 0 {
		return w
	}
	e := epoch{from: w.now, to: w.now + sec}
	n := w.derive()
	n.now = e.to
	n.epochs = append(append([]epoch(nil), w.epochs...), e)
	n.pops = make(map[string]*population, len(w.pops))
	for k, p := range w.pops {
		n.pops[k] = p.advance(e, len(w.epochs))
	}
	n.lateIdx = n.advanceLate(w.lateIdx, len(w.epochs))
	if adds := w.pickRemovals(e, len(w.epochs)); len(adds) > 0 {
		n.removed, n.removedLog = w.withRemovals(adds)
	}
	return n
}

// idle returns the world d later with the same records: no epoch is added, so no population grows or is updated,
// and the late events and removals, which are counted per epoch, stay as they were.
func (w *world) idle(d time.Duration) *world {
	sec := int64(d / time.Second)
	if sec <= 0 {
		return w
	}
	n := w.derive()
	n.now += sec
	return n
}

// derive copies the world as the start of a changed one. The copy shares every immutable part but
// not the keyed index, which describes the old world's records and so must not outlive it.
func (w *world) derive() *world {
	n := *w
	n.keyed = newKeyedIndex()
	return &n
}

func (w *world) pop(kind string) *population { return w.pops[kind] }
