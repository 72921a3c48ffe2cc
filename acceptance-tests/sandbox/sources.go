package sandbox

// rctx carries one request's view: the world snapshot, the validated query, the path ids, and
// the kinds already materialised while answering it.
type rctx struct {
	w     *world
	q     *query
	ids   []string
	cache map[string][]*record
	byID  map[string]map[string]*record
}

func newRctx(w *world, q *query, ids []string) *rctx {
	return &rctx{w: w, q: q, ids: ids, cache: map[string][]*record{}, byID: map[string]map[string]*record{}}
}

// gens renders record i of each index-addressed small kind.
func (c *rctx) gen(kind string, i int64) *record {
	switch kind {
	case kMetric:
		return c.metric(i)
	case kList:
		return c.list(i)
	case kSegment:
		return c.segment(i)
	case kFlow:
		return c.flow(i)
	case kCampaign:
		return c.campaign(i)
	case kTemplate:
		return c.template(i)
	case kTag:
		return c.tag(i)
	case kTagGroup:
		return c.tagGroup(i)
	case kCoupon:
		return c.coupon(i)
	case kCouponCode:
		return c.couponCode(i)
	case kCatalogItem:
		return c.catalogItem(i)
	case kCatalogVariant:
		return c.catalogVariant(i)
	case kCatalogCategory:
		return c.catalogCategory(i)
	case kImage:
		return c.image(i)
	case kForm:
		return c.form(i)
	case kReview:
		return c.review(i)
	case kWebhook:
		return c.webhook(i)
	case kPushToken:
		return c.pushToken(i)
	case kUniversalContent:
		return c.universalContent(i)
	case kWebFeed:
		return c.webFeed(i)
	case kCustomMetric:
		return c.customMetric(i)
	}
	return nil
}

// all renders every record of a small kind (or a derived kind such as flow-action).
func (c *rctx) all(kind string) []*record {
	if recs, ok := c.cache[kind]; ok {
		return recs
	}
	var recs []*record
	switch kind {
	case "flow-action":
		for f := int64(0); f < c.w.total(kFlow); f++ {
			for a := int64(0); a < c.w.flowActionCount(f); a++ {
				recs = append(recs, c.flowAction(f, a))
			}
		}
	case "flow-message":
		for f := int64(0); f < c.w.total(kFlow); f++ {
			for a := int64(0); a < c.w.flowActionCount(f); a++ {
				if flowActionType(f, a) != "time-delay" {
					recs = append(recs, c.flowMessage(f, a))
				}
			}
		}
	case "campaign-message":
		for i := int64(0); i < c.w.total(kCampaign); i++ {
			for k := int64(0); k < c.w.campaignMessageCount(i); k++ {
				recs = append(recs, c.campaignMessage(i, k))
			}
		}
	case "form-version":
		for f := int64(0); f < c.w.total(kForm); f++ {
			for v := int64(0); v < c.w.formVersionCount(f); v++ {
				recs = append(recs, c.formVersion(f, v))
			}
		}
	case "webhook-topic":
		for i := range webhookTopics {
			recs = append(recs, c.webhookTopic(int64(i)))
		}
	case "tracking-setting":
		recs = append(recs, c.trackingSetting())
	case "mapped-metric":
		recs = c.mappedMetrics()
	case "account":
		recs = append(recs, c.account())
	default:
		n := c.w.total(kind)
		recs = make([]*record, 0, n)
		for i := int64(0); i < n; i++ {
			recs = append(recs, c.gen(kind, i))
		}
	}
	c.cache[kind] = recs
	return recs
}

// find returns the record of a type with an id, or nil.
func (c *rctx) find(typ, id string) *record {
	switch typ {
	case "profile":
		if i, ok := c.w.profileIndex(id); ok {
			return c.profile(i, profVariantIncluded)
		}
		return nil
	case "event":
		if g, ok := c.w.eventIndex(id); ok {
			return c.event(g)
		}
		return nil
	case "attribution":
		if len(id) > 3 {
			if g, ok := c.w.eventIndex(id[:len(id)-3]); ok {
				return c.attribution(g, id)
			}
		}
		return nil
	}
	m, ok := c.byID[typ]
	if !ok {
		m = map[string]*record{}
		for _, r := range c.all(typ) {
			m[r.ID] = r
		}
		c.byID[typ] = m
	}
	return m[id]
}

// sliceOf filters and sorts a materialised kind for the current query.
func (c *rctx) sliceOf(recs []*record) *sliceSource {
	return newSliceSource(recs, c.q.filter, c.q.sortField)
}

// profileSource lists /api/profiles. Sorting by id, created or updated walks the index order (plus
// the Advance-updated records for updated); any other sort materialises all profiles.
func (c *rctx) profileSource() (source, *apiError) {
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
	// Other sorts (email, suppression timestamps) walk the world's profiles sorted once by that key
	// (keyed.go); records are rendered only for the page.
	return c.keyedSource(render), nil
}

func identity(i int64) int64 { return i }

// profileMatcher checks the filter terms not already enforced by the key range, using cheap
// accessors for timestamps and ids and a full render only for other fields.
func (c *rctx) profileMatcher(keyField string, variant int) func(int64) bool {
	var rest []pred
	for _, p := range c.q.filter {
		if p.field != keyField {
			rest = append(rest, p)
		}
	}
	return c.predMatcher(rest, variant)
}

// predMatcher checks the terms rest on profile i as profileMatcher does; nil when rest is empty.
func (c *rctx) predMatcher(rest []pred, variant int) func(int64) bool {
	if len(rest) == 0 {
		return nil
	}
	w := c.w
	pop := w.pop(kProfile)
	return func(i int64) bool {
		var rec *record
		for k := range rest {
			var v any
			switch rest[k].field {
			case "created":
				v = secOf(pop.created(i))
			case "updated":
				v = secOf(pop.updated(i))
			case "id", "profile_id":
				v = w.profileID(i)
			default:
				if rec == nil {
					rec = c.profile(i, variant)
				}
				v = rec.field(rest[k].field)
			}
			if !rest[k].matches(v) {
				return false
			}
		}
		return true
	}
}

// memberSource lists the profiles of list (or segment) l by joined_group_at.
func (c *rctx) memberSource(kind string, l int64, idsOnly bool) source {
	w := c.w
	p := w.pop(kProfile)
	delay := w.joinDelay(kind, l)
	rng := rangeFor(c.q.predsOn("joined_group_at"))
	setMin(&rng.hi, w.now)
	seq := &monoSeq{n: p.total(), key: func(i int64) int64 { return p.created(i) + delay }, gidx: identity,
		skip: func(i int64) bool { return !w.isMember(kind, l, i) }}
	render := func(i int64) *record {
		if idsOnly {
			return &record{Type: "profile", ID: w.profileID(i), Coll: "profiles", idx: i}
		}
		r := c.profile(i, profVariantMember)
		r.Attrs["joined_group_at"] = isoTime(p.created(i) + delay)
		return r
	}
	return &indexSource{ms: &mergeSeqs{seqs: []*monoSeq{seq}, rng: rng},
		match: c.profileMatcher("joined_group_at", profVariantMember), rend: render}
}

func (c *rctx) memberCount(kind string, l int64) int {
	sub := &rctx{w: c.w, q: &query{}, cache: c.cache, byID: c.byID}
	return countSource(sub.memberSource(kind, l, true))
}
