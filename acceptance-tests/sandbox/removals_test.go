package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// groupPath is the collection path of a removed member's kind: "lists" or "segments".
func groupPath(kind string) string { return "/api/" + kind + "s/" }

// memberIDs reads a list's or segment's members through the relationship endpoint.
func memberIDs(t testing.TB, s *Server, kind, id string) []string {
	t.Helper()
	return ids(collectAll(t, s, groupPath(kind)+id+"/relationships/profiles"))
}

// requireRemovalsApplied checks every list and segment of on against the same account without
// removals (off): the members are off's minus the removed ones, through the member endpoints,
// profile_count and a profile's include=lists,segments.
func requireRemovalsApplied(t *testing.T, off, on *Server) {
	t.Helper()
	gone := map[string][]string{}
	for _, r := range on.RemovedMembers() {
		gone[r.Kind+" "+r.GroupID] = append(gone[r.Kind+" "+r.GroupID], r.ProfileID)
	}
	for _, kind := range []string{kList, kSegment} {
		for _, g := range collectAll(t, on, "/api/"+kind+"s") {
			id := g["id"].(string)
			want := slices.DeleteFunc(memberIDs(t, off, kind, id), func(p string) bool { return slices.Contains(gone[kind+" "+id], p) })
			require.Equal(t, want, memberIDs(t, on, kind, id), "%s %s", kind, id)
			require.Equal(t, want, ids(collectAll(t, on, groupPath(kind)+id+"/profiles?page[size]=7")), "%s %s", kind, id)
			r := get(t, on, groupPath(kind)+id+"?additional-fields["+kind+"]=profile_count")
			require.Equal(t, 200, r.status)
			assert.EqualValues(t, len(want), r.doc["data"].(map[string]any)["attributes"].(map[string]any)["profile_count"], "%s %s", kind, id)
		}
	}
	for _, r := range on.RemovedMembers() {
		groupsOf := func(s *Server) []string {
			doc := get(t, s, "/api/profiles/"+r.ProfileID+"?include=lists,segments").doc
			return ids(results(doc["data"].(map[string]any)["relationships"].(map[string]any)[r.Kind+"s"].(map[string]any), "data"))
		}
		assert.Contains(t, groupsOf(off), r.GroupID)
		assert.NotContains(t, groupsOf(on), r.GroupID, "%s left %s %s", r.ProfileID, r.Kind, r.GroupID)
	}
}

func TestRemovalsTakeMembersOut(t *testing.T) {
	off := startSmall(t, nil)
	on := startSmall(t, func(o *Options) { o.Removals = 2 })
	require.Empty(t, on.RemovedMembers())
	t0 := on.Now()
	for _, s := range []*Server{off, on} {
		s.Advance(24 * time.Hour)
	}
	first := on.RemovedMembers()
	require.Len(t, first, 4, "two list and two segment memberships per Advance")
	kinds := map[string]int{}
	for _, r := range first {
		kinds[r.Kind]++
		assert.True(t, r.At.After(t0) && !r.At.After(on.Now()), "%+v leaves inside the Advance", r)
		assert.Contains(t, memberIDs(t, off, r.Kind, r.GroupID), r.ProfileID, "it was a member")
	}
	assert.Equal(t, map[string]int{kList: 2, kSegment: 2}, kinds)
	requireRemovalsApplied(t, off, on)

	// Later Advances remove more and never bring anyone back.
	for _, d := range []time.Duration{time.Hour, 24 * time.Hour} {
		off.Advance(d)
		on.Advance(d)
	}
	all := on.RemovedMembers()
	require.Len(t, all, 12)
	assert.Equal(t, first, all[:4])
	requireRemovalsApplied(t, off, on)
}

func TestRemoveMember(t *testing.T) {
	off := startSmall(t, nil)
	on := startSmall(t, nil) // RemoveMember works whatever Options.Removals says
	list := collectAll(t, on, "/api/lists")[0]["id"].(string)
	segment := collectAll(t, on, "/api/segments")[0]["id"].(string)
	members := memberIDs(t, on, kList, list)
	require.NoError(t, on.RemoveMember(list, members[3]))
	require.NoError(t, on.RemoveMember(segment, memberIDs(t, on, kSegment, segment)[0]))
	assert.Equal(t, []RemovedMember{
		{Kind: kList, GroupID: list, ProfileID: members[3], At: on.Now()},
		{Kind: kSegment, GroupID: segment, ProfileID: memberIDs(t, off, kSegment, segment)[0], At: on.Now()},
	}, on.RemovedMembers())
	requireRemovalsApplied(t, off, on)

	assert.Error(t, on.RemoveMember(list, members[3]), "already removed")
	assert.Error(t, on.RemoveMember("nolist", members[0]))
	assert.Error(t, on.RemoveMember(list, "01NOTAPROFILE0000000000000"))
	var outsider string
	for _, p := range collectAll(t, on, "/api/profiles") {
		if !slices.Contains(members, p["id"].(string)) {
			outsider = p["id"].(string)
			break
		}
	}
	require.NotEmpty(t, outsider)
	assert.Error(t, on.RemoveMember(list, outsider), "not a member")
	require.Len(t, on.RemovedMembers(), 2, "failed calls remove nothing")

	for _, s := range []*Server{off, on} {
		s.Advance(24 * time.Hour)
	}
	requireRemovalsApplied(t, off, on)
}

// Segment reports count removals: members_removed, and the net change and total they lower.
func TestRemovalsInSegmentReports(t *testing.T) {
	off := startSmall(t, nil)
	on := startSmall(t, func(o *Options) { o.Removals = 4 })
	for _, s := range []*Server{off, on} {
		s.Advance(24 * time.Hour)
	}
	// this_month runs from 1 November in Paris (before the clock start) up to the clock, so it
	// holds every removal except any dated at the clock itself.
	removed := map[string]int64{}
	for _, r := range on.RemovedMembers() {
		if r.Kind == kSegment && r.At.Before(on.Now()) {
			removed[r.GroupID]++
		}
	}
	require.NotEmpty(t, removed)
	stats := []string{"members_added", "members_removed", "net_members_changed", "total_members"}
	report := func(s *Server) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, row := range results(postOK(t, s, "/api/segment-values-reports", "segment-values-report", map[string]any{
			"statistics": stats, "timeframe": map[string]any{"key": "this_month"}}), "results") {
			out[row["groupings"].(map[string]any)["segment_id"].(string)] = row["statistics"].(map[string]any)
		}
		return out
	}
	before, after := report(off), report(on)
	require.Equal(t, len(before), len(after))
	num := func(v any) int64 {
		n, err := strconv.ParseInt(v.(interface{ String() string }).String(), 10, 64)
		require.NoError(t, err)
		return n
	}
	for seg, st := range after {
		r := removed[seg]
		assert.Equal(t, num(before[seg]["members_added"]), num(st["members_added"]), seg)
		assert.Equal(t, r, num(st["members_removed"]), seg)
		assert.Equal(t, num(before[seg]["net_members_changed"])-r, num(st["net_members_changed"]), seg)
		assert.Equal(t, num(before[seg]["total_members"])-r, num(st["total_members"]), seg)
	}
}

func TestRemovalsAreDeterministic(t *testing.T) {
	run := func(seed int64) []RemovedMember {
		s := startSmall(t, func(o *Options) { o.Seed = seed; o.Removals = 3 })
		for _, d := range []time.Duration{time.Hour, 24 * time.Hour, time.Minute} {
			s.Advance(d)
		}
		return s.RemovedMembers()
	}
	a := run(42)
	require.Len(t, a, 18)
	assert.Equal(t, a, run(42))
	assert.NotEqual(t, a, run(43))
}

func TestRemovalsMustNotBeNegative(t *testing.T) {
	s, err := Start(Options{Removals: -1})
	if s != nil {
		_ = s.Close()
	}
	assert.Error(t, err)
}

// The binary's users see the same through the admin surface.
func TestAdminLateEventsAndRemovals(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.LateEvents = LateEvents{PerAdvance: 2}; o.Removals = 1 })
	admin := func(method, path string, v any) int {
		req, err := http.NewRequest(method, s.URL()+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if v != nil {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
		}
		return resp.StatusCode
	}
	require.Equal(t, 200, admin(http.MethodPost, "/_sandbox/advance?by=2h", nil))
	var late []LateEvent
	require.Equal(t, 200, admin(http.MethodGet, "/_sandbox/late-events", &late))
	assert.Equal(t, s.LateEvents(), late)
	require.Len(t, late, 2)

	list := collectAll(t, s, "/api/lists")[1]["id"].(string)
	profile := memberIDs(t, s, kList, list)[0]
	q := "?group=" + url.QueryEscape(list) + "&profile=" + url.QueryEscape(profile)
	assert.Equal(t, 405, admin(http.MethodGet, "/_sandbox/remove-member"+q, nil))
	var removed []RemovedMember
	require.Equal(t, 200, admin(http.MethodPost, "/_sandbox/remove-member"+q, &removed))
	assert.Equal(t, 400, admin(http.MethodPost, "/_sandbox/remove-member"+q, nil), "no longer a member")
	require.Equal(t, 200, admin(http.MethodGet, "/_sandbox/removed-members", &removed))
	assert.Equal(t, s.RemovedMembers(), removed)
	require.Len(t, removed, 3, "a list and a segment membership from the Advance, then the named one")
	assert.Equal(t, RemovedMember{Kind: kList, GroupID: list, ProfileID: profile, At: s.Now()}, removed[2])
}
