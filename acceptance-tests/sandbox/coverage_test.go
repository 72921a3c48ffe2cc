package sandbox

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resolve follows $ref, unwraps nullable unions and merges allOf so object properties can be read.
func (o *openAPISchemas) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for i := 0; i < 20 && m != nil; i++ {
		if ref, ok := m["$ref"].(string); ok {
			m, _ = o.defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
			continue
		}
		if alts, ok := m["anyOf"].([]any); ok && len(alts) == 2 {
			if n, _ := alts[1].(map[string]any); n["type"] == "null" && len(n) == 1 {
				m, _ = alts[0].(map[string]any)
				continue
			}
		}
		if all, ok := m["allOf"].([]any); ok {
			merged := map[string]any{}
			props := map[string]any{}
			for k, v := range m {
				if k != "allOf" {
					merged[k] = v
				}
			}
			if p, ok := m["properties"].(map[string]any); ok {
				for k, v := range p {
					props[k] = v
				}
			}
			for _, part := range all {
				r := o.resolve(part)
				if p, ok := r["properties"].(map[string]any); ok {
					for k, v := range p {
						if prev, exists := props[k]; exists {
							props[k] = o.mergeObjects(prev, v)
						} else {
							props[k] = v
						}
					}
				}
				if merged["items"] == nil && r["items"] != nil {
					merged["items"] = r["items"]
				}
			}
			merged["properties"] = props
			return merged
		}
		return m
	}
	return m
}

// mergeObjects unions the properties of two schemas that allOf declares for the same member
// (the profile collections add subscriptions to the referenced profile attributes this way).
func (o *openAPISchemas) mergeObjects(a, b any) any {
	ra, rb := o.resolve(a), o.resolve(b)
	pa, _ := ra["properties"].(map[string]any)
	pb, _ := rb["properties"].(map[string]any)
	if pa == nil {
		return b
	}
	if pb == nil {
		return a
	}
	props := map[string]any{}
	for k, v := range pa {
		props[k] = v
	}
	for k, v := range pb {
		if prev, ok := props[k]; ok {
			props[k] = o.mergeObjects(prev, v)
		} else {
			props[k] = v
		}
	}
	return map[string]any{"type": "object", "properties": props}
}

// attributePaths lists the attribute paths of a resource schema, descending into plain objects and
// arrays of plain objects (not into oneOf alternatives or free-form objects).
func (o *openAPISchemas) attributePaths(schema any, prefix string, depth int, out *[]string) {
	if depth > 4 {
		return
	}
	m := o.resolve(schema)
	props, _ := m["properties"].(map[string]any)
	for name, p := range props {
		path := prefix + name
		*out = append(*out, path)
		if name == "definition" {
			continue // definitions are free-form JSON to the connector; their shape is the spec's business
		}
		r := o.resolve(p)
		if r["type"] == "array" {
			r = o.resolve(r["items"])
		}
		if _, ok := r["properties"].(map[string]any); ok && r["anyOf"] == nil {
			o.attributePaths(r, path+".", depth+1, out)
		}
	}
}

// filled reports whether some record has a non-null value at the attribute path.
func filled(v any, parts []string) bool {
	if len(parts) == 0 {
		return v != nil
	}
	switch x := v.(type) {
	case map[string]any:
		return filled(x[parts[0]], parts[1:])
	case []any:
		for _, e := range x {
			if filled(e, parts) {
				return true
			}
		}
	}
	return false
}

// TestEveryAttributeGetsAValue checks that across a full listing every attribute the spec
// declares (and every nested property of plain objects) has a non-null value in some record.
func TestEveryAttributeGetsAValue(t *testing.T) {
	s := startSmall(t, nil)
	o := loadOpenAPI(t)
	cases := []string{}
	for _, pq := range schemaCases(t, s) {
		path := strings.SplitN(pq, "?", 2)[0]
		ep, _, _ := s.spec.match(path)
		if strings.Contains(ep.Path, "/relationships/") || strings.HasSuffix(ep.Path, "{id}") && ep.Path != "/api/forms/{id}" && !strings.HasPrefix(ep.Path, "/api/campaign-") {
			continue
		}
		cases = append(cases, pq)
	}
	for _, pq := range cases {
		t.Run(pq, func(t *testing.T) {
			path, rawq, _ := strings.Cut(pq, "?")
			ep, _, _ := s.spec.match(path)
			q, err := url.ParseQuery(rawq)
			require.NoError(t, err)
			if path == "/api/campaigns" {
				// campaigns cover their attributes across the three channels together
				q.Del("filter")
				q.Set("filter", "equals(messages.channel,'email')")
			}
			var recs []any
			for _, qq := range expand(path, q) {
				res, err := s.Resources(path, qq)
				require.NoError(t, err)
				for _, raw := range res {
					var m map[string]any
					require.NoError(t, json.Unmarshal(raw, &m))
					recs = append(recs, m["attributes"])
				}
			}
			require.NotEmpty(t, recs)
			if ep.Path == "/api/webhook-topics" {
				return // webhook topics have no attributes
			}
			doc := o.resolve(o.defs[ep.Response])
			data := o.resolve(doc["properties"].(map[string]any)["data"])
			if data["type"] == "array" {
				data = o.resolve(data["items"])
			}
			attrs := data["properties"].(map[string]any)["attributes"]
			var paths []string
			o.attributePaths(attrs, "", 0, &paths)
			sort.Strings(paths)
			require.NotEmpty(t, paths)
			declared := map[string]bool{}
			for _, p := range paths {
				declared[p] = true
			}
			for _, r := range recs {
				for k := range r.(map[string]any) {
					assert.True(t, declared[k], "%s: attribute %q is not in the spec", pq, k)
				}
			}
			for _, p := range paths {
				ok := false
				for _, r := range recs {
					if filled(r, strings.Split(p, ".")) {
						ok = true
						break
					}
				}
				assert.True(t, ok, "%s: no record has a value for attributes.%s", pq, p)
			}
		})
	}
}

// expand returns the queries whose union is the endpoint's whole data (campaigns need one per channel).
func expand(path string, q url.Values) []url.Values {
	if path != "/api/campaigns" {
		return []url.Values{q}
	}
	var out []url.Values
	for _, ch := range channels {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("filter", "equals(messages.channel,'"+ch+"')")
		out = append(out, qq)
	}
	return out
}
