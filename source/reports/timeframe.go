package reports

import (
	"time"
)

// Time in reports is the account's: Klaviyo reads a custom timeframe as a wall clock in the account's timezone
// (its offset is ignored) and cuts named timeframes, series buckets and aggregate intervals at that timezone's
// midnights. Every window, bucket and period here is therefore computed in the account's *time.Location, and
// every boundary lies on the grid of its unit there.

// floorUnit returns the start of the unit holding t, in t's location: the hour, the midnight, the Monday
// midnight (ISO weeks, as Klaviyo's weekly buckets) or the first of the month.
func floorUnit(unit string, t time.Time) time.Time {
	switch unit {
	case unitHour:
		// Minutes and seconds are local, so zones with half-hour offsets keep their own hours.
		return t.Add(-time.Duration(t.Minute())*time.Minute - time.Duration(t.Second())*time.Second -
			time.Duration(t.Nanosecond()))
	case unitWeek:
		d := floorUnit(unitDay, t)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	case unitMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
}

// nextUnit returns the start of the unit after the one starting at t.
func nextUnit(unit string, t time.Time) time.Time {
	switch unit {
	case unitHour:
		return t.Add(time.Hour)
	case unitWeek:
		return t.AddDate(0, 0, 7)
	case unitMonth:
		return t.AddDate(0, 1, 0)
	}
	return t.AddDate(0, 0, 1)
}

// span is a half-open interval [From, To) of the account's time.
type span struct{ From, To time.Time }

// split cuts [from, to) into consecutive windows for requests: each starts on the grid of unit (from must), ends
// on the last grid boundary that limit allows for its start, and the last one ends at to, even off the grid (the
// current, partial bucket).
func split(unit string, from, to time.Time, limit func(time.Time) time.Time) []span {
	var out []span
	for start := from; start.Before(to); {
		end := start
		for b := nextUnit(unit, end); !b.After(limit(start)); b = nextUnit(unit, b) {
			end = b
			if !end.Before(to) {
				break
			}
		}
		if !end.After(start) {
			// The limit is shorter than one unit: cannot happen with Klaviyo's limits, but never loop forever.
			end = nextUnit(unit, start)
		}
		if end.After(to) {
			end = to
		}
		out = append(out, span{start, end})
		start = end
	}
	return out
}

// wallClock is how a timeframe bound is written: the account's wall clock with its offset. Klaviyo ignores the
// offset of a custom timeframe and reads the wall clock in the account's timezone; metric aggregates read it as an
// instant. Both mean the same moment this way.
const wallClock = "2006-01-02T15:04:05-07:00"

// namedSpan resolves a named timeframe at now (in the account's location), as Klaviyo does: complete periods
// end at the midnight that closes them; today and this_* end at now.
func namedSpan(key string, now time.Time) (span, bool) {
	today := floorUnit(unitDay, now)
	week := floorUnit(unitWeek, now)
	month := floorUnit(unitMonth, now)
	year := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, now.Location())
	switch key {
	case "today":
		return span{today, now}, true
	case "yesterday":
		return span{today.AddDate(0, 0, -1), today}, true
	case "last_7_days":
		return span{today.AddDate(0, 0, -7), today}, true
	case "last_30_days":
		return span{today.AddDate(0, 0, -30), today}, true
	case "last_90_days":
		return span{today.AddDate(0, 0, -90), today}, true
	case "last_365_days":
		return span{today.AddDate(0, 0, -365), today}, true
	case "this_week":
		return span{week, now}, true
	case "last_week":
		return span{week.AddDate(0, 0, -7), week}, true
	case "this_month":
		return span{month, now}, true
	case "last_month":
		return span{month.AddDate(0, -1, 0), month}, true
	case "last_3_months":
		return span{month.AddDate(0, -3, 0), month}, true
	case "last_12_months":
		return span{month.AddDate(0, -12, 0), month}, true
	case "this_year":
		return span{year, now}, true
	case "last_year":
		return span{year.AddDate(-1, 0, 0), year}, true
	}
	return span{}, false
}

// parseWall reads a custom timeframe bound written in the config: a date, or a date-time whose wall clock is
// taken in loc (an offset, if any, is ignored, as Klaviyo ignores it).
func parseWall(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, loc), true
		}
	}
	return time.Time{}, false
}
