package sandbox

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The agreement tests recompute reports from what the sandbox serves, the way a connector's
// user would: events paged through GET /api/events?include=attributions and attributed by their
// attribution's campaign-message or flow-message, memberships counted through the
// joined_group_at filter of GET /api/segments/{id}/profiles. They run at the start clock and
// again after an Advance past the first future-dated events, so new and future-dated events
// interleave in time.

const dayLayout = "2006-01-02T15:04:05-07:00"

// dayStarts lists the local midnights from from (a midnight) up to before to.
func dayStarts(from, to time.Time) []time.Time {
	var out []time.Time
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}

func formatTimes(ts []time.Time) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t.Format(dayLayout)
	}
	return out
}

// bucketOf is the index of the last start at or before t.
func bucketOf(starts []time.Time, t time.Time) int {
	return sort.Search(len(starts), func(i int) bool { return starts[i].After(t) }) - 1
}

// assertStatistics compares the statistics of one results entry (a value or a series) with the
// expected counts of each bucket.
func assertStatistics(t *testing.T, label string, stats []string, got map[string]any, want []*expectedCounts) {
	t.Helper()
	for _, st := range stats {
		if len(want) == 1 {
			w := want[0].statistics()[st]
			assert.True(t, sameNumber(t, w, got[st]), "%s %s: want %v, got %v", label, st, w, got[st])
			continue
		}
		series, _ := got[st].([]any)
		require.Len(t, series, len(want), "%s %s", label, st)
		for k := range want {
			w := want[k].statistics()[st]
			assert.True(t, sameNumber(t, w, series[k]), "%s %s[%d]: want %v, got %v", label, st, k, w, series[k])
		}
	}
}

func TestReportsAgreeWithServedEvents(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.Scale = Scale{Events: 30000} })
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	ids := metricIDs(t, s)
	names := map[string]string{}
	for n, id := range ids {
		names[id] = n
	}
	placed := ids["Placed Order"]
	for _, advance := range []time.Duration{0, 75 * 24 * time.Hour} {
		s.Advance(advance)
		now := s.Now()
		events := servedEvents(t, s, "")
		today := time.Date(now.In(paris).Year(), now.In(paris).Month(), now.In(paris).Day(), 0, 0, 0, 0, paris)
		label := "at " + now.Format(time.DateOnly)

		t.Run("flow series "+label, func(t *testing.T) {
			days := dayStarts(today.AddDate(0, 0, -30), today)
			a := postOK(t, s, "/api/flow-series-reports", "flow-series-report", map[string]any{
				"statistics": agreementStats(), "timeframe": map[string]any{"key": "last_30_days"}, "interval": "daily", "conversion_metric_id": placed})
			assert.Equal(t, formatTimes(days), a["date_times"], "daily buckets start at the account's midnights")
			want := map[string][]*expectedCounts{}
			flowOf := map[string]string{}
			for _, ev := range events {
				if ev.flowMessage == "" || ev.at.Before(days[0]) || !ev.at.Before(today) {
					continue
				}
				if want[ev.flowMessage] == nil {
					for range days {
						want[ev.flowMessage] = append(want[ev.flowMessage], newExpected())
					}
				}
				flowOf[ev.flowMessage] = ev.flow
				want[ev.flowMessage][bucketOf(days, ev.at)].add(ev, names[ev.metric], placed)
			}
			rows := results(a, "results")
			require.Len(t, rows, len(want), "one row per flow message with attributed events")
			for _, row := range rows {
				g := row["groupings"].(map[string]any)
				msg := g["flow_message_id"].(string)
				require.Contains(t, want, msg)
				assert.Equal(t, flowOf[msg], g["flow_id"])
				fm := get(t, s, "/api/flow-messages/"+msg).doc["data"].(map[string]any)["attributes"].(map[string]any)
				assert.Equal(t, sendChannel(fm["channel"].(string)), g["send_channel"])
				assertStatistics(t, msg, agreementStats(), row["statistics"].(map[string]any), want[msg])
			}
		})

		t.Run("flow values with a custom timeframe and a filter "+label, func(t *testing.T) {
			// The offset of a custom timeframe is ignored: the wall clock is read in the account's timezone.
			from, to := now.AddDate(0, 0, -20).Add(5*time.Hour), now.AddDate(0, 0, -3).Add(90*time.Minute)
			fromLocal := time.Date(from.Year(), from.Month(), from.Day(), from.Hour(), from.Minute(), 0, 0, paris)
			toLocal := time.Date(to.Year(), to.Month(), to.Day(), to.Hour(), to.Minute(), 0, 0, paris)
			all := map[string]*expectedCounts{}
			for _, ev := range events {
				if ev.flowMessage != "" && !ev.at.Before(fromLocal) && ev.at.Before(toLocal) {
					if all[ev.flowMessage] == nil {
						all[ev.flowMessage] = newExpected()
					}
					all[ev.flowMessage].add(ev, names[ev.metric], placed)
				}
			}
			require.NotEmpty(t, all)
			var some []string
			for msg := range all {
				some = append(some, fmt.Sprintf("%q", msg))
			}
			sort.Strings(some)
			some = some[:(len(some)+1)/2]
			a := postOK(t, s, "/api/flow-values-reports", "flow-values-report", map[string]any{
				"statistics": agreementStats(), "conversion_metric_id": placed,
				"timeframe": map[string]any{"start": from.Format(time.RFC3339), "end": to.Format("2006-01-02T15:04:05+05:00")},
				"filter":    "contains-any(flow_message_id,[" + strings.Join(some, ",") + "])"})
			rows := results(a, "results")
			require.Len(t, rows, len(some), "the filter keeps the named messages")
			for _, row := range rows {
				msg := row["groupings"].(map[string]any)["flow_message_id"].(string)
				require.Contains(t, some, fmt.Sprintf("%q", msg))
				assertStatistics(t, msg, agreementStats(), row["statistics"].(map[string]any), []*expectedCounts{all[msg]})
			}
		})

		t.Run("campaign values "+label, func(t *testing.T) {
			// Campaigns are reported by send date: the sent campaigns whose send_time is in the
			// timeframe, each with all its attributed events up to the clock.
			from := today.AddDate(0, 0, -365)
			want := map[string]*expectedCounts{}
			campaignOf := map[string]string{}
			channelOf := map[string]string{}
			for _, ch := range []string{"email", "sms", "mobile_push"} {
				for _, archived := range []string{"true", "false"} {
					filter := fmt.Sprintf("equals(messages.channel,'%s'),equals(archived,%s)", ch, archived)
					for _, c := range collectAll(t, s, "/api/campaigns?filter="+url.QueryEscape(filter)) {
						a := c["attributes"].(map[string]any)
						st, _ := a["send_time"].(string)
						sent, err := time.Parse(time.RFC3339, st)
						if err != nil || !campaignSent(a["status"].(string)) || sent.Before(from) || !sent.Before(today) {
							continue
						}
						for _, m := range c["relationships"].(map[string]any)["campaign-messages"].(map[string]any)["data"].([]any) {
							id := m.(map[string]any)["id"].(string)
							want[id], campaignOf[id], channelOf[id] = newExpected(), c["id"].(string), sendChannel(ch)
						}
					}
				}
			}
			require.NotEmpty(t, want)
			for _, ev := range events {
				if e := want[ev.campaignMessage]; e != nil && !ev.at.After(now) {
					e.add(ev, names[ev.metric], placed)
				}
			}
			a := postOK(t, s, "/api/campaign-values-reports", "campaign-values-report", map[string]any{
				"statistics": agreementStats(), "timeframe": map[string]any{"key": "last_365_days"}, "conversion_metric_id": placed})
			rows := results(a, "results")
			require.Len(t, rows, len(want), "one row per message of the campaigns sent in the timeframe")
			nonZero := 0
			for _, row := range rows {
				g := row["groupings"].(map[string]any)
				msg := g["campaign_message_id"].(string)
				require.Contains(t, want, msg)
				assert.Equal(t, campaignOf[msg], g["campaign_id"])
				assert.Equal(t, channelOf[msg], g["send_channel"])
				assertStatistics(t, msg, agreementStats(), row["statistics"].(map[string]any), []*expectedCounts{want[msg]})
				if want[msg].conversions > 0 {
					nonZero++
				}
			}
			assert.Positive(t, nonZero, "some campaigns have attributed orders")
		})

		t.Run("metric aggregates "+label, func(t *testing.T) {
			ny, err := time.LoadLocation("America/New_York")
			require.NoError(t, err)
			// Naive datetimes are read in the query's timezone.
			start := time.Date(now.In(ny).Year(), now.In(ny).Month(), now.In(ny).Day()-14, 0, 0, 0, 0, ny)
			end := start.AddDate(0, 0, 14)
			a := postOK(t, s, "/api/metric-aggregates", "metric-aggregate", map[string]any{
				"metric_id": placed, "measurements": []string{"count", "sum_value", "unique"}, "interval": "day",
				"by": []string{"$attributed_message"}, "timezone": "America/New_York",
				"filter": []string{"greater-or-equal(datetime," + start.Format("2006-01-02T15:04:05") + ")", "less-than(datetime," + end.Format("2006-01-02T15:04:05") + ")"}})
			days := dayStarts(start, end)
			assert.Equal(t, formatTimes(days), a["dates"])
			type cell struct {
				count, cents int64
				profiles     map[string]bool
			}
			want := map[string][]*cell{}
			for _, ev := range events {
				if ev.metric != placed || ev.at.Before(start) || !ev.at.Before(end) {
					continue
				}
				dim := ev.campaignMessage + ev.flowMessage
				if want[dim] == nil {
					for range days {
						want[dim] = append(want[dim], &cell{profiles: map[string]bool{}})
					}
				}
				c := want[dim][bucketOf(days, ev.at)]
				c.count++
				c.cents += ev.cents
				c.profiles[ev.profile] = true
			}
			rows := results(a, "data")
			require.Len(t, rows, len(want))
			for _, row := range rows {
				dims := row["dimensions"].([]any)
				require.Len(t, dims, 1)
				cells := want[dims[0].(string)]
				require.NotNil(t, cells, dims[0])
				m := row["measurements"].(map[string]any)
				for k, c := range cells {
					assert.True(t, sameNumber(t, c.count, m["count"].([]any)[k]), "%v count[%d]", dims, k)
					assert.True(t, sameNumber(t, float64(c.cents)/100, m["sum_value"].([]any)[k]), "%v sum_value[%d]", dims, k)
					assert.True(t, sameNumber(t, int64(len(c.profiles)), m["unique"].([]any)[k]), "%v unique[%d]", dims, k)
				}
			}
			// A range reaching past the clock counts the future-dated events GET serves, month by
			// month, for the metric of the first of them.
			var opened string
			for _, ev := range events {
				if ev.at.After(now) {
					opened = ev.metric
					break
				}
			}
			require.NotEmpty(t, opened, "the account has future-dated events")
			from, to := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -2, 0), now.AddDate(0, 10, 0)
			a = postOK(t, s, "/api/metric-aggregates", "metric-aggregate", map[string]any{
				"metric_id": opened, "measurements": []string{"count", "unique"}, "interval": "month",
				"filter": []string{"greater-or-equal(datetime," + from.Format(time.RFC3339) + ")", "less-than(datetime," + to.Format(time.RFC3339) + ")"}})
			var months []time.Time
			for m := from; m.Before(to); m = m.AddDate(0, 1, 0) {
				months = append(months, m)
			}
			counts := make([]int64, len(months))
			profiles := make([]map[string]bool, len(months))
			future := 0
			for _, ev := range events {
				if ev.metric == opened && !ev.at.Before(from) && ev.at.Before(to) {
					k := bucketOf(months, ev.at)
					counts[k]++
					if profiles[k] == nil {
						profiles[k] = map[string]bool{}
					}
					profiles[k][ev.profile] = true
					if ev.at.After(now) {
						future++
					}
				}
			}
			assert.Positive(t, future, "the range holds future-dated events")
			rows = results(a, "data")
			require.Len(t, rows, 1, "without by, one row")
			m := rows[0]["measurements"].(map[string]any)
			for k := range months {
				assert.True(t, sameNumber(t, counts[k], m["count"].([]any)[k]), "count[%d]", k)
				assert.True(t, sameNumber(t, int64(len(profiles[k])), m["unique"].([]any)[k]), "unique[%d]", k)
			}
		})

		t.Run("segments "+label, func(t *testing.T) {
			// Members join at joined_group_at and never leave: compare with the membership endpoint's counts.
			days := dayStarts(today.AddDate(0, 0, -30), today)
			stats := []string{"members_added", "members_removed", "net_members_changed", "total_members"}
			series := postOK(t, s, "/api/segment-series-reports", "segment-series-report", map[string]any{
				"statistics": stats, "timeframe": map[string]any{"key": "last_30_days"}, "interval": "daily"})
			assert.Equal(t, formatTimes(days), series["date_times"])
			values := results(postOK(t, s, "/api/segment-values-reports", "segment-values-report", map[string]any{
				"statistics": stats, "timeframe": map[string]any{"key": "last_30_days"}}), "results")
			joined := func(seg string, filter string) int64 {
				n, err := s.Count("/api/segments/"+seg+"/profiles", url.Values{"filter": {filter}})
				require.NoError(t, err)
				return int64(n)
			}
			rows := results(series, "results")
			require.Len(t, rows, len(collectAll(t, s, "/api/segments")), "every segment is a row")
			require.Len(t, values, len(rows))
			grew := int64(0)
			for i, row := range rows {
				seg := row["groupings"].(map[string]any)["segment_id"].(string)
				st := row["statistics"].(map[string]any)
				for k, d := range days {
					end := today
					if k+1 < len(days) {
						end = days[k+1]
					}
					added := joined(seg, "greater-or-equal(joined_group_at,"+d.UTC().Format(time.RFC3339)+"),less-than(joined_group_at,"+end.UTC().Format(time.RFC3339)+")")
					total := joined(seg, "less-than(joined_group_at,"+end.UTC().Format(time.RFC3339)+")")
					grew += added
					for name, want := range map[string]int64{"members_added": added, "net_members_changed": added, "members_removed": 0, "total_members": total} {
						assert.True(t, sameNumber(t, want, st[name].([]any)[k]), "%s %s[%d]", seg, name, k)
					}
				}
				assert.Equal(t, seg, values[i]["groupings"].(map[string]any)["segment_id"])
				vs := values[i]["statistics"].(map[string]any)
				window := "greater-or-equal(joined_group_at," + days[0].UTC().Format(time.RFC3339) + "),less-than(joined_group_at," + today.UTC().Format(time.RFC3339) + ")"
				assert.True(t, sameNumber(t, joined(seg, window), vs["members_added"]), seg)
				assert.True(t, sameNumber(t, joined(seg, "less-than(joined_group_at,"+today.UTC().Format(time.RFC3339)+")"), vs["total_members"]), seg)
			}
			assert.Positive(t, grew, "members joined in the timeframe")
		})
	}
}

// TestFormReportsAgreeWithFormActivity checks the form reports against FormActivity, the
// function that defines form activity (no served event records it), and series against values.
func TestFormReportsAgreeWithFormActivity(t *testing.T) {
	s := startSmall(t, nil)
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	now := s.Now().In(paris)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, paris)
	days := dayStarts(today.AddDate(0, 0, -7), today)
	stats := []string{"viewed_form", "viewed_form_uniques", "qualified_form", "qualified_form_uniques", "submits", "submit_rate",
		"closed_form", "closed_form_uniques", "viewed_form_step", "viewed_form_step_uniques", "submitted_form_step", "submitted_form_step_uniques"}
	require.ElementsMatch(t, s.reports["/api/form-values-reports"].Statistics, stats, "every form statistic is checked")
	attrs := map[string]any{"statistics": stats, "timeframe": map[string]any{"key": "last_7_days"}, "group_by": []string{"form_id", "form_version_id"}}
	values := results(postOK(t, s, "/api/form-values-reports", "form-values-report", attrs), "results")
	series := postOK(t, s, "/api/form-series-reports", "form-series-report", with(attrs, "interval", "daily"))
	assert.Equal(t, formatTimes(days), series["date_times"])
	sum := func(version string, from, to time.Time) map[string]any {
		var c counters
		for h := from; h.Before(to); h = h.Add(time.Hour) {
			a := s.FormActivity(version, h)
			for k, n := range map[int]int64{fViews: a.Views, fQualified: a.Qualified, fSubmits: a.Submits, fClosed: a.Closed,
				fStepViews: a.StepViews, fStepSubmits: a.StepSubmits, fViewsU: a.Views - a.Views/4, fQualifiedU: a.Qualified - a.Qualified/4,
				fClosedU: a.Closed - a.Closed/4, fStepViewsU: a.StepViews - a.StepViews/4, fStepSubmitsU: a.StepSubmits - a.StepSubmits/4} {
				c[k] += n
			}
		}
		out := map[string]any{}
		for _, st := range stats {
			out[st] = formStatistic(st, c)
		}
		return out
	}
	var versions []string
	for _, f := range collectAll(t, s, "/api/forms") {
		for _, v := range collectAll(t, s, "/api/forms/"+f["id"].(string)+"/form-versions") {
			if v["attributes"].(map[string]any)["status"] == "live" {
				versions = append(versions, v["id"].(string))
			}
		}
	}
	require.Len(t, values, len(versions), "a row per live version, the only ones with activity")
	for i, row := range values {
		v := row["groupings"].(map[string]any)["form_version_id"].(string)
		require.Equal(t, versions[i], v)
		want := sum(v, days[0], today)
		for _, st := range stats {
			assert.True(t, sameNumber(t, want[st], row["statistics"].(map[string]any)[st]), "%s %s", v, st)
		}
		srow := results(series, "results")[i]
		for k, d := range days {
			want := sum(v, d, d.AddDate(0, 0, 1))
			for _, st := range stats {
				assert.True(t, sameNumber(t, want[st], srow["statistics"].(map[string]any)[st].([]any)[k]), "%s %s[%d]", v, st, k)
			}
		}
	}
}

// TestEventScanFollowsServedOrder checks that the reports' event scan visits exactly the events
// GET /api/events lists for a range, in the same order, future-dated ones included: the per-
// interval distinct counts rely on intervals arriving in time order.
func TestEventScanFollowsServedOrder(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.Scale = Scale{Events: 30000} })
	s.Advance(75 * 24 * time.Hour) // past the first future-dated events, so both sequences interleave
	w := s.world.Load()
	from, to := s.Now().AddDate(0, 0, -80), s.Now().AddDate(0, 4, 0)
	served, err := s.Resources("/api/events", url.Values{"filter": {"greater-or-equal(datetime," + from.Format(time.RFC3339) + "),less-than(datetime," + to.Format(time.RFC3339) + ")"}})
	require.NoError(t, err)
	for _, step := range []int64{1, 3} {
		var want, got []int64
		future := 0
		for _, raw := range served {
			var ev struct{ ID string }
			require.NoError(t, json.Unmarshal(raw, &ev))
			g, ok := w.eventIndex(ev.ID)
			require.True(t, ok)
			if g%step == 0 {
				want = append(want, g)
			}
			if g >= futureBase {
				future++
			}
		}
		w.eachEvent(from.Unix(), to.Unix(), step, func(g int64) { got = append(got, g) })
		assert.Positive(t, future)
		assert.Equal(t, want, got, "step %d", step)
	}
}
