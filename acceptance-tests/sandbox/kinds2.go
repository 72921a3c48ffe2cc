package sandbox

import (
	"fmt"
	"strconv"
)

func (c *rctx) tag(i int64) *record {
	w := c.w
	r := newRnd(w.salt(kTag), uint64(i))
	groups := max64(1, w.baseCount(kTagGroup))
	rec := &record{Type: "tag", ID: w.tagID(i), Coll: "tags", idx: i,
		Attrs: map[string]any{"name": fmt.Sprintf("%s-%d", pick(r, []string{"summer", "VIP", "été", "セール", "q4 promo", "needs review"}), i)},
		ext:   map[string]any{"tag_group_id": w.tagGroupID(i % groups)}}
	rec.Rels = []relation{
		{Name: "tag-group", Refs: []ref{{Type: "tag-group", ID: w.tagGroupID(i % groups)}}},
		{Name: "lists", Many: true}, {Name: "segments", Many: true},
		{Name: "campaigns", Many: true}, {Name: "flows", Many: true},
	}
	return rec
}

// taggedRefs lists the objects of a kind carrying tag t, for /api/tags/{id}/relationships/<kind>.
func (w *world) taggedRefs(kind, typ string, t int64, id func(int64) string) []*record {
	var out []*record
	for i := int64(0); i < w.total(kind); i++ {
		if w.tagged(kind, t, i) {
			out = append(out, &record{Type: typ, ID: id(i), idx: i})
		}
	}
	return out
}

func (c *rctx) tagGroup(i int64) *record {
	w := c.w
	var tags []ref
	groups := max64(1, w.baseCount(kTagGroup))
	for t := int64(0); t < w.total(kTag); t++ {
		if t%groups == i {
			tags = append(tags, ref{Type: "tag", ID: w.tagID(t)})
		}
	}
	name := []string{"Default", "Saison", "Audience", "キャンペーン", "Ops"}[i%5]
	if i >= 5 {
		name += " " + strconv.FormatInt(i, 10)
	}
	return &record{Type: "tag-group", ID: w.tagGroupID(i), Coll: "tag-groups", idx: i,
		Attrs: map[string]any{"name": name, "exclusive": i%2 == 1, "default": i == 0},
		Rels:  []relation{{Name: "tags", Many: true, Data: true, Refs: orEmpty(tags)}}}
}

func (c *rctx) coupon(i int64) *record {
	w := c.w
	var desc, mon any
	if i%3 != 2 {
		desc = fmt.Sprintf("%s — code promo n°%d", couponNames[i%int64(len(couponNames))], i)
	}
	if i%2 == 0 {
		mon = map[string]any{"low_balance_threshold": 10 + i, "emails": []any{"ops@boutique-elodie.example.com"}}
	}
	id := w.couponID(i)
	return &record{Type: "coupon", ID: id, Coll: "coupons", idx: i,
		Attrs: map[string]any{"external_id": id, "description": desc, "monitor_configuration": mon}}
}

var couponStatuses = []string{"UNASSIGNED", "ASSIGNED_TO_PROFILE", "USED", "PROCESSING", "VERSION_NOT_ACTIVE", "DELETING"}

func (c *rctx) couponCode(i int64) *record {
	w := c.w
	cr, _ := w.times(kCouponCode, i)
	status := couponStatuses[i%int64(len(couponStatuses))]
	var exp, statusV any = nil, status
	if i%4 != 3 {
		exp = isoTime(cr + 90*day)
	}
	if i%17 == 16 {
		statusV = nil
	}
	coupon := w.couponOfCode(i)
	rels := []relation{{Name: "coupon", Refs: []ref{{Type: "coupon", ID: w.couponID(coupon)}}}}
	var profID any
	if status == "ASSIGNED_TO_PROFILE" || status == "USED" {
		pid := w.profileID(i * 7 % int64(w.sc.Profiles))
		profID = pid
		rels = append(rels, relation{Name: "profile", Refs: []ref{{Type: "profile", ID: pid}}})
	} else {
		rels = append(rels, relation{Name: "profile"})
	}
	code := w.couponCodeID(i)
	return &record{Type: "coupon-code", ID: code, Coll: "coupon-codes", idx: i,
		Attrs: map[string]any{"unique_code": code[len(w.couponID(coupon))+1:], "expires_at": exp, "status": statusV},
		ext:   map[string]any{"coupon.id": w.couponID(coupon), "profile.id": profID},
		Rels:  rels}
}

func (c *rctx) catalogItem(i int64) *record {
	w := c.w
	cr, up := w.times(kCatalogItem, i)
	r := newRnd(w.salt(kCatalogItem), uint64(i))
	title := fmt.Sprintf("%s #%d", pick(r, products), i)
	var desc, thumb, meta any
	if i%4 != 3 {
		desc = "Fabriqué au Portugal — 100 % coton bio.\nMachine washable."
	}
	if i%2 == 0 {
		thumb = fmt.Sprintf("https://cdn.example.com/p/%d_thumb.jpg", i)
	}
	if i%3 == 0 {
		meta = map[string]any{"material": "cotton", "tags": []any{"bio", "été"}, "dims": map[string]any{"w": 10.5, "h": nil}}
	}
	var variants []ref
	nItems := max64(1, w.baseCount(kCatalogItem))
	for v := i; v < w.total(kCatalogVariant); v += nItems {
		variants = append(variants, ref{Type: "catalog-variant", ID: w.catalogVariantID(v)})
	}
	var cats []any
	for k := int64(0); k < w.total(kCatalogCategory); k++ {
		if w.inCategory(i, k) {
			cats = append(cats, w.catalogCategoryID(k))
		}
	}
	var price any = float64(500+r.intn(50000)) / 100
	if i%11 == 10 {
		price = nil
	}
	return &record{Type: "catalog-item", ID: w.catalogItemID(i), Coll: "catalog-items", idx: i,
		Attrs: map[string]any{"external_id": w.itemExternal(i), "title": title, "description": desc, "price": price,
			"url": fmt.Sprintf("https://shop.example.com/products/%d", i), "image_full_url": fmt.Sprintf("https://cdn.example.com/p/%d.jpg", i),
			"image_thumbnail_url": thumb, "images": []any{fmt.Sprintf("https://cdn.example.com/p/%d_a.jpg", i)},
			"custom_metadata": meta, "published": i%7 != 6, "created": isoTime(cr), "updated": isoTime(up)},
		ext:  map[string]any{"ids": w.catalogItemID(i), "category.id": cats},
		Rels: []relation{{Name: "variants", Many: true, Data: true, Refs: orEmpty(variants)}}}
}

func (w *world) inCategory(item, cat int64) bool {
	return mix(w.salt(kCatalogCategory), uint64(item), uint64(cat))%3 == 0
}

func (c *rctx) catalogVariant(i int64) *record {
	w := c.w
	cr, up := w.times(kCatalogVariant, i)
	item := w.itemOfVariant(i)
	r := newRnd(w.salt(kCatalogVariant), uint64(i))
	size := []string{"XS", "S", "M", "L", "XL", "Taille unique"}[i%6]
	var qty any = float64(r.intn(500))
	if i%9 == 8 {
		qty = nil
	}
	var thumb any
	if i%2 == 1 {
		thumb = fmt.Sprintf("https://cdn.example.com/v/%d_thumb.jpg", i)
	}
	var policy any = int(i % 3)
	if i%10 == 9 {
		policy = nil
	}
	return &record{Type: "catalog-variant", ID: w.catalogVariantID(i), Coll: "catalog-variants", idx: i,
		Attrs: map[string]any{"external_id": fmt.Sprintf("VAR-%06d", i+1), "title": fmt.Sprintf("%s / %s", pick(r, products), size),
			"description": "Variante " + size, "sku": fmt.Sprintf("SKU-%06d-%s", i+1, size), "inventory_policy": policy,
			"inventory_quantity": qty, "price": float64(500+r.intn(50000)) / 100,
			"url": fmt.Sprintf("https://shop.example.com/products/%d?variant=%d", item, i), "image_full_url": fmt.Sprintf("https://cdn.example.com/v/%d.jpg", i),
			"image_thumbnail_url": thumb, "images": []any{}, "custom_metadata": map[string]any{"colour": "bleu"},
			"published": i%8 != 7, "created": isoTime(cr), "updated": isoTime(up)},
		ext:  map[string]any{"ids": w.catalogVariantID(i), "item.id": w.catalogItemID(item)},
		Rels: []relation{{Name: "item", Refs: []ref{{Type: "catalog-item", ID: w.catalogItemID(item)}}}}}
}

func (c *rctx) catalogCategory(i int64) *record {
	w := c.w
	_, up := w.times(kCatalogCategory, i)
	var items []ref
	var itemIDs []any
	for k := int64(0); k < w.total(kCatalogItem); k++ {
		if w.inCategory(k, i) {
			items = append(items, ref{Type: "catalog-item", ID: w.catalogItemID(k)})
			itemIDs = append(itemIDs, w.catalogItemID(k))
		}
	}
	name := []string{"Vêtements", "Home & Living", "アクセサリー", "Gift Cards", "Soldes", "Shoes"}[i%6]
	return &record{Type: "catalog-category", ID: w.catalogCategoryID(i), Coll: "catalog-categories", idx: i,
		Attrs: map[string]any{"external_id": fmt.Sprintf("CAT-%03d", i+1), "name": fmt.Sprintf("%s %d", name, i), "updated": isoTime(up)},
		ext:   map[string]any{"ids": w.catalogCategoryID(i), "item.id": itemIDs, "created": secOf(w.pop(kCatalogCategory).created(i))},
		Rels:  []relation{{Name: "items", Many: true, Data: true, Refs: orEmpty(items)}}}
}

func (c *rctx) image(i int64) *record {
	w := c.w
	_, up := w.times(kImage, i)
	format := []string{"jpeg", "png", "gif", "webp"}[i%4]
	return &record{Type: "image", ID: w.imageID(i), Coll: "images", idx: i,
		Attrs: map[string]any{"name": fmt.Sprintf("bannière-%d.%s", i, format), "image_url": fmt.Sprintf("https://d3k81ch9hvuctc.cloudfront.net/company/Sbx/images/%d.%s", i, format),
			"format": format, "size": 1024 + int(mix(w.salt(kImage), uint64(i))%900000), "hidden": i%5 == 4, "updated_at": isoTime(up)}}
}

func (w *world) formVersionCount(f int64) int64 { return 1 + (f+1)%3 }

func (c *rctx) form(i int64) *record {
	w := c.w
	cr, up := w.times(kForm, i)
	var versions []ref
	for v := int64(0); v < w.formVersionCount(i); v++ {
		versions = append(versions, ref{Type: "form-version", ID: w.formVersionID(i, v)})
	}
	attrs := map[string]any{"name": fmt.Sprintf("%s %d", []string{"Pop-up bienvenue", "Footer signup", "Spin to win 🎡", "Back in stock", "ニュースレター"}[i%5], i),
		"status": []string{"live", "draft"}[i%2], "ab_test": w.formVersionCount(i) > 1, "created_at": isoTime(cr), "updated_at": isoTime(up)}
	return &record{Type: "form", ID: w.formID(i), Coll: "forms", idx: i, Attrs: attrs,
		Rels: []relation{{Name: "form-versions", Many: true, Data: true, Refs: versions}}}
}

// encodedForm is the single-form response: the list attributes plus the encoded definition.
func (c *rctx) encodedForm(p *record) *record {
	w := c.w
	var versions []any
	for v := int64(0); v < w.formVersionCount(p.idx); v++ {
		fv := c.formVersion(p.idx, v)
		typ := fv.Attrs["form_type"].(string)
		if typ == "full_page" {
			typ = "full_screen"
		}
		versions = append(versions, map[string]any{"id": 5000000 + p.idx*8 + v, "name": fv.Attrs["variation_name"],
			"type": typ, "status": fv.Attrs["status"], "ab_test": fv.Attrs["ab_test"] != nil, "channel": "WEB",
			"message_priority": 1 + v, "specialties": []any{}, "location": nil,
			"steps": []any{map[string]any{"id": fmt.Sprintf("step-%d", v), "name": "Étape 1", "columns": []any{}}}})
	}
	attrs := map[string]any{}
	for k, v := range p.Attrs {
		attrs[k] = v
	}
	attrs["definition"] = map[string]any{"versions": versions}
	return &record{Type: "form", ID: p.ID, Coll: "forms", idx: p.idx, Attrs: attrs}
}

func (c *rctx) formVersion(f, v int64) *record {
	w := c.w
	cr, up := w.times(kForm, f)
	cr += v * 3600
	if up < cr {
		up = cr
	}
	var ab any
	if w.formVersionCount(f) > 1 {
		ab = map[string]any{"variation_name": fmt.Sprintf("Variation %c", 'A'+v)}
	}
	return &record{Type: "form-version", ID: w.formVersionID(f, v), Coll: "form-versions", idx: f*8 + v,
		Attrs: map[string]any{"form_type": []string{"popup", "embed", "flyout", "banner", "full_page"}[(f+v)%5],
			"variation_name": fmt.Sprintf("Variation %c", 'A'+v), "ab_test": ab, "status": []string{"live", "draft"}[(f+v)%2],
			"created_at": isoTime(cr), "updated_at": isoTime(up)},
		Rels: []relation{{Name: "form", Refs: []ref{{Type: "form", ID: w.formID(f)}}}}}
}

func (c *rctx) review(i int64) *record {
	w := c.w
	cr, up := w.times(kReview, i)
	r := newRnd(w.salt(kReview), uint64(i))
	typ := []string{"review", "rating", "question", "store"}[i%4]
	var status any
	switch i % 6 {
	case 0:
		status = map[string]any{"value": "published"}
	case 1:
		status = map[string]any{"value": "featured"}
	case 2:
		status = map[string]any{"value": "pending"}
	case 3:
		status = map[string]any{"value": "unpublished"}
	case 4:
		status = map[string]any{"value": "rejected", "rejection_reason": map[string]any{"reason": "other", "status_explanation": "Contenu hors sujet"}}
	default:
		status = map[string]any{"value": "rejected", "rejection_reason": map[string]any{"reason": "profanity_or_inappropriate"}}
	}
	var rating, email, author, content, title, quote, product, reply any
	if typ != "question" {
		rating = 1 + r.intn(5)
	}
	if i%5 != 4 {
		email = fmt.Sprintf("reviewer%d@example.com", i)
		author = pick(r, firstNames) + " " + string([]rune(pick(r, lastNames))[:1]) + "."
	}
	content = pick(r, []string{"Super qualité, je recommande !", "Runs small — order a size up.", "とても良い", "Meh. \"Fine\" I guess 🤷"})
	if i%3 != 2 {
		title = pick(r, []string{"Parfait", "Great value", "Not for me"})
		quote = "Super qualité"
	}
	rels := []relation{{Name: "events", Many: true, Data: true, Refs: []ref{}}}
	statusValue := status.(map[string]any)["value"]
	if typ != "store" && w.total(kCatalogItem) > 0 {
		item := i % w.baseCount(kCatalogItem)
		product = map[string]any{"url": fmt.Sprintf("https://shop.example.com/products/%d", item), "name": pick(r, products),
			"image_url": nil, "external_id": w.itemExternal(item)}
		if i%2 == 0 {
			product.(map[string]any)["image_url"] = fmt.Sprintf("https://cdn.example.com/p/%d.jpg", item)
		}
		rels = append(rels, relation{Name: "item", Refs: []ref{{Type: "catalog-item", ID: w.catalogItemID(item)}}})
	} else {
		rels = append(rels, relation{Name: "item"})
	}
	if i%4 == 0 {
		reply = map[string]any{"content": "Merci beaucoup !", "author": "Boutique Élodie", "updated": isoTime(up)}
	}
	if ev := w.pop(kEvent).total(); ev > 0 {
		rels[0].Refs = []ref{{Type: "event", ID: w.eventID(int64(mix(w.salt(kReview), uint64(i), 3) % uint64(ev)))}}
	}
	images := []any{}
	if i%3 == 0 {
		images = append(images, fmt.Sprintf("https://cdn.example.com/reviews/%d.jpg", i))
	}
	var itemID any
	if p, ok := product.(map[string]any); ok {
		itemID = w.catalogItemID(i % w.baseCount(kCatalogItem))
		_ = p
	}
	return &record{Type: "review", ID: w.reviewID(i), Coll: "reviews", idx: i,
		Attrs: map[string]any{"email": email, "status": status, "verified": i%2 == 0, "review_type": typ, "created": isoTime(cr),
			"updated": isoTime(up), "images": images, "product": product, "rating": rating, "author": author,
			"content": content, "title": title, "smart_quote": quote, "public_reply": reply},
		ext:  map[string]any{"status": statusValue, "item.id": itemID},
		Rels: rels}
}

var webhookTopics = []string{"event:klaviyo.sent_sms", "event:klaviyo.clicked_sms", "event:klaviyo.opened_email",
	"event:klaviyo.received_email", "event:klaviyo.bounced_email", "event:klaviyo.marked_email_as_spam"}

func (c *rctx) webhook(i int64) *record {
	w := c.w
	cr, up := w.times(kWebhook, i)
	var desc, created, updated any
	if i%2 == 0 {
		desc = "Sync vers l'entrepôt de données"
	}
	if i%4 != 3 {
		created, updated = isoTime(cr), isoTime(up)
	}
	var topics []ref
	for k := range webhookTopics {
		if (int64(k)+i)%3 != 0 {
			topics = append(topics, ref{Type: "webhook-topic", ID: webhookTopics[k]})
		}
	}
	return &record{Type: "webhook", ID: w.webhookID(i), Coll: "webhooks", idx: i,
		Attrs: map[string]any{"name": fmt.Sprintf("Webhook %d ✉", i), "description": desc,
			"endpoint_url": fmt.Sprintf("https://hooks.example.com/klaviyo/%d", i), "enabled": i%3 != 2,
			"created_at": created, "updated_at": updated},
		Rels: []relation{{Name: "webhook-topics", Many: true, Data: true, Refs: orEmpty(topics)}}}
}

func (c *rctx) webhookTopic(i int64) *record {
	return &record{Type: "webhook-topic", ID: webhookTopics[i], Coll: "webhook-topics", idx: i, NoAttrs: true}
}

func (c *rctx) pushToken(i int64) *record {
	w := c.w
	cr, _ := w.times(kPushToken, i)
	prof := i * 4
	tok, _ := w.pushTokenOf(prof)
	platform := []string{"ios", "android"}[i%2]
	meta := map[string]any{"device_id": fmt.Sprintf("device-%d", i), "klaviyo_sdk": []string{"swift", "android", "react_native", "flutter"}[i%4],
		"sdk_version": "4.2.1", "device_model": []string{"iPhone15,2", "Pixel 8"}[i%2], "os_name": platform, "os_version": "17.4",
		"manufacturer": []string{"Apple", "Google"}[i%2], "app_name": "Boutique Élodie", "app_version": "3.1.0", "app_build": "310",
		"app_id": "com.example.boutique", "environment": []string{"release", "debug"}[i%2]}
	rels := []relation{{Name: "profile"}}
	if prof < w.pop(kProfile).total() {
		rels[0].Refs = []ref{{Type: "profile", ID: w.profileID(prof)}}
	}
	return &record{Type: "push-token", ID: w.pushTokenID(i), Coll: "push-tokens", idx: i,
		Attrs: map[string]any{"created": isoTime(cr), "token": tok, "enablement_status": []string{"AUTHORIZED", "DENIED", "NOT_DETERMINED", "PROVISIONAL", "UNAUTHORIZED"}[i%5],
			"platform": platform, "vendor": []string{"apns", "fcm"}[i%2], "background": []string{"AVAILABLE", "DENIED", "RESTRICTED"}[i%3],
			"recorded_date": isoTime(cr), "metadata": meta},
		Rels: rels}
}

func (c *rctx) universalContent(i int64) *record {
	w := c.w
	cr, up := w.times(kUniversalContent, i)
	def := map[string]any{"content_type": "block", "type": "html", "data": map[string]any{
		"content": "<p>Livraison offerte dès 50 € ✨</p>", "display_options": map[string]any{"show_on": "all", "visible_check": nil}}}
	if i%2 == 1 {
		def = map[string]any{"content_type": "block", "type": "text", "data": map[string]any{
			"content": "<p>Footer légal</p>", "display_options": map[string]any{"show_on": "mobile"},
			"styles": map[string]any{"color": "#333333", "font_size": 12, "text_align": "center"}}}
	}
	return &record{Type: "template-universal-content", ID: w.universalContentID(i), Coll: "template-universal-content", idx: i,
		Attrs: map[string]any{"name": fmt.Sprintf("Bloc universel %d", i), "definition": def, "created": isoTime(cr), "updated": isoTime(up),
			"screenshot_status": []string{"completed", "generating", "never_generated", "stale"}[i%4],
			"screenshot_url":    fmt.Sprintf("https://cdn.example.com/uc/%d.png", i)}}
}

func (c *rctx) webFeed(i int64) *record {
	w := c.w
	cr, up := w.times(kWebFeed, i)
	var status any = []string{"ok", "refreshing", "disabled", "warning_nightly_refresh_timeout"}[i%4]
	if i%5 == 4 {
		status = nil
	}
	return &record{Type: "web-feed", ID: w.webFeedID(i), Coll: "web-feeds", idx: i,
		Attrs: map[string]any{"name": fmt.Sprintf("Flux produits %d", i), "url": fmt.Sprintf("https://shop.example.com/feeds/%d.json", i),
			"request_method": []string{"get", "post"}[i%2], "content_type": []string{"json", "xml"}[i%2],
			"created": isoTime(cr), "updated": isoTime(up), "status": status}}
}

func (c *rctx) customMetric(i int64) *record {
	w := c.w
	cr, up := w.times(kCustomMetric, i)
	m := max64(1, int64(w.sc.Metrics))
	return &record{Type: "custom-metric", ID: w.customMetricID(i), Coll: "custom-metrics", idx: i,
		Attrs: map[string]any{"name": fmt.Sprintf("Revenu net %d", i), "created": isoTime(cr), "updated": isoTime(up),
			"definition": map[string]any{"aggregation_method": []string{"value", "count"}[i%2], "metric_groups": []any{
				map[string]any{"metric_id": w.metricID(5 % m), "metric_filters": nil, "value_property": "$value"}}}},
		Rels: []relation{{Name: "metrics", Many: true, Data: true, Refs: []ref{{Type: "metric", ID: w.metricID(5 % m)}}}}}
}

var mappedMetricIDs = []string{"added_to_cart", "cancelled_sales", "ordered_product", "refunded_sales", "revenue", "started_checkout", "viewed_product"}

func (c *rctx) mappedMetrics() []*record {
	w := c.w
	var out []*record
	m := max64(1, int64(w.sc.Metrics))
	for k, id := range mappedMetricIDs {
		rels := []relation{{Name: "metric"}, {Name: "custom-metric"}}
		if k%3 == 2 && w.total(kCustomMetric) > 0 {
			rels[1].Refs = []ref{{Type: "custom-metric", ID: w.customMetricID(0)}}
		} else {
			rels[0].Refs = []ref{{Type: "metric", ID: w.metricID(int64(k+3) % m)}}
		}
		out = append(out, &record{Type: "mapped-metric", ID: id, Coll: "mapped-metrics", idx: int64(k),
			Attrs: map[string]any{"updated": isoTime(w.start - int64(k)*day)}, Rels: rels})
	}
	return out
}

func (c *rctx) trackingSetting() *record {
	w := c.w
	dyn := func(v string) map[string]any { return map[string]any{"type": "dynamic", "value": v} }
	static := func(v string) map[string]any { return map[string]any{"type": "static", "value": v} }
	return &record{Type: "tracking-setting", ID: w.accountID(), Coll: "tracking-settings",
		Attrs: map[string]any{"auto_add_parameters": true,
			"utm_source":        map[string]any{"flow": static("klaviyo"), "campaign": static("klaviyo")},
			"utm_medium":        map[string]any{"flow": static("email"), "campaign": dyn("message_type")},
			"utm_campaign":      map[string]any{"flow": dyn("flow_name"), "campaign": dyn("campaign_name_send_day")},
			"utm_id":            map[string]any{"flow": dyn("flow_id"), "campaign": dyn("campaign_id")},
			"utm_term":          map[string]any{"flow": dyn("message_name"), "campaign": dyn("email_subject")},
			"custom_parameters": []any{map[string]any{"name": "ref", "flow": static("kl"), "campaign": dyn("profile_id")}},
		}}
}
