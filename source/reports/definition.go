package reports

import (
	"bytes"
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

const (
	// DefaultLookbackDays is how many days before today every sync reads again, so that conversions Klaviyo
	// attributes late reach rows already written (under the same key). Klaviyo's default attribution windows are
	// at most 5 days (email opens and clicks, SMS clicks), an account can lengthen them (to 30 days at most, as
	// agencies document), a campaign is reported on its send date while its opens, clicks and orders arrive for
	// weeks, and changing the attribution settings recomputes past numbers. 30 days covers the longest window,
	// and it costs nothing extra: a daily series request holds 60 days, so a daily sync still reads the lookback
	// and the new day in one request per report.
	DefaultLookbackDays = 30
	// DefaultHistoryDays is how far back a report's first sync reads when the config has no start_date (the
	// Reporting API keeps no "all history" key, and a values timeframe holds at most a year): two years.
	DefaultHistoryDays = 730
	// maxLookbackDays bounds report_lookback_days and lookback_days: re-reading more than a year every sync
	// would spend the daily quota on numbers that no longer move.
	maxLookbackDays = 365
)

// Config is what the report streams read from the connector's config.
type Config struct {
	// Reports is the raw JSON value of the "reports" option: a list of user-defined reports (nil: none).
	Reports []byte
	// StartDate is start_date: the first day every report reads. Zero means DefaultHistoryDays before the sync.
	StartDate time.Time
	// LookbackDays is report_lookback_days; nil means DefaultLookbackDays.
	LookbackDays *int
	// ConversionMetricID is report_conversion_metric_id: the conversion metric of the default campaign and flow
	// reports. "" means the account's Placed Order metric, found by name (see ChooseConversionMetric).
	ConversionMetricID string
}

// Timeframe is a fixed timeframe of a user-defined report: a named key (last_30_days…) or a custom Start and End,
// wall clocks in the account's timezone. A report with a timeframe is a snapshot, read whole on every sync.
type Timeframe struct {
	Key        string
	Start, End string
}

// Definition is one report stream: what every request of it asks for, and how far back it reads.
type Definition struct {
	// Name is the stream name.
	Name string
	Kind Kind
	// Default is true for the eight streams that exist with only an api_key.
	Default bool
	// Path is where the definition is in the config, for error messages ("reports[2]"; "" for defaults).
	Path string
	// Statistics are the report's statistics, or the measurements of metric aggregates, in request order.
	Statistics []string
	// GroupBy are the groupings of Reporting API reports, or the by dimensions of metric aggregates.
	GroupBy []string
	// Interval is the series interval (hourly…) or the aggregate interval (hour…); "" for values reports.
	Interval string
	// Period is the span of one row of an incremental values report (day, week, month); "" for campaign values,
	// keyed by message alone, and for snapshots.
	Period string
	// Filter is the Reporting API filter string; AggregateFilter are more filter terms of metric aggregates.
	Filter          string
	AggregateFilter []string
	// ConversionMetricID is the conversion metric of campaign and flow reports; "" means discovered.
	ConversionMetricID string
	// MetricID is the metric of a metric aggregate; "" (the default stream) means every metric of the account.
	MetricID string
	// Timeframe, when set, makes the report a snapshot; otherwise it is incremental from StartDate (or
	// HistoryDays before the sync) with LookbackDays re-read on every sync.
	Timeframe   *Timeframe
	StartDate   time.Time
	HistoryDays int
	// LookbackDays is how many days before today each sync reads again.
	LookbackDays int
}

// Incremental reports whether the stream is read incrementally (everything but snapshots).
func (d Definition) Incremental() bool { return d.Timeframe == nil }

// ConfigError lists what is wrong with the report definitions of a config, one sentence per problem, each
// naming the config path.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "; ") }

// userReport is one entry of the "reports" option as written.
type userReport struct {
	Name               string          `json:"name"`
	Type               string          `json:"type"`
	Statistics         []string        `json:"statistics"`
	Measurements       []string        `json:"measurements"`
	GroupBy            []string        `json:"group_by"`
	By                 []string        `json:"by"`
	Interval           string          `json:"interval"`
	Period             string          `json:"period"`
	Timeframe          json.RawMessage `json:"timeframe"`
	HistoryDays        *int            `json:"history_days"`
	Filter             json.RawMessage `json:"filter"`
	ConversionMetricID string          `json:"conversion_metric_id"`
	MetricID           string          `json:"metric_id"`
	LookbackDays       *int            `json:"lookback_days"`
}

// userReportFields are the properties a user-defined report may have, in the order the docs list them.
func userReportFields() []string {
	return []string{"name", "type", "statistics", "measurements", "group_by", "by", "interval", "period", "timeframe",
		"history_days", "filter", "conversion_metric_id", "metric_id", "lookback_days"}
}

// streamName is what a report name must look like: it becomes a table name in every warehouse.
var streamName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Definitions returns the eight default report streams and the user-defined ones of cfg, in that order. taken
// are the names of the connector's other streams, which a report may not reuse. Every problem of the
// definitions is reported at once in a *ConfigError.
func Definitions(cfg Config, taken []string) ([]Definition, error) {
	var problems []string
	lookback := DefaultLookbackDays
	if cfg.LookbackDays != nil {
		lookback = *cfg.LookbackDays
		if lookback < 0 || lookback > maxLookbackDays {
			problems = append(problems, fmt.Sprintf("report_lookback_days is %d: it must be between 0 and %d", lookback, maxLookbackDays))
			lookback = DefaultLookbackDays
		}
	}
	var defs []Definition
	for _, k := range Kinds() {
		d := Definition{Name: k.Stream, Kind: k, Default: true, Statistics: slices.Clone(k.Statistics),
			GroupBy: slices.Clone(k.GroupByDefault), StartDate: cfg.StartDate, HistoryDays: DefaultHistoryDays,
			LookbackDays: lookback}
		switch {
		case k.Aggregate:
			d.GroupBy, d.Interval = nil, "day"
		case k.Series:
			d.Interval = "daily"
		case !k.BySendDate:
			d.Period = unitMonth
		}
		if k.Messages {
			d.ConversionMetricID = cfg.ConversionMetricID
		}
		defs = append(defs, d)
	}
	names := map[string]string{}
	for _, n := range taken {
		names[n] = "another stream of the connector"
	}
	for _, d := range defs {
		names[d.Name] = "a default report stream"
	}
	raw := bytes.TrimSpace(cfg.Reports)
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var entries []json.RawMessage
		if err := json.Unmarshal(raw, &entries); err != nil {
			problems = append(problems, "reports must be a list of report definitions, each an object with name and type")
		}
		for i, e := range entries {
			d, errs := parseUser(fmt.Sprintf("reports[%d]", i), e, cfg, lookback)
			if len(errs) == 0 {
				if other, ok := names[d.Name]; ok {
					errs = append(errs, fmt.Sprintf("%s.name %q is already %s: choose another name", d.Path, d.Name, other))
				}
				names[d.Name] = "the name of " + d.Path
			}
			problems = append(problems, errs...)
			if len(errs) == 0 {
				defs = append(defs, d)
			}
		}
	}
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return defs, nil
}

// parseUser reads and checks one user-defined report. The checks are Klaviyo's own rules (stable.json), so a
// definition that passes them is never refused by Klaviyo for its shape.
func parseUser(path string, raw json.RawMessage, cfg Config, lookback int) (Definition, []string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Definition{}, []string{path + " must be an object with at least name and type"}
	}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, path+fmt.Sprintf(format, a...)) }
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(userReportFields(), k) {
			bad(": unknown property %q; a report has %s", k, strings.Join(userReportFields(), ", "))
		}
	}
	var u userReport
	if err := json.Unmarshal(raw, &u); err != nil {
		// A known property of the wrong type: name it.
		for _, k := range keys {
			var probe userReport
			if json.Unmarshal([]byte(`{"`+k+`":`+string(fields[k])+`}`), &probe) != nil {
				bad(".%s has the wrong type; see the README's report syntax", k)
			}
		}
		return Definition{}, errs
	}
	if !streamName.MatchString(u.Name) {
		bad(".name must be a stream name: lowercase letters, digits and _, starting with a letter, at most 63 characters")
	}
	k, ok := kindNamed(u.Type)
	if !ok {
		bad(".type %q is not a report type; use one of %s", u.Type, strings.Join(kindNames(), ", "))
		return Definition{}, errs
	}
	d := Definition{Name: u.Name, Kind: k, Path: path, StartDate: cfg.StartDate, HistoryDays: DefaultHistoryDays,
		LookbackDays: lookback, ConversionMetricID: u.ConversionMetricID, MetricID: u.MetricID}
	notFor := func(field, why string) { bad(".%s does not apply to %s reports: %s", field, k.Name, why) }

	// Statistics or measurements.
	list, listName, other := u.Statistics, "statistics", "measurements"
	if k.Aggregate {
		list, listName, other = u.Measurements, "measurements", "statistics"
	}
	if fields[other] != nil {
		notFor(other, "use "+listName)
	}
	d.Statistics = slices.Clone(k.Statistics)
	if list != nil {
		if len(list) == 0 {
			bad(".%s is empty: leave it out to read all of them, or name some of %s", listName, strings.Join(k.Statistics, ", "))
		}
		d.Statistics = nil
		for _, s := range list {
			switch {
			case !slices.Contains(k.Statistics, s):
				bad(".%s: %q is not one of the %s of %s reports (%s)", listName, s, listName, k.Name, strings.Join(k.Statistics, ", "))
			case !slices.Contains(d.Statistics, s):
				d.Statistics = append(d.Statistics, s)
			}
		}
	}

	// Groupings.
	switch {
	case k.Aggregate:
		if fields["group_by"] != nil {
			notFor("group_by", "use by")
		}
		for _, b := range u.By {
			if !slices.Contains(k.GroupBy, b) {
				bad(".by: %q is not a dimension of metric aggregates (%s)", b, strings.Join(k.GroupBy, ", "))
			} else if !slices.Contains(d.GroupBy, b) {
				d.GroupBy = append(d.GroupBy, b)
			}
		}
		if msg := columnClash(d.GroupBy); msg != "" {
			bad(".by: %s", msg)
		}
	case k.GroupBy == nil:
		if fields["group_by"] != nil {
			notFor("group_by", "Klaviyo returns one row per segment")
		}
		if fields["by"] != nil {
			notFor("by", "Klaviyo returns one row per segment")
		}
	default:
		if fields["by"] != nil {
			notFor("by", "use group_by")
		}
		d.GroupBy = slices.Clone(k.GroupByDefault)
		if u.GroupBy != nil {
			d.GroupBy = nil
			for _, g := range u.GroupBy {
				switch {
				case !slices.Contains(k.GroupBy, g):
					bad(".group_by: %q is not a grouping of %s reports (%s)", g, k.Name, strings.Join(k.GroupBy, ", "))
				case !slices.Contains(d.GroupBy, g):
					d.GroupBy = append(d.GroupBy, g)
				}
			}
			for _, need := range k.GroupByRequired {
				if !slices.Contains(d.GroupBy, need) {
					bad(".group_by must include %s: Klaviyo requires %s", need, strings.Join(k.GroupByRequired, " and "))
				}
			}
			for g, need := range k.Prereqs {
				if slices.Contains(d.GroupBy, g) && !slices.Contains(d.GroupBy, need) {
					bad(".group_by has %s without %s: Klaviyo needs them together", g, need)
				}
			}
		}
	}

	// Interval and period.
	interval := func(def, what string, allowed []string) {
		d.Interval = cmp.Or(u.Interval, def)
		if !slices.Contains(allowed, d.Interval) {
			bad(".interval %q is not %s (%s)", u.Interval, what, strings.Join(allowed, ", "))
		}
	}
	switch {
	case k.Aggregate:
		interval("day", "an interval of metric aggregates", aggregateIntervals())
	case k.Series:
		interval("daily", "a series interval", seriesIntervals())
	case u.Interval != "":
		notFor("interval", "a values report has one value per row; use a "+strings.Replace(k.Name, "values", "series", 1)+" report for intervals")
	}
	if u.Period != "" && (k.Series || k.Aggregate || k.BySendDate) {
		notFor("period", "only flow, form and segment values reports are read period by period")
	}

	// Timeframe or history.
	if len(fields["timeframe"]) > 0 {
		if u.HistoryDays != nil {
			bad(" has both timeframe and history_days: a report is either a snapshot of a timeframe or read incrementally from history_days ago")
		}
		if u.Period != "" {
			bad(" has both timeframe and period: a snapshot report is one timeframe")
		}
		tf, msg := parseTimeframe(fields["timeframe"], k)
		if msg != "" {
			bad(".timeframe %s", msg)
		}
		d.Timeframe = tf
	} else if !k.Series && !k.Aggregate && !k.BySendDate {
		d.Period = unitMonth
		if u.Period != "" {
			d.Period = u.Period
			if !slices.Contains(periods(), u.Period) {
				bad(".period %q is not a period (%s)", u.Period, strings.Join(periods(), ", "))
			}
		}
	}
	if u.HistoryDays != nil {
		d.HistoryDays, d.StartDate = *u.HistoryDays, time.Time{}
		if *u.HistoryDays < 1 {
			bad(".history_days must be at least 1")
		}
	}
	if u.LookbackDays != nil {
		d.LookbackDays = *u.LookbackDays
		if *u.LookbackDays < 0 || *u.LookbackDays > maxLookbackDays {
			bad(".lookback_days must be between 0 and %d", maxLookbackDays)
		}
		if d.Timeframe != nil {
			bad(".lookback_days does not apply to a report with a timeframe: it is read whole on every sync")
		}
	}

	// Filter, conversion metric and metric.
	if len(fields["filter"]) > 0 && !bytes.Equal(fields["filter"], []byte("null")) {
		if k.Aggregate {
			if err := json.Unmarshal(fields["filter"], &d.AggregateFilter); err != nil {
				bad(".filter must be a list of filter strings for metric aggregates, e.g. [\"equals($attributed_channel,\\\"email\\\")\"]")
			}
			for _, f := range d.AggregateFilter {
				if strings.Contains(f, "datetime") {
					bad(".filter must not filter on datetime: the connector sets the time range of every request")
				}
			}
		} else if err := json.Unmarshal(fields["filter"], &d.Filter); err != nil || strings.TrimSpace(d.Filter) == "" {
			bad(".filter must be a filter string such as equals(send_channel,\"email\")")
		}
	}
	if u.ConversionMetricID != "" && !k.Messages {
		notFor("conversion_metric_id", "only campaign and flow reports have conversion statistics")
	}
	if k.Aggregate && u.MetricID == "" {
		bad(".metric_id is required: a metric aggregate reads one metric (the default stream metric_aggregates reads them all)")
	}
	if !k.Aggregate && u.MetricID != "" {
		notFor("metric_id", "use conversion_metric_id for the conversion metric of campaign and flow reports")
	}
	return d, errs
}

// parseTimeframe reads a timeframe: a key name, or {"key": …}, or {"start": …, "end": …}. It returns a message
// (after ".timeframe ") when it is wrong.
func parseTimeframe(raw json.RawMessage, k Kind) (*Timeframe, string) {
	var key string
	if json.Unmarshal(raw, &key) == nil {
		raw = json.RawMessage(`{"key":` + string(raw) + `}`)
	}
	var tf struct{ Key, Start, End string }
	if err := json.Unmarshal(raw, &tf); err != nil {
		return nil, "must be a key such as \"last_30_days\" or an object with start and end"
	}
	switch {
	case tf.Key != "" && (tf.Start != "" || tf.End != ""):
		return nil, "has a key and a start or end: give one or the other"
	case tf.Key != "":
		if !slices.Contains(timeframeKeys(), tf.Key) {
			return nil, fmt.Sprintf("key %q is not one of Klaviyo's timeframes (%s)", tf.Key, strings.Join(timeframeKeys(), ", "))
		}
		return &Timeframe{Key: tf.Key}, ""
	}
	start, okStart := parseWall(tf.Start, time.UTC)
	end, okEnd := parseWall(tf.End, time.UTC)
	switch {
	case !okStart || !okEnd:
		return nil, "needs start and end as dates or date-times, e.g. 2025-01-01 or 2025-01-01T00:00:00"
	case !end.After(start):
		return nil, "ends before it starts: end must be after start"
	case !k.Series && !k.Aggregate && start.AddDate(1, 0, 0).Before(end):
		return nil, "is longer than a year, Klaviyo's longest timeframe for a values report; use a series report or a shorter timeframe"
	case !k.DataSince.IsZero() && start.Before(k.DataSince):
		return nil, fmt.Sprintf("starts before %s: Klaviyo has no %s data before then", k.DataSince.Format(time.DateOnly), k.Name)
	}
	return &Timeframe{Start: tf.Start, End: tf.End}, ""
}

// columnClash reports two by dimensions whose column names are the same ("" when none).
func columnClash(dims []string) string {
	seen := map[string]string{}
	for _, d := range dims {
		c := columnName(d)
		if prev, ok := seen[c]; ok {
			return fmt.Sprintf("%q and %q are both written as column %s: keep one", prev, d, c)
		}
		seen[c] = d
	}
	return ""
}

// columnName turns a grouping or dimension into a column name warehouses accept: lowercase letters, digits and
// _ ("$attributed_message" → attributed_message, "Campaign Name" → campaign_name).
func columnName(dim string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(dim) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
			continue
		}
		under = true
	}
	return b.String()
}
