package source_test

import (
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// TestChildStreamReadsWhileItsParentsAreListed syncs list_memberships on an account whose lists take several pages
// to list (Klaviyo serves 10 a page): the first member read goes out before the listing's last page, every
// member is written once, and the state keeps the cursor of every listed list and drops a list that is gone.
func TestChildStreamReadsWhileItsParentsAreListed(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Hour)
	srv := startSandbox(t, sandbox.Options{Seed: 13, Now: now, Scale: sandbox.Scale{Lists: 60, Profiles: 300},
		Latency: sandbox.Latency{Min: 5 * time.Millisecond, Max: 10 * time.Millisecond}})
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, nil))
	cat := airbyteCatalog(t, dir, cfg, true, "list_memberships")

	r, o := airbyteRead(t, now, cfg, cat, "")
	require.Equal(t, 0, r.code, r.stderr)
	requireCompleted(t, r, o, []string{"list_memberships"})
	lastListing, firstMembers := int64(0), int64(-1)
	listings := 0
	for _, req := range srv.RequestsSince(0) {
		switch req.Path {
		case "/api/lists":
			lastListing = req.Seq
			listings++
		case "/api/lists/{id}/profiles":
			if firstMembers < 0 {
				firstMembers = req.Seq
			}
		}
	}
	require.Greater(t, listings, 3, "the lists take several pages to list")
	require.Positive(t, firstMembers)
	assert.Less(t, firstMembers, lastListing, "members are read while the lists are still being listed")

	seen := map[string]int{}
	for _, row := range o.rows("list_memberships") {
		var m struct {
			ListID    string `json:"list_id"`
			ProfileID string `json:"profile_id"`
		}
		require.NoError(t, json.Unmarshal(row, &m))
		seen[m.ListID+"/"+m.ProfileID]++
	}
	require.NotEmpty(t, seen)
	for k, n := range seen {
		require.Equal(t, 1, n, "member %s is written once", k)
	}

	states := checkAirbyteStates(t, o, nil, now)
	var st struct {
		Parents map[string]json.RawMessage `json:"parents"`
	}
	require.NoError(t, json.Unmarshal(states["list_memberships"], &st))
	require.NotEmpty(t, st.Parents)
	st.Parents["gone"] = json.RawMessage(`{"joined_group_at":"2020-01-01T00:00:00Z"}`)
	withGone, err := json.Marshal(map[string]any{"parents": st.Parents, "state_version": 1})
	require.NoError(t, err)
	stateFile := writeFile(t, dir, "state.json", []any{map[string]any{"type": "STREAM", "stream": map[string]any{
		"stream_descriptor": map[string]any{"name": "list_memberships"}, "stream_state": json.RawMessage(withGone)}}})
	r, again := airbyteRead(t, now, cfg, cat, stateFile)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, again.rows("list_memberships"), "nothing new since the first sync")
	require.NotEmpty(t, again.states)
	var after struct {
		Parents map[string]json.RawMessage `json:"parents"`
	}
	require.NoError(t, json.Unmarshal(again.states[len(again.states)-1].state, &after))
	assert.NotContains(t, after.Parents, "gone", "a list no longer listed leaves the state")
	delete(st.Parents, "gone")
	assert.Len(t, after.Parents, len(st.Parents), "every listed list keeps its cursor")
}
