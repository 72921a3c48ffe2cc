package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quietPaths are listings whose every resource a quiet advance must leave as it was: the incremental streams'
// collections and a fan-out of each parent kind whose children an hourly sync re-reads.
var quietPaths = []string{"/api/events", "/api/profiles", "/api/lists", "/api/segments", "/api/flows",
	"/api/templates", "/api/images", "/api/forms", "/api/metrics", "/api/catalog-items"}

func snapshot(t *testing.T, s *Server) map[string][]json.RawMessage {
	t.Helper()
	out := map[string][]json.RawMessage{}
	for _, p := range quietPaths {
		res, err := s.Resources(p, url.Values{})
		require.NoError(t, err, p)
		require.NotEmpty(t, res, p)
		out[p] = res
	}
	for _, ch := range []string{"email", "sms"} {
		p := "/api/campaigns?filter=equals(messages.channel,'" + ch + "')"
		res, err := s.Resources("/api/campaigns", url.Values{"filter": {"equals(messages.channel,'" + ch + "')"}})
		require.NoError(t, err, p)
		out[p] = res
	}
	lists, err := s.Resources("/api/lists", url.Values{})
	require.NoError(t, err)
	var first struct{ ID string }
	require.NoError(t, json.Unmarshal(lists[0], &first))
	p := "/api/lists/" + first.ID + "/profiles"
	if out[p], err = s.Resources(p, url.Values{}); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return out
}

func TestAdvanceQuietMovesOnlyTheClock(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.LateEvents = LateEvents{PerAdvance: 3}; o.Removals = 2 })
	t0 := s.Now()
	before := snapshot(t, s)
	s.AdvanceQuiet(time.Hour)
	require.Equal(t, t0.Add(time.Hour), s.Now())
	after := snapshot(t, s)
	for p, res := range before {
		assert.Equal(t, res, after[p], "%s: a quiet hour changes no resource", p)
	}
	at, t1 := t0.Format(time.RFC3339), s.Now()
	hour := "," + at + "),less-or-equal("
	// Events are bounded above: the account has a few future-dated ones. Profiles and lists accept only
	// greater-than on updated, and none is updated after the clock.
	for p, f := range map[string]string{"/api/profiles": "greater-than(updated," + at + ")",
		"/api/events": "greater-than(datetime" + hour + "datetime," + t1.Format(time.RFC3339) + ")",
		"/api/lists":  "greater-than(updated," + at + ")"} {
		assert.Zero(t, countF(t, s, p, f), "%s: nothing dated in the quiet hour", p)
	}
	assert.Empty(t, s.LateEvents(), "no late events without an epoch")
	assert.Empty(t, s.RemovedMembers(), "no removals without an epoch")

	// The clock goes on from where the quiet hour left it: the next Advance creates records after it, and only its
	// late events (dated up to 45 minutes before the clock it started from) fall inside the quiet hour.
	s.Advance(time.Hour)
	t2 := s.Now().Format(time.RFC3339)
	window := "greater-than(datetime," + t1.Format(time.RFC3339) + "),less-or-equal(datetime," + t2 + ")"
	assert.Greater(t, countF(t, s, "/api/events", window), 0, "an Advance after a quiet hour creates events")
	assert.Equal(t, len(s.LateEvents()), countF(t, s, "/api/events", "greater-than(datetime"+hour+"datetime,"+t1.Format(time.RFC3339)+")"),
		"the quiet hour holds only the next Advance's late events")
	assert.Len(t, s.LateEvents(), 3)
}

func TestAdminAdvanceQuiet(t *testing.T) {
	s := startSmall(t, nil)
	t0 := s.Now()
	events := countF(t, s, "/api/events", "")
	post := func(q string) (int, map[string]string) {
		t.Helper()
		resp, err := http.Post(s.URL()+"/_sandbox/advance?"+q, "", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	status, body := post("by=1h&quiet=true")
	require.Equal(t, 200, status, body)
	assert.Equal(t, t0.Add(time.Hour).Format(time.RFC3339), body["now"])
	assert.Equal(t, events, countF(t, s, "/api/events", ""), "quiet=true creates no events")

	status, body = post("by=1h&quiet=maybe")
	assert.Equal(t, 400, status)
	assert.Contains(t, body["error"], "quiet")
	assert.Equal(t, t0.Add(time.Hour), s.Now(), "a rejected advance leaves the clock")

	status, _ = post("by=1h&quiet=false")
	require.Equal(t, 200, status)
	assert.Greater(t, countF(t, s, "/api/events", ""), events, "quiet=false is the usual advance")
}

func TestRequestsSinceListsTheRequestsOfOneSync(t *testing.T) {
	s := startSmall(t, nil)
	require.Equal(t, 200, get(t, s, "/api/lists?page[size]=2").status)
	before := s.Stats().Requests
	require.Equal(t, 200, get(t, s, "/api/events?filter=greater-than(datetime,2025-10-01T00:00:00Z)").status)
	require.Equal(t, 404, get(t, s, "/api/lists/nope/profiles").status)

	got := s.RequestsSince(int64(before))
	require.Len(t, got, 2)
	assert.Positive(t, got[0].Arrived, "each request says when it arrived")
	assert.LessOrEqual(t, got[0].Arrived, got[1].Arrived, "in the order they arrived")
	assert.GreaterOrEqual(t, got[0].Micros, int64(0))
	first := got[0]
	first.Arrived, first.Micros = 0, 0
	assert.Equal(t, Request{Seq: int64(before) + 1, Method: "GET", Path: "/api/events",
		URI: "/api/events?filter=greater-than(datetime,2025-10-01T00:00:00Z)", Status: 200}, first)
	assert.Equal(t, "/api/lists/{id}/profiles", got[1].Path)
	assert.Equal(t, 404, got[1].Status)
	assert.Len(t, s.RequestsSince(0), 3, "every request from the start")

	resp, err := http.Get(s.URL() + "/_sandbox/requests?since=" + strconv.Itoa(before))
	require.NoError(t, err)
	defer resp.Body.Close()
	var lines []Request
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var r Request
		require.NoError(t, dec.Decode(&r))
		lines = append(lines, r)
	}
	assert.Equal(t, got, lines, "the admin endpoint serves the same requests as NDJSON")
	resp, err = http.Get(s.URL() + "/_sandbox/requests?since=-1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
}

// The log keeps the last recentRequests: older ones are dropped, not the newest, and numbering goes on.
func TestRequestLogKeepsTheLastRequests(t *testing.T) {
	st := newStats()
	n := recentRequests + 250
	for i := 1; i <= n; i++ {
		st.record("/api/events", 200, "GET", "/api/events?i="+strconv.Itoa(i), time.Now())
	}
	s := &Server{stats: st}
	all := s.RequestsSince(0)
	require.Len(t, all, recentRequests)
	assert.Equal(t, int64(251), all[0].Seq)
	assert.Equal(t, "/api/events?i=251", all[0].URI)
	assert.Equal(t, int64(n), all[len(all)-1].Seq)
	assert.Equal(t, "/api/events?i="+strconv.Itoa(n), all[len(all)-1].URI)
	last := s.RequestsSince(int64(n - 3))
	require.Len(t, last, 3)
	assert.Equal(t, int64(n-2), last[0].Seq)
	assert.Empty(t, s.RequestsSince(int64(n)))
}
