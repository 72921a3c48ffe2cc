package reports

import (
	"fmt"
	"slices"

	json "github.com/goccy/go-json"
)

// column is one field of a report row.
type column struct {
	name string
	// source is where the value comes from: a grouping or dimension name, a statistic, or one of the fixed
	// columns (conversion_metric_id, metric_id, date, period_start, period_end).
	source string
	kind   columnKind
	key    bool
	doc    string
}

type columnKind int

const (
	colGrouping columnKind = iota
	colStatistic
	colConversionMetric
	colMetric
	colDate
	colPeriodStart
	colPeriodEnd
)

// columns lists a definition's row fields in the order rows write them: key columns first, then labels, then
// statistics.
//
// The key is unique by construction: Klaviyo returns one result per distinct tuple of the requested groupings
// (per date, for a series), so the groupings plus the date identify a row; a label (flow_name) is left out of
// the key when the id it names (flow_id) is grouped too, since it is a function of that id and may change. A
// campaign or flow row is also keyed by its conversion metric, whose choice changes every conversion number; a
// period row by its period's start; a metric aggregate by its metric.
func (d Definition) columns() []column {
	var key, labels, stats []column
	if d.Kind.Aggregate {
		key = append(key, column{name: "metric_id", kind: colMetric, key: true, doc: "The metric whose events are aggregated."})
	}
	for _, g := range slices.Concat(d.Kind.Identity, d.GroupBy) {
		id, isLabel := d.Kind.Labels[g]
		c := column{name: columnName(g), source: g, kind: colGrouping, key: !isLabel || !slices.Contains(d.GroupBy, id)}
		if d.Kind.Aggregate {
			c.doc = fmt.Sprintf("The value of the %s dimension (\"\" when the event has none).", g)
		} else {
			c.doc = fmt.Sprintf("Grouping %s of the result.", g)
		}
		if c.key {
			key = append(key, c)
		} else {
			labels = append(labels, c)
		}
	}
	if d.Kind.Messages {
		key = append(key, column{name: "conversion_metric_id", kind: colConversionMetric, key: true,
			doc: "The metric counted as a conversion (conversions, conversion_value, rates and values built on them)."})
	}
	switch {
	case d.Kind.Series || d.Kind.Aggregate:
		key = append(key, column{name: "date", kind: colDate, key: true,
			doc: fmt.Sprintf("Start of the %s interval, in the account's timezone.", d.Interval)})
	case d.Period != "" && d.Timeframe == nil:
		key = append(key, column{name: "period_start", kind: colPeriodStart, key: true,
			doc: fmt.Sprintf("Start of the %s the values cover, in the account's timezone.", d.Period)})
		labels = append(labels, column{name: "period_end", kind: colPeriodEnd,
			doc: fmt.Sprintf("End of the %s (exclusive); the current one is read up to the sync.", d.Period)})
	}
	for _, s := range d.Statistics {
		stats = append(stats, column{name: s, source: s, kind: colStatistic})
	}
	return slices.Concat(key, labels, stats)
}

// KeyProperties are the primary key of the stream's rows.
func (d Definition) KeyProperties() []string {
	var out []string
	for _, c := range d.columns() {
		if c.key {
			out = append(out, c.name)
		}
	}
	return out
}

// CursorField is the row field that orders an incremental stream's rows (date, or period_start), "" when the
// rows have none: campaign values are keyed by message (Klaviyo reports a campaign on its send date without
// saying which) and snapshots are read whole.
func (d Definition) CursorField() string {
	if d.Timeframe != nil {
		return ""
	}
	for _, c := range d.columns() {
		if c.kind == colDate || c.kind == colPeriodStart {
			return c.name
		}
	}
	return ""
}

// Scopes are the API key scopes the stream needs: the report's own, accounts:read to learn the account's
// timezone, and metrics:read when a metric is looked up (the default conversion metric, or every metric).
func (d Definition) Scopes() []string {
	out := []string{d.Kind.Scope, "accounts:read"}
	if d.Kind.Messages && d.ConversionMetricID == "" {
		out = append(out, "metrics:read")
	}
	return out
}

// Doc is the stream's one-line description for the catalog and the README.
func (d Definition) Doc() string {
	what := map[string]string{
		"campaign_values":   "Campaign message performance, lifetime to date, by send date",
		"flow_values":       "Flow message performance",
		"flow_series":       "Flow message performance",
		"form_values":       "Signup form performance",
		"form_series":       "Signup form performance",
		"segment_values":    "Segment membership changes",
		"segment_series":    "Segment membership changes",
		"metric_aggregates": "Event counts, unique profiles and values of a metric",
	}[d.Kind.Name]
	if d.Kind.Aggregate && d.MetricID == "" {
		what = "Event counts, unique profiles and values of every metric"
	}
	var per string
	switch {
	case d.Timeframe != nil && d.Timeframe.Key != "":
		per = " over " + d.Timeframe.Key
	case d.Timeframe != nil:
		per = fmt.Sprintf(" from %s to %s", d.Timeframe.Start, d.Timeframe.End)
	case d.Period != "":
		per = " per " + d.Period
	}
	if d.Interval != "" {
		u := intervalUnit(d.Interval)
		per += ", " + u + " by " + u
	}
	return fmt.Sprintf("%s%s (Klaviyo's %s).", what, per, d.Kind.Endpoint)
}

// Schema is the JSON Schema of the stream's rows: every column typed, key columns never null, statistics integer
// when they count and number otherwise.
func (d Definition) Schema() []byte {
	props := map[string]any{}
	for _, c := range d.columns() {
		p := map[string]any{}
		switch c.kind {
		case colStatistic:
			p["type"] = []string{"number", "null"}
			if isInteger(c.source) {
				p["type"] = []string{"integer", "null"}
			}
		case colDate, colPeriodStart, colPeriodEnd:
			p["type"], p["format"] = "string", "date-time"
		default:
			p["type"] = "string"
			if !c.key {
				p["type"] = []string{"string", "null"}
			}
		}
		if c.doc != "" {
			p["description"] = c.doc
		}
		props[c.name] = p
	}
	b, _ := json.Marshal(map[string]any{ // maps of strings and lists always encode
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"type":                 "object",
		"additionalProperties": true,
		"properties":           props,
	})
	return b
}
