package reports

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"time"
	_ "time/tzdata" // the account's timezone must resolve in a scratch image without a zoneinfo database

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// Account is what planning needs to know of the Klaviyo account: its timezone, in which Klaviyo cuts every
// report, and its metrics, among which the default conversion metric is found and over which the default
// metric_aggregates stream runs.
type Account struct {
	Location *time.Location
	Metrics  []Metric
}

// Metric is one metric of the account (GET /api/metrics).
type Metric struct {
	ID, Name string
	Created  time.Time
}

// Getter reads Klaviyo GET endpoints; *klaviyo.Client is one.
type Getter interface {
	Get(ctx context.Context, req klaviyo.Request) (*klaviyo.Document, error)
	Pages(ctx context.Context, req klaviyo.Request) iter.Seq2[*klaviyo.Document, error]
}

// Discover reads the account's timezone (GET /api/accounts, accounts:read) and, when withMetrics, its metrics
// (GET /api/metrics, metrics:read): one request, and a page per 200 metrics. The budgets are the stream table's,
// so these requests share the accounts and metrics streams' budgets.
func Discover(ctx context.Context, c Getter, withMetrics bool) (Account, error) {
	var acct Account
	xs, m := catalog.TierXS(), catalog.TierM()
	doc, err := c.Get(ctx, klaviyo.Request{Endpoint: "/api/accounts", Path: "/api/accounts",
		Budget: klaviyo.Budget{Burst: xs.Burst, PerMinute: xs.PerMinute}, Scopes: []string{"accounts:read"}})
	if err != nil {
		return acct, fmt.Errorf("reading the account's timezone for the report streams: %w", err)
	}
	if len(doc.Data) == 0 {
		return acct, fmt.Errorf("reading the account's timezone for the report streams: /api/accounts returned no account")
	}
	var a struct{ Timezone string }
	if err := json.Unmarshal(doc.Data[0].Attributes, &a); err != nil {
		return acct, fmt.Errorf("reading the account's timezone for the report streams: %w", err)
	}
	if acct.Location, err = time.LoadLocation(a.Timezone); err != nil || a.Timezone == "" {
		return acct, fmt.Errorf("the account's timezone %q is not an IANA timezone the report streams can cut days in", a.Timezone)
	}
	if !withMetrics {
		return acct, nil
	}
	req := klaviyo.Request{Endpoint: "/api/metrics", Path: "/api/metrics",
		Budget: klaviyo.Budget{Burst: m.Burst, PerMinute: m.PerMinute}, Scopes: []string{"metrics:read"}}
	for doc, err := range c.Pages(ctx, req) {
		if err != nil {
			return acct, fmt.Errorf("reading the account's metrics for the report streams: %w", err)
		}
		for _, r := range doc.Data {
			var attrs struct {
				Name    string `json:"name"`
				Created string `json:"created"`
			}
			if err := json.Unmarshal(r.Attributes, &attrs); err != nil {
				return acct, fmt.Errorf("reading metric %s for the report streams: %w", r.ID, err)
			}
			created, _ := time.Parse(time.RFC3339, attrs.Created) // zero when absent: sorts first, ties by id
			acct.Metrics = append(acct.Metrics, Metric{ID: r.ID, Name: attrs.Name, Created: created})
		}
	}
	return acct, nil
}

// conversionPreference is the order in which metric names are taken as the default conversion metric.
//
// Placed Order is the order event of every e-commerce integration (Shopify, WooCommerce, BigCommerce, Magento,
// and the API's own convention), the metric Klaviyo's campaign and flow reports credit revenue to, so with it
// conversion_value is revenue. An account without orders has no revenue to attribute; Active on Site (a visit
// after the message, from Klaviyo's onsite tracking) is then the closest thing to a conversion, and Clicked
// Email, which every account that sends email has, keeps the reports working where there is neither.
func conversionPreference() []string {
	return []string{"Placed Order", "Active on Site", "Clicked Email"}
}

// ChooseConversionMetric picks the default conversion metric of the campaign and flow reports and says why. Of
// several metrics with the preferred name (two stores, or a store and the API), the oldest is the account's
// main one. With none of the preferred names, the oldest metric is taken, so the reports still run. ok is false
// when the account has no metric at all.
func ChooseConversionMetric(metrics []Metric) (chosen Metric, why string, ok bool) {
	oldest := func(ms []Metric) Metric {
		return slices.MinFunc(ms, func(a, b Metric) int {
			return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
		})
	}
	for i, name := range conversionPreference() {
		var named []Metric
		for _, m := range metrics {
			if m.Name == name {
				named = append(named, m)
			}
		}
		if len(named) == 0 {
			continue
		}
		m := oldest(named)
		switch i {
		case 0:
			why = "the account's order metric, so conversion_value is attributed revenue"
		default:
			why = fmt.Sprintf("the account has no %s metric; %s is the closest conversion it records",
				conversionPreference()[0], name)
		}
		if len(named) > 1 {
			why += fmt.Sprintf(" (the oldest of %d metrics of that name)", len(named))
		}
		return m, why, true
	}
	if len(metrics) == 0 {
		return Metric{}, "", false
	}
	return oldest(metrics), "the account has none of Placed Order, Active on Site or Clicked Email; its oldest metric is used", true
}
