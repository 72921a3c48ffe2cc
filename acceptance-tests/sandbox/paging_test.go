package sandbox

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPaginationFollowsNextToTheEnd(t *testing.T) {
	s := startSmall(t, nil)
	s.Advance(36 * time.Hour) // so updated orders merge Advance-touched records with the rest
	win := url.QueryEscape("greater-or-equal(datetime,2025-03-01T00:00:00Z),less-than(datetime,2025-09-01T00:00:00Z)")
	for _, pq := range []string{
		"/api/events?page[size]=97&sort=-datetime&filter=" + win,
		"/api/events?page[size]=50&filter=" + win + "&include=metric",
		"/api/profiles?page[size]=7&sort=-updated&filter=" + url.QueryEscape("greater-than(updated,2025-10-01T00:00:00Z)"),
		"/api/profiles?page[size]=9&sort=updated",
		"/api/profiles?page[size]=11&sort=subscriptions.email.marketing.suppression.timestamp&additional-fields[profile]=subscriptions&filter=" +
			url.QueryEscape("greater-or-equal(subscriptions.email.marketing.suppression.timestamp,2020-01-01T00:00:00Z)"),
		"/api/events?page[size]=1000",
		"/api/events?page[size]=137&sort=-datetime",
		"/api/profiles?page[size]=100",
		"/api/profiles?page[size]=33&sort=-updated",
		"/api/profiles?page[size]=17&sort=email",
		"/api/lists",
		"/api/segments?sort=-name",
		"/api/catalog-variants?page[size]=7",
		"/api/campaigns?filter=" + url.QueryEscape("equals(messages.channel,'sms')") + "&page[size]=3&sort=-created_at",
	} {
		t.Run(pq, func(t *testing.T) {
			path, rawq, _ := strings.Cut(pq, "?")
			q, err := url.ParseQuery(rawq)
			require.NoError(t, err)
			got := collectAll(t, s, pq)
			want, err := s.Resources(path, q)
			require.NoError(t, err)
			require.Len(t, got, len(want))
			n, err := s.Count(path, q)
			require.NoError(t, err)
			assert.Equal(t, len(want), n)
			uniq := map[string]bool{}
			for i := range got {
				var w map[string]any
				require.NoError(t, json.Unmarshal(want[i], &w))
				assert.Equal(t, w, got[i], "record %d matches Resources", i)
				uniq[got[i]["id"].(string)] = true
			}
			assert.Len(t, uniq, len(got), "no duplicates across pages")
		})
	}
}

func TestPaginationLinks(t *testing.T) {
	s := startSmall(t, nil)
	first := get(t, s, "/api/events/?page[size]=50&sort=datetime&fields[event]=datetime")
	require.Equal(t, 200, first.status)
	next := first.link("next")
	require.True(t, strings.HasPrefix(next, s.URL()+"/api/events/?"), next)
	assert.Contains(t, next, "page%5Bcursor%5D=")
	assert.Contains(t, next, "page%5Bsize%5D=50")
	assert.Contains(t, next, "fields%5Bevent%5D=datetime")
	assert.Contains(t, next, "sort=datetime")
	assert.Empty(t, first.link("prev"), "the first page has no prev")
	assert.Equal(t, s.URL()+"/api/events/?page[size]=50&sort=datetime&fields[event]=datetime", first.link("self"))

	u, _ := url.Parse(next)
	second := get(t, s, u.RequestURI())
	require.Equal(t, 200, second.status)
	prev := second.link("prev")
	require.NotEmpty(t, prev)
	u, _ = url.Parse(prev)
	back := get(t, s, u.RequestURI())
	assert.Equal(t, ids(first.data()), ids(back.data()), "prev of page 2 is page 1")

	// The SDK style of passing the whole next link as the cursor works too.
	r := get(t, s, "/api/events/?page[size]=50&sort=datetime&fields[event]=datetime&page[cursor]="+url.QueryEscape(next))
	assert.Equal(t, ids(second.data()), ids(r.data()))

	// Last page has no next.
	all := get(t, s, "/api/lists?page[size]=10")
	for all.link("next") != "" {
		u, _ := url.Parse(all.link("next"))
		all = get(t, s, u.RequestURI())
	}
	_, hasNext := all.doc["links"].(map[string]any)["next"]
	assert.False(t, hasNext)

	bad := get(t, s, "/api/events?page[cursor]=not-a-cursor")
	assert.Equal(t, 400, bad.status)
	assert.Equal(t, "page[cursor]", bad.errorParameter())
}

func TestPageSizeBounds(t *testing.T) {
	s := startSmall(t, nil)
	for pq, status := range map[string]int{
		"/api/events?page[size]=0":     400,
		"/api/events?page[size]=1001":  400,
		"/api/events?page[size]=x":     400,
		"/api/events?page[size]=1000":  200,
		"/api/profiles?page[size]=101": 400,
		"/api/profiles?page[size]=100": 200,
		"/api/lists?page[size]=11":     400,
		"/api/metrics?page[size]=5":    400,
		"/api/forms?page[size]=100":    200,
		"/api/page?page[number]=2":     404,
		"/api/events?page[number]=2":   400,
	} {
		r := get(t, s, pq)
		assert.Equal(t, status, r.status, pq)
		if status == 400 {
			assert.True(t, strings.HasPrefix(r.errorParameter(), "page["), pq)
		}
	}
	for pq, n := range map[string]int{"/api/events": 200, "/api/profiles": 20, "/api/lists": 10, "/api/images": 20} {
		assert.Len(t, get(t, s, pq).data(), n, pq)
	}
	// metrics: at most 200 per page without page[size]
	big := startSmall(t, func(o *Options) { o.Scale.Metrics = 450 })
	r := get(t, big, "/api/metrics")
	assert.Len(t, r.data(), 200)
	assert.Len(t, collectAll(t, big, "/api/metrics"), 450)
}

func TestSortOrders(t *testing.T) {
	s := startSmall(t, nil)
	check := func(pq, attr string, desc bool) {
		recs := collectAll(t, s, pq)
		require.NotEmpty(t, recs, pq)
		var keys []string
		for _, r := range recs {
			v, _ := r["attributes"].(map[string]any)[attr].(string)
			keys = append(keys, v)
		}
		ok := sort.SliceIsSorted(keys, func(i, j int) bool {
			if desc {
				return keys[i] > keys[j]
			}
			return keys[i] < keys[j]
		})
		assert.True(t, ok || isSortedNonStrict(keys, desc), "%s sorted by %s", pq, attr)
	}
	check("/api/events?page[size]=1000&sort=datetime", "datetime", false)
	check("/api/events?page[size]=1000&sort=-timestamp", "datetime", true)
	check("/api/profiles?page[size]=100&sort=updated", "updated", false)
	check("/api/profiles?page[size]=100&sort=-created", "created", true)
	check("/api/lists?sort=name", "name", false)
	check("/api/flows?sort=-updated", "updated", true)
	r := get(t, s, "/api/events?sort=name")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "sort", r.errorParameter())
	assert.Equal(t, 400, get(t, s, "/api/metrics?sort=name").status, "metrics have no sort")
}

func isSortedNonStrict(keys []string, desc bool) bool {
	for i := 1; i < len(keys); i++ {
		if (!desc && keys[i] < keys[i-1]) || (desc && keys[i] > keys[i-1]) {
			return false
		}
	}
	return true
}

func TestFutureDatedEvents(t *testing.T) {
	s := startSmall(t, nil)
	after := s.Now().Add(60 * 24 * time.Hour).Format(time.RFC3339)
	n, err := s.Count("/api/events", url.Values{"filter": {"greater-or-equal(datetime," + after + ")"}})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 3)
	// With the default clock (30 days before the wall clock) they are after the real now too.
	s = startSmall(t, func(o *Options) { o.Now = time.Time{} })
	wall, err := s.Count("/api/events", url.Values{"filter": {"greater-than(datetime," + time.Now().UTC().Format(time.RFC3339) + ")"}})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, wall, 3, "future-dated events are after the real wall clock too")
}

// TestPrevLinksWalkBack follows next to the end, then prev back to the start, over a merged listing.
func TestPrevLinksWalkBack(t *testing.T) {
	s := startSmall(t, nil)
	s.Advance(48 * time.Hour)
	var forward [][]string
	r := get(t, s, "/api/profiles?page[size]=13&sort=-updated")
	for {
		require.Equal(t, 200, r.status)
		forward = append(forward, ids(r.data()))
		if r.link("next") == "" {
			break
		}
		u, _ := url.Parse(r.link("next"))
		r = get(t, s, u.RequestURI())
	}
	for i := len(forward) - 2; i >= 0; i-- {
		require.NotEmpty(t, r.link("prev"), "page %d has a prev link", i+1)
		u, _ := url.Parse(r.link("prev"))
		r = get(t, s, u.RequestURI())
		assert.Equal(t, forward[i], ids(r.data()), "page %d", i)
	}
	assert.Empty(t, r.link("prev"), "back at the first page")
}
