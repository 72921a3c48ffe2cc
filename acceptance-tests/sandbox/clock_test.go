package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func countF(t testing.TB, s *Server, path, filter string) int {
	t.Helper()
	q := url.Values{}
	if filter != "" {
		q.Set("filter", filter)
	}
	n, err := s.Count(path, q)
	require.NoError(t, err, path+" "+filter)
	return n
}

func TestDefaultClock(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.Now = time.Time{} })
	want := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour)
	assert.True(t, s.Now().Equal(want) || s.Now().Equal(want.Add(24*time.Hour)), s.Now())
}

func TestAdvanceCreatesAndUpdates(t *testing.T) {
	s := startSmall(t, nil)
	t0 := s.Now()
	at := t0.Format(time.RFC3339)
	beforeEvents := countF(t, s, "/api/events", "")
	pastEvents, err := s.Resources("/api/events", url.Values{"filter": {"less-or-equal(datetime," + at + ")"}})
	require.NoError(t, err)
	profilesBefore := countF(t, s, "/api/profiles", "")
	require.Zero(t, countF(t, s, "/api/profiles", "greater-than(updated,"+at+")"))

	s.Advance(24 * time.Hour)
	t1 := s.Now()
	assert.Equal(t, t0.Add(24*time.Hour), t1)
	window := "greater-than(datetime," + at + "),less-or-equal(datetime," + t1.Format(time.RFC3339) + ")"
	created := countF(t, s, "/api/events", window)
	assert.Greater(t, created, 0, "new events are dated inside the advanced interval")
	assert.Equal(t, beforeEvents+created, countF(t, s, "/api/events", ""))
	again, err := s.Resources("/api/events", url.Values{"filter": {"less-or-equal(datetime," + at + ")"}})
	require.NoError(t, err)
	assert.Equal(t, pastEvents, again, "history does not change when the clock moves")

	assert.Greater(t, countF(t, s, "/api/profiles", ""), profilesBefore, "new profiles")
	upd := countF(t, s, "/api/profiles", "greater-than(updated,"+at+")")
	newOnes := countF(t, s, "/api/profiles", "greater-than(created,"+at+")")
	assert.Greater(t, upd, newOnes, "some existing profiles were updated in the interval")
	// sort=updated walks every profile once, the updated ones last
	all := collectAll(t, s, "/api/profiles?page[size]=100&sort=updated")
	require.Len(t, all, countF(t, s, "/api/profiles", ""))
	last := all[len(all)-1]["attributes"].(map[string]any)["updated"].(string)
	assert.Greater(t, last, at)
	for kind, f := range map[string]string{
		"/api/lists":     "greater-than(updated," + at + ")",
		"/api/segments":  "greater-than(updated," + at + ")",
		"/api/flows":     "greater-than(updated," + at + ")",
		"/api/templates": "greater-than(updated," + at + ")",
		"/api/images":    "greater-than(updated_at," + at + ")",
		"/api/forms":     "greater-than(updated_at," + at + ")",
	} {
		assert.Greater(t, countF(t, s, kind, f), 0, kind)
	}
	assert.Greater(t, countF(t, s, "/api/campaigns", "equals(messages.channel,'email'),greater-than(updated_at,"+at+")")+
		countF(t, s, "/api/campaigns", "equals(messages.channel,'sms'),greater-than(updated_at,"+at+")")+
		countF(t, s, "/api/campaigns", "equals(messages.channel,'mobile_push'),greater-than(updated_at,"+at+")"), 0)

	// memberships: new profiles join lists inside the interval
	joined := 0
	lists, err := s.Resources("/api/lists", nil)
	require.NoError(t, err)
	for _, l := range lists {
		joined += countF(t, s, "/api/lists/"+jsonID(t, l)+"/profiles", "greater-than(joined_group_at,"+at+")")
	}
	assert.Greater(t, joined, 0)
}

func TestCursorIsStableWhileTheClockMoves(t *testing.T) {
	s := startSmall(t, nil)
	want := collectAll(t, s, "/api/events?page[size]=500&filter="+url.QueryEscape("less-than(datetime,"+s.Now().Format(time.RFC3339)+")"))
	first := get(t, s, "/api/events?page[size]=500")
	s.Advance(72 * time.Hour)
	got := first.data()
	next := first.link("next")
	for next != "" {
		u, _ := url.Parse(next)
		r := get(t, s, u.RequestURI())
		require.Equal(t, 200, r.status)
		got = append(got, r.data()...)
		next = r.link("next")
	}
	require.Greater(t, len(got), len(want))
	assert.Equal(t, ids(want), ids(got[:len(want)]), "the pages before the old clock are unchanged")
}

func TestDeterministicFromSeed(t *testing.T) {
	a := startSmall(t, nil)
	b := startSmall(t, nil)
	c := startSmall(t, func(o *Options) { o.Seed = 7 })
	q := url.Values{"additional-fields[profile]": {"subscriptions,predictive_analytics"}}
	ra, err := a.Resources("/api/profiles", q)
	require.NoError(t, err)
	rb, err := b.Resources("/api/profiles", q)
	require.NoError(t, err)
	rc, err := c.Resources("/api/profiles", q)
	require.NoError(t, err)
	norm := func(s *Server, raws []json.RawMessage) string {
		var buf bytes.Buffer
		for _, r := range raws {
			buf.Write(r)
		}
		return strings.ReplaceAll(buf.String(), s.URL(), "BASE")
	}
	assert.Equal(t, norm(a, ra), norm(b, rb))
	assert.NotEqual(t, norm(a, ra), norm(c, rc))
	a.Advance(48 * time.Hour)
	b.Advance(48 * time.Hour)
	ea, err := a.Resources("/api/events", nil)
	require.NoError(t, err)
	eb, err := b.Resources("/api/events", nil)
	require.NoError(t, err)
	assert.Equal(t, norm(a, ea), norm(b, eb))
}

func TestAdminSurface(t *testing.T) {
	s := startSmall(t, nil)
	adminGet := func(path string) (*http.Response, []byte) {
		resp, err := http.Get(s.URL() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	_, body := adminGet("/_sandbox/clock")
	assert.JSONEq(t, `{"now":"2025-11-01T00:00:00Z"}`, string(body))
	resp, err := http.Post(s.URL()+"/_sandbox/advance?by=24h", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, fixedNow.Add(24*time.Hour), s.Now())
	resp, err = http.Post(s.URL()+"/_sandbox/advance?by=soon", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)

	filter := "greater-or-equal(datetime,2025-06-01T00:00:00Z)"
	_, body = adminGet("/_sandbox/count?path=/api/events&filter=" + url.QueryEscape(filter))
	var cnt struct{ Count int }
	require.NoError(t, json.Unmarshal(body, &cnt))
	assert.Equal(t, countF(t, s, "/api/events", filter), cnt.Count)
	assert.Greater(t, cnt.Count, 0)

	resp, body = adminGet("/_sandbox/resources?path=/api/lists/&fields[list]=name")
	assert.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(bytes.NewReader(body))
	lines := 0
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		assert.Equal(t, []string{"name"}, keysOf(m["attributes"].(map[string]any)))
		lines++
	}
	assert.Equal(t, countF(t, s, "/api/lists", ""), lines)

	resp, _ = adminGet("/_sandbox/count?path=/api/campaigns")
	assert.Equal(t, 400, resp.StatusCode, "the channel filter is required here too")

	get(t, s, "/api/lists")
	get(t, s, "/api/lists", "revision", "")
	_, body = adminGet("/_sandbox/stats")
	var st Stats
	require.NoError(t, json.Unmarshal(body, &st))
	assert.Equal(t, 1, st.ByPath["/api/lists"]["200"])
	assert.Equal(t, 1, st.ByPath["/api/lists"]["400"])
	assert.Equal(t, 2, st.Requests)
}

func TestIDsRoundTrip(t *testing.T) {
	for _, w := range []int{6, 10} {
		for _, i := range []int64{0, 1, 2, 61, 62, 12345, 1 << 30} {
			id := encID(99, i, w)
			assert.Len(t, id, w)
			back, ok := decID(99, id, w)
			require.True(t, ok)
			assert.Equal(t, i, back)
		}
	}
	for _, sec := range []int64{0, 1, 86399, 1730419200, 1761436800 + 3723, 4102444800} {
		assert.Equal(t, time.Unix(sec, 0).UTC().Format("2006-01-02T15:04:05+00:00"), isoTime(sec))
	}
	s := startSmall(t, nil)
	wd := s.world.Load()
	for _, i := range []int64{0, 1, 199} {
		back, ok := wd.profileIndex(wd.profileID(i))
		require.True(t, ok)
		assert.Equal(t, i, back)
		assert.Len(t, wd.profileID(i), 26)
	}
	assert.Less(t, wd.profileID(3), wd.profileID(4), "profile ULIDs sort by creation")
}

// TestLargeScaleStaysFlat serves pages from ten million events and a million profiles without
// materialising them.
func TestLargeScaleStaysFlat(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.Scale.Events = 10_000_000; o.Scale.Profiles = 1_000_000 })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := get(t, s, "/api/events?page[size]=1000&filter="+url.QueryEscape("greater-or-equal(datetime,2025-07-01T00:00:00Z),less-than(datetime,2025-07-02T00:00:00Z)"))
	require.Equal(t, 200, r.status)
	assert.Len(t, r.data(), 1000)
	u, _ := url.Parse(r.link("next"))
	r = get(t, s, u.RequestURI())
	require.Equal(t, 200, r.status)
	assert.Len(t, r.data(), 1000)
	r = get(t, s, "/api/events?page[size]=1000&sort=-datetime")
	require.Equal(t, 200, r.status)
	r = get(t, s, "/api/profiles?page[size]=100&sort=-updated&additional-fields[profile]=subscriptions")
	require.Equal(t, 200, r.status)
	assert.Len(t, r.data(), 100)
	s.Advance(24 * time.Hour)
	r = get(t, s, "/api/profiles?page[size]=100&sort=updated&filter="+url.QueryEscape("greater-than(updated,2025-11-01T00:00:00Z)"))
	require.Equal(t, 200, r.status)
	assert.Len(t, r.data(), 100)
	lists, err := s.Resources("/api/lists", nil)
	require.NoError(t, err)
	r = get(t, s, "/api/lists/"+jsonID(t, lists[0])+"/profiles?page[size]=100")
	require.Equal(t, 200, r.status)
	assert.Len(t, r.data(), 100)
	n, err := s.Count("/api/events", url.Values{"filter": {"greater-or-equal(datetime,2025-07-01T00:00:00Z),less-than(datetime,2025-07-02T00:00:00Z)"}})
	require.NoError(t, err)
	assert.InDelta(t, 10_000_000/365, n, 1000)
	all, err := s.Count("/api/events", nil)
	require.NoError(t, err)
	assert.Greater(t, all, 10_000_000, "ten million events plus the day just advanced")
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	assert.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(64<<20), "heap stays flat")
}
