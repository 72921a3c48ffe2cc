package acceptance_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
)

// This file computes, from the sandbox's own view of its data, the rows each stream must produce. It is written
// independently of the connector's shaping code (maps here, byte splicing there) so that a shared mistake is
// unlikely to hide.

type resource struct {
	Type          string                     `json:"type"`
	ID            string                     `json:"id"`
	Attributes    map[string]any             `json:"attributes"`
	Relationships map[string]json.RawMessage `json:"relationships"`
}

func sandboxResources(t *testing.T, srv *sandbox.Server, path string, q url.Values) []resource {
	t.Helper()
	raws, err := srv.Resources(path, q)
	require.NoError(t, err, "sandbox resources of %s %v", path, q)
	out := make([]resource, 0, len(raws))
	for _, raw := range raws {
		var r resource
		require.NoError(t, json.Unmarshal(raw, &r))
		out = append(out, r)
	}
	return out
}

// schemaProps lists a stream's schema properties.
func schemaProps(t *testing.T, stream string) map[string]bool {
	raw, err := schemas.Get(stream)
	require.NoError(t, err)
	var doc struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	out := map[string]bool{}
	for k := range doc.Properties {
		out[k] = true
	}
	return out
}

func toOneID(raw json.RawMessage) (string, bool) {
	var rel struct {
		Data *struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &rel) != nil || rel.Data == nil {
		return "", false
	}
	return rel.Data.ID, true
}

// baseQuery is what the connector must ask for a stream: its fixed filter, one variant, additional fields.
func baseQuery(s catalog.Stream, parentID, variant string, additional []string) url.Values {
	q := url.Values{}
	var filters []string
	if s.Filter != "" {
		filters = append(filters, strings.ReplaceAll(s.Filter, "{id}", parentID))
	}
	if variant != "" {
		filters = append(filters, variant)
	}
	if len(filters) > 0 {
		q.Set("filter", strings.Join(filters, ","))
	}
	add := append(append([]string(nil), s.AdditionalFields...), additional...)
	if len(add) > 0 {
		q.Set("additional-fields["+s.ResourceType+"]", strings.Join(add, ","))
	}
	return q
}

func variants(s catalog.Stream) []string {
	if len(s.Variants) == 0 {
		return []string{""}
	}
	return s.Variants
}

// parentIDs lists every id of a parent stream, recursively.
func parentIDs(t *testing.T, srv *sandbox.Server, name string) []string {
	s, ok := catalog.Lookup(name)
	require.True(t, ok)
	grand := []string{""}
	if s.Kind != catalog.Collection {
		grand = parentIDs(t, srv, s.Parent)
	}
	seen := map[string]bool{}
	var ids []string
	for _, g := range grand {
		for _, v := range variants(s) {
			for _, r := range sandboxResources(t, srv, strings.ReplaceAll(s.Path, "{id}", g), baseQuery(s, g, v, nil)) {
				if !seen[r.ID] {
					seen[r.ID] = true
					ids = append(ids, r.ID)
				}
			}
		}
	}
	return ids
}

// expectedRows is every row a full refresh of stream must produce, per the sandbox. profileExtras are the
// additional fields the config asks of profiles (subscriptions by default; predictive_analytics by option).
func expectedRows(t *testing.T, srv *sandbox.Server, s catalog.Stream, profileExtras ...string) []map[string]any {
	t.Helper()
	props := schemaProps(t, s.Name)
	var additional []string
	if s.Name == "profiles" {
		additional = append([]string{"subscriptions"}, profileExtras...)
	}
	parents := []string{""}
	if s.Kind != catalog.Collection {
		parents = parentIDs(t, srv, s.Parent)
	}
	var metricNames map[string]string
	if s.Name == "events" {
		metricNames = map[string]string{}
		for _, m := range sandboxResources(t, srv, "/api/metrics", nil) {
			metricNames[m.ID], _ = m.Attributes["name"].(string)
		}
	}
	var rows []map[string]any
	for _, p := range parents {
		path := strings.ReplaceAll(s.Path, "{id}", p)
		for _, v := range variants(s) {
			var res []resource
			if s.Kind == catalog.PerParentObject {
				raws, err := srv.Resources(path, nil)
				if err != nil { // a parent without this object (404)
					continue
				}
				for _, raw := range raws {
					var r resource
					require.NoError(t, json.Unmarshal(raw, &r))
					res = append(res, r)
				}
			} else {
				res = sandboxResources(t, srv, path, baseQuery(s, p, v, additional))
			}
			for _, r := range res {
				rows = append(rows, shapeExpected(t, s, props, r, p, metricNames)...)
			}
		}
	}
	return rows
}

func shapeExpected(t *testing.T, s catalog.Stream, props map[string]bool, r resource, parent string, metricNames map[string]string) []map[string]any {
	switch {
	case s.Kind == catalog.PerParentLinks:
		return []map[string]any{{s.ParentKey: parent, s.LinkKey: r.ID}}
	case s.Shape == catalog.Membership:
		return []map[string]any{{s.ParentKey: parent, "profile_id": r.ID, "joined_group_at": r.Attributes["joined_group_at"]}}
	case s.Shape == catalog.Audiences:
		var out []map[string]any
		aud, _ := r.Attributes["audiences"].(map[string]any)
		for _, kind := range []string{"included", "excluded"} {
			ids, _ := aud[kind].([]any)
			for _, id := range ids {
				out = append(out, map[string]any{"campaign_id": r.ID, "audience_id": id, "inclusion": kind})
			}
		}
		return out
	case s.Shape == catalog.TrackingParams:
		var out []map[string]any
		to, _ := r.Attributes["tracking_options"].(map[string]any)
		params, _ := to["custom_tracking_params"].([]any)
		for _, p := range params {
			row := map[string]any{"campaign_id": r.ID}
			for k, v := range p.(map[string]any) {
				if props[k] {
					row[k] = v
				}
			}
			out = append(out, row)
		}
		return out
	case s.Shape == catalog.SendTimes:
		var out []map[string]any
		sts, _ := r.Attributes["send_times"].([]any)
		for _, st := range sts {
			m := st.(map[string]any)
			out = append(out, map[string]any{"campaign_id": parent, "campaign_message_id": r.ID, "datetime": m["datetime"], "is_local": m["is_local"]})
		}
		return out
	case s.Shape == catalog.Suppressions || s.Shape == catalog.ListSuppressions:
		var out []map[string]any
		subs, _ := r.Attributes["subscriptions"].(map[string]any)
		email, _ := subs["email"].(map[string]any)
		mk, _ := email["marketing"].(map[string]any)
		key := "suppression"
		if s.Shape == catalog.ListSuppressions {
			key = "list_suppressions"
		}
		entries, _ := mk[key].([]any)
		for _, e := range entries {
			m := e.(map[string]any)
			row := map[string]any{"profile_id": r.ID, "email": r.Attributes["email"], "reason": m["reason"], "timestamp": m["timestamp"]}
			if s.Shape == catalog.ListSuppressions {
				row["list_id"] = m["list_id"]
			}
			out = append(out, row)
		}
		return out
	}
	row := map[string]any{"id": r.ID}
	for k, v := range r.Attributes {
		row[k] = v
	}
	for rel, raw := range r.Relationships {
		field := strings.ReplaceAll(rel, "-", "_") + "_id"
		if !props[field] || field == s.ParentKey {
			continue
		}
		if id, ok := toOneID(raw); ok {
			row[field] = id
			if field == "metric_id" && metricNames != nil {
				row["metric_name"] = metricNames[id]
			}
		}
	}
	if s.ParentKey != "" {
		row[s.ParentKey] = parent
	}
	return []map[string]any{row}
}

// pkOf renders a row's primary key.
func pkOf(s catalog.Stream, row map[string]any) string {
	parts := make([]string, len(s.PrimaryKey))
	for i, k := range s.PrimaryKey {
		parts[i] = fmt.Sprint(row[k])
	}
	return strings.Join(parts, "|")
}

// requireSameRows compares rows by primary key and every expected field's value.
func requireSameRows(t *testing.T, s catalog.Stream, want, got []map[string]any) {
	t.Helper()
	index := func(rows []map[string]any) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, r := range rows {
			m[pkOf(s, r)] = r
		}
		return m
	}
	w, g := index(want), index(got)
	var missing, extra []string
	for k := range w {
		if _, ok := g[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	require.Empty(t, missing, "stream %s: rows missing (of %d expected)", s.Name, len(w))
	require.Empty(t, extra, "stream %s: unexpected rows", s.Name)
	for k, wr := range w {
		gr := g[k]
		for field, wv := range wr {
			wj, _ := json.Marshal(wv)
			gj, _ := json.Marshal(gr[field])
			require.JSONEq(t, string(wj), string(gj), "stream %s row %s field %s", s.Name, k, field)
		}
	}
}
