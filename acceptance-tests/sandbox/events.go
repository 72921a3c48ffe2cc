package sandbox

import (
	"fmt"
	"math"
	"strconv"
)

// Events are the ten-million-record kind: event i's datetime grows with i (base history, then
// the records each Advance creates), plus a short tail of future-dated events and, when enabled,
// the late events (late.go), both merged in by time. Nothing per event is stored.

const futureBase = int64(1) << 40

func (w *world) futureCount() int64 { return futureEvents(int64(w.sc.Events)) }

// futureSec dates future event j 60-400 days after the clock start.
func (w *world) futureSec(j int64) int64 {
	f := w.futureCount()
	return w.start + 60*day + j*(340*day)/max64(1, f)
}

func (w *world) eventSec(g int64) int64 {
	switch {
	case g >= lateBase:
		return w.lateSec(g - lateBase)
	case g >= futureBase:
		return w.futureSec(g - futureBase)
	}
	return w.pop(kEvent).created(g)
}

func (w *world) eventExists(g int64) bool {
	switch {
	case g >= lateBase:
		return g-lateBase < w.lateCount()
	case g >= futureBase:
		return g-futureBase < w.futureCount()
	}
	return g >= 0 && g < w.pop(kEvent).total()
}

// eventSeqs are the ordered sequences every event listing merges by (datetime, index): the main
// sequence first (eachEvent relies on it), then the future-dated events and the late ones.
func (w *world) eventSeqs() []*monoSeq {
	ev := w.pop(kEvent)
	seqs := []*monoSeq{
		{n: ev.total(), key: ev.created, gidx: identity},
		{n: w.futureCount(), key: w.futureSec, gidx: func(j int64) int64 { return futureBase + j }},
	}
	if len(w.lateIdx) > 0 {
		seqs = append(seqs, ovrSeq(w.lateIdx))
	}
	return seqs
}

func (w *world) eventID(g int64) string { return encID(w.pop(kEvent).salt, g, 10) }

func (w *world) eventIndex(id string) (int64, bool) {
	g, ok := decID(w.pop(kEvent).salt, id, 10)
	if !ok || !w.eventExists(g) {
		return 0, false
	}
	return g, true
}

// eventMetric picks a base metric, skewed so a few metrics hold most events as in real accounts.
func (w *world) eventMetric(g int64) int64 {
	m := int64(w.sc.Metrics)
	u := float64(mix(w.pop(kEvent).salt, uint64(g), 1)>>11) / float64(1<<53)
	return int64(math.Floor(float64(m) * u * u))
}

func (w *world) eventProfile(g int64) int64 {
	return int64(mix(w.pop(kEvent).salt, uint64(g), 2) % uint64(w.sc.Profiles))
}

// eventSource lists events by datetime; filters on metric_id and profile_id are matched on the
// event's coordinates, never on a rendered body.
func (c *rctx) eventSource() (source, *apiError) {
	w := c.w
	ms := &mergeSeqs{seqs: w.eventSeqs(), rng: rangeFor(c.q.predsOn("datetime", "timestamp"))}
	metric := int64(-1)
	profile := int64(-1)
	none := false
	for _, p := range c.q.filter {
		switch p.field {
		case "metric_id":
			if p.val.kind == vList {
				none = true
				for _, v := range p.val.list {
					if i, ok := w.metricIndex(v.s); ok && i < int64(w.sc.Metrics) {
						metric, none = i, false
					}
				}
				continue
			}
			if i, ok := w.metricIndex(p.val.s); ok && i < int64(w.sc.Metrics) {
				metric = i
			} else {
				none = true
			}
		case "profile_id":
			if i, ok := w.profileIndex(p.val.s); ok && i < int64(w.sc.Profiles) {
				profile = i
			} else {
				none = true
			}
		}
	}
	src := &indexSource{ms: ms, rend: func(g int64) *record { return c.event(g) }}
	switch {
	case none:
		src.match = func(int64) bool { return false }
	case metric >= 0 || profile >= 0:
		src.match = func(g int64) bool {
			return (metric < 0 || w.eventMetric(g) == metric) && (profile < 0 || w.eventProfile(g) == profile)
		}
	}
	return src, nil
}

// indexSource is a listing over merged monotonic sequences with an optional per-record check.
type indexSource struct {
	ms    *mergeSeqs
	match func(idx int64) bool
	rend  func(idx int64) *record
}

func (s *indexSource) each(desc bool, after *position, fn func(position) bool) {
	s.ms.each(desc, after, func(p position) bool {
		if s.match != nil && !s.match(p.Idx) {
			return true
		}
		return fn(p)
	})
}

func (s *indexSource) render(p position) *record { return s.rend(p.Idx) }

// isEmailMetric tells the metrics whose events come from email sends (and carry attributions).
func isEmailMetric(name string) bool {
	switch name {
	case "Received Email", "Opened Email", "Clicked Email", "Bounced Email", "Unsubscribed", "Marked Email as Spam":
		return true
	}
	return false
}

// event renders event g.
func (c *rctx) event(g int64) *record {
	w := c.w
	sec := w.eventSec(g)
	mi := w.eventMetric(g)
	pi := w.eventProfile(g)
	r := newRnd(w.pop(kEvent).salt, uint64(g), 3)
	name := w.metricName(mi)
	props := map[string]any{}
	switch {
	case isOrderMetric(name):
		n := orderLineCount(r)
		items := make([]any, n)
		total := 0.0
		for k := range items {
			l := drawOrderLine(r)
			price := float64(l.cents) / 100
			total += price
			items[k] = map[string]any{"ProductName": l.product, "SKU": fmt.Sprintf("SKU-%04d", l.sku),
				"Quantity": l.qty, "ItemPrice": price, "Categories": []any{"Apparel", "Été 2025"}}
		}
		props["$value"] = math.Round(total*100) / 100
		props["OrderId"] = fmt.Sprintf("#%d", 1000+g)
		props["Items"] = items
		props["ItemNames"] = []any{pick(r, products)}
		props["DiscountCode"] = nil
		if r.chance(0.3) {
			props["DiscountCode"] = "WELCOME10"
		}
		props["$extra"] = map[string]any{"shipping": map[string]any{"method": "Colissimo", "address": map[string]any{"city": pick(r, cities)}}}
	case isEmailMetric(name):
		props["Subject"] = pick(r, []string{"Your weekly digest 📰", "Nouveautés de l'été", "Last chance: 20% off", "お知らせ"})
		props["Campaign Name"] = pick(r, words) + " campaign"
		props["$message"] = shortID(mix(w.seed, 0xca), int64(r.intn(max(1, w.sc.Campaigns))))
		props["Email Domain"] = pick(r, domains)
		props["$ESP"] = r.intn(3)
		if name == "Clicked Email" {
			props["URL"] = "https://shop.example.com/collections/new?utm_source=klaviyo&utm_medium=email"
		}
	case name == "Viewed Product" || name == "Added to Cart":
		props["ProductName"] = pick(r, products)
		props["ProductID"] = r.intn(100000)
		props["Price"] = float64(r.intn(30000)) / 100
		props["Brand"] = nil
		props["Categories"] = []any{"Home", "Décor"}
	default:
		props["source"] = pick(r, []string{"web", "ios", "android", "pos"})
		props["page"] = fmt.Sprintf("https://shop.example.com/p/%d", r.intn(500))
	}
	if r.chance(0.05) {
		props["custom_nested"] = map[string]any{"a": []any{1, 2, map[string]any{"b": nil}}, "ünïcode": "✓"}
	}
	props["$event_id"] = strconv.FormatInt(sec, 10) + ":" + strconv.FormatInt(g, 10)
	attrs := map[string]any{
		"timestamp": sec, "event_properties": props, "datetime": isoTime(sec),
		"uuid": uuidID(w.pop(kEvent).salt, g),
	}
	id := w.eventID(g)
	profileID, metricID := w.profileID(pi), w.metricID(mi)
	// Event filters run on the event's coordinates (eventSource), so no filter-only fields here.
	rec := &record{Type: "event", ID: id, Attrs: attrs, Coll: "events", idx: g}
	attr := relation{Name: "attributions", Many: true, Data: true}
	if hasAttribution(name, g) {
		attr.Refs = []ref{{Type: "attribution", ID: id + "-a1"}}
	}
	rec.Rels = []relation{
		{Name: "profile", Refs: []ref{{Type: "profile", ID: profileID}}},
		{Name: "metric", Refs: []ref{{Type: "metric", ID: metricID}}},
		attr,
	}
	return rec
}

// attribution renders an attribution of event g: the flow or campaign message that earned it.
func (c *rctx) attribution(g int64, id string) *record {
	w := c.w
	rec := &record{Type: "attribution", ID: id, NoAttrs: true, Coll: "attributions", idx: g}
	rels := []relation{
		{Name: "event", Refs: []ref{{Type: "event", ID: w.eventID(g)}}},
	}
	if g > 0 && w.eventExists(g-1) { // the first future or late event has no predecessor to credit
		rels = append(rels, relation{Name: "attributed-event", Refs: []ref{{Type: "event", ID: w.eventID(g - 1)}}})
	}
	if t := w.attributionTarget(g); t.ok && t.campaign {
		ci := t.owner
		rels = append(rels,
			relation{Name: "campaign", Refs: []ref{{Type: "campaign", ID: w.campaignID(ci)}}},
			relation{Name: "campaign-message", Refs: []ref{{Type: "campaign-message", ID: w.campaignMessageID(ci, 0)}}})
	} else if t.ok {
		fi := t.owner
		msg := w.flowMessageID(fi, 0, 0)
		rels = append(rels,
			relation{Name: "flow", Refs: []ref{{Type: "flow", ID: w.flowID(fi)}}},
			relation{Name: "flow-message", Refs: []ref{{Type: "flow-message", ID: msg}}},
			relation{Name: "flow-message-variation", Refs: []ref{{Type: "flow-message", ID: msg}}})
	}
	rec.Rels = rels
	return rec
}
