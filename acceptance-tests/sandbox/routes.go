package sandbox

import "fmt"

// handler answers one path template: list for collections, one for single resources. ids marks
// relationship endpoints, whose data are resource identifiers only.
type handler struct {
	list      func(c *rctx) (source, *apiError)
	one       func(c *rctx) (*record, *apiError)
	ids       bool
	fixedPage int // page size of paginated endpoints without page[size] (metrics: 200)
}

// sliceOfKind lists a small kind with the query's filter and sort.
func sliceOfKind(kind string) func(c *rctx) (source, *apiError) {
	return func(c *rctx) (source, *apiError) { return c.sliceOf(c.all(kind)), nil }
}

// oneOfKind finds one record of a type by the path id.
func oneOfKind(typ, label string) func(c *rctx) (*record, *apiError) {
	return func(c *rctx) (*record, *apiError) {
		if r := c.find(typ, c.ids[0]); r != nil {
			return r, nil
		}
		return nil, notFound(fmt.Sprintf("A %s with id %s does not exist.", label, c.ids[0]))
	}
}

// hideArchived leaves archived flows and campaigns out unless the filter asks about archived, as
// Klaviyo does (which is why connectors read archived=false and archived=true separately).
func (c *rctx) hideArchived() {
	if len(c.q.predsOn("archived")) == 0 {
		c.q.filter = append(c.q.filter, pred{op: "equals", field: "archived", val: fval{kind: vBool}})
	}
}

// parent resolves the path id to a record of a type or answers 404.
func (c *rctx) parent(typ, label string) (*record, *apiError) { return oneOfKind(typ, label)(c) }

func childrenOf(parentType, label string, children func(c *rctx, p *record) []*record) func(c *rctx) (source, *apiError) {
	return func(c *rctx) (source, *apiError) {
		p, err := c.parent(parentType, label)
		if err != nil {
			return nil, err
		}
		return c.sliceOf(children(c, p)), nil
	}
}

func idsOf(refs []ref, coll string) []*record {
	out := make([]*record, 0, len(refs))
	for i, r := range refs {
		out = append(out, &record{Type: r.Type, ID: r.ID, Coll: coll, idx: int64(i)})
	}
	return out
}

func (s *Server) buildRoutes() map[string]handler {
	rt := map[string]handler{
		"/api/accounts":      {list: sliceOfKind("account")},
		"/api/accounts/{id}": {one: oneOfKind("account", "account")},
		"/api/profiles":      {list: func(c *rctx) (source, *apiError) { return c.profileSource() }},
		"/api/profiles/{id}": {one: func(c *rctx) (*record, *apiError) {
			if i, ok := c.w.profileIndex(c.ids[0]); ok {
				return c.profile(i, profVariantPlain), nil
			}
			return nil, notFound(fmt.Sprintf("A profile with id %s does not exist.", c.ids[0]))
		}},
		"/api/events":       {list: func(c *rctx) (source, *apiError) { return c.eventSource() }},
		"/api/events/{id}":  {one: oneOfKind("event", "event")},
		"/api/metrics":      {list: sliceOfKind(kMetric), fixedPage: 200},
		"/api/metrics/{id}": {one: oneOfKind(kMetric, "metric")},
		"/api/lists":        {list: sliceOfKind(kList)},
		"/api/lists/{id}":   {one: oneOfKind(kList, "list")},
		"/api/lists/{id}/profiles": {list: func(c *rctx) (source, *apiError) {
			p, err := c.parent(kList, "list")
			if err != nil {
				return nil, err
			}
			return c.memberSource(kList, p.idx, false), nil
		}},
		"/api/lists/{id}/relationships/profiles": {ids: true, list: func(c *rctx) (source, *apiError) {
			p, err := c.parent(kList, "list")
			if err != nil {
				return nil, err
			}
			return c.memberSource(kList, p.idx, true), nil
		}},
		"/api/segments":      {list: sliceOfKind(kSegment)},
		"/api/segments/{id}": {one: oneOfKind(kSegment, "segment")},
		"/api/segments/{id}/profiles": {list: func(c *rctx) (source, *apiError) {
			p, err := c.parent(kSegment, "segment")
			if err != nil {
				return nil, err
			}
			return c.memberSource(kSegment, p.idx, false), nil
		}},
		"/api/segments/{id}/relationships/profiles": {ids: true, list: func(c *rctx) (source, *apiError) {
			p, err := c.parent(kSegment, "segment")
			if err != nil {
				return nil, err
			}
			return c.memberSource(kSegment, p.idx, true), nil
		}},
		"/api/flows": {list: func(c *rctx) (source, *apiError) {
			c.hideArchived()
			return c.sliceOf(c.all(kFlow)), nil
		}},
		"/api/flows/{id}": {one: oneOfKind(kFlow, "flow")},
		"/api/flows/{id}/flow-actions": {list: childrenOf(kFlow, "flow", func(c *rctx, p *record) []*record {
			var out []*record
			for a := int64(0); a < c.w.flowActionCount(p.idx); a++ {
				out = append(out, c.flowAction(p.idx, a))
			}
			return out
		})},
		"/api/flow-actions/{id}": {one: oneOfKind("flow-action", "flow action")},
		"/api/flow-actions/{id}/flow-messages": {list: childrenOf("flow-action", "flow action", func(c *rctx, p *record) []*record {
			f, a := p.idx/16, p.idx%16
			if flowActionType(f, a) == "time-delay" {
				return nil
			}
			return []*record{c.flowMessage(f, a)}
		})},
		"/api/flow-messages/{id}": {one: oneOfKind("flow-message", "flow message")},
		"/api/campaigns": {list: func(c *rctx) (source, *apiError) {
			if _, ok := c.q.equalsValue("messages.channel"); !ok {
				return nil, badParam("filter", "A channel filter is required: use equals(messages.channel,'email'), 'sms' or 'mobile_push'.")
			}
			c.hideArchived()
			return c.sliceOf(c.all(kCampaign)), nil
		}},
		"/api/campaigns/{id}": {one: oneOfKind(kCampaign, "campaign")},
		"/api/campaigns/{id}/campaign-messages": {list: childrenOf(kCampaign, "campaign", func(c *rctx, p *record) []*record {
			var out []*record
			for k := int64(0); k < c.w.campaignMessageCount(p.idx); k++ {
				out = append(out, c.campaignMessage(p.idx, k))
			}
			return out
		})},
		"/api/campaign-messages/{id}": {one: oneOfKind("campaign-message", "campaign message")},
		"/api/campaign-recipient-estimations/{id}": {one: func(c *rctx) (*record, *apiError) {
			p, err := c.parent(kCampaign, "campaign")
			if err != nil {
				return nil, err
			}
			n := 0
			if c.w.total(kList) > 0 {
				n = c.memberCount(kList, p.idx%c.w.total(kList))
			}
			return &record{Type: "campaign-recipient-estimation", ID: p.ID, Coll: "campaign-recipient-estimations",
				Attrs: map[string]any{"estimated_recipient_count": n}}, nil
		}},
		"/api/campaign-send-jobs/{id}": {one: func(c *rctx) (*record, *apiError) {
			p, err := c.parent(kCampaign, "campaign")
			if err != nil {
				return nil, err
			}
			status := map[string]string{"Sent": "complete", "Variations Sent": "complete", "Sending": "processing",
				"Preparing to send": "queued", "Adding Recipients": "processing", "Cancelled": "cancelled",
				"Cancelled: No Recipients": "cancelled", "Queued without Recipients": "queued"}[c.w.campaignStatus(p.idx)]
			if status == "" {
				return nil, notFound(fmt.Sprintf("A campaign send job with id %s does not exist.", p.ID))
			}
			return &record{Type: "campaign-send-job", ID: p.ID, Coll: "campaign-send-jobs", Attrs: map[string]any{"status": status}}, nil
		}},
		"/api/templates":       {list: sliceOfKind(kTemplate)},
		"/api/templates/{id}":  {one: oneOfKind(kTemplate, "template")},
		"/api/tags":            {list: sliceOfKind(kTag)},
		"/api/tags/{id}":       {one: oneOfKind(kTag, "tag")},
		"/api/tag-groups":      {list: sliceOfKind(kTagGroup)},
		"/api/tag-groups/{id}": {one: oneOfKind(kTagGroup, "tag group")},
		"/api/coupons":         {list: sliceOfKind(kCoupon)},
		"/api/coupons/{id}":    {one: oneOfKind(kCoupon, "coupon")},
		"/api/coupon-codes": {list: func(c *rctx) (source, *apiError) {
			if len(c.q.predsOn("coupon.id", "profile.id")) == 0 {
				return nil, badParam("filter", "A coupon.id or profile.id filter is required for this endpoint.")
			}
			return c.sliceOf(c.all(kCouponCode)), nil
		}},
		"/api/coupon-codes/{id}": {one: oneOfKind(kCouponCode, "coupon code")},
		"/api/coupons/{id}/coupon-codes": {list: childrenOf(kCoupon, "coupon", func(c *rctx, p *record) []*record {
			var out []*record
			for _, r := range c.all(kCouponCode) {
				if r.ext["coupon.id"] == p.ID {
					out = append(out, r)
				}
			}
			return out
		})},
		"/api/catalog-items":           {list: sliceOfKind(kCatalogItem)},
		"/api/catalog-items/{id}":      {one: oneOfKind(kCatalogItem, "catalog item")},
		"/api/catalog-variants":        {list: sliceOfKind(kCatalogVariant)},
		"/api/catalog-variants/{id}":   {one: oneOfKind(kCatalogVariant, "catalog variant")},
		"/api/catalog-categories":      {list: sliceOfKind(kCatalogCategory)},
		"/api/catalog-categories/{id}": {one: oneOfKind(kCatalogCategory, "catalog category")},
		"/api/images":                  {list: sliceOfKind(kImage)},
		"/api/images/{id}":             {one: oneOfKind(kImage, "image")},
		"/api/forms":                   {list: sliceOfKind(kForm)},
		"/api/forms/{id}": {one: func(c *rctx) (*record, *apiError) {
			p, err := c.parent(kForm, "form")
			if err != nil {
				return nil, err
			}
			return c.encodedForm(p), nil
		}},
		"/api/forms/{id}/form-versions": {list: childrenOf(kForm, "form", func(c *rctx, p *record) []*record {
			var out []*record
			for v := int64(0); v < c.w.formVersionCount(p.idx); v++ {
				out = append(out, c.formVersion(p.idx, v))
			}
			return out
		})},
		"/api/form-versions/{id}":              {one: oneOfKind("form-version", "form version")},
		"/api/reviews":                         {list: sliceOfKind(kReview)},
		"/api/reviews/{id}":                    {one: oneOfKind(kReview, "review")},
		"/api/webhooks":                        {list: sliceOfKind(kWebhook)},
		"/api/webhooks/{id}":                   {one: oneOfKind(kWebhook, "webhook")},
		"/api/webhook-topics":                  {list: sliceOfKind("webhook-topic")},
		"/api/webhook-topics/{id}":             {one: oneOfKind("webhook-topic", "webhook topic")},
		"/api/push-tokens":                     {list: sliceOfKind(kPushToken)},
		"/api/push-tokens/{id}":                {one: oneOfKind(kPushToken, "push token")},
		"/api/template-universal-content":      {list: sliceOfKind(kUniversalContent)},
		"/api/template-universal-content/{id}": {one: oneOfKind(kUniversalContent, "universal content")},
		"/api/tracking-settings":               {list: sliceOfKind("tracking-setting")},
		"/api/tracking-settings/{id}":          {one: oneOfKind("tracking-setting", "tracking setting")},
		"/api/web-feeds":                       {list: sliceOfKind(kWebFeed)},
		"/api/web-feeds/{id}":                  {one: oneOfKind(kWebFeed, "web feed")},
		"/api/custom-metrics":                  {list: sliceOfKind(kCustomMetric)},
		"/api/custom-metrics/{id}":             {one: oneOfKind(kCustomMetric, "custom metric")},
		"/api/mapped-metrics":                  {list: sliceOfKind("mapped-metric")},
		"/api/mapped-metrics/{id}":             {one: oneOfKind("mapped-metric", "mapped metric")},
	}
	tagRel := func(kind, typ string, id func(w *world, i int64) string) handler {
		return handler{ids: true, list: func(c *rctx) (source, *apiError) {
			p, err := c.parent(kTag, "tag")
			if err != nil {
				return nil, err
			}
			return c.sliceOf(c.w.taggedRefs(kind, typ, p.idx, func(i int64) string { return id(c.w, i) })), nil
		}}
	}
	rt["/api/tags/{id}/relationships/campaigns"] = tagRel(kCampaign, "campaign", (*world).campaignID)
	rt["/api/tags/{id}/relationships/flows"] = tagRel(kFlow, "flow", (*world).flowID)
	rt["/api/tags/{id}/relationships/lists"] = tagRel(kList, "list", (*world).listID)
	rt["/api/tags/{id}/relationships/segments"] = tagRel(kSegment, "segment", (*world).segmentID)
	return rt
}
