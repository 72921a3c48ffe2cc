package sandbox

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

func TestParseFilter(t *testing.T) {
	allowed := map[string]specgen.FilterField{
		"datetime": {Single: []string{"greater-than", "less-than", "greater-or-equal"}, Type: "date-time"},
		"name":     {Single: []string{"equals", "contains"}, List: []string{"any"}, Type: "string"},
		"archived": {Single: []string{"equals"}, Type: "boolean"},
		"size":     {Single: []string{"greater-than"}, Type: "integer"},
		"profile":  {None: []string{"has"}},
		"status":   {Single: []string{"equals"}, Type: "string", Enum: []string{"live", "draft"}},
	}
	ok := map[string]int{
		"equals(name,'a')":     1,
		`equals(name,"it's")`:  1,
		`equals(name,'it\'s')`: 1,
		"and(greater-than(datetime,2023-01-01T00:00:00Z),less-than(datetime,2023-02-01))":      2,
		"greater-than(datetime,2023-01-01T00:00:00+02:00),equals(archived,false),has(profile)": 3,
		"any(name,['a','b',\"c\"])": 1,
		"greater-than(size,10)":     1,
		"equals(name,null)":         1,
		"and(equals(status,'live'),and(has(profile),greater-or-equal(datetime,2024-01-01T00:00:00.500Z)))": 3,
		" equals( name , 'spaced' ) ": 1,
	}
	for src, n := range ok {
		preds, err := parseFilter(src, allowed)
		require.NoError(t, err, src)
		assert.Len(t, preds, n, src)
	}
	preds, err := parseFilter(`equals(name,'it\'s'),greater-than(datetime,2023-01-01T00:00:00Z)`, allowed)
	require.NoError(t, err)
	assert.Equal(t, "it's", preds[0].val.s)
	assert.Equal(t, timeOf(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)), preds[1].val.t)

	bad := []string{
		"",
		"equals(name,a)",
		"greater-than(datetime,'2023-01-01T00:00:00Z')", // quoted datetime
		"greater-than(datetime,\"2023-01-01\")",
		"equals(nome,'a')",         // unknown field
		"less-than(name,'a')",      // operator not allowed
		"any(name,'a')",            // any needs a list
		"equals(name,['a'])",       // equals takes no list here
		"equals(archived,'false')", // boolean quoted
		"greater-than(size,'10')",  // number quoted
		"has(name)",                // has not allowed on name
		"equals(status,'paused')",  // not in enum
		"or(equals(name,'a'),equals(name,'b'))",
		"equals(name,'a'",
		"equals(name,'a'))",
		"equals(name,'unterminated)",
		strings.Repeat("and(", 100) + "equals(name,'a')" + strings.Repeat(")", 100),
	}
	for _, src := range bad {
		_, err := parseFilter(src, allowed)
		assert.Error(t, err, src)
	}
}

func TestFilterValidationOverHTTP(t *testing.T) {
	s := startSmall(t, nil)
	for _, f := range []string{
		"equals(email,'a@example.com')",                 // events have no email filter
		"greater-than(datetime,'2024-01-01T00:00:00Z')", // quoted datetime
		"equals(datetime,2024-01-01T00:00:00Z)",         // operator not allowed on datetime
		"greater-than(datetime,2024-01-01T00:00:00Z",    // syntax
	} {
		r := get(t, s, "/api/events?filter="+url.QueryEscape(f))
		assert.Equal(t, 400, r.status, f)
		assert.Equal(t, "filter", r.errorParameter(), f)
		assert.Equal(t, "invalid", r.firstError()["code"], f)
	}
	r := get(t, s, "/api/coupons?filter="+url.QueryEscape("equals(id,'x')"))
	assert.Equal(t, 400, r.status, "coupons take no filter")
}

func TestFilterResults(t *testing.T) {
	s := startSmall(t, nil)
	count := func(path, f string) int {
		n, err := s.Count(path, url.Values{"filter": {f}})
		require.NoError(t, err, f)
		return n
	}
	// datetime windows partition the events
	total, err := s.Count("/api/events", nil)
	require.NoError(t, err)
	mid := s.Now().Add(-100 * 24 * time.Hour).Format(time.RFC3339)
	before := count("/api/events", "less-than(datetime,"+mid+")")
	after := count("/api/events", "greater-or-equal(datetime,"+mid+")")
	assert.Equal(t, total, before+after)
	assert.Greater(t, before, 0)
	assert.Greater(t, after, 0)
	ts := s.Now().Add(-100 * 24 * time.Hour).Unix()
	assert.Equal(t, before, count("/api/events", "less-than(timestamp,"+itoa(ts)+")"))
	window := count("/api/events", "and(greater-or-equal(datetime,2025-06-01T00:00:00Z),less-than(datetime,2025-07-01T00:00:00Z))")
	res, err := s.Resources("/api/events", url.Values{"filter": {"greater-or-equal(datetime,2025-06-01T00:00:00Z),less-than(datetime,2025-07-01T00:00:00Z)"}})
	require.NoError(t, err)
	assert.Len(t, res, window)
	for _, raw := range res {
		assert.Contains(t, string(raw), `"datetime":"2025-06-`)
	}

	// metric_id and profile_id
	metrics, err := s.Resources("/api/metrics", nil)
	require.NoError(t, err)
	sum := 0
	for _, raw := range metrics {
		id := jsonID(t, raw)
		evs, err := s.Resources("/api/events", url.Values{"filter": {"equals(metric_id,'" + id + "')"}})
		require.NoError(t, err)
		for _, e := range evs {
			assert.Contains(t, string(e), `"metric":{"data":{"type":"metric","id":"`+id+`"}`)
		}
		sum += len(evs)
	}
	assert.Equal(t, total, sum, "every event belongs to exactly one metric")
	assert.Equal(t, 0, count("/api/events", "equals(metric_id,'NOPE00')"))
	ev := get(t, s, "/api/events?page[size]=1").data()[0]
	pid := ev["relationships"].(map[string]any)["profile"].(map[string]any)["data"].(map[string]any)["id"].(string)
	byProfile, err := s.Resources("/api/events", url.Values{"filter": {"equals(profile_id,'" + pid + "')"}})
	require.NoError(t, err)
	require.NotEmpty(t, byProfile)
	for _, e := range byProfile {
		assert.Contains(t, string(e), `"profile":{"data":{"type":"profile","id":"`+pid+`"}`)
	}

	// profiles by email, and by suppression without asking for subscriptions
	p := get(t, s, "/api/profiles?page[size]=5").data()[3]
	email := p["attributes"].(map[string]any)["email"].(string)
	got, err := s.Resources("/api/profiles", url.Values{"filter": {"equals(email,'" + email + "')"}})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, p["id"], jsonID(t, got[0]))
	for _, reason := range suppressReason {
		assert.Greater(t, count("/api/profiles", "equals(subscriptions.email.marketing.suppression.reason,'"+reason+"')"), 0, reason)
	}
	assert.Greater(t, count("/api/profiles", "greater-than(subscriptions.email.marketing.list_suppressions.timestamp,2000-01-01T00:00:00Z)"), 0)

	// string operators and booleans on small kinds
	assert.Greater(t, count("/api/flows", "equals(archived,true)"), 0)
	assert.Greater(t, count("/api/flows", "equals(archived,false)"), 0)
	assert.Equal(t, count("/api/flows", "starts-with(name,'Welcome')")+count("/api/flows", "and(equals(archived,false),starts-with(name,'Welcome'))"),
		count("/api/flows", "starts-with(name,'Welcome')")+count("/api/flows", "equals(archived,false),starts-with(name,'Welcome')"))
	assert.Greater(t, count("/api/images", "greater-than(size,1024)"), 0)
	assert.Greater(t, count("/api/metrics", "equals(integration.name,'Shopify')"), 0)
}

func jsonID(t testing.TB, raw []byte) string {
	t.Helper()
	s := string(raw)
	i := strings.Index(s, `"id":"`)
	require.GreaterOrEqual(t, i, 0)
	s = s[i+6:]
	return s[:strings.IndexByte(s, '"')]
}

func TestCampaignsNeedChannelFilter(t *testing.T) {
	s := startSmall(t, nil)
	r := get(t, s, "/api/campaigns")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "filter", r.errorParameter())
	r = get(t, s, "/api/campaigns?filter="+url.QueryEscape("equals(status,'Sent')"))
	assert.Equal(t, 400, r.status)
	total, archived := 0, 0
	for _, ch := range channels {
		n, err := s.Count("/api/campaigns", url.Values{"filter": {"equals(messages.channel,'" + ch + "'),equals(archived,true)"}})
		require.NoError(t, err)
		archived += n
		recs := collectAll(t, s, "/api/campaigns?include=campaign-messages&filter="+url.QueryEscape("equals(messages.channel,'"+ch+"')"))
		require.NotEmpty(t, recs, ch)
		total += len(recs)
		for _, c := range recs {
			msgs, err := s.Resources("/api/campaigns/"+c["id"].(string)+"/campaign-messages", nil)
			require.NoError(t, err)
			for _, m := range msgs {
				assert.Contains(t, string(m), `"channel":"`+ch+`"`)
			}
		}
	}
	assert.Greater(t, archived, 0)
	assert.Equal(t, 30, total+archived, "archived campaigns only come when the filter asks for them")
	for _, raw := range collectAll(t, s, "/api/flows") {
		assert.Equal(t, false, raw["attributes"].(map[string]any)["archived"], "flows hide archived ones by default")
	}
	assert.Greater(t, countF(t, s, "/api/flows", "equals(archived,true)"), 0)
}

func TestCouponCodesNeedCouponOrProfileFilter(t *testing.T) {
	s := startSmall(t, nil)
	r := get(t, s, "/api/coupon-codes")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "filter", r.errorParameter())
	r = get(t, s, "/api/coupon-codes?filter="+url.QueryEscape("equals(status,'USED')"))
	assert.Equal(t, 400, r.status)
	coupons, err := s.Resources("/api/coupons", nil)
	require.NoError(t, err)
	total := 0
	for _, c := range coupons {
		id := jsonID(t, c)
		codes := collectAll(t, s, "/api/coupon-codes?filter="+url.QueryEscape("equals(coupon.id,'"+id+"')"))
		per := collectAll(t, s, "/api/coupons/"+url.PathEscape(id)+"/coupon-codes")
		assert.Equal(t, ids(per), ids(codes))
		total += len(codes)
	}
	assert.Equal(t, 60, total)
	any := collectAll(t, s, "/api/coupon-codes?filter="+url.QueryEscape("any(coupon.id,['10OFF','VIP20'])"))
	assert.NotEmpty(t, any)
}
