package reports

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"

	json "github.com/goccy/go-json"
)

// reportAttributes is data.attributes of a report answer: results and date_times for the Reporting API, data and
// dates for metric aggregates.
type reportAttributes struct {
	Results []struct {
		Groupings  map[string]json.RawMessage `json:"groupings"`
		Statistics map[string]json.RawMessage `json:"statistics"`
	} `json:"results"`
	DateTimes []string `json:"date_times"`
	Dates     []string `json:"dates"`
	Data      []struct {
		Dimensions   []json.RawMessage          `json:"dimensions"`
		Measurements map[string]json.RawMessage `json:"measurements"`
	} `json:"data"`
}

// cell is one result (or aggregate row) seen through the columns: its groupings by name and its statistics,
// each a value or a list aligned with the dates.
type cell struct {
	groupings  map[string]json.RawMessage
	statistics map[string]json.RawMessage
}

// Rows flattens one page of the answer to req into rows: one per result of a values report, one per result and
// date of a series or metric aggregate, each a JSON object with the definition's columns in order. Counts stay
// the integers Klaviyo wrote, money and rates the numbers; a null grouping in a key column becomes "" so keys are
// never null.
func (d Definition) Rows(req Request, attributes []byte) ([][]byte, error) {
	var a reportAttributes
	if err := json.Unmarshal(attributes, &a); err != nil {
		return nil, fmt.Errorf("reading the %s answer of stream %s: %w", d.Kind.Endpoint, d.Name, err)
	}
	cols := d.columns()
	var cells []cell
	dates := a.DateTimes
	if d.Kind.Aggregate {
		dates = a.Dates
		for i, r := range a.Data {
			if len(r.Dimensions) != len(d.GroupBy) {
				return nil, fmt.Errorf("reading the %s answer of stream %s: row %d has %d dimensions for %d by values",
					d.Kind.Endpoint, d.Name, i, len(r.Dimensions), len(d.GroupBy))
			}
			g := make(map[string]json.RawMessage, len(d.GroupBy))
			for k, by := range d.GroupBy {
				g[by] = r.Dimensions[k]
			}
			cells = append(cells, cell{groupings: g, statistics: r.Measurements})
		}
	} else {
		for _, r := range a.Results {
			cells = append(cells, cell{groupings: r.Groupings, statistics: r.Statistics})
		}
	}
	series := d.Kind.Series || d.Kind.Aggregate
	var out [][]byte
	var buf bytes.Buffer
	for i, c := range cells {
		if !series {
			row, err := d.row(&buf, cols, req, c, "", -1)
			if err != nil {
				return nil, fmt.Errorf("reading result %d of %s for stream %s: %w", i, d.Kind.Endpoint, d.Name, err)
			}
			out = append(out, row)
			continue
		}
		lists := make(map[string][]json.RawMessage, len(c.statistics))
		for name, raw := range c.statistics {
			var l []json.RawMessage
			if err := json.Unmarshal(raw, &l); err != nil || len(l) != len(dates) {
				return nil, fmt.Errorf("reading result %d of %s for stream %s: statistic %s is not a list of %d values",
					i, d.Kind.Endpoint, d.Name, name, len(dates))
			}
			lists[name] = l
		}
		for k, date := range dates {
			at := cell{groupings: c.groupings, statistics: make(map[string]json.RawMessage, len(lists))}
			for name, l := range lists {
				at.statistics[name] = l[k]
			}
			row, err := d.row(&buf, cols, req, at, date, k)
			if err != nil {
				return nil, fmt.Errorf("reading result %d of %s for stream %s: %w", i, d.Kind.Endpoint, d.Name, err)
			}
			out = append(out, row)
		}
	}
	return out, nil
}

// row writes one row of a cell (at the date of index k for series) in column order and returns a copy.
func (d Definition) row(buf *bytes.Buffer, cols []column, req Request, c cell, date string, k int) ([]byte, error) {
	buf.Reset()
	buf.WriteByte('{')
	for i, col := range cols {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, col.name)
		buf.WriteByte(':')
		switch col.kind {
		case colMetric:
			writeString(buf, req.MetricID)
		case colConversionMetric:
			writeString(buf, req.ConversionMetricID)
		case colDate:
			if k < 0 || date == "" {
				return nil, fmt.Errorf("no date for column %s", col.name)
			}
			writeString(buf, date)
		case colPeriodStart:
			writeString(buf, req.From.Format(wallClock))
		case colPeriodEnd:
			writeString(buf, req.PeriodEnd.Format(wallClock))
		case colGrouping:
			if err := writeGrouping(buf, c.groupings[col.source], col.key); err != nil {
				return nil, fmt.Errorf("grouping %s: %w", col.source, err)
			}
		case colStatistic:
			if err := writeNumber(buf, c.statistics[col.source], isInteger(col.source)); err != nil {
				return nil, fmt.Errorf("statistic %s: %w", col.source, err)
			}
		}
	}
	buf.WriteByte('}')
	return bytes.Clone(buf.Bytes()), nil
}

// writeString writes s as a JSON string.
func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always encodes
	buf.Write(b)
}

// writeGrouping writes a grouping value as a string: Klaviyo's groupings are strings or null; a null in a key
// column is written "" (an untagged message grouped by tag) so a key is never null.
func writeGrouping(buf *bytes.Buffer, raw json.RawMessage, key bool) error {
	var v any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
	}
	switch t := v.(type) {
	case nil:
		if key {
			writeString(buf, "")
		} else {
			buf.WriteString("null")
		}
	case string:
		writeString(buf, t)
	default:
		writeString(buf, fmt.Sprint(t))
	}
	return nil
}

// writeNumber writes a statistic: null when absent, a number otherwise. A count Klaviyo writes as 12.0 is
// written 12, so it matches its integer type; other numbers are copied as Klaviyo wrote them.
func writeNumber(buf *bytes.Buffer, raw json.RawMessage, integer bool) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		buf.WriteString("null")
		return nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return fmt.Errorf("%s is not a number", clipValue(raw))
	}
	if integer && bytes.ContainsAny(raw, ".eE") && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		buf.WriteString(strconv.FormatInt(int64(f), 10))
		return nil
	}
	buf.Write(raw)
	return nil
}

func clipValue(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// fingerprint identifies a row's content, key included: equal fingerprints mean a row already written.
func fingerprint(row []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(row)
	return h.Sum64()
}
