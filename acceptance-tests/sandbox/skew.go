package sandbox

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EventSkew shapes the event history like a growing store's (issue 12): most events fall in the last months, and
// one week (a Black Friday) holds several times its neighbours' volume. A connector that splits the history into
// windows of equal time then meets windows of very unequal size, which an evenly spread account never shows. The
// zero value is off: events are spread evenly and every response is what it was before the option existed.
type EventSkew struct {
	// Growth is how many times denser the last day of history is than the first; the density grows
	// exponentially in between (a constant growth rate). 0 or 1 means no growth.
	Growth float64
	// Burst multiplies the density of the burst week, the 7 days that begin BurstAgo before the clock start.
	// 0 or 1 means no burst.
	Burst float64
	// BurstAgo places the burst week; whole days, from 7 days (the week ends at the clock start) to 365 (the
	// first week of history). 0 means DefaultBurstAgo.
	BurstAgo time.Duration
}

// DefaultBurstAgo places the burst week six weeks before the clock start: Black Friday as seen from a sync in
// mid-January. The place is relative to the clock, not a calendar date, so an account looks the same whenever it
// is generated and a benchmark's windows meet the burst at the same place on any day.
const DefaultBurstAgo = 42 * 24 * time.Hour

// burstDays is the length of the burst: one week, Black Friday to Cyber Monday and the days around them.
const burstDays = 7

func (s EventSkew) on() bool { return s.Growth > 1 || s.Burst > 1 }

// normalize validates the skew and fills BurstAgo, so the world can trust it; an EventSkew that is not on
// normalizes to the zero value.
func (s EventSkew) normalize() (EventSkew, error) {
	if s.Growth < 0 || s.Burst < 0 || math.IsNaN(s.Growth) || math.IsNaN(s.Burst) || math.IsInf(s.Growth, 0) || math.IsInf(s.Burst, 0) {
		return EventSkew{}, fmt.Errorf("sandbox: event skew growth %g, burst %g: want finite values of at least 1 (or 0 for none)", s.Growth, s.Burst)
	}
	if s.Growth > 0 && s.Growth < 1 || s.Burst > 0 && s.Burst < 1 {
		// A shrinking account or a quiet week would be possible, but nothing asks for them yet: reject rather
		// than silently serve an even account.
		return EventSkew{}, fmt.Errorf("sandbox: event skew growth %g, burst %g: want at least 1 (or 0 for none)", s.Growth, s.Burst)
	}
	if s.Growth > 1e6 || s.Burst > 1e6 {
		// Past this, whole days of history would get no event at all and the curve says nothing more.
		return EventSkew{}, fmt.Errorf("sandbox: event skew growth %g, burst %g: want at most 1e6", s.Growth, s.Burst)
	}
	if !s.on() {
		return EventSkew{}, nil
	}
	if s.BurstAgo == 0 {
		s.BurstAgo = DefaultBurstAgo
	}
	if s.BurstAgo%(24*time.Hour) != 0 || s.BurstAgo < burstDays*24*time.Hour || s.BurstAgo > time.Duration(year)*time.Second {
		return EventSkew{}, fmt.Errorf("sandbox: event skew burst %s before the clock start: want whole days from 7d to 365d", s.BurstAgo)
	}
	return s, nil
}

// ParseEventSkew reads "GROWTH[:BURST[:AGO]]", such as "20:8" or "20:8:42d": the last day of history GROWTH
// times as dense as the first, and a week BURST times as dense as the curve, beginning AGO (days "42d", weeks
// "6w", or a Go duration in whole days; default 42d) before the clock start. Empty, "0" or "off" means none.
func ParseEventSkew(s string) (EventSkew, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "off" || s == "none" {
		return EventSkew{}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return EventSkew{}, fmt.Errorf("event skew %q: want GROWTH[:BURST[:AGO]], such as 20:8 or 20:8:42d", s)
	}
	var sk EventSkew
	var err error
	if sk.Growth, err = strconv.ParseFloat(parts[0], 64); err != nil {
		return EventSkew{}, fmt.Errorf("event skew %q: growth %q is not a number", s, parts[0])
	}
	if len(parts) > 1 {
		if sk.Burst, err = strconv.ParseFloat(parts[1], 64); err != nil {
			return EventSkew{}, fmt.Errorf("event skew %q: burst %q is not a number", s, parts[1])
		}
	}
	if len(parts) > 2 {
		if sk.BurstAgo, err = parseDays(parts[2]); err != nil {
			return EventSkew{}, fmt.Errorf("event skew %q: %w", s, err)
		}
	}
	return sk.normalize()
}

// parseDays reads "42d", "6w" or a Go duration: time.ParseDuration has no unit longer than an hour, and a place in a
// year of history reads best in days.
func parseDays(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil {
				return 0, fmt.Errorf("burst place %q: want days (42d), weeks (6w) or a duration", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("burst place %q: want days (42d), weeks (6w) or a duration", s)
	}
	return d, nil
}

// curve places a population's base records on its history by day, in proportion to a weight per day, instead of
// evenly: record i falls on the day k with cum[k] <= i < cum[k+1], at its own jittered slot of that day's equal
// slots. It is a few kilobytes (one count per day), computed once, so records stay pure functions of their index
// and a 10-million-event account still costs no memory.
type curve struct {
	firstMs int64   // the first day's start, Unix milliseconds
	endMs   int64   // the clock start: the last day ends here
	cum     []int64 // cum[k] = base records dated before day k; cum[days] = all base records
	// endRate is the density of the last day over the mean density: the pace of creation an Advance continues
	// at, so a growing account keeps growing at today's pace rather than the year's average.
	endRate float64
}

// newCurve spreads base records over span seconds before startMs by the skew's daily weights. The counts are
// rounded prefix sums of positive weights, so they never decrease and end at exactly base.
func newCurve(sk EventSkew, base, span, startMs int64) *curve {
	days := int((span + day - 1) / day)
	burstFrom := days - int(sk.BurstAgo/(24*time.Hour))
	growth, burst := max(sk.Growth, 1), max(sk.Burst, 1)
	weights := make([]float64, days)
	total := 0.0
	for k := range weights {
		w := math.Pow(growth, (float64(k)+0.5)/float64(days))
		if k >= burstFrom && k < burstFrom+burstDays {
			w *= burst
		}
		weights[k] = w
		total += w
	}
	c := &curve{firstMs: startMs - span*1000, endMs: startMs, cum: make([]int64, days+1)}
	sum := 0.0
	for k, w := range weights {
		sum += w
		c.cum[k+1] = int64(math.Round(float64(base) * sum / total))
	}
	c.cum[days] = base
	c.endRate = weights[days-1] / (total / float64(days))
	return c
}

// createdMs is base record i's creation instant: non-decreasing in i (strictly while a day holds fewer records
// than milliseconds), which is all the listings' binary searches and merges need.
func (c *curve) createdMs(i int64, jitter func(i, step int64) int64) int64 {
	k := sort.Search(len(c.cum)-1, func(k int) bool { return c.cum[k+1] > i })
	from := c.firstMs + int64(k)*day*1000
	length := min(day*1000, c.endMs-from) // the last day is shorter when the span is not whole days
	n := c.cum[k+1] - c.cum[k]
	j := i - c.cum[k]
	// Slot j of n equal slots, at a jittered point inside it: floor(j*len/n) grows by at least step = floor(len/n)
	// from one slot to the next, and the jitter stays below step, so the order holds.
	step := length / n
	at := from + j*length/n
	if step > 0 {
		at += jitter(i, step)
	}
	return at
}
