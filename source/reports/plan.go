package reports

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// Request is one report request of a plan: the POST, and the window of the account's time it reads.
type Request struct {
	klaviyo.PostRequest
	// Part is "" for Reporting API reports and the metric id for metric aggregates: each part has a cursor.
	Part string
	// From and To bound the window [From, To) in the account's timezone. PeriodEnd is the nominal end of a values
	// period (To is the sync's moment for the current period).
	From, To, PeriodEnd time.Time
	// Final is true when every day of the window is older than the lookback: once read, it is never read again.
	Final bool
	// ConversionMetricID and MetricID are what the rows' conversion_metric_id and metric_id columns say.
	ConversionMetricID, MetricID string
	// Resumed is true when URL is the links.next a daily quota cut the window short at.
	Resumed bool
}

// Plan is the list of requests a report stream needs now, in the order they must be read, and what today's
// quota leaves room for.
type Plan struct {
	Definition Definition
	// Requests are every request the stream needs, oldest window first (per part). Each reads one window with all
	// the definition's statistics, every entity (no filter but the user's) and the longest timeframe the
	// endpoint and interval allow. A request whose answer has more pages spends one request per page.
	Requests []Request
	// Fits is how many of Requests the day's quota has room for when planned (their first pages); Left is what the
	// endpoint had left today; ResumeAt is when the quota day turns, set when Fits < len(Requests).
	Fits     int
	Left     int
	ResumeAt time.Time
	// FinalBoundary is today's midnight minus the lookback, on the grid of the report's unit: days before it are
	// final.
	FinalBoundary time.Time
	// Notes say what the plan chose and why (the conversion metric, a restart), for the log.
	Notes []string

	loc    *time.Location
	prev   State
	digest string
	ledger *Ledger
}

// Plan lists the requests of def for a sync starting at now, from the stream's previous state and the account.
// It sends nothing: the same inputs always give the same requests, byte for byte.
func (def Definition) Plan(prev State, now time.Time, acct Account, ledger *Ledger) (*Plan, error) {
	if acct.Location == nil {
		return nil, errors.New("planning report stream " + def.Name + ": the account's timezone is unknown (Discover first)")
	}
	if ledger == nil {
		return nil, errors.New("planning report stream " + def.Name + ": no quota ledger")
	}
	loc := acct.Location
	n := now.In(loc).Truncate(time.Second)
	p := &Plan{Definition: def, loc: loc, ledger: ledger}

	conv, note, ok := def.conversionMetric(acct)
	if note != "" {
		p.Notes = append(p.Notes, note)
	}
	if !ok {
		p.prev = carryQuota(prev)
		return p, nil
	}
	p.digest = def.digest(conv)
	p.prev = prev
	switch {
	case prev.Definition != "" && prev.Definition != p.digest:
		p.Notes = append(p.Notes, def.Name+": the report's definition changed since the last sync, so its rows are read again from the history start (under the same keys; nothing is cleared)")
		p.prev = carryQuota(prev)
	case prev.Timezone != "" && prev.Timezone != loc.String():
		p.Notes = append(p.Notes, fmt.Sprintf("%s: the account's timezone changed from %s to %s, so days are cut anew and read again from the history start", def.Name, prev.Timezone, loc.String()))
		p.prev = carryQuota(prev)
	}
	for _, part := range def.parts(acct) {
		spans := p.spans(part, n)
		for i, sp := range spans.windows {
			req, err := def.request(sp, spans.key, conv, part, loc)
			if err != nil {
				return nil, err
			}
			if def.Incremental() {
				req.Final = !sp.To.After(p.FinalBoundary)
				if pd := p.prev.Pending; i == 0 && pd != nil && pd.Part == part && pd.From.Equal(sp.From) && pd.To.Equal(sp.To) {
					req.URL, req.Resumed = pd.Next, true
				}
			}
			p.Requests = append(p.Requests, req)
		}
	}
	p.Fits, p.Left = len(p.Requests), -1
	if def.Kind.Daily > 0 {
		p.Left = ledger.Left(def.Kind.Endpoint)
		p.Fits = min(len(p.Requests), p.Left)
		if p.Fits < len(p.Requests) {
			p.ResumeAt = ledger.ResumeAt()
		}
	}
	return p, nil
}

// conversionMetric is the conversion metric of a campaign or flow report: the definition's, or the one
// ChooseConversionMetric picks, with a note saying which and why. ok is false when there is none to pick (an
// account without metrics has no conversions to report).
func (def Definition) conversionMetric(acct Account) (id, note string, ok bool) {
	if !def.Kind.Messages || def.ConversionMetricID != "" {
		return def.ConversionMetricID, "", true
	}
	m, why, ok := ChooseConversionMetric(acct.Metrics)
	if !ok {
		return "", def.Name + ": the account has no metric yet, so no campaign or flow has conversions to report; nothing to read", false
	}
	return m.ID, fmt.Sprintf("%s: conversion metric %s (%s): %s; set report_conversion_metric_id to choose another",
		def.Name, m.Name, m.ID, why), true
}

// parts are the cursors of a stream: one ("") for a Reporting API report, one per metric for metric aggregates
// (every metric of the account, by id, for the default stream).
func (def Definition) parts(acct Account) []string {
	if !def.Kind.Aggregate {
		return []string{""}
	}
	if def.MetricID != "" {
		return []string{def.MetricID}
	}
	var ids []string
	for _, m := range acct.Metrics {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// planned are the windows of one part, and the named timeframe they are sent as ("" for custom timeframes).
type planned struct {
	windows []span
	key     string
}

// spans cuts the windows of one part at the sync's moment n: a snapshot's timeframe, or for an incremental
// report the days from the part's cursor (its history start on a first sync) up to n. It also sets the final
// boundary.
func (p *Plan) spans(part string, n time.Time) planned {
	def := p.Definition
	unit := def.unit()
	limit := func(s time.Time) time.Time { return def.Kind.maxEnd(def.Interval, s) }
	if def.Period != "" && def.Timeframe == nil {
		limit = func(s time.Time) time.Time { return nextUnit(unit, s) }
	}
	if def.Timeframe != nil {
		windows, key := def.snapshotSpans(n, unit, limit)
		return planned{windows: windows, key: key}
	}
	h := def.historyStart(n, unit)
	p.FinalBoundary = maxTime(h, floorUnit(unit, floorUnit(unitDay, n).AddDate(0, 0, -def.LookbackDays)))
	// From the cursor, or from the final boundary when the cursor is past it (a longer lookback than before):
	// every sync reads at least the lookback again.
	start := h
	if c, ok := p.prev.FinalTo[part]; ok {
		if c.After(n) {
			// A cursor no sync could have written (a cursor never passes its sync): nothing is due, as Airbyte's
			// acceptance tests expect of a state from the future.
			p.Notes = append(p.Notes, fmt.Sprintf("%s: the state's cursor %s is after the sync; nothing to read", def.Name, c.Format(time.RFC3339)))
			return planned{}
		}
		start = maxTime(h, minTime(floorUnit(unit, c.In(n.Location())), p.FinalBoundary))
	}
	return planned{windows: split(unit, start, n, limit)}
}

// carryQuota is a fresh state that keeps only what was spent of today's quota: spent requests stay spent.
func carryQuota(s State) State { return State{Quota: s.Quota} }

// unit is the grid the report's windows, buckets and periods lie on.
func (def Definition) unit() string {
	switch {
	case def.Interval != "":
		return intervalUnit(def.Interval)
	case def.Period != "":
		return def.Period
	}
	return unitDay
}

// historyStart is the first moment an incremental report reads: start_date (or HistoryDays before today), not
// before the kind's first day of data, on the grid of unit.
func (def Definition) historyStart(now time.Time, unit string) time.Time {
	loc := now.Location()
	h := floorUnit(unitDay, now).AddDate(0, 0, -def.HistoryDays)
	if !def.StartDate.IsZero() {
		h = def.StartDate.In(loc)
	}
	var since time.Time
	if s := def.Kind.DataSince; !s.IsZero() {
		since = time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, loc)
		if h.Before(since) {
			h = since
		}
	}
	start := floorUnit(unit, h)
	if start.Before(since) {
		start = nextUnit(unit, start) // Klaviyo refuses a timeframe that starts before its data does
	}
	return start
}

// snapshotSpans are the windows of a report with a fixed timeframe. A named timeframe that one request can hold
// is sent by name (named is its key), so Klaviyo resolves it exactly as its UI does; one that is too long for the
// series interval is resolved here and split.
func (def Definition) snapshotSpans(now time.Time, unit string, limit func(time.Time) time.Time) (spans []span, named string) {
	tf := def.Timeframe
	var whole span
	if tf.Key != "" {
		whole, _ = namedSpan(tf.Key, now)
		if !whole.To.After(limit(whole.From)) {
			return []span{whole}, tf.Key
		}
	} else {
		whole.From, _ = parseWall(tf.Start, now.Location())
		whole.To, _ = parseWall(tf.End, now.Location())
		whole.To = minTime(whole.To, now) // nothing has happened after the sync
	}
	return split(unit, whole.From, whole.To, limit), ""
}

// reportBody is the JSON:API body of a Reporting API request, attributes in the spec's order.
type reportBody struct {
	Data struct {
		Type       string      `json:"type"`
		Attributes reportQuery `json:"attributes"`
	} `json:"data"`
}

type reportQuery struct {
	Statistics         []string   `json:"statistics"`
	Timeframe          timeframeQ `json:"timeframe"`
	Interval           string     `json:"interval,omitempty"`
	ConversionMetricID string     `json:"conversion_metric_id,omitempty"`
	GroupBy            []string   `json:"group_by,omitempty"`
	Filter             string     `json:"filter,omitempty"`
}

// timeframeQ is a timeframe as a request writes it: a key, or a start and an end.
type timeframeQ struct {
	Key   string `json:"key,omitempty"`
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// aggregateBody is the JSON:API body of a metric aggregate query.
type aggregateBody struct {
	Data struct {
		Type       string         `json:"type"`
		Attributes aggregateQuery `json:"attributes"`
	} `json:"data"`
}

type aggregateQuery struct {
	MetricID     string   `json:"metric_id"`
	Measurements []string `json:"measurements"`
	Interval     string   `json:"interval"`
	By           []string `json:"by,omitempty"`
	Timezone     string   `json:"timezone"`
	Filter       []string `json:"filter"`
}

// aggregateTimezone is the account's timezone as metric aggregates accept it: Klaviyo refuses a few IANA names
// whose older aliases mean the same zone.
func aggregateTimezone(loc *time.Location) string {
	switch name := loc.String(); name {
	case "Europe/Kyiv":
		return "Europe/Kiev"
	case "Pacific/Kanton":
		return "Pacific/Enderbury"
	default:
		return name
	}
}

// request builds the request reading one window: every statistic, every entity, the definition's groupings.
func (def Definition) request(sp span, key, conv, part string, loc *time.Location) (Request, error) {
	req := Request{Part: part, From: sp.From, To: sp.To, ConversionMetricID: conv, MetricID: part}
	if def.Period != "" && def.Timeframe == nil {
		req.PeriodEnd = nextUnit(def.Period, sp.From)
	}
	var body any
	if def.Kind.Aggregate {
		var b aggregateBody
		b.Data.Type = def.Kind.Type
		b.Data.Attributes = aggregateQuery{MetricID: part, Measurements: def.Statistics, Interval: def.Interval,
			By: def.GroupBy, Timezone: aggregateTimezone(loc),
			Filter: append([]string{
				"greater-or-equal(datetime," + sp.From.Format(wallClock) + ")",
				"less-than(datetime," + sp.To.Format(wallClock) + ")",
			}, def.AggregateFilter...)}
		body = b
	} else {
		var b reportBody
		b.Data.Type = def.Kind.Type
		tf := timeframeQ{Start: sp.From.Format(wallClock), End: sp.To.Format(wallClock)}
		if key != "" {
			tf = timeframeQ{Key: key}
		}
		b.Data.Attributes = reportQuery{Statistics: def.Statistics, Timeframe: tf, Interval: def.Interval,
			GroupBy: def.GroupBy, Filter: def.Filter}
		if def.Kind.Messages {
			b.Data.Attributes.ConversionMetricID = conv
		}
		body = b
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return Request{}, fmt.Errorf("encoding a request of report stream %s: %w", def.Name, err)
	}
	req.PostRequest = klaviyo.PostRequest{Body: raw, Request: klaviyo.Request{Endpoint: def.Kind.Endpoint,
		Budget: def.Kind.Budget, Scopes: []string{def.Kind.Scope}}}
	return req, nil
}

// digest identifies what the stream's requests ask for (not when): rows read under another digest are other
// rows. The lookback and the history start are left out, since changing them changes which days are read, not
// what a row is.
func (def Definition) digest(conv string) string {
	b, _ := json.Marshal(map[string]any{ // strings and lists of strings always encode
		"kind": def.Kind.Name, "statistics": def.Statistics, "group_by": def.GroupBy, "interval": def.Interval,
		"period": def.Period, "filter": def.Filter, "aggregate_filter": def.AggregateFilter,
		"conversion_metric_id": conv, "metric_id": def.MetricID, "timeframe": def.Timeframe,
	})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
