package sandbox

import (
	"fmt"
	"strconv"
)

// The small kinds: every record is rendered from (kind, index) and the clock; listings
// materialise the whole kind per request, which is cheap at these counts.

func (w *world) salt(kind string) uint64 { return w.pop(kind).salt }

func (w *world) total(kind string) int64 { return w.pop(kind).total() }

// baseCount is how many records of a kind existed when the clock started. References between records (a
// campaign's audiences, a variant's item) are taken modulo this, not the moving total, so a record's attributes
// change only when its updated timestamp does, as an incremental sync expects.
func (w *world) baseCount(kind string) int64 { return w.pop(kind).base }

func (w *world) times(kind string, i int64) (int64, int64) {
	p := w.pop(kind)
	return p.created(i), p.updated(i)
}

func (w *world) shortIdx(kind, id string) (int64, bool) {
	i, ok := shortIndex(w.salt(kind), id)
	if !ok || i < 0 || i >= w.total(kind) || shortID(w.salt(kind), i) != id {
		return 0, false
	}
	return i, true
}

func (w *world) metricID(i int64) string             { return shortID(w.salt(kMetric), i) }
func (w *world) metricIndex(id string) (int64, bool) { return w.shortIdx(kMetric, id) }
func (w *world) listID(i int64) string               { return shortID(w.salt(kList), i) }
func (w *world) segmentID(i int64) string            { return shortID(w.salt(kSegment), i) }
func (w *world) flowID(i int64) string               { return shortID(w.salt(kFlow), i) }
func (w *world) templateID(i int64) string           { return shortID(w.salt(kTemplate), i) }
func (w *world) formID(i int64) string               { return shortID(w.salt(kForm), i) }
func (w *world) accountID() string                   { return shortID(mix(w.seed, 0xacc), 0) }
func (w *world) campaignID(i int64) string {
	return ulid(w.pop(kCampaign).createdMs(i), mix(w.salt(kCampaign), uint64(i)), uint64(i))
}
func (w *world) campaignMessageID(c, k int64) string {
	return ulid(w.pop(kCampaign).createdMs(c)+1, mix(w.salt(kCampaign), uint64(c), 9), uint64(c*4+k))
}
func (w *world) tagID(i int64) string      { return uuidID(w.salt(kTag), i) }
func (w *world) tagGroupID(i int64) string { return strconv.FormatInt(4100+i*7, 10) }
func (w *world) couponID(i int64) string {
	return couponNames[i%int64(len(couponNames))] + suffix(i, int64(len(couponNames)))
}
func (w *world) catalogItemID(i int64) string { return "$custom:::$default:::" + w.itemExternal(i) }
func (w *world) itemExternal(i int64) string  { return fmt.Sprintf("PROD-%05d", i+1) }
func (w *world) catalogVariantID(i int64) string {
	return "$custom:::$default:::" + fmt.Sprintf("VAR-%06d", i+1)
}
func (w *world) catalogCategoryID(i int64) string {
	return "$custom:::$default:::" + fmt.Sprintf("CAT-%03d", i+1)
}
func (w *world) imageID(i int64) string  { return strconv.FormatInt(i+7, 10) }
func (w *world) reviewID(i int64) string { return hexID(w.salt(kReview), i) }
func (w *world) webhookID(i int64) string {
	return ulid(w.pop(kWebhook).createdMs(i), mix(w.salt(kWebhook), uint64(i)), uint64(i))
}
func (w *world) pushTokenID(i int64) string {
	return ulid(w.pop(kPushToken).createdMs(i), mix(w.salt(kPushToken), uint64(i)), uint64(i))
}
func (w *world) flowActionID(f, a int64) string     { return strconv.FormatInt(90000000+f*16+a, 10) }
func (w *world) flowMessageID(f, a, m int64) string { return shortID(mix(w.salt(kFlow), 0xf1), f*16+a) }
func (w *world) formVersionID(f, v int64) string    { return strconv.FormatInt(5000000+f*8+v, 10) }
func (w *world) universalContentID(i int64) string {
	return ulid(w.pop(kUniversalContent).createdMs(i), mix(w.salt(kUniversalContent), uint64(i)), uint64(i))
}
func (w *world) webFeedID(i int64) string      { return shortID(w.salt(kWebFeed), i) }
func (w *world) customMetricID(i int64) string { return shortID(w.salt(kCustomMetric), i) }
func (w *world) couponCodeID(i int64) string {
	return w.couponID(w.couponOfCode(i)) + "-" + encID(w.salt(kCouponCode), i, 12)
}
func (w *world) couponOfCode(i int64) int64  { return i % max64(1, w.baseCount(kCoupon)) }
func (w *world) itemOfVariant(i int64) int64 { return i % max64(1, w.baseCount(kCatalogItem)) }

var couponNames = []string{"10OFF", "WELCOME15", "FREESHIP", "VIP20", "ÉTÉ25", "BFCM30"}

func suffix(i, n int64) string {
	if i < n {
		return ""
	}
	return strconv.FormatInt(i/n+1, 10)
}

var metricNames = []string{"Opened Email", "Received Email", "Clicked Email", "Viewed Product", "Active on Site",
	"Placed Order", "Added to Cart", "Started Checkout", "Ordered Product", "Fulfilled Order", "Bounced Email",
	"Unsubscribed", "Refunded Order", "Received SMS", "Clicked SMS", "Subscribed to List", "Marked Email as Spam",
	"Résumé téléchargé ✨", "Loyalty Points Earned"}

func (w *world) metricName(i int64) string {
	if i < int64(len(metricNames)) {
		return metricNames[i]
	}
	return fmt.Sprintf("Custom Event %d", i)
}

func (c *rctx) metric(i int64) *record {
	w := c.w
	cr, up := w.times(kMetric, i)
	name := w.metricName(i)
	var integ any
	switch {
	case isEmailMetric(name) || name == "Received SMS" || name == "Clicked SMS" || name == "Subscribed to List":
		integ = map[string]any{"object": "integration", "id": "0rG4eQ", "key": "klaviyo", "name": "Klaviyo", "category": "Internal"}
	case name == "Placed Order" || name == "Ordered Product" || name == "Fulfilled Order" || name == "Started Checkout" || name == "Refunded Order" || name == "Added to Cart":
		integ = map[string]any{"object": "integration", "id": "0eMvjm", "key": "shopify", "name": "Shopify", "category": "eCommerce"}
	case i%2 == 0:
		integ = map[string]any{"object": "integration", "id": "7FtS4J", "key": "api", "name": "API", "category": "API"}
	}
	rec := &record{Type: "metric", ID: w.metricID(i), Coll: "metrics", idx: i, Attrs: map[string]any{
		"name": name, "created": isoTime(cr), "updated": isoTime(up), "integration": integ,
	}}
	rel := relation{Name: "flow-triggers", Many: true}
	if c.q != nil && c.q.includes("flow-triggers") {
		rel.Data = true
		for f := int64(0); f < w.total(kFlow); f++ {
			if kind, target := w.flowTrigger(f); kind == "Metric" && target == i {
				rel.Refs = append(rel.Refs, ref{Type: "flow", ID: w.flowID(f)})
			}
		}
	}
	rec.Rels = []relation{rel}
	return rec
}

func (c *rctx) account() *record {
	w := c.w
	return &record{Type: "account", ID: w.accountID(), Coll: "accounts", Attrs: map[string]any{
		"test_account": false,
		"contact_information": map[string]any{
			"default_sender_name": "Boutique Élodie", "default_sender_email": "hello@boutique-elodie.example.com",
			"website_url": "https://boutique-elodie.example.com", "organization_name": "Boutique Élodie & Fils",
			"street_address": map[string]any{"address1": "12 Rue de la Paix", "address2": "Bâtiment B, 3e étage", "city": "Paris",
				"region": "Île-de-France", "country": "France", "zip": "75002"},
		},
		"industry": "Apparel & Accessories", "timezone": accountTimezone, "preferred_currency": "EUR",
		"public_api_key": "Sbx" + shortID(mix(w.seed, 0x9b), 1), "locale": "fr-FR",
	}}
}

// tagged says whether tag t is on object i of a kind; tags are a sparse many-to-many.
func (w *world) tagged(kind string, t, i int64) bool {
	return mix(w.salt(kTag), hashString(kind), uint64(t), uint64(i))%4 == 0
}

func (w *world) tagRefs(kind string, i int64) []ref {
	out := []ref{}
	for t := int64(0); t < w.total(kTag); t++ {
		if w.tagged(kind, t, i) {
			out = append(out, ref{Type: "tag", ID: w.tagID(t)})
		}
	}
	return out
}

// flowTrigger returns a flow's trigger type and the index of the list/segment/metric behind it.
func (w *world) flowTrigger(f int64) (string, int64) {
	switch f % 6 {
	case 0, 3:
		return "Metric", (f / 6) % max64(1, int64(w.sc.Metrics))
	case 1:
		return "Added to List", (f / 6) % max64(1, w.baseCount(kList))
	case 2:
		return "Date Based", -1
	case 4:
		return "Price Drop", -1
	}
	if f%12 == 5 {
		return "Low Inventory", -1
	}
	return "Unconfigured", -1
}

func (c *rctx) list(i int64) *record {
	w := c.w
	cr, up := w.times(kList, i)
	r := newRnd(w.salt(kList), uint64(i))
	var opt any = "single_opt_in"
	switch i % 4 {
	case 1:
		opt = "double_opt_in"
	case 3:
		opt = nil
	}
	attrs := map[string]any{"name": fmt.Sprintf("%s — %s %d", pick(r, words), pick(r, []string{"Newsletter", "VIP", "Liste d'attente", "顧客", "Back in stock"}), i),
		"created": isoTime(cr), "updated": isoTime(up), "opt_in_process": opt}
	if c.q != nil && c.q.wantsAdditional("list", "profile_count") {
		attrs["profile_count"] = c.memberCount(kList, i)
	}
	var flows []ref
	for f := int64(0); f < w.total(kFlow); f++ {
		if kind, target := w.flowTrigger(f); kind == "Added to List" && target == i {
			flows = append(flows, ref{Type: "flow", ID: w.flowID(f)})
		}
	}
	return &record{Type: "list", ID: w.listID(i), Coll: "lists", idx: i, Attrs: attrs, Rels: []relation{
		{Name: "profiles", Many: true},
		{Name: "tags", Many: true, Data: true, Refs: w.tagRefs(kList, i)},
		{Name: "flow-triggers", Many: true, Data: true, Refs: orEmpty(flows)},
	}}
}

func orEmpty(r []ref) []ref {
	if r == nil {
		return []ref{}
	}
	return r
}

func (c *rctx) segment(i int64) *record {
	w := c.w
	cr, up := w.times(kSegment, i)
	r := newRnd(w.salt(kSegment), uint64(i))
	conds := []any{map[string]any{"conditions": []any{map[string]any{
		"type": "profile-property", "property": "properties['Loyalty Tier']",
		"filter": map[string]any{"type": "string", "operator": "equals", "value": pick(r, []string{"Gold", "Platinum ✨"})},
	}}}}
	if w.total(kList) > 0 {
		conds = append(conds, map[string]any{"conditions": []any{map[string]any{
			"type": "profile-group-membership", "is_member": true, "group_ids": []any{w.listID(i % w.baseCount(kList))},
			"timeframe_filter": map[string]any{"type": "date", "operator": "in-the-last", "unit": "day", "quantity": 30 + r.intn(60)},
		}}})
	}
	attrs := map[string]any{"name": fmt.Sprintf("%s shoppers %d", pick(r, []string{"Engaged", "Lapsed", "Grands clients", "高額", "Recent"}), i),
		"definition": map[string]any{"condition_groups": conds}, "created": isoTime(cr), "updated": isoTime(up),
		"is_active": i%5 != 4, "is_processing": i%7 == 3, "is_starred": i%3 == 0}
	if c.q != nil && c.q.wantsAdditional("segment", "profile_count") {
		attrs["profile_count"] = c.memberCount(kSegment, i)
	}
	return &record{Type: "segment", ID: w.segmentID(i), Coll: "segments", idx: i, Attrs: attrs, Rels: []relation{
		{Name: "profiles", Many: true},
		{Name: "tags", Many: true, Data: true, Refs: w.tagRefs(kSegment, i)},
		{Name: "flow-triggers", Many: true, Data: true, Refs: []ref{}},
	}}
}

func (w *world) flowActionCount(f int64) int64 { return 2 + f%3 }

func (c *rctx) flow(i int64) *record {
	w := c.w
	cr, up := w.times(kFlow, i)
	r := newRnd(w.salt(kFlow), uint64(i))
	status := []string{"live", "draft", "manual"}[i%3]
	trig, _ := w.flowTrigger(i)
	var trigger any = trig
	if i%13 == 12 {
		trigger = nil
	}
	attrs := map[string]any{"name": fmt.Sprintf("%s flow %d", pick(r, []string{"Welcome Series", "Abandoned Cart", "Browse Abandonment", "Win-back", "Merci pour votre achat", "誕生日"}), i),
		"status": status, "archived": i%4 == 3, "created": isoTime(cr), "updated": isoTime(up), "trigger_type": trigger}
	if c.q != nil && c.q.wantsAdditional("flow", "definition") {
		attrs["definition"] = c.flowDefinition(i)
	}
	var acts []ref
	for a := int64(0); a < w.flowActionCount(i); a++ {
		acts = append(acts, ref{Type: "flow-action", ID: w.flowActionID(i, a)})
	}
	return &record{Type: "flow", ID: w.flowID(i), Coll: "flows", idx: i, Attrs: attrs, Rels: []relation{
		{Name: "flow-actions", Many: true, Data: true, Refs: acts},
		{Name: "tags", Many: true, Data: true, Refs: w.tagRefs(kFlow, i)},
	}}
}

// flowDefinition is the encoded flow: its trigger and the definitions of its actions.
func (c *rctx) flowDefinition(f int64) map[string]any {
	w := c.w
	triggers := []any{}
	switch kind, target := w.flowTrigger(f); kind {
	case "Metric":
		triggers = append(triggers, map[string]any{"type": "metric", "id": w.metricID(target)})
	case "Added to List":
		triggers = append(triggers, map[string]any{"type": "list", "id": w.listID(target)})
	case "Date Based":
		triggers = append(triggers, map[string]any{"type": "date", "date_field_type": "profile-property",
			"date_profile_property": "Birthday", "timedelta_value_before_date": 0})
	}
	actions := []any{}
	for a := int64(0); a < w.flowActionCount(f); a++ {
		actions = append(actions, c.flowAction(f, a).Attrs["definition"])
	}
	return map[string]any{"triggers": triggers, "actions": actions, "entry_action_id": w.flowActionID(f, 0),
		"profile_filter": nil}
}

// flowActionType is send-email for the first action of a flow, then alternates delays and sends.
func flowActionType(f, a int64) string {
	if a == 0 {
		return []string{"send-email", "send-sms", "send-mobile-push"}[f%3]
	}
	if a%2 == 1 {
		return "time-delay"
	}
	return []string{"send-email", "send-webhook", "send-sms"}[(f+a)%3]
}

func (c *rctx) flowAction(f, a int64) *record {
	w := c.w
	fc, fu := w.times(kFlow, f)
	cr := fc + a*60
	up := fu
	if up < cr {
		up = cr
	}
	id := w.flowActionID(f, a)
	var next any
	if a+1 < w.flowActionCount(f) {
		next = w.flowActionID(f, a+1)
	}
	typ := flowActionType(f, a)
	status := []string{"live", "draft", "manual", "disabled"}[(f+a)%4]
	def := map[string]any{"id": id, "type": typ, "links": map[string]any{"next": next}}
	var msgs []ref
	switch typ {
	case "time-delay":
		def["data"] = map[string]any{"unit": []string{"days", "hours", "minutes"}[a%3], "value": 1 + a,
			"secondary_value": nil, "timezone": "profile", "delay_until_time": nil, "delay_until_weekdays": []any{"monday", "wednesday"}}
	case "send-email":
		def["data"] = map[string]any{"status": status, "message": map[string]any{
			"id": w.flowMessageID(f, a, 0), "name": fmt.Sprintf("Email #%d", a+1),
			"from_email": "hello@boutique-elodie.example.com", "from_label": "Boutique Élodie", "reply_to_email": nil,
			"cc_email": nil, "bcc_email": nil, "subject_line": "Bienvenue ✨", "preview_text": "Un petit cadeau",
			"template_id": w.templateID(f % max64(1, w.baseCount(kTemplate))), "smart_sending_enabled": true,
			"transactional": false, "add_tracking_params": true,
			"custom_tracking_params": []any{map[string]any{"param": "utm_source", "value": "klaviyo"}},
		}}
		msgs = []ref{{Type: "flow-message", ID: w.flowMessageID(f, a, 0)}}
	case "send-sms":
		def["data"] = map[string]any{"status": status, "message": map[string]any{
			"id": w.flowMessageID(f, a, 0), "name": "SMS", "body": "Hi {{ first_name|default:'there' }} 👋 reply STOP to opt out",
			"shorten_links": true, "include_contact_card": false, "add_org_prefix": true, "add_info_link": false,
			"add_opt_out_language": true, "smart_sending_enabled": true, "sms_quiet_hours_enabled": true,
			"transactional": false, "add_tracking_params": false,
		}}
		msgs = []ref{{Type: "flow-message", ID: w.flowMessageID(f, a, 0)}}
	case "send-mobile-push":
		def["data"] = map[string]any{"status": status, "message": map[string]any{
			"id": w.flowMessageID(f, a, 0), "name": "Push", "title": "Back in stock", "body": "Your favourite is back 🎉",
			"sound": true, "badge": false, "on_open": "home", "smart_sending_enabled": true,
		}}
		msgs = []ref{{Type: "flow-message", ID: w.flowMessageID(f, a, 0)}}
	case "send-webhook":
		def["data"] = map[string]any{"status": status, "message": map[string]any{
			"id": w.flowMessageID(f, a, 0), "name": "Notify ERP", "url": "https://erp.example.com/hooks/klaviyo",
			"headers": map[string]any{"X-Token": "redacted"}, "body": `{"profile": "{{ person.email }}"}`,
		}}
		msgs = []ref{{Type: "flow-message", ID: w.flowMessageID(f, a, 0)}}
	}
	return &record{Type: "flow-action", ID: id, Coll: "flow-actions", idx: f*16 + a,
		Attrs: map[string]any{"created": isoTime(cr), "updated": isoTime(up), "definition": def},
		ext:   map[string]any{"action_type": typ, "status": status},
		Rels: []relation{
			{Name: "flow", Refs: []ref{{Type: "flow", ID: w.flowID(f)}}},
			{Name: "flow-messages", Many: true, Data: true, Refs: orEmpty(msgs)},
		}}
}

// flowMessage renders the message of action a of flow f (only send-* actions have one).
func (c *rctx) flowMessage(f, a int64) *record {
	w := c.w
	act := c.flowAction(f, a)
	def := act.Attrs["definition"].(map[string]any)
	data, _ := def["data"].(map[string]any)
	msg, _ := data["message"].(map[string]any)
	channel := map[string]string{"send-email": "email", "send-sms": "sms", "send-mobile-push": "push", "send-webhook": "webhook"}[def["type"].(string)]
	rels := []relation{{Name: "flow-action", Refs: []ref{{Type: "flow-action", ID: act.ID}}}}
	if channel == "email" {
		rels = append(rels, relation{Name: "template", Refs: []ref{{Type: "template", ID: msg["template_id"].(string)}}})
	}
	return &record{Type: "flow-message", ID: w.flowMessageID(f, a, 0), Coll: "flow-messages", idx: f*16 + a,
		Attrs: map[string]any{"channel": channel, "created": act.Attrs["created"], "updated": act.Attrs["updated"], "definition": msg},
		ext:   map[string]any{"name": msg["name"]}, // filterable and sortable, though not an attribute in 2026-07-15
		Rels:  rels}
}

var channels = []string{"email", "sms", "mobile_push"}

var campaignStatuses = []string{"Sent", "Draft", "Scheduled", "Sending", "Cancelled", "Sent", "Variations Sent",
	"Cancelled: No Recipients", "Queued without Recipients", "Adding Recipients", "Preparing to send", "Sent"}

func (w *world) campaignChannel(i int64) string { return channels[i%3] }

func (w *world) campaignStatus(i int64) string {
	return campaignStatuses[(i/3)%int64(len(campaignStatuses))]
}

func (w *world) campaignMessageCount(i int64) int64 {
	if w.campaignStatus(i) == "Variations Sent" {
		return 2
	}
	return 1
}

func (c *rctx) campaign(i int64) *record {
	w := c.w
	cr, up := w.times(kCampaign, i)
	r := newRnd(w.salt(kCampaign), uint64(i))
	ch := w.campaignChannel(i)
	status := w.campaignStatus(i)
	included := []any{}
	if w.total(kList) > 0 {
		included = append(included, w.listID(i%w.baseCount(kList)))
	}
	if w.total(kSegment) > 0 && i%2 == 0 {
		included = append(included, w.segmentID(i%w.baseCount(kSegment)))
	}
	var excluded any
	if i%3 == 1 && w.total(kSegment) > 0 {
		excluded = []any{w.segmentID((i + 1) % w.baseCount(kSegment))}
	} else if i%3 == 2 {
		excluded = []any{}
	}
	var scheduled, sendTime any
	var strategy map[string]any
	st := cr + 3*3600
	switch i % 5 {
	case 0:
		strategy = map[string]any{"method": "static", "datetime": isoTime(st), "options": map[string]any{"is_local": false}}
	case 1:
		strategy = map[string]any{"method": "static", "datetime": isoTime(st), "options": map[string]any{"is_local": true, "send_past_recipients_immediately": true}}
	case 2:
		strategy = map[string]any{"method": "smart_send_time", "date": isoTime(st)[:10]}
	case 3:
		strategy = map[string]any{"method": "throttled", "datetime": isoTime(st), "throttle_percentage": 20}
	default:
		strategy = map[string]any{"method": "immediate"}
	}
	if status != "Draft" {
		scheduled = isoTime(cr + 3600)
		sendTime = isoTime(st)
	}
	var tracking any
	switch ch {
	case "email":
		tracking = map[string]any{"add_tracking_params": true, "is_tracking_clicks": true, "is_tracking_opens": i%2 == 0,
			"custom_tracking_params": []any{
				map[string]any{"type": "dynamic", "value": "campaign_name", "name": "utm_campaign"},
				map[string]any{"type": "static", "value": "klaviyo", "name": "utm_source"},
			}}
	case "sms":
		tracking = map[string]any{"add_tracking_params": i%2 == 1, "custom_tracking_params": nil}
	}
	attrs := map[string]any{
		"name":             fmt.Sprintf("%s %s — %d", pick(r, []string{"Soldes d'été", "Black Friday", "新商品", "Weekly digest", "Back in stock"}), ch, i),
		"status":           status,
		"archived":         i%5 == 4,
		"audiences":        map[string]any{"included": included, "excluded": excluded},
		"send_options":     map[string]any{"use_smart_sending": i%2 == 0},
		"tracking_options": tracking, "send_strategy": strategy,
		"created_at": isoTime(cr), "scheduled_at": scheduled, "updated_at": isoTime(up), "send_time": sendTime,
	}
	var msgs []ref
	for k := int64(0); k < w.campaignMessageCount(i); k++ {
		msgs = append(msgs, ref{Type: "campaign-message", ID: w.campaignMessageID(i, k)})
	}
	return &record{Type: "campaign", ID: w.campaignID(i), Coll: "campaigns", idx: i, Attrs: attrs,
		ext: map[string]any{"messages.channel": ch},
		Rels: []relation{
			{Name: "campaign-messages", Many: true, Data: true, Refs: msgs},
			{Name: "tags", Many: true, Data: true, Refs: w.tagRefs(kCampaign, i)},
		}}
}

func (c *rctx) campaignMessage(i, k int64) *record {
	w := c.w
	cr, up := w.times(kCampaign, i)
	ch := w.campaignChannel(i)
	var def map[string]any
	switch ch {
	case "email":
		def = map[string]any{"channel": "email", "label": fmt.Sprintf("Variation %c", 'A'+k), "content": map[string]any{
			"subject": "Nouveautés de l'été ☀️", "preview_text": "Jusqu'à -30 %", "from_email": "hello@boutique-elodie.example.com",
			"from_label": "Boutique Élodie", "reply_to_email": "support@boutique-elodie.example.com", "cc_email": nil, "bcc_email": nil}}
	case "sms":
		def = map[string]any{"channel": "sms", "content": map[string]any{"body": "Flash sale 🔥 -20% today: https://ex.am/p", "media_url": nil},
			"render_options": map[string]any{"shorten_links": true, "add_org_prefix": true, "add_info_link": false, "add_opt_out_language": true}}
	default:
		if i%2 == 0 {
			def = map[string]any{"channel": "mobile_push", "notification_type": "standard",
				"content": map[string]any{"title": "Nouveau !", "body": "Découvrez la collection", "dynamic_image": nil,
					"action_buttons": []any{map[string]any{"label": "Shop", "action_type": "open_app", "position": 0, "url": nil}}},
				"kv_pairs": map[string]any{"deep_link": "app://new"},
				"options":  map[string]any{"on_open": map[string]any{"type": "open_app"}, "badge": map[string]any{"display": true, "badge_options": map[string]any{"badge_config": "increment_one"}}, "play_sound": true}}
		} else {
			def = map[string]any{"channel": "mobile_push", "notification_type": "silent", "kv_pairs": map[string]any{"refresh": "1"}}
		}
	}
	var sendTimes any
	if w.campaignStatus(i) != "Draft" {
		sendTimes = []any{map[string]any{"datetime": isoTime(cr + 3*3600), "is_local": i%5 == 1}}
	}
	rels := []relation{{Name: "campaign", Refs: []ref{{Type: "campaign", ID: w.campaignID(i)}}}}
	if ch == "email" && w.total(kTemplate) > 0 {
		rels = append(rels, relation{Name: "template", Refs: []ref{{Type: "template", ID: w.templateID(i % w.baseCount(kTemplate))}}})
	}
	if ch != "sms" && w.total(kImage) > 0 {
		rels = append(rels, relation{Name: "image", Refs: []ref{{Type: "image", ID: w.imageID(i % w.baseCount(kImage))}}})
	}
	return &record{Type: "campaign-message", ID: w.campaignMessageID(i, k), Coll: "campaign-messages", idx: i*4 + k,
		Attrs: map[string]any{"definition": def, "send_times": sendTimes, "created_at": isoTime(cr), "updated_at": isoTime(up)},
		Rels:  rels}
}

func (c *rctx) template(i int64) *record {
	w := c.w
	cr, up := w.times(kTemplate, i)
	editor := []string{"CODE", "SYSTEM_DRAGGABLE", "USER_DRAGGABLE", "SIMPLE"}[i%4]
	var text, amp any
	if i%2 == 0 {
		text = "Bonjour {{ first_name }} — voici nos nouveautés."
	}
	if i%5 == 0 {
		amp = "<!doctype html><html ⚡4email><body>AMP</body></html>"
	}
	attrs := map[string]any{"name": fmt.Sprintf("Modèle %d — %s", i, pick(newRnd(w.salt(kTemplate), uint64(i)), words)), "editor_type": editor,
		"html": fmt.Sprintf("<html><body><h1>Bonjour {{ first_name|default:'ami' }}</h1><p>Template %d ✨</p></body></html>", i),
		"text": text, "amp": amp, "created": isoTime(cr), "updated": isoTime(up)}
	if c.q != nil && c.q.wantsAdditional("template", "definition") {
		if editor == "SYSTEM_DRAGGABLE" {
			attrs["definition"] = map[string]any{"id": nil, "template_id": w.templateID(i),
				"body":   map[string]any{"properties": map[string]any{"css_class": nil}, "styles": map[string]any{"background_color": "#ffffff", "width": 600}, "sections": []any{}},
				"styles": []any{map[string]any{"style_type": "text-styles", "styles": map[string]any{"color": "#222222", "font_family": "Helvetica", "font_size": 14}}}}
		} else {
			attrs["definition"] = nil
		}
	}
	return &record{Type: "template", ID: w.templateID(i), Coll: "templates", idx: i, Attrs: attrs}
}
