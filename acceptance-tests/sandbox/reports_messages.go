package sandbox

import (
	"math"
	"time"
)

// Campaign and flow reports. A message's statistics are counts of the events attributed to it
// (attribution.go), by metric:
//
//	delivered = Received Email       bounced = Bounced Email        failed = 0 (no such metric)
//	opens     = Opened Email         clicks  = Clicked Email        unsubscribes = Unsubscribed
//	spam_complaints = Marked Email as Spam
//	conversions = events of conversion_metric_id, conversion_value = the sum of their $value
//	*_unique, *_uniques = distinct profiles among those events
//	recipients = delivered + bounced_or_failed
//
// Rates are capped ratios (see ratio): delivery_rate, bounce_rate, failed_rate and
// bounced_or_failed_rate over recipients; open_rate (opens_unique), click_rate (clicks_unique),
// unsubscribe_rate (unsubscribe_uniques), spam_complaint_rate and conversion_rate
// (conversion_uniques) over delivered; click_to_open_rate is clicks_unique over opens_unique.
// average_order_value is conversion_value/conversions, revenue_per_recipient
// conversion_value/recipients. The SMS statistics are 0: no SMS event is attributed.
//
// Campaigns are reported as Klaviyo does, by send date: the timeframe selects the sent campaigns
// (status Sent, Variations Sent or Sending) whose send_time falls in it, each message with every
// attributed event up to the clock. Flows are reported by event date: a flow message's row
// counts its attributed events dated in the timeframe (or in each interval of a series), and a
// message appears when it has at least one.

// emailCounter maps the email metrics to the counter of their events and, for the ones with a
// unique statistic, of their distinct profiles (-1 without).
func emailCounter(name string) (count, unique int) {
	switch name {
	case "Received Email":
		return cntReceived, -1
	case "Opened Email":
		return cntOpened, cntOpenedU
	case "Clicked Email":
		return cntClicked, cntClickedU
	case "Bounced Email":
		return cntBounced, -1
	case "Unsubscribed":
		return cntUnsub, cntUnsubU
	case "Marked Email as Spam":
		return cntSpam, -1
	}
	return -1, -1
}

// messageStatistic computes one campaign or flow statistic from a counters cell.
func messageStatistic(stat string, c counters) any {
	delivered, bounced := c[cntReceived], c[cntBounced]
	const failed = int64(0)
	recipients := delivered + bounced + failed
	value := float64(c[cntCents]) / 100
	per := func(v float64, n int64) float64 {
		if n == 0 {
			return 0
		}
		return v / float64(n)
	}
	switch stat {
	case "recipients":
		return recipients
	case "delivered":
		return delivered
	case "delivery_rate":
		return ratio(delivered, recipients)
	case "bounced":
		return bounced
	case "bounce_rate":
		return ratio(bounced, recipients)
	case "failed", "message_segment_count_sum":
		return int64(0)
	case "failed_rate":
		return ratio(failed, recipients)
	case "bounced_or_failed":
		return bounced + failed
	case "bounced_or_failed_rate":
		return ratio(bounced+failed, recipients)
	case "opens":
		return c[cntOpened]
	case "opens_unique":
		return c[cntOpenedU]
	case "open_rate":
		return ratio(c[cntOpenedU], delivered)
	case "clicks":
		return c[cntClicked]
	case "clicks_unique":
		return c[cntClickedU]
	case "click_rate":
		return ratio(c[cntClickedU], delivered)
	case "click_to_open_rate":
		return ratio(c[cntClickedU], c[cntOpenedU])
	case "unsubscribes":
		return c[cntUnsub]
	case "unsubscribe_uniques":
		return c[cntUnsubU]
	case "unsubscribe_rate":
		return ratio(c[cntUnsubU], delivered)
	case "spam_complaints":
		return c[cntSpam]
	case "spam_complaint_rate":
		return ratio(c[cntSpam], delivered)
	case "conversions":
		return c[cntConv]
	case "conversion_uniques":
		return c[cntConvU]
	case "conversion_rate":
		return ratio(c[cntConvU], delivered)
	case "conversion_value":
		return value
	case "average_order_value":
		return per(value, c[cntConv])
	case "revenue_per_recipient":
		return per(value, recipients)
	}
	return 0.0 // text_message_credit_usage_amount, text_message_spend, text_message_roi
}

// countAttributed scans the attributed events dated in [from, to) and tallies those whose
// message slot(target) is not negative, in bucket of(sec). Its cost is one hash per third of the
// events in range plus a date for each attributed one; its memory, 8 bytes per counted event of
// one interval (all of the timeframe for a values report) for the distinct-profile counts.
func (q *reportReq) countAttributed(from, to int64, conv int64, nb int, slot func(attributed) int, of func(sec int64) int) (*tally, error) {
	w := q.c.w
	t := newTally(nb)
	names := make([]string, w.sc.Metrics)
	for i := range names {
		names[i] = w.metricName(int64(i))
	}
	watch := t.bucketWatch()
	w.eachEvent(from, to, 3, func(g int64) {
		m := w.eventMetric(g)
		if !hasAttribution(names[m], g) {
			return
		}
		s := slot(w.attributionTarget(g))
		if s < 0 {
			return
		}
		b := of(w.eventSec(g))
		if b < 0 {
			return
		}
		watch(b)
		c := t.cell(s, b)
		profile := w.eventProfile(g)
		if cnt, uniq := emailCounter(names[m]); cnt >= 0 {
			c[cnt]++
			if uniq >= 0 {
				t.distinct(s, b, uniq, profile)
			}
		}
		if m == conv {
			c[cntConv]++
			t.distinct(s, b, cntConvU, profile)
			if isOrderMetric(names[m]) {
				c[cntCents] += w.orderCents(g)
			}
		}
	})
	return t, t.finish()
}

// sendChannel is the Reporting API's name of a message channel.
func sendChannel(channel string) string {
	switch channel {
	case "mobile_push", "push":
		return "push-notification"
	}
	return channel
}

// reportMessage is one campaign or flow message a report can show, with its dimensions.
type reportMessage struct {
	slot int
	dims map[string]any
	tags []int64 // tag indexes of its campaign or flow
}

// dim is a message's value for a group-by or filter attribute; tag_id and tag_name are lists.
func (m *reportMessage) dim(c *rctx, name string) any {
	switch name {
	case "tag_id", "tag_name":
		out := make([]any, 0, len(m.tags))
		for _, t := range m.tags {
			out = append(out, tagDim(c, name, t))
		}
		return out
	}
	return m.dims[name]
}

func tagDim(c *rctx, name string, t int64) any {
	if name == "tag_id" {
		return c.w.tagID(t)
	}
	return c.tag(t).Attrs["name"]
}

// rows renders a message's results entries: one, or one per tag when grouping by a tag
// attribute (an untagged message then has null tags), each with the statistics of the message.
func (m *reportMessage) rows(c *rctx, r *reporting, t *tally, stat func(string, counters) any) []any {
	tags := []int64{-1}
	if (contains(r.groupBy, "tag_id") || contains(r.groupBy, "tag_name")) && len(m.tags) > 0 {
		tags = m.tags
	}
	var out []any
	for _, tag := range tags {
		g := map[string]any{}
		for _, d := range r.groupBy {
			switch {
			case d != "tag_id" && d != "tag_name":
				g[d] = m.dims[d]
			case tag < 0:
				g[d] = nil
			default:
				g[d] = tagDim(c, d, tag)
			}
		}
		out = append(out, map[string]any{"groupings": g, "statistics": statisticsOf(r.stats, t, m.slot, r.interval != "", stat)})
	}
	return out
}

func (w *world) tagsOf(kind string, i int64) []int64 {
	var out []int64
	for t := int64(0); t < w.total(kTag); t++ {
		if w.tagged(kind, t, i) {
			out = append(out, t)
		}
	}
	return out
}

// campaignSent tells the statuses of campaigns that went out, the ones Klaviyo reports on.
func campaignSent(status string) bool {
	return status == "Sent" || status == "Variations Sent" || status == "Sending"
}

// campaignValues answers POST /api/campaign-values-reports.
func (q *reportReq) campaignValues() (*reportResult, *apiError) {
	r, aerr := q.parseReporting()
	if aerr != nil {
		return nil, aerr
	}
	c, w := q.c, q.c.w
	var msgs []*reportMessage
	slotOf := map[int64]int{} // campaign index -> slot of its message 0, the one attributions credit
	for ci, rec := range c.all(kCampaign) {
		st, _ := rec.Attrs["send_time"].(string)
		sent, err := time.Parse(time.RFC3339, st)
		if err != nil || !campaignSent(w.campaignStatus(int64(ci))) || sent.Before(r.win.from) || !sent.Before(r.win.to) {
			continue
		}
		name := rec.Attrs["name"]
		for k := int64(0); k < w.campaignMessageCount(int64(ci)); k++ {
			msg := c.campaignMessage(int64(ci), k)
			def, _ := msg.Attrs["definition"].(map[string]any)
			variation := name
			if label, ok := def["label"]; ok {
				variation = label
			}
			var format any
			if w.campaignChannel(int64(ci)) == "sms" {
				format = "SMS"
			}
			m := &reportMessage{slot: len(msgs), tags: w.tagsOf(kCampaign, int64(ci)), dims: map[string]any{
				"campaign_id": rec.ID, "campaign_message_id": msg.ID, "campaign_message_name": name,
				"send_channel": sendChannel(w.campaignChannel(int64(ci))), "group": nil, "group_name": nil,
				"text_message_format": format, "variation": msg.ID, "variation_name": variation}}
			if !matchesAll(r.filter, func(d string) any { return m.dim(c, d) }) {
				continue
			}
			if k == 0 {
				slotOf[int64(ci)] = m.slot
			}
			msgs = append(msgs, m)
		}
	}
	t, err := q.countAttributed(math.MinInt64, w.now+1, r.conv, 1, func(a attributed) int {
		if s, ok := slotOf[a.owner]; ok && a.campaign {
			return s
		}
		return -1
	}, func(int64) int { return 0 })
	if err != nil {
		return nil, internal(err)
	}
	res := &reportResult{}
	for _, m := range msgs {
		res.rows = append(res.rows, m.rows(c, r, t, messageStatistic)...)
	}
	res.rels = [][2]string{{"campaigns", "campaign_id"}}
	return res, nil
}

// flowReport answers POST /api/flow-values-reports and /api/flow-series-reports.
func (q *reportReq) flowReport() (*reportResult, *apiError) {
	r, aerr := q.parseReporting()
	if aerr != nil {
		return nil, aerr
	}
	c, w := q.c, q.c.w
	var msgs []*reportMessage
	slotOf := map[int64]int{}
	for fi := int64(0); fi < min(int64(w.sc.Flows), w.total(kFlow)); fi++ {
		flow := c.flow(fi)
		msg := c.flowMessage(fi, 0)
		channel, _ := msg.Attrs["channel"].(string)
		var format any
		if channel == "sms" {
			format = "SMS"
		}
		m := &reportMessage{slot: len(msgs), tags: w.tagsOf(kFlow, fi), dims: map[string]any{
			"flow_id": flow.ID, "flow_message_id": msg.ID, "flow_message_name": msg.ext["name"], "flow_name": flow.Attrs["name"],
			"send_channel": sendChannel(channel), "text_message_format": format, "variation": msg.ID, "variation_name": msg.ext["name"]}}
		if !matchesAll(r.filter, func(d string) any { return m.dim(c, d) }) {
			continue
		}
		slotOf[fi] = m.slot
		msgs = append(msgs, m)
	}
	t, err := q.countAttributed(r.win.from.Unix(), r.win.to.Unix(), r.conv, len(r.b.starts), func(a attributed) int {
		if s, ok := slotOf[a.owner]; ok && !a.campaign {
			return s
		}
		return -1
	}, r.b.of)
	if err != nil {
		return nil, internal(err)
	}
	res := &reportResult{}
	if r.interval != "" {
		res.dateTimes = r.b.dateTimes()
	}
	for _, m := range msgs {
		if t.sum(m.slot) != (counters{}) {
			res.rows = append(res.rows, m.rows(c, r, t, messageStatistic)...)
		}
	}
	res.rels = [][2]string{{"flows", "flow_id"}, {"flow-messages", "flow_message_id"}}
	return res, nil
}

// relsOf lists, per relationship name, the distinct ids of a grouping across the results of the page.
func relsOf(rows []any, rels [][2]string) map[string]any {
	out := map[string]any{}
	for _, rel := range rels {
		typ := map[string]string{"campaigns": "campaign", "flows": "flow", "flow-messages": "flow-message"}[rel[0]]
		var ids []string
		for _, row := range rows {
			g, _ := row.(map[string]any)["groupings"].(map[string]any)
			if id, ok := g[rel[1]].(string); ok && !contains(ids, id) {
				ids = append(ids, id)
			}
		}
		out[rel[0]] = refList(typ, ids)
	}
	return out
}
