package sandbox

import (
	"fmt"
	"strings"
)

// Profiles are the one kind that reaches a million records, so they are computed from their index:
// created (and therefore the ULID) grows with the index, updated is monotonic except for the
// records an Advance touched, and memberships are hash-chosen with joined_group_at derived from
// created so every listing is an ordered walk without a materialised table.

const (
	profVariantPlain    = iota // /api/profiles: ProfileResponsePluralConversationsObjectResource
	profVariantMember          // list/segment members: + joined_group_at
	profVariantIncluded        // included in events: ProfileResponseObjectResource
)

func (w *world) profileMask() uint64 { return w.pop(kProfile).salt & (1<<40 - 1) }

func (w *world) profileID(i int64) string {
	p := w.pop(kProfile)
	return ulid(p.createdMs(i), mix(p.salt, uint64(i), 1), uint64(i)^w.profileMask())
}

func (w *world) profileIndex(id string) (int64, bool) {
	v, ok := ulidPayload(id)
	if !ok {
		return 0, false
	}
	i := int64(v ^ w.profileMask())
	if i < 0 || i >= w.pop(kProfile).total() || w.profileID(i) != id {
		return 0, false
	}
	return i, true
}

// profileCore holds the identifiers used both for filtering and rendering.
type profileCore struct {
	i                       int64
	first, last             int // name indexes, -1 = null
	email, phone, externalI any
	created, updated        int64
}

func (w *world) core(i int64) profileCore {
	p := w.pop(kProfile)
	r := newRnd(p.salt, uint64(i), 2)
	c := profileCore{i: i, first: r.intn(len(firstNames)), last: r.intn(len(lastNames)),
		created: p.created(i), updated: p.updated(i)}
	if r.chance(0.05) {
		c.first = -1
	}
	if r.chance(0.07) {
		c.last = -1
	}
	if i%29 != 7 { // phone-only profiles have no email
		fn, ln := "guest", "shopper"
		if c.first >= 0 {
			fn = firstASCII[c.first]
		}
		if c.last >= 0 {
			ln = lastASCII[c.last]
		}
		c.email = fmt.Sprintf("%s.%s.%d@%s", fn, ln, i, domains[r.intn(len(domains))])
	}
	if i%29 == 7 || r.chance(0.55) {
		c.phone = fmt.Sprintf("+1555%07d", i%10000000)
	}
	if r.chance(0.3) {
		c.externalI = fmt.Sprintf("ext-%06d", i)
	}
	return c
}

func strOrNil(list []string, i int) any {
	if i < 0 {
		return nil
	}
	return list[i]
}

// profile renders profile i for one of the response variants.
func (c *rctx) profile(i int64, variant int) *record {
	w := c.w
	p := w.pop(kProfile)
	pc := w.core(i)
	r := newRnd(p.salt, uint64(i), 3)
	id := w.profileID(i)
	attrs := map[string]any{
		"email": pc.email, "phone_number": pc.phone, "external_id": pc.externalI,
		"first_name": strOrNil(firstNames, pc.first), "last_name": strOrNil(lastNames, pc.last),
		"organization": nil, "locale": nil, "title": nil, "image": nil,
		"created": isoTime(pc.created), "updated": isoTime(pc.updated), "last_event_date": nil,
	}
	if r.chance(0.4) {
		attrs["organization"] = pick(r, orgs)
	}
	if r.chance(0.8) {
		attrs["locale"] = pick(r, locales)
	}
	if r.chance(0.3) {
		attrs["title"] = pick(r, titles)
	}
	if r.chance(0.25) {
		attrs["image"] = fmt.Sprintf("https://images.example.com/avatars/%d.png", i)
	}
	if r.chance(0.85) {
		// Tied to updated, not to the moving clock: the profile changes only when its updated timestamp does.
		le := pc.created + int64(r.intn(int(max64(0, pc.updated-pc.created))+1))
		attrs["last_event_date"] = isoTime(le)
	}
	ci := r.intn(len(cities))
	loc := map[string]any{
		"address1": fmt.Sprintf("%d Rue de l'Église", 1+r.intn(400)), "address2": nil,
		"city": cities[ci], "country": countries[ci], "region": regions[ci],
		"zip": fmt.Sprintf("%05d", r.intn(99999)), "timezone": timezones[ci],
		"ip":       fmt.Sprintf("203.0.113.%d", r.intn(255)),
		"latitude": 42.3601 - float64(r.intn(9000))/100, "longitude": -71.0589 + float64(r.intn(18000))/100,
	}
	switch r.intn(6) {
	case 0: // nothing known about the location
		for k := range loc {
			loc[k] = nil
		}
		delete(loc, "latitude")
		delete(loc, "longitude")
	case 1: // coordinates as strings, as older imports left them
		loc["latitude"] = fmt.Sprintf("%.4f", loc["latitude"])
		loc["longitude"] = fmt.Sprintf("%.4f", loc["longitude"])
		loc["address2"] = "Apt. 4B"
	}
	attrs["location"] = loc
	attrs["properties"] = profileProperties(r, i)
	subs := w.subscriptions(i, pc)
	ext := map[string]any{"_kx": kxToken(id), "profile_id": id}
	if pt, ok := w.pushTokenOf(i); ok {
		ext["push_token"] = pt
	}
	if variant != profVariantIncluded && c.q != nil && c.q.wantsAdditional("profile", "subscriptions") {
		attrs["subscriptions"] = subs
	} else {
		ext["subscriptions"] = subs
	}
	if variant != profVariantIncluded && c.q != nil && c.q.wantsAdditional("profile", "predictive_analytics") {
		attrs["predictive_analytics"] = w.predictive(i, pc)
	}
	rec := &record{Type: "profile", ID: id, Attrs: attrs, Coll: "profiles", idx: i, ext: ext}
	rec.Rels = []relation{
		{Name: "lists", Many: true}, {Name: "segments", Many: true},
		{Name: "push-tokens", Many: true},
	}
	if variant == profVariantPlain {
		rec.Rels = append(rec.Rels, relation{Name: "conversations", Many: true})
		if c.q != nil && c.q.includes("push-tokens") {
			rec.Rels[2].Data = true
			if ptID, ok := w.pushTokenIDOf(i); ok {
				rec.Rels[2].Refs = []ref{{Type: "push-token", ID: ptID}}
			}
		}
		if c.q != nil && c.q.includes("conversations") {
			rec.Rels[3].Data = true
		}
		for k, kind := range []string{kList, kSegment} {
			if c.q == nil || !c.q.includes(rec.Rels[k].Name) {
				continue
			}
			rec.Rels[k].Data = true
			rec.Rels[k].Refs = []ref{}
			for l := int64(0); l < w.total(kind); l++ {
				if w.isMember(kind, l, i) && w.joinedAt(kind, l, i) <= w.now {
					id := w.listID(l)
					if kind == kSegment {
						id = w.segmentID(l)
					}
					rec.Rels[k].Refs = append(rec.Rels[k].Refs, ref{Type: kind, ID: id})
				}
			}
		}
	}
	return rec
}

func kxToken(id string) string { return "kx_" + strings.ToLower(id[len(id)-12:]) }

func profileProperties(r *rnd, i int64) any {
	switch r.intn(5) {
	case 0:
		return map[string]any{}
	case 1:
		return nil
	}
	props := map[string]any{
		"Loyalty Tier":      pick(r, []string{"Bronze", "Silver", "Gold", "Platinum ✨"}),
		"Favourite colour":  pick(r, []string{"vert", "azul", "紫", "rouge", "blue"}),
		"Accepts Marketing": r.chance(0.6),
		"Lifetime Orders":   r.intn(40),
		"$source":           pick(r, []string{"Shopify", "API", "CSV import", "Sign-up form"}),
	}
	if r.chance(0.5) {
		props["preferences"] = map[string]any{
			"sizes":  []any{"S", "M"},
			"brands": []any{"Acme", "Ünïcode"},
			"nested": map[string]any{"deep": map[string]any{"value": r.intn(100), "note": nil}},
		}
	}
	if r.chance(0.3) {
		props["Birthday"] = fmt.Sprintf("19%02d-%02d-%02d", 50+r.intn(50), 1+r.intn(12), 1+r.intn(28))
	}
	if r.chance(0.2) {
		props["Notes"] = "Line one\nLine \"two\"\ttabbed — ok"
	}
	return props
}

var (
	consents       = []string{"SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED"}
	suppressReason = []string{"HARD_BOUNCE", "INVALID_EMAIL", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED"}
	consentMethods = []string{"PREFERENCE_PAGE", "FORM", "API", "IMPORT", "BACK_IN_STOCK", "TEXT", "CHECKOUT"}
)

// subscriptions covers every consent state and every suppression reason across profiles.
func (w *world) subscriptions(i int64, pc profileCore) map[string]any {
	p := w.pop(kProfile)
	r := newRnd(p.salt, uint64(i), 4)
	ts := func() any {
		if r.chance(0.1) {
			return nil
		}
		return isoTime(pc.created + int64(r.intn(int(max64(1, w.start-pc.created)))))
	}
	consent := consents[int(i)%3]
	var suppression []any
	if i%5 == 3 {
		suppression = []any{map[string]any{"reason": suppressReason[int(i/5)%5], "timestamp": isoTime(pc.updated)}}
	}
	var listSupp []any
	if i%7 == 4 && w.sc.Lists > 0 {
		li := int64(r.intn(w.sc.Lists))
		listSupp = []any{map[string]any{"list_id": w.listID(li), "reason": pick(r, []string{"UNSUBSCRIBE", "SPAM_COMPLAINT", "USER_SUPPRESSED"}), "timestamp": isoTime(pc.updated)}}
	}
	var method, detail, custom any
	if consent != "NEVER_SUBSCRIBED" {
		method = pick(r, consentMethods)
		detail = pick(r, []string{"https://shop.example.com/pages/signup", "Footer form", "mobile app"})
		if r.chance(0.3) {
			custom = "Imported from «legacy» ESP"
		}
	}
	var doubleOpt any
	if r.chance(0.7) {
		doubleOpt = r.chance(0.5)
	}
	if suppression == nil {
		suppression = []any{}
	}
	if listSupp == nil {
		listSupp = []any{}
	}
	consentTS := ts()
	if consent == "NEVER_SUBSCRIBED" {
		consentTS = nil
	}
	emailMarketing := map[string]any{
		"can_receive_email_marketing": consent == "SUBSCRIBED" && i%5 != 3 && pc.email != nil,
		"consent":                     consent, "consent_timestamp": consentTS, "last_updated": ts(),
		"method": method, "method_detail": detail, "custom_method_detail": custom, "double_optin": doubleOpt,
		"suppression": suppression, "list_suppressions": listSupp,
	}
	if i%11 == 10 {
		emailMarketing["suppression"] = nil
		emailMarketing["list_suppressions"] = nil
	}
	openConsent := pick(r, []string{"SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED"})
	smsConsent := "NEVER_SUBSCRIBED"
	if pc.phone != nil {
		smsConsent = consents[int(i/3)%3]
	}
	wa := func(kind int) map[string]any {
		c := consents[int(i+int64(kind))%3]
		var phone any
		if pc.phone != nil && c != "NEVER_SUBSCRIBED" {
			phone = pc.phone
		}
		return map[string]any{
			"consent": c, "can_receive": c == "SUBSCRIBED" && phone != nil, "consent_timestamp": ts(),
			"last_updated": ts(), "created_timestamp": ts(), "valid_until": ts(),
			"metadata": map[string]any{"source": "whatsapp_optin", "opt_in_keyword": "JOIN"}, "phone_number": phone,
		}
	}
	var smsMethod, smsDetail any
	if pc.phone != nil && i%2 == 0 {
		smsMethod, smsDetail = "CHECKOUT", "Checkbox at checkout"
	}
	return map[string]any{
		"email": map[string]any{
			"marketing": emailMarketing,
			"open_tracking": map[string]any{
				"consent": openConsent, "can_receive": openConsent == "SUBSCRIBED", "consent_timestamp": ts(),
				"last_updated": ts(), "created_timestamp": ts(), "valid_until": ts(),
				"metadata": map[string]any{"apple_mpp": r.chance(0.3)},
			},
		},
		"sms": map[string]any{
			"marketing": map[string]any{
				"can_receive_sms_marketing": smsConsent == "SUBSCRIBED", "consent": smsConsent,
				"consent_timestamp": ts(), "method": pick(r, []string{"TEXT", "FORM", "API"}),
				"method_detail": pick(r, []string{"JOIN keyword", "Pop-up form", "checkout"}), "last_updated": ts(),
			},
			"transactional": map[string]any{
				"can_receive_sms_transactional": pc.phone != nil, "consent": map[bool]string{true: "SUBSCRIBED", false: "NEVER_SUBSCRIBED"}[pc.phone != nil],
				"consent_timestamp": ts(), "method": smsMethod, "method_detail": smsDetail, "last_updated": ts(),
			},
		},
		"mobile_push": map[string]any{
			"marketing": map[string]any{
				"can_receive_push_marketing": i%4 == 0, "consent": map[bool]string{true: "SUBSCRIBED", false: "NEVER_SUBSCRIBED"}[i%4 == 0],
				"consent_timestamp": ts(),
			},
		},
		"whatsapp": map[string]any{"marketing": wa(0), "transactional": wa(1), "conversational": wa(2)},
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func (w *world) predictive(i int64, pc profileCore) map[string]any {
	r := newRnd(w.pop(kProfile).salt, uint64(i), 5)
	if i%6 == 5 { // too new to predict: every field null
		return map[string]any{
			"historic_clv": nil, "predicted_clv": nil, "total_clv": nil, "historic_number_of_orders": nil,
			"predicted_number_of_orders": nil, "average_days_between_orders": nil, "average_order_value": nil,
			"churn_probability": nil, "expected_date_of_next_order": nil, "ranked_channel_affinity": nil,
		}
	}
	h := float64(r.intn(200000)) / 100
	pr := float64(r.intn(100000)) / 100
	orders := float64(1 + r.intn(30))
	aff := []any{"email", "sms", "push", "whatsapp"}
	r2 := r.intn(4)
	aff[0], aff[r2] = aff[r2], aff[0]
	return map[string]any{
		"historic_clv": h, "predicted_clv": pr, "total_clv": h + pr, "historic_number_of_orders": orders,
		"predicted_number_of_orders": float64(r.intn(500)) / 100, "average_days_between_orders": float64(r.intn(9000)) / 100,
		"average_order_value": h / orders, "churn_probability": float64(r.intn(100)) / 100,
		"expected_date_of_next_order": isoTime(w.now + int64(r.intn(90))*day), "ranked_channel_affinity": aff,
	}
}

// Membership: profile i belongs to list (or segment) l with a per-group probability; it joined
// a fixed delay after it was created, so joined_group_at grows with the index. memberOf is the
// draw; isMember (removals.go) also leaves out the members removed since.
func (w *world) memberOf(kind string, l, i int64) bool {
	salt := w.pop(kind).salt
	pct := 5 + mix(salt, uint64(l), 0x9e)%55
	return mix(salt, uint64(l), uint64(i))%100 < pct
}

func (w *world) joinDelay(kind string, l int64) int64 {
	return int64(mix(w.pop(kind).salt, uint64(l), 0x77) % 7200)
}

func (w *world) joinedAt(kind string, l, i int64) int64 {
	return w.pop(kProfile).created(i) + w.joinDelay(kind, l)
}

// pushTokenOf returns the push token of profile i, for profiles that have one.
func (w *world) pushTokenOf(i int64) (string, bool) {
	if i%4 != 0 {
		return "", false
	}
	return fmt.Sprintf("%016x%016x", mix(w.seed, uint64(i), 0x70), mix(w.seed, uint64(i), 0x71)), true
}

func (w *world) pushTokenIDOf(i int64) (string, bool) {
	if i%4 != 0 {
		return "", false
	}
	n := int64(w.sc.PushTokens)
	if i/4 >= n {
		return "", false
	}
	return w.pushTokenID(i / 4), true
}
