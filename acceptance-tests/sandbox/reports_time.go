package sandbox

import (
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // the account's timezone must resolve on hosts without a zoneinfo database

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

// accountTimezone is the sandbox account's timezone (GET /api/accounts). Klaviyo's reports read
// custom timeframes as wall-clock times in it ("Offset is ignored and the company timezone is
// used") and cut named timeframes and series intervals at its midnights, so the sandbox does too:
// a connector that sends UTC instants unchanged is off by the account's offset, as against Klaviyo.
const accountTimezone = "Europe/Paris"

// window is a half-open span of time [from, to) in a report's timezone.
type window struct{ from, to time.Time }

// namedTimeframe resolves a timeframe key at the sandbox clock. Complete periods end at the
// midnight that closes them; today and this_* end at the clock.
func namedTimeframe(key string, now time.Time) (window, bool) {
	loc := now.Location()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	week := floorInterval("weekly", today)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	year := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, loc)
	switch key {
	case "today":
		return window{today, now}, true
	case "yesterday":
		return window{today.AddDate(0, 0, -1), today}, true
	case "last_7_days":
		return window{today.AddDate(0, 0, -7), today}, true
	case "last_30_days":
		return window{today.AddDate(0, 0, -30), today}, true
	case "last_90_days":
		return window{today.AddDate(0, 0, -90), today}, true
	case "last_365_days":
		return window{today.AddDate(0, 0, -365), today}, true
	case "this_week":
		return window{week, now}, true
	case "last_week":
		return window{week.AddDate(0, 0, -7), week}, true
	case "this_month":
		return window{month, now}, true
	case "last_month":
		return window{month.AddDate(0, -1, 0), month}, true
	case "last_3_months":
		return window{month.AddDate(0, -3, 0), month}, true
	case "last_12_months":
		return window{month.AddDate(0, -12, 0), month}, true
	case "this_year":
		return window{year, now}, true
	case "last_year":
		return window{year.AddDate(-1, 0, 0), year}, true
	}
	return window{}, false
}

// wallClock parses a datetime and keeps only its wall-clock reading, placed in loc: the offset
// of a custom timeframe bound is ignored, as Klaviyo documents.
func wallClock(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc), true
		}
	}
	return time.Time{}, false
}

// parseTimeframe validates data.attributes.timeframe: a known key, or start and end (end after
// start), no longer than the report allows, and not before the report's first day of data.
func parseTimeframe(v any, rep *specgen.Report, now time.Time) (window, *apiError) {
	const ptr = "/data/attributes/timeframe"
	m, ok := v.(map[string]any)
	if !ok {
		return window{}, invalidAt(ptr, "Expected an object with either key, or start and end.")
	}
	key, hasKey := m["key"]
	_, hasStart := m["start"]
	_, hasEnd := m["end"]
	var win window
	switch {
	case hasKey && (hasStart || hasEnd):
		return window{}, invalidAt(ptr, "Provide either key, or start and end, not both.")
	case hasKey:
		k, _ := key.(string)
		if !contains(rep.TimeframeKeys, k) {
			return window{}, invalidAt(ptr+"/key", "'%s' is not a valid timeframe key. Valid keys are: %s.", sanitize(k), strings.Join(rep.TimeframeKeys, ", "))
		}
		win, _ = namedTimeframe(k, now)
	default:
		for _, f := range []string{"start", "end"} {
			s, _ := m[f].(string)
			if s == "" {
				return window{}, invalidAt(ptr+"/"+f, "This field is required.")
			}
			t, ok := wallClock(s, now.Location())
			if !ok {
				return window{}, invalidAt(ptr+"/"+f, "'%s' is not a valid datetime.", sanitize(s))
			}
			if f == "start" {
				win.from = t
			} else {
				win.to = t
			}
		}
		if !win.to.After(win.from) {
			return window{}, invalidAt(ptr, "The timeframe end must be after its start.")
		}
	}
	if rep.TimeframeMaxYears > 0 && win.from.AddDate(rep.TimeframeMaxYears, 0, 0).Before(win.to) {
		return window{}, invalidAt(ptr, "The timeframe cannot be longer than %d year(s).", rep.TimeframeMaxYears)
	}
	if rep.DataSince != "" {
		since, _ := time.ParseInLocation("2006-01-02", rep.DataSince, now.Location())
		if win.from.Before(since) {
			return window{}, invalidAt(ptr, "Data is unavailable before %s. Please use a timeframe after this date.", rep.DataSince)
		}
	}
	return win, nil
}

// checkInterval validates a series interval and the timeframe length it allows.
func checkInterval(v any, rep *specgen.Report, win window) (string, *apiError) {
	const ptr = "/data/attributes/interval"
	iv, _ := v.(string)
	if !contains(rep.Intervals, iv) {
		return "", invalidAt(ptr, "'%s' is not a valid interval. Valid intervals are: %s.", sanitize(iv), strings.Join(rep.Intervals, ", "))
	}
	if days, ok := rep.IntervalMaxDays[iv]; ok && win.from.AddDate(0, 0, days).Before(win.to) {
		return "", invalidAt(ptr, "If %s is used, the timeframe cannot be longer than %d days.", iv, days)
	}
	return iv, nil
}

// floorInterval is the start of the interval holding t: the hour, the midnight, the Monday
// midnight (ISO weeks) or the first of the month, in t's location. Metric aggregates name the
// same intervals hour, day, week and month.
func floorInterval(iv string, t time.Time) time.Time {
	switch iv {
	case "hourly", "hour":
		return t.Truncate(time.Hour) // zone offsets of whole hours keep instants and wall hours aligned
	case "weekly", "week":
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	case "monthly", "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
}

func nextInterval(iv string, t time.Time) time.Time {
	switch iv {
	case "hourly", "hour":
		return t.Add(time.Hour)
	case "weekly", "week":
		return t.AddDate(0, 0, 7)
	case "monthly", "month":
		return t.AddDate(0, 1, 0)
	}
	return t.AddDate(0, 0, 1)
}

// buckets splits a window for a series: bucket k starts at starts[k] (the first at the interval
// holding the window's start) and an instant belongs to the last bucket starting at or before
// it, as long as it lies in the window. A values report is one bucket starting at the window's start.
type buckets struct {
	win    window
	starts []int64 // Unix seconds
	times  []time.Time
}

func newBuckets(win window, iv string) buckets {
	b := buckets{win: win}
	if iv == "" {
		b.times = []time.Time{win.from}
	} else {
		for t := floorInterval(iv, win.from); t.Before(win.to); t = nextInterval(iv, t) {
			b.times = append(b.times, t)
		}
	}
	for _, t := range b.times {
		b.starts = append(b.starts, t.Unix())
	}
	return b
}

// of returns the bucket of an instant in Unix seconds, or -1 outside the window.
func (b buckets) of(sec int64) int {
	if sec < b.win.from.Unix() || sec >= b.win.to.Unix() || len(b.starts) == 0 {
		return -1
	}
	return sort.Search(len(b.starts), func(i int) bool { return b.starts[i] > sec }) - 1
}

// dateTimes renders the bucket starts for date_times and dates, with the zone's offset.
func (b buckets) dateTimes() []any {
	out := make([]any, len(b.times))
	for i, t := range b.times {
		out[i] = t.Format("2006-01-02T15:04:05-07:00")
	}
	return out
}
