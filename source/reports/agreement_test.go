package reports

import (
	"context"
	stdjson "encoding/json"
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// The agreement tests compute what a report must say from what the sandbox serves through its GET endpoints,
// as a user checking the numbers would: events with their attributions (GET /api/events?include=attributions)
// counted per message and day, and form activity per hour. Each report's rows must carry exactly those numbers.

// served is an event as GET /api/events?include=attributions serves it, reduced to what reports count.
type served struct {
	metric, profile string
	at              time.Time
	cents           int64
	campaignMessage string
	flowMessage     string
}

func servedEvents(t *testing.T, c *klaviyo.Client) []served {
	t.Helper()
	req := klaviyo.Request{Endpoint: "/api/events", Path: "/api/events", Budget: klaviyo.Budget{Burst: 350, PerMinute: 3500},
		Query: url.Values{"include": {"attributions"}, "page[size]": {"200"}}}
	var out []served
	for doc, err := range c.Pages(context.Background(), req) {
		require.NoError(t, err)
		credits := map[string]map[string]string{}
		for _, inc := range doc.Included {
			rels := map[string]string{}
			for name, rel := range inc.Relationships {
				if id, ok := rel.ToOneID(); ok {
					rels[name] = id
				}
			}
			credits[inc.ID] = rels
		}
		for _, ev := range doc.Data {
			var a struct {
				Datetime        string         `json:"datetime"`
				EventProperties map[string]any `json:"event_properties"`
			}
			require.NoError(t, stdjson.Unmarshal(ev.Attributes, &a))
			at, err := time.Parse(time.RFC3339, a.Datetime)
			require.NoError(t, err)
			e := served{at: at}
			e.metric, _ = ev.Relationships["metric"].ToOneID()
			e.profile, _ = ev.Relationships["profile"].ToOneID()
			if v, ok := a.EventProperties["$value"].(float64); ok {
				e.cents = int64(math.Round(v * 100))
			}
			if ids := ev.Relationships["attributions"].ToManyIDs(); len(ids) > 0 {
				e.campaignMessage, e.flowMessage = credits[ids[0]]["campaign-message"], credits[ids[0]]["flow-message"]
			}
			out = append(out, e)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// tally is a message's (or a metric's) numbers as the events say.
type tally struct {
	delivered, opens, clicks, bounced, unsubs, spam, conversions, cents int64
	opened, clicked, unsubscribed, converted, profiles                  map[string]bool
	count                                                               int64
}

func newTally() *tally {
	return &tally{opened: map[string]bool{}, clicked: map[string]bool{}, unsubscribed: map[string]bool{},
		converted: map[string]bool{}, profiles: map[string]bool{}}
}

// add counts an attributed event the documented way: by its metric's name.
func (e *tally) add(ev served, metricName, conversionMetric string) {
	switch metricName {
	case "Received Email":
		e.delivered++
	case "Opened Email":
		e.opens++
		e.opened[ev.profile] = true
	case "Clicked Email":
		e.clicks++
		e.clicked[ev.profile] = true
	case "Bounced Email":
		e.bounced++
	case "Unsubscribed":
		e.unsubs++
		e.unsubscribed[ev.profile] = true
	case "Marked Email as Spam":
		e.spam++
	}
	if ev.metric == conversionMetric {
		e.conversions++
		e.converted[ev.profile] = true
		e.cents += ev.cents
	}
}

// statistics are the message statistics the events determine.
func (e *tally) statistics() map[string]any {
	recipients := e.delivered + e.bounced
	rate := func(part, whole int64) float64 {
		if whole == 0 {
			return 0
		}
		return math.Min(1, float64(part)/float64(whole))
	}
	value := float64(e.cents) / 100
	per := func(n int64) float64 {
		if n == 0 {
			return 0
		}
		return value / float64(n)
	}
	u := func(m map[string]bool) int64 { return int64(len(m)) }
	return map[string]any{
		"recipients": recipients, "delivered": e.delivered, "bounced": e.bounced, "bounced_or_failed": e.bounced,
		"opens": e.opens, "clicks": e.clicks, "unsubscribes": e.unsubs, "spam_complaints": e.spam,
		"conversions": e.conversions, "conversion_value": value, "opens_unique": u(e.opened), "clicks_unique": u(e.clicked),
		"unsubscribe_uniques": u(e.unsubscribed), "conversion_uniques": u(e.converted),
		"open_rate": rate(u(e.opened), e.delivered), "click_rate": rate(u(e.clicked), e.delivered),
		"bounce_rate": rate(e.bounced, recipients), "delivery_rate": rate(e.delivered, recipients),
		"click_to_open_rate": rate(u(e.clicked), u(e.opened)), "conversion_rate": rate(u(e.converted), e.delivered),
		"unsubscribe_rate": rate(u(e.unsubscribed), e.delivered), "spam_complaint_rate": rate(e.spam, e.delivered),
		"average_order_value": per(e.conversions), "revenue_per_recipient": per(recipients),
	}
}

// assertNumbers compares a row's statistics with the expected values, exactly: counts as integers.
func assertNumbers(t *testing.T, label string, row map[string]any, want map[string]any) {
	t.Helper()
	for name, w := range want {
		n, ok := row[name].(stdjson.Number)
		if !assert.True(t, ok, "%s %s: %v is not a number", label, name, row[name]) {
			continue
		}
		switch w := w.(type) {
		case int64:
			got, err := n.Int64()
			assert.NoError(t, err, "%s %s is written as an integer", label, name)
			assert.Equal(t, w, got, "%s %s", label, name)
		case float64:
			got, err := n.Float64()
			require.NoError(t, err)
			assert.Equal(t, w, got, "%s %s", label, name)
		}
	}
}

func metricNames(acct Account) (byID map[string]string, placed string) {
	byID = map[string]string{}
	for _, m := range acct.Metrics {
		byID[m.ID] = m.Name
		if m.Name == "Placed Order" {
			placed = m.ID
		}
	}
	return byID, placed
}

func TestFlowSeriesAgreeWithServedEvents(t *testing.T) {
	s, c := startSandbox(t, nil)
	acct, err := Discover(context.Background(), c, true)
	require.NoError(t, err)
	names, placed := metricNames(acct)
	def := defaultDef(t, "flow_series_reports", Config{StartDate: s.Now().AddDate(0, 0, -45)})
	sink, _, err := syncOnce(t, s, c, def, State{}, nil)
	require.NoError(t, err)
	want := map[string]map[string]*tally{} // flow message -> Paris day -> numbers
	now := s.Now()
	for _, ev := range servedEvents(t, c) {
		if ev.flowMessage == "" || !ev.at.Before(now) {
			continue
		}
		day := floorUnit(unitDay, ev.at.In(acct.Location)).Format(wallClock)
		if want[ev.flowMessage] == nil {
			want[ev.flowMessage] = map[string]*tally{}
		}
		if want[ev.flowMessage][day] == nil {
			want[ev.flowMessage][day] = newTally()
		}
		want[ev.flowMessage][day].add(ev, names[ev.metric], placed)
	}
	checked := 0
	for _, row := range sink.decoded(t) {
		m, day := row["flow_message_id"].(string), row["date"].(string)
		assert.Equal(t, placed, row["conversion_metric_id"])
		w := want[m][day]
		if w == nil {
			w = newTally()
		} else {
			checked++
			delete(want[m], day)
		}
		assertNumbers(t, m+" "+day, row, w.statistics())
	}
	assert.Greater(t, checked, 20, "the rows hold many days of attributed events")
	for m, days := range want {
		for day := range days {
			if t0, _ := time.Parse(time.RFC3339, day); !t0.Before(def.historyStart(now.In(acct.Location), unitDay)) {
				t.Errorf("flow message %s has attributed events on %s but no row", m, day)
			}
		}
	}
}

func TestCampaignValuesAgreeWithServedEvents(t *testing.T) {
	s, c := startSandbox(t, nil)
	acct, err := Discover(context.Background(), c, true)
	require.NoError(t, err)
	names, placed := metricNames(acct)
	def := defaultDef(t, "campaign_values_reports", Config{})
	sink, _, err := syncOnce(t, s, c, def, State{}, nil)
	require.NoError(t, err)
	want := map[string]*tally{}
	for _, ev := range servedEvents(t, c) {
		if ev.campaignMessage == "" || ev.at.After(s.Now()) {
			continue
		}
		if want[ev.campaignMessage] == nil {
			want[ev.campaignMessage] = newTally()
		}
		want[ev.campaignMessage].add(ev, names[ev.metric], placed)
	}
	rows := sink.decoded(t)
	require.NotEmpty(t, rows)
	withEvents := 0
	for _, row := range rows {
		m := row["campaign_message_id"].(string)
		w := want[m]
		if w == nil {
			w = newTally()
		} else {
			withEvents++
		}
		assertNumbers(t, m, row, w.statistics())
	}
	assert.Positive(t, withEvents, "lifetime numbers of campaigns sent in the history")
}

func TestMetricAggregatesAgreeWithServedEvents(t *testing.T) {
	s, c := startSandbox(t, nil)
	acct, err := Discover(context.Background(), c, true)
	require.NoError(t, err)
	def := defaultDef(t, "metric_aggregates", Config{StartDate: s.Now().AddDate(0, 0, -40)})
	sink, _, err := syncOnce(t, s, c, def, State{}, nil)
	require.NoError(t, err)
	want := map[string]*tally{} // metric id + day
	for _, ev := range servedEvents(t, c) {
		if !ev.at.Before(s.Now()) {
			continue
		}
		k := ev.metric + " " + floorUnit(unitDay, ev.at.In(acct.Location)).Format(wallClock)
		if want[k] == nil {
			want[k] = newTally()
		}
		want[k].count++
		want[k].cents += ev.cents
		want[k].profiles[ev.profile] = true
	}
	nonzero := 0
	for _, row := range sink.decoded(t) {
		k := row["metric_id"].(string) + " " + row["date"].(string)
		w := want[k]
		if w == nil {
			w = newTally()
		} else {
			nonzero++
		}
		assertNumbers(t, k, row, map[string]any{"count": w.count, "unique": int64(len(w.profiles)), "sum_value": float64(w.cents) / 100})
	}
	assert.Greater(t, nonzero, 100, "every metric's days")
}

func TestFormValuesAgreeWithFormActivity(t *testing.T) {
	s, c := startSandbox(t, nil)
	def := userDef(t, Config{StartDate: s.Now().AddDate(0, 0, -50)},
		`{"name":"forms","type":"form_values","group_by":["form_id","form_version_id"]}`)
	sink, _, err := syncOnce(t, s, c, def, State{}, nil)
	require.NoError(t, err)
	rows := sink.decoded(t)
	require.NotEmpty(t, rows)
	for _, row := range rows {
		from, err := time.Parse(time.RFC3339, row["period_start"].(string))
		require.NoError(t, err)
		to, err := time.Parse(time.RFC3339, row["period_end"].(string))
		require.NoError(t, err)
		var views, submits, viewsU int64
		for h := from; h.Before(to) && h.Before(s.Now()); h = h.Add(time.Hour) {
			a := s.FormActivity(row["form_version_id"].(string), h)
			views, submits = views+a.Views, submits+a.Submits
			viewsU += a.Views - a.Views/4
		}
		rate := 0.0
		if viewsU > 0 {
			rate = math.Min(1, float64(submits)/float64(viewsU))
		}
		assertNumbers(t, row["form_version_id"].(string)+" "+row["period_start"].(string), row,
			map[string]any{"viewed_form": views, "submits": submits, "viewed_form_uniques": viewsU, "submit_rate": rate})
	}
}
