package reports

import (
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// Kind is one of Klaviyo's eight report endpoints with the rules its request bodies follow (stable.json, revision
// 2026-07-15; a test holds the lists equal to the spec's enums).
type Kind struct {
	// Name is the report type as the config writes it, e.g. flow_series.
	Name string
	// Stream is the name of the kind's default stream; names are part of the interface.
	Stream string
	// Endpoint is the API path, and Type the JSON:API data.type of its bodies.
	Endpoint string
	Type     string
	// Scope is the API key scope the endpoint needs.
	Scope string
	// Series kinds take an interval and answer a list per statistic, aligned with date_times.
	Series bool
	// Messages kinds (campaign and flow reports) require conversion_metric_id on every request.
	Messages bool
	// BySendDate is true for campaign values: Klaviyo reports a campaign in the timeframe holding its send time,
	// with its numbers to date, so rows are keyed by message alone and windows never overlap.
	BySendDate bool
	// Aggregate is true for metric aggregates, whose body has measurements, by and a datetime filter instead.
	Aggregate bool
	// Statistics are the statistics the endpoint accepts (measurements for metric aggregates).
	Statistics []string
	// GroupBy, GroupByDefault and GroupByRequired are the group_by values, Klaviyo's default, and the values a
	// request must keep; Prereqs maps a value to the one it needs beside it (form_version_id needs form_id).
	GroupBy, GroupByDefault, GroupByRequired []string
	Prereqs                                  map[string]string
	// Identity are groupings every result carries without being asked (segment reports take no group_by and
	// answer groupings {"segment_id": …}).
	Identity []string
	// Labels maps a grouping that names something to the grouping that identifies it (flow_name to flow_id): a
	// label is a row's key only when its id is not grouped, so a renamed flow keeps its rows' keys.
	Labels map[string]string
	// DataSince is the first day the endpoint has data for (segments: June 1st 2023), zero when unbounded.
	DataSince time.Time
	// Daily is the endpoint's daily request quota at Klaviyo (0: none).
	Daily int
	// Budget is the endpoint's per-second and per-minute limit.
	Budget klaviyo.Budget
}

// messageStatistics are the 31 statistics of campaign and flow reports, integer ones first.
func messageStatistics() []string {
	return []string{
		"bounced", "bounced_or_failed", "clicks", "clicks_unique", "conversion_uniques", "conversions", "delivered",
		"failed", "message_segment_count_sum", "opens", "opens_unique", "recipients", "spam_complaints",
		"unsubscribe_uniques", "unsubscribes",
		"average_order_value", "bounce_rate", "bounced_or_failed_rate", "click_rate", "click_to_open_rate",
		"conversion_rate", "conversion_value", "delivery_rate", "failed_rate", "open_rate", "revenue_per_recipient",
		"spam_complaint_rate", "text_message_credit_usage_amount", "text_message_roi", "text_message_spend",
		"unsubscribe_rate",
	}
}

func formStatistics() []string {
	return []string{
		"closed_form", "closed_form_uniques", "qualified_form", "qualified_form_uniques", "submits",
		"submitted_form_step", "submitted_form_step_uniques", "viewed_form", "viewed_form_step",
		"viewed_form_step_uniques", "viewed_form_uniques", "submit_rate",
	}
}

func segmentStatistics() []string {
	return []string{"members_added", "members_removed", "net_members_changed", "total_members"}
}

func measurements() []string { return []string{"count", "unique", "sum_value"} }

// isInteger tells the statistics and measurements that count things, typed integer in a row's schema; every
// other one (rates, money, credits) is a number.
func isInteger(stat string) bool {
	switch stat {
	case "bounced", "bounced_or_failed", "clicks", "clicks_unique", "conversion_uniques", "conversions", "delivered",
		"failed", "message_segment_count_sum", "opens", "opens_unique", "recipients", "spam_complaints",
		"unsubscribe_uniques", "unsubscribes",
		"closed_form", "closed_form_uniques", "qualified_form", "qualified_form_uniques", "submits",
		"submitted_form_step", "submitted_form_step_uniques", "viewed_form", "viewed_form_step",
		"viewed_form_step_uniques", "viewed_form_uniques",
		"members_added", "members_removed", "net_members_changed", "total_members",
		"count", "unique":
		return true
	}
	return false
}

// aggregateDimensions are the by values metric aggregates accept.
func aggregateDimensions() []string {
	return []string{
		"$attributed_channel", "$attributed_flow", "$attributed_message", "$attributed_variation",
		"$campaign_channel", "$flow", "$flow_channel", "$message", "$message_send_cohort", "$usage_amount",
		"$value_currency", "$variation", "$variation_send_cohort", "Bot Click", "Bounce Type", "Campaign Name",
		"Client Canonical", "Client Name", "Client Type", "Email Domain", "Failure Source", "Failure Type",
		"From Number", "From Phone Region", "Inbox Provider", "List", "Message Format", "Message Name",
		"Message Type", "Method", "Segment Count", "Subject", "To Number", "To Phone Region", "URL", "form_id",
	}
}

// reportBudget is the Reporting API's published limit: 1 a second, 2 a minute (and 225 a day, Kind.Daily).
func reportBudget() klaviyo.Budget { return klaviyo.Budget{Burst: 1, PerMinute: 2} }

// dailyQuota is the Reporting API's published daily quota per endpoint and account.
const dailyQuota = 225

// reporting completes a Reporting API kind from its subject (campaign, flow, form, segment) and shape: the
// names, path and data.type all follow Klaviyo's one pattern, and all seven share the budget and daily quota.
func reporting(subject string, series bool, k Kind) Kind {
	shape := "values"
	if series {
		shape = "series"
	}
	k.Name, k.Series = subject+"_"+shape, series
	k.Stream = k.Name + "_reports"
	k.Endpoint = "/api/" + subject + "-" + shape + "-reports"
	k.Type = subject + "-" + shape + "-report"
	k.Daily, k.Budget = dailyQuota, reportBudget()
	return k
}

// Kinds returns the eight report kinds in catalog order: a fresh slice, so no caller can change another's.
func Kinds() []Kind {
	flow := func(series bool) Kind {
		return reporting("flow", series, Kind{Scope: "flows:read", Messages: true, Statistics: messageStatistics(),
			GroupBy: []string{"flow_id", "flow_message_id", "flow_message_name", "flow_name", "send_channel", "tag_id",
				"tag_name", "text_message_format", "variation", "variation_name"},
			GroupByDefault:  []string{"flow_id", "flow_message_id", "send_channel"},
			GroupByRequired: []string{"flow_id", "flow_message_id"},
			Labels: map[string]string{"flow_name": "flow_id", "flow_message_name": "flow_message_id", "tag_name": "tag_id",
				"variation_name": "variation"}})
	}
	form := func(series bool) Kind {
		return reporting("form", series, Kind{Scope: "forms:read", Statistics: formStatistics(),
			GroupBy: []string{"form_id", "form_version_id"}, GroupByDefault: []string{"form_id"},
			Prereqs: map[string]string{"form_version_id": "form_id"}})
	}
	segment := func(series bool) Kind {
		return reporting("segment", series, Kind{Scope: "segments:read", Statistics: segmentStatistics(),
			Identity: []string{"segment_id"}, DataSince: time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)})
	}
	campaign := reporting("campaign", false, Kind{Scope: "campaigns:read", Messages: true, BySendDate: true,
		Statistics: messageStatistics(),
		GroupBy: []string{"campaign_id", "campaign_message_id", "campaign_message_name", "group", "group_name",
			"send_channel", "tag_id", "tag_name", "text_message_format", "variation", "variation_name"},
		GroupByDefault:  []string{"campaign_id", "campaign_message_id", "send_channel"},
		GroupByRequired: []string{"campaign_id", "campaign_message_id"},
		Labels: map[string]string{"campaign_message_name": "campaign_message_id", "group_name": "group",
			"tag_name": "tag_id", "variation_name": "variation"}})
	return []Kind{
		campaign, flow(false), flow(true), form(false), form(true), segment(false), segment(true),
		{Name: "metric_aggregates", Stream: "metric_aggregates", Endpoint: "/api/metric-aggregates",
			Type: "metric-aggregate", Scope: "metrics:read", Aggregate: true, Statistics: measurements(),
			GroupBy: aggregateDimensions(), Budget: klaviyo.Budget{Burst: 3, PerMinute: 60}},
	}
}

// kindNamed returns the kind of a config type name.
func kindNamed(name string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// kindNames lists the config type names, for error messages.
func kindNames() []string {
	var out []string
	for _, k := range Kinds() {
		out = append(out, k.Name)
	}
	return out
}

// Grid units: windows, series buckets and value periods start on them, in the account's timezone.
const (
	unitHour  = "hour"
	unitDay   = "day"
	unitWeek  = "week"
	unitMonth = "month"
)

// intervalUnit maps a series interval (hourly…) or an aggregate interval (hour…) to its grid unit.
func intervalUnit(interval string) string {
	switch interval {
	case "hourly", "hour":
		return unitHour
	case "weekly", "week":
		return unitWeek
	case "monthly", "month":
		return unitMonth
	}
	return unitDay
}

// maxEnd is the latest end a request starting at start may have: the spec's one year for every timeframe, and
// for series the interval's own limit (hourly 7 days, daily 60 days, monthly 52 weeks). Metric aggregates
// document none; a year keeps each answer a year of buckets at most.
func (k Kind) maxEnd(interval string, start time.Time) time.Time {
	year := start.AddDate(1, 0, 0)
	if !k.Series {
		return year
	}
	switch interval {
	case "hourly":
		return start.AddDate(0, 0, 7)
	case "daily":
		return start.AddDate(0, 0, 60)
	case "monthly":
		return start.AddDate(0, 0, 7*52)
	}
	return year
}

// seriesIntervals and aggregateIntervals are the interval values of series reports and of metric aggregates.
func seriesIntervals() []string    { return []string{"hourly", "daily", "weekly", "monthly"} }
func aggregateIntervals() []string { return []string{"hour", "day", "week", "month"} }

// periods are the value periods of incremental values reports (other than campaign values): each is a row per
// entity and one request.
func periods() []string { return []string{"day", "week", "month"} }

// timeframeKeys are the named timeframes of the Reporting API.
func timeframeKeys() []string {
	return []string{"today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year",
		"last_year", "last_7_days", "last_30_days", "last_90_days", "last_365_days", "last_3_months",
		"last_12_months"}
}
