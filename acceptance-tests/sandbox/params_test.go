package sandbox

import (
	"net/url"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSparseFieldsets(t *testing.T) {
	s := startSmall(t, nil)
	r := get(t, s, "/api/events?page[size]=5&fields[event]=datetime,uuid&include=profile,metric&fields[profile]=email,location.city&fields[metric]=name")
	require.Equal(t, 200, r.status, string(r.body))
	for _, e := range r.data() {
		assert.Equal(t, []string{"datetime", "uuid"}, keysOf(e["attributes"].(map[string]any)))
	}
	inc := r.doc["included"].([]any)
	require.NotEmpty(t, inc)
	for _, x := range inc {
		m := x.(map[string]any)
		attrs := m["attributes"].(map[string]any)
		switch m["type"] {
		case "profile":
			assert.Equal(t, []string{"email", "location"}, keysOf(attrs))
			loc, _ := attrs["location"].(map[string]any)
			if loc != nil {
				assert.Equal(t, []string{"city"}, keysOf(loc))
			}
		case "metric":
			assert.Equal(t, []string{"name"}, keysOf(attrs))
		}
	}
	for pq, param := range map[string]string{
		"/api/events?fields[event]=datetime,color":    "fields[event]",
		"/api/events?fields[list]=name":               "fields[list]",
		"/api/profiles?fields[profile]=location.moon": "fields[profile]",
	} {
		r := get(t, s, pq)
		assert.Equal(t, 400, r.status, pq)
		assert.Equal(t, param, r.errorParameter(), pq)
	}
}

func TestIncludeValidation(t *testing.T) {
	s := startSmall(t, nil)
	r := get(t, s, "/api/events?include=profiless")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "include", r.errorParameter())
	assert.Contains(t, r.firstError()["detail"], "'profiless' is not an allowed include parameter")
	r = get(t, s, "/api/events?include=attributions&page[size]=300")
	require.Equal(t, 200, r.status)
	types := map[string]int{}
	for _, x := range r.doc["included"].([]any) {
		types[x.(map[string]any)["type"].(string)]++
	}
	assert.Greater(t, types["attribution"], 0)
	r = get(t, s, "/api/flows?include=flow-actions,tags")
	require.Equal(t, 200, r.status)
	types = map[string]int{}
	for _, x := range r.doc["included"].([]any) {
		types[x.(map[string]any)["type"].(string)]++
	}
	assert.Greater(t, types["flow-action"], 0)
	assert.Greater(t, types["tag"], 0)
}

func TestAdditionalFields(t *testing.T) {
	s := startSmall(t, nil)
	plain := get(t, s, "/api/profiles?page[size]=3").data()[0]["attributes"].(map[string]any)
	assert.NotContains(t, plain, "subscriptions")
	assert.NotContains(t, plain, "predictive_analytics")
	rich := get(t, s, "/api/profiles?page[size]=3&additional-fields[profile]=subscriptions,predictive_analytics").data()[0]["attributes"].(map[string]any)
	assert.Contains(t, rich, "subscriptions")
	assert.Contains(t, rich, "predictive_analytics")
	r := get(t, s, "/api/profiles?additional-fields[profile]=birthday")
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "additional-fields[profile]", r.errorParameter())
	r = get(t, s, "/api/events?additional-fields[profile]=subscriptions")
	assert.Equal(t, 400, r.status)

	list := get(t, s, "/api/lists?page[size]=1").data()[0]
	one := get(t, s, "/api/lists/"+list["id"].(string)+"?additional-fields[list]=profile_count")
	require.Equal(t, 200, one.status)
	n, err := s.Count("/api/lists/"+list["id"].(string)+"/profiles", nil)
	require.NoError(t, err)
	assert.EqualValues(t, n, one.doc["data"].(map[string]any)["attributes"].(map[string]any)["profile_count"])

	tpl := collectAll(t, s, "/api/templates?additional-fields[template]=definition")
	withDef := 0
	for _, x := range tpl {
		if x["attributes"].(map[string]any)["definition"] != nil {
			withDef++
		}
	}
	assert.Greater(t, withDef, 0)
}

func TestProfilesCoverConsentAndSuppression(t *testing.T) {
	s := startSmall(t, nil)
	recs := collectAll(t, s, "/api/profiles?page[size]=100&additional-fields[profile]=subscriptions")
	consents := map[string]bool{}
	reasons := map[string]bool{}
	listSupp := 0
	for _, p := range recs {
		m := p["attributes"].(map[string]any)["subscriptions"].(map[string]any)["email"].(map[string]any)["marketing"].(map[string]any)
		consents[m["consent"].(string)] = true
		if sup, ok := m["suppression"].([]any); ok {
			for _, x := range sup {
				reasons[x.(map[string]any)["reason"].(string)] = true
			}
		}
		if ls, ok := m["list_suppressions"].([]any); ok && len(ls) > 0 {
			listSupp++
		}
	}
	assert.Len(t, consents, 3)
	assert.Len(t, reasons, len(suppressReason))
	assert.Greater(t, listSupp, 0)
}

func TestMemberships(t *testing.T) {
	s := startSmall(t, nil)
	lists, err := s.Resources("/api/lists", nil)
	require.NoError(t, err)
	for _, raw := range lists[:3] {
		id := jsonID(t, raw)
		members := collectAll(t, s, "/api/lists/"+id+"/profiles?page[size]=100")
		require.NotEmpty(t, members, id)
		prev := ""
		for _, m := range members {
			j := m["attributes"].(map[string]any)["joined_group_at"].(string)
			assert.LessOrEqual(t, prev, j, "members come in joined_group_at order")
			prev = j
		}
		rel := collectAll(t, s, "/api/lists/"+id+"/relationships/profiles?page[size]=100")
		assert.Equal(t, ids(members), ids(rel))
		expected, err := s.Resources("/api/lists/"+id+"/relationships/profiles", nil)
		require.NoError(t, err)
		require.Len(t, expected, len(rel))
		assert.JSONEq(t, `{"type":"profile","id":"`+rel[0]["id"].(string)+`"}`, string(expected[0]))
		for _, x := range rel {
			assert.Equal(t, []string{"id", "type"}, keysOf(x), "relationship data are identifiers")
		}
		window := "greater-or-equal(joined_group_at,2025-01-01T00:00:00Z)"
		in, err := s.Resources("/api/lists/"+id+"/profiles", url.Values{"filter": {window}})
		require.NoError(t, err)
		for _, x := range in {
			assert.Regexp(t, `"joined_group_at":"(2025|2026)-`, string(x))
		}
	}
	segs, err := s.Resources("/api/segments", nil)
	require.NoError(t, err)
	members := collectAll(t, s, "/api/segments/"+jsonID(t, segs[0])+"/profiles?page[size]=100")
	assert.NotEmpty(t, members)
}

func TestSingleResources(t *testing.T) {
	s := startSmall(t, nil)
	for _, path := range []string{"/api/profiles", "/api/events", "/api/metrics", "/api/lists", "/api/flows", "/api/templates", "/api/tags", "/api/catalog-items", "/api/reviews", "/api/webhooks"} {
		list := get(t, s, path+"?page[size]=1")
		if path == "/api/metrics" || path == "/api/webhooks" {
			list = get(t, s, path)
		}
		require.Equal(t, 200, list.status, path)
		first := list.data()[0]
		one := get(t, s, path+"/"+url.PathEscape(first["id"].(string))+"/")
		require.Equal(t, 200, one.status, path)
		d := one.doc["data"].(map[string]any)
		assert.Equal(t, first["id"], d["id"], path)
		assert.Equal(t, first["type"], d["type"], path)
		nf := get(t, s, path+"/doesnotexist")
		assert.Equal(t, 404, nf.status, path)
		assert.Equal(t, "not_found", nf.firstError()["code"])
	}
	// send jobs exist only for campaigns that were sent
	drafts, err := s.Resources("/api/campaigns", url.Values{"filter": {"equals(messages.channel,'email'),equals(status,'Draft')"}})
	require.NoError(t, err)
	require.NotEmpty(t, drafts)
	assert.Equal(t, 404, get(t, s, "/api/campaign-send-jobs/"+jsonID(t, drafts[0])).status)
	sent, err := s.Resources("/api/campaigns", url.Values{"filter": {"equals(messages.channel,'email'),equals(status,'Sent')"}})
	require.NoError(t, err)
	require.NotEmpty(t, sent)
	job := get(t, s, "/api/campaign-send-jobs/"+jsonID(t, sent[0]))
	require.Equal(t, 200, job.status)
	assert.Equal(t, "complete", job.doc["data"].(map[string]any)["attributes"].(map[string]any)["status"])
}
