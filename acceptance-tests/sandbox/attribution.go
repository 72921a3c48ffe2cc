package sandbox

// Attribution and order values are pure functions of an event's index, shared by the event
// renderer (GET /api/events) and the reports (POST /api/*-reports, /api/metric-aggregates), so a
// report's numbers are by construction the counts and sums of the events the sandbox serves.
//
// The rule, visible through GET /api/events?include=attributions: an event of an email metric
// (Received, Opened, Clicked, Bounced Email, Unsubscribed, Marked Email as Spam) or of Placed Order
// whose index is a multiple of 3 has one attribution. Even indexes credit message 0 of campaign
// (index/2 mod Scale.Campaigns), odd ones the message of action 0 of flow (index/2 mod Scale.Flows).

// hasAttribution tells whether an event of the metric named name with index g carries an
// attribution (the `attributions` relationship of the event).
func hasAttribution(name string, g int64) bool {
	return (isEmailMetric(name) || name == "Placed Order") && g%3 == 0
}

// attributed is the message an attribution credits: message 0 of a campaign, or the message of
// the first action of a flow (always a send action).
type attributed struct {
	ok       bool
	campaign bool  // a campaign message; otherwise a flow message
	owner    int64 // the campaign or flow index
}

// attributionTarget is what the attribution of event g credits, whatever the event's metric.
func (w *world) attributionTarget(g int64) attributed {
	switch {
	case g%2 == 0 && w.sc.Campaigns > 0:
		return attributed{ok: true, campaign: true, owner: g / 2 % int64(w.sc.Campaigns)}
	case w.sc.Flows > 0:
		return attributed{ok: true, owner: g / 2 % int64(w.sc.Flows)}
	}
	return attributed{}
}

// isOrderMetric tells the metrics whose events carry an order: items and a `$value`.
func isOrderMetric(name string) bool {
	switch name {
	case "Placed Order", "Ordered Product", "Started Checkout", "Refunded Order", "Fulfilled Order":
		return true
	}
	return false
}

// orderLine is one item of an order event.
type orderLine struct {
	cents   int
	product string
	sku     int
	qty     int
}

// orderLineCount draws how many items an order event has: the first draw of its random stream.
func orderLineCount(r *rnd) int { return 1 + r.intn(3) }

// drawOrderLine draws one item, price first, in the order the event renderer has always used.
func drawOrderLine(r *rnd) orderLine {
	cents := 500 + r.intn(20000)
	product := pick(r, products)
	sku := r.intn(9999)
	return orderLine{cents: cents, product: product, sku: sku, qty: 1 + r.intn(2)}
}

// orderCents is an order event's `$value` in cents (the sum of its item prices) without rendering
// the event: a few hash steps, which is what lets a report sum a year of orders cheaply.
func (w *world) orderCents(g int64) int64 {
	r := newRnd(w.pop(kEvent).salt, uint64(g), 3)
	n := orderLineCount(r)
	var sum int64
	for k := 0; k < n; k++ {
		sum += int64(drawOrderLine(r).cents)
	}
	return sum
}
