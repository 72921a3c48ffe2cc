package reports

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStateRoundTrip(t *testing.T) {
	loc := paris(t)
	one := State{Definition: "abc", Timezone: "Europe/Paris",
		FinalTo: map[string]time.Time{"": time.Date(2026, 2, 8, 0, 0, 0, 0, loc)},
		Pending: &Pending{From: time.Date(2025, 1, 1, 0, 0, 0, 0, loc), To: time.Date(2025, 3, 2, 0, 0, 0, 0, loc), Next: "https://a.klaviyo.com/api/x?page_cursor=c"},
		Seen:    []uint64{1, 1 << 63, 42},
		Quota:   Quota{Day: "2026-03-10", Endpoint: "/api/flow-series-reports", Used: 3}}
	b, err := EncodeState(one)
	require.NoError(t, err)
	assert.JSONEq(t, `{"state_version":1,"definition":"abc","timezone":"Europe/Paris","final_to":"2026-02-08T00:00:00+01:00",
		"pending":{"from":"2025-01-01T00:00:00+01:00","to":"2025-03-02T00:00:00+01:00","next":"https://a.klaviyo.com/api/x?page_cursor=c"},
		"seen":"AQAAAAAAAAAqAAAAAAAAAAAAAAAAAACA","quota":{"day":"2026-03-10","endpoint":"/api/flow-series-reports","used":3}}`, string(b))
	back, err := DecodeState("s", b)
	require.NoError(t, err)
	assert.True(t, back.FinalTo[""].Equal(one.FinalTo[""]))
	assert.Equal(t, []uint64{1, 42, 1 << 63}, back.Seen, "sorted, so lookups are binary searches")
	assert.Equal(t, one.Quota, back.Quota)
	assert.Equal(t, one.Pending.Next, back.Pending.Next)
	again, err := EncodeState(back)
	require.NoError(t, err)
	assert.JSONEq(t, string(b), string(again))

	many := State{FinalTo: map[string]time.Time{"M1": time.Date(2026, 1, 1, 0, 0, 0, 0, loc), "M2": time.Date(2026, 2, 1, 0, 0, 0, 0, loc)}}
	b, err = EncodeState(many)
	require.NoError(t, err)
	assert.JSONEq(t, `{"state_version":1,"final_to":{"M1":"2026-01-01T00:00:00+01:00","M2":"2026-02-01T00:00:00+01:00"}}`, string(b))
	back, err = DecodeState("s", b)
	require.NoError(t, err)
	assert.Len(t, back.FinalTo, 2)

	empty, err := DecodeState("s", nil)
	require.NoError(t, err)
	assert.Equal(t, State{}, empty)
	empty, err = DecodeState("s", []byte("null"))
	require.NoError(t, err)
	assert.Equal(t, State{}, empty)
}

func TestStateErrorsNameTheField(t *testing.T) {
	for raw, want := range map[string]string{
		`[]`:                                `state file: the state of report stream "s" must be an object with state_version, definition, final_to, seen and quota; remove the stream's state to read it again from its history start`,
		`{"state_version":2}`:               `state file: the state of report stream "s" was written by a newer source-klaviyo (state_version 2, this release reads up to 1): run that release or a later one`,
		`{"final_to":"yesterday"}`:          `state file: final_to of report stream "s" must be an RFC 3339 date-time; remove the stream's state to read it again from its history start`,
		`{"final_to":{"M":"x"}}`:            `state file: final_to.M of report stream "s" must be an RFC 3339 date-time; remove the stream's state to read it again from its history start`,
		`{"final_to":3}`:                    `state file: final_to of report stream "s" must be a date-time or an object of date-times by metric id; remove the stream's state to read it again from its history start`,
		`{"seen":"abc"}`:                    `state file: seen of report stream "s" must be base64 of 8-byte fingerprints; remove the stream's state to read it again from its history start`,
		`{"pending":{"from":"x","to":"y"}}`: `state file: pending of report stream "s" must be an object with from, to (date-times) and next; remove the stream's state to read it again from its history start`,
	} {
		_, err := DecodeState("s", []byte(raw))
		assert.EqualError(t, err, want, raw)
	}
}

func TestLedger(t *testing.T) {
	now := time.Date(2026, 3, 10, 23, 59, 0, 0, time.UTC)
	l := NewLedger(now, 1)
	assert.Equal(t, "2026-03-10", l.Day())
	assert.Equal(t, time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), l.ResumeAt(), "the quota day is the UTC day")
	assert.Equal(t, 225, l.Limit())
	const ep = "/api/flow-series-reports"
	l.Count(State{Quota: Quota{Day: "2026-03-10", Endpoint: ep, Used: 200}})
	l.Count(State{Quota: Quota{Day: "2026-03-10", Endpoint: ep, Used: 20}})
	l.Count(State{Quota: Quota{Day: "2026-03-09", Endpoint: ep, Used: 100}})
	l.Count(State{Quota: Quota{Day: "2026-03-10", Endpoint: "/api/form-series-reports", Used: 1}})
	assert.Equal(t, 5, l.Left(ep), "streams of one endpoint share its day; yesterday's spending is gone")
	for range 5 {
		assert.True(t, l.take(ep))
	}
	assert.False(t, l.take(ep))
	l.adjust(ep, -1)
	assert.Equal(t, 1, l.Left(ep), "a request that never left is given back")
	assert.Equal(t, 224, l.Left("/api/form-series-reports"))
	l.close("/api/form-series-reports", l.ResumeAt())
	assert.Zero(t, l.Left("/api/form-series-reports"), "Klaviyo's 429 closes the endpoint whatever the count")
	assert.False(t, l.take("/api/form-series-reports"))
	assert.Equal(t, "report requests on 2026-03-10 (UTC), of 225 a day per endpoint: /api/flow-series-reports 224 used, 1 left; /api/form-series-reports 1 used, 0 left", l.Summary())

	for scale, want := range map[float64]int{0.02: 5, 0.001: 1, 2: 450, 0: 225} {
		assert.Equal(t, want, NewLedger(now, scale).Limit(), "scale %v, rounded like the client's budgets", scale)
	}
	assert.Equal(t, "report requests on 2026-03-10 (UTC): none used", NewLedger(now, 1).Summary())
}

func TestRowsFlattening(t *testing.T) {
	req := Request{ConversionMetricID: "PLACED", MetricID: "M", From: time.Date(2026, 3, 1, 0, 0, 0, 0, paris(t)),
		PeriodEnd: time.Date(2026, 4, 1, 0, 0, 0, 0, paris(t))}
	campaign := userDef(t, Config{}, `{"name":"c","type":"campaign_values","statistics":["opens","open_rate"],
		"group_by":["campaign_id","campaign_message_id","campaign_message_name","tag_id","tag_name"]}`)
	rows, err := campaign.Rows(req, []byte(`{"results":[
		{"groupings":{"campaign_id":"C","campaign_message_id":"CM","campaign_message_name":"Spring","tag_id":null,"tag_name":null},"statistics":{"opens":12.0,"open_rate":0.5}},
		{"groupings":{"campaign_id":"C","campaign_message_id":"CM","campaign_message_name":"Spring","tag_id":"T","tag_name":"vip"},"statistics":{"opens":3,"open_rate":null}}]}`))
	require.NoError(t, err)
	assert.Equal(t, []string{
		`{"campaign_id":"C","campaign_message_id":"CM","tag_id":"","conversion_metric_id":"PLACED","campaign_message_name":"Spring","tag_name":null,"opens":12,"open_rate":0.5}`,
		`{"campaign_id":"C","campaign_message_id":"CM","tag_id":"T","conversion_metric_id":"PLACED","campaign_message_name":"Spring","tag_name":"vip","opens":3,"open_rate":null}`,
	}, strs(rows), "a null key grouping is \"\", a null label stays null; 12.0 is the count 12")

	series := userDef(t, Config{}, `{"name":"s","type":"segment_series","statistics":["total_members"]}`)
	rows, err = series.Rows(req, []byte(`{"date_times":["2026-03-01T00:00:00+01:00","2026-03-02T00:00:00+01:00"],
		"results":[{"groupings":{"segment_id":"S"},"statistics":{"total_members":[1,2]}}]}`))
	require.NoError(t, err)
	assert.Equal(t, []string{
		`{"segment_id":"S","date":"2026-03-01T00:00:00+01:00","total_members":1}`,
		`{"segment_id":"S","date":"2026-03-02T00:00:00+01:00","total_members":2}`,
	}, strs(rows))
	_, err = series.Rows(req, []byte(`{"date_times":["2026-03-01T00:00:00+01:00"],"results":[{"groupings":{"segment_id":"S"},"statistics":{"total_members":[1,2]}}]}`))
	assert.EqualError(t, err, "reading result 0 of /api/segment-series-reports for stream s: statistic total_members is not a list of 1 values")

	values := userDef(t, Config{}, `{"name":"v","type":"form_values","statistics":["submits"]}`)
	rows, err = values.Rows(req, []byte(`{"results":[{"groupings":{"form_id":"F"},"statistics":{"submits":7}}]}`))
	require.NoError(t, err)
	assert.Equal(t, []string{`{"form_id":"F","period_start":"2026-03-01T00:00:00+01:00","period_end":"2026-04-01T00:00:00+02:00","submits":7}`}, strs(rows),
		"a period row names its whole period, in the account's offsets")
	_, err = values.Rows(req, []byte(`{"results":[{"groupings":{"form_id":"F"},"statistics":{"submits":"7"}}]}`))
	assert.EqualError(t, err, `reading result 0 of /api/form-values-reports for stream v: statistic submits: "7" is not a number`)

	agg := userDef(t, Config{}, `{"name":"a","type":"metric_aggregates","metric_id":"M","measurements":["count","sum_value"],"by":["$attributed_message","Campaign Name"]}`)
	rows, err = agg.Rows(req, []byte(`{"dates":["2026-03-01T00:00:00+01:00"],"data":[{"dimensions":["CM","Spring"],"measurements":{"count":[4],"sum_value":[12.5]}}]}`))
	require.NoError(t, err)
	assert.Equal(t, []string{`{"metric_id":"M","attributed_message":"CM","campaign_name":"Spring","date":"2026-03-01T00:00:00+01:00","count":4,"sum_value":12.5}`}, strs(rows))
	_, err = agg.Rows(req, []byte(`{"dates":[],"data":[{"dimensions":["CM"],"measurements":{}}]}`))
	assert.ErrorContains(t, err, "row 0 has 1 dimensions for 2 by values")
	_, err = agg.Rows(req, []byte(`[]`))
	assert.ErrorContains(t, err, "reading the /api/metric-aggregates answer of stream a")
}

func strs(rows [][]byte) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = string(r)
	}
	return out
}
