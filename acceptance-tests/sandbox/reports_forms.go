package sandbox

import (
	"strconv"
	"time"
)

// Form reports. The sandbox serves no form events: its metrics have no Viewed Form or Submitted
// Form, and adding some would change GET /api/metrics and /api/events. A form version's activity
// is therefore a function of (seed, form, version, hour), FormActivity, which the reports sum
// and which tests (and a connector's tests) can call to know the expected numbers. Live versions
// are active every hour from their created_at to the clock; draft versions never are.

// Form counters, in a tally cell.
const (
	fViews = iota
	fViewsU
	fQualified
	fQualifiedU
	fSubmits
	fClosed
	fClosedU
	fStepViews
	fStepViewsU
	fStepSubmits
	fStepSubmitsU
)

// FormHour is the activity of one form version during one hour.
type FormHour struct {
	Views, Qualified, Submits, Closed, StepViews, StepSubmits int64
}

// uniques is the distinct people among n interactions of one hour: a quarter are repeats. Each
// hour's people are new, so uniques over a timeframe are the sum of the hours'.
func uniques(n int64) int64 { return n - n/4 }

// formHour draws the activity of version v of form f during the hour starting at hour*3600:
// views 0-6, and qualified <= views, submits <= qualified, closes <= views - submits.
func (w *world) formHour(f, v, hour int64) FormHour {
	h := mix(w.salt(kForm), 0xf0a, uint64(f), uint64(v), uint64(hour))
	part := func(shift uint, n int64) int64 {
		if n <= 0 {
			return 0
		}
		return int64((h >> shift) % uint64(n+1))
	}
	a := FormHour{Views: int64(h % 7)}
	a.Qualified = part(8, a.Views)
	a.Submits = part(16, a.Qualified)
	a.Closed = part(24, a.Views-a.Submits)
	a.StepViews = a.Views + a.Submits // a submitted first step shows the second
	a.StepSubmits = a.Submits + part(32, a.Submits)
	return a
}

// formVersionActive returns the first hour of activity of a version, false for draft versions.
func (c *rctx) formVersionActive(f, v int64) (int64, bool) {
	fv := c.formVersion(f, v)
	created, err := time.Parse(time.RFC3339, fv.Attrs["created_at"].(string))
	if err != nil || fv.Attrs["status"] != "live" {
		return 0, false
	}
	return (created.Unix() + 3599) / 3600, true
}

// FormActivity returns the activity of a form version (by id) in the hour starting at the given
// instant (whole hours), as the form reports count it: zero for unknown or draft versions,
// before the version's created_at and from the sandbox clock on. Tests use it to know what the
// form reports must answer, since no served event records form activity.
func (s *Server) FormActivity(versionID string, hour time.Time) FormHour {
	c := newRctx(s.world.Load(), &query{}, nil)
	n, err := strconv.ParseInt(versionID, 10, 64)
	f, v := (n-5000000)/8, (n-5000000)%8
	if err != nil || n < 5000000 || f >= c.w.total(kForm) || v >= c.w.formVersionCount(f) || c.w.formVersionID(f, v) != versionID {
		return FormHour{}
	}
	first, ok := c.formVersionActive(f, v)
	h := hour.Unix() / 3600
	if !ok || h < first || h*3600 >= c.w.now || hour.Unix()%3600 != 0 {
		return FormHour{}
	}
	return c.w.formHour(f, v, h)
}

func formStatistic(stat string, c counters) any {
	switch stat {
	case "viewed_form":
		return c[fViews]
	case "viewed_form_uniques":
		return c[fViewsU]
	case "qualified_form":
		return c[fQualified]
	case "qualified_form_uniques":
		return c[fQualifiedU]
	case "submits":
		return c[fSubmits]
	case "submit_rate":
		return ratio(c[fSubmits], c[fViewsU])
	case "closed_form":
		return c[fClosed]
	case "closed_form_uniques":
		return c[fClosedU]
	case "viewed_form_step":
		return c[fStepViews]
	case "viewed_form_step_uniques":
		return c[fStepViewsU]
	case "submitted_form_step":
		return c[fStepSubmits]
	}
	return c[fStepSubmitsU] // submitted_form_step_uniques
}

// formReport answers POST /api/form-values-reports and /api/form-series-reports: one row per
// form (or per version with group_by form_version_id) with at least one view in the timeframe.
// Cost: one hash per live version and hour of the timeframe.
func (q *reportReq) formReport() (*reportResult, *apiError) {
	r, aerr := q.parseReporting()
	if aerr != nil {
		return nil, aerr
	}
	c, w := q.c, q.c.w
	byVersion := contains(r.groupBy, "form_version_id")
	t := newTally(len(r.b.starts))
	var groupings []map[string]any
	for f := int64(0); f < w.total(kForm); f++ {
		formSlot := -1
		for v := int64(0); v < w.formVersionCount(f); v++ {
			dims := map[string]any{"form_id": w.formID(f), "form_version_id": w.formVersionID(f, v)}
			first, live := c.formVersionActive(f, v)
			if !live || !matchesAll(r.filter, func(d string) any { return dims[d] }) {
				continue
			}
			slot := formSlot
			if byVersion || slot < 0 {
				slot = len(groupings)
				g := map[string]any{"form_id": dims["form_id"]}
				if byVersion {
					g["form_version_id"] = dims["form_version_id"]
				}
				groupings = append(groupings, g)
				formSlot = slot
			}
			from := max((r.win.from.Unix()+3599)/3600, first)
			for h := from; h*3600 < r.win.to.Unix() && h*3600 < w.now; h++ {
				b := r.b.of(h * 3600)
				a := w.formHour(f, v, h)
				cell := t.cell(slot, b)
				cell[fViews] += a.Views
				cell[fQualified] += a.Qualified
				cell[fSubmits] += a.Submits
				cell[fClosed] += a.Closed
				cell[fStepViews] += a.StepViews
				cell[fStepSubmits] += a.StepSubmits
				cell[fViewsU] += uniques(a.Views)
				cell[fQualifiedU] += uniques(a.Qualified)
				cell[fClosedU] += uniques(a.Closed)
				cell[fStepViewsU] += uniques(a.StepViews)
				cell[fStepSubmitsU] += uniques(a.StepSubmits)
			}
		}
	}
	res := &reportResult{}
	if r.interval != "" {
		res.dateTimes = r.b.dateTimes()
	}
	for slot, g := range groupings {
		if t.sum(slot)[fViews] > 0 {
			res.rows = append(res.rows, map[string]any{"groupings": g, "statistics": statisticsOf(r.stats, t, slot, r.interval != "", formStatistic)})
		}
	}
	return res, nil
}
