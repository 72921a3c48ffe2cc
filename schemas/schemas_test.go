package schemas_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
)

// recordSchema is the part of a stream schema the tests look at.
type recordSchema struct {
	Type       string         `json:"type"`
	Properties map[string]any `json:"properties"`
}

func load(t *testing.T, stream string) recordSchema {
	t.Helper()
	b, err := schemas.Get(stream)
	require.NoError(t, err)
	var s recordSchema
	require.NoError(t, json.Unmarshal(b, &s), stream)
	return s
}

func TestEveryStreamHasASchemaAndEverySchemaAStream(t *testing.T) {
	var names []string
	for _, s := range catalog.Streams() {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	assert.Equal(t, names, schemas.Names())
}

func TestRelationshipsTellAttributesFromRelationshipIDs(t *testing.T) {
	assert.Equal(t, map[string]string{"metric_id": "metric", "profile_id": "profile"}, schemas.Relationships("events"))
	assert.Equal(t, map[string]string{"item_id": "item"}, schemas.Relationships("catalog_variants"), "external_id is an attribute")
	assert.Nil(t, schemas.Relationships("profiles"))
	assert.Nil(t, schemas.Relationships("nope"))
	m := schemas.Relationships("events")
	m["x"] = "y"
	assert.NotContains(t, schemas.Relationships("events"), "x", "each call returns a fresh map")
}

func TestGetRejectsUnknownAndPathLikeNames(t *testing.T) {
	for _, name := range []string{"", "nope", "../go", "events.json", "a/b"} {
		_, err := schemas.Get(name)
		assert.Error(t, err, name)
	}
	a, err := schemas.Get("events")
	require.NoError(t, err)
	a[0] = 'x'
	b, err := schemas.Get("events")
	require.NoError(t, err)
	assert.Equal(t, byte('{'), b[0], "Get must hand out a copy")
}

func TestSchemasCompileAndHaveNonNullKeysAndCursors(t *testing.T) {
	for _, s := range catalog.Streams() {
		b, err := schemas.Get(s.Name)
		require.NoError(t, err)
		_, err = gojsonschema.NewSchema(gojsonschema.NewBytesLoader(b))
		assert.NoError(t, err, s.Name)

		rs := load(t, s.Name)
		assert.Equal(t, "object", rs.Type, s.Name)
		fields := slices.Clone(s.PrimaryKey)
		if s.Cursor != nil {
			fields = append(fields, s.Cursor.Field)
		}
		for _, f := range fields {
			p, ok := rs.Properties[f].(map[string]any)
			if assert.True(t, ok, "%s: key or cursor %s missing from schema", s.Name, f) {
				_, single := p["type"].(string)
				assert.True(t, single, "%s: key or cursor %s must be non-null, got %v", s.Name, f, p["type"])
			}
		}
	}
}

// TestShapedSchemasHaveTheDocumentedFields pins the rows of the reshaped streams, which the engine builds by hand.
func TestShapedSchemasHaveTheDocumentedFields(t *testing.T) {
	for _, s := range catalog.Streams() {
		var want []string
		switch {
		case s.Shape == catalog.Membership:
			want = []string{s.ParentKey, "profile_id", "joined_group_at"}
		case s.Shape == catalog.Audiences:
			want = []string{"campaign_id", "audience_id", "inclusion"}
		case s.Shape == catalog.TrackingParams:
			want = []string{"campaign_id", "name", "type", "value"}
		case s.Shape == catalog.SendTimes:
			want = []string{"campaign_id", "campaign_message_id", "datetime", "is_local"}
		case s.Shape == catalog.Suppressions:
			want = []string{"profile_id", "email", "reason", "timestamp"}
		case s.Shape == catalog.ListSuppressions:
			want = []string{"profile_id", "email", "list_id", "reason", "timestamp"}
		case s.Kind == catalog.PerParentLinks:
			want = []string{s.ParentKey, s.LinkKey}
		default:
			continue
		}
		assert.ElementsMatch(t, want, keys(load(t, s.Name).Properties), s.Name)
	}
}

// TestFlatSchemasMatchTheirComponents walks each stream's OpenAPI component straight from stable.json, apart from
// the generator's code, and checks that the schema has exactly id, every attribute (same JSON type and
// nullability, nested objects included), every to-one relationship id, the parent's id and the documented extras.
func TestFlatSchemasMatchTheirComponents(t *testing.T) {
	spec := loadSpec(t)
	for _, s := range catalog.Streams() {
		if s.Shape != catalog.Flat || s.Kind == catalog.PerParentLinks {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			rs := load(t, s.Name)
			res := spec.deref(spec.component(t, s.Component))
			attrs := spec.props(spec.deref(asMap(asMap(res["properties"])["attributes"])))
			if _, has := asMap(res["properties"])["attributes"]; has {
				// A component that declares attributes must yield some; webhook topics declare none (only an id).
				require.NotEmpty(t, attrs, "component %s has no attributes", s.Component)
			}

			want := []string{"id"}
			exempt := map[string]bool{}
			for _, f := range s.PrimaryKey {
				exempt[f] = true
			}
			if s.Cursor != nil {
				exempt[s.Cursor.Field] = true
			}
			for name, a := range attrs {
				want = append(want, name)
				spec.check(t, s.Name+"."+name, asMap(a), rs.Properties[name], exempt[name])
			}
			rels := map[string]string{}
			for name, r := range spec.props(spec.deref(asMap(asMap(res["properties"])["relationships"]))) {
				data := spec.deref(asMap(spec.props(spec.deref(asMap(r)))["data"]))
				if data["type"] == "object" {
					id := strings.ReplaceAll(name, "-", "_") + "_id"
					want = append(want, id)
					rels[id] = name
					if id != s.ParentKey {
						assert.Equal(t, []any{"string", "null"}, asMap(rs.Properties[id])["type"], id)
					}
				}
			}
			if len(rels) == 0 {
				assert.Nil(t, schemas.Relationships(s.Name))
			} else {
				assert.Equal(t, rels, schemas.Relationships(s.Name))
			}
			if s.Parent != "" {
				want = append(want, s.ParentKey)
				assert.Equal(t, "string", asMap(rs.Properties[s.ParentKey])["type"])
			}
			if slices.Contains(s.Include, "metric") {
				want = append(want, "metric_name")
			}
			if s.ResourceType == "profile" {
				for name, comp := range map[string]string{"subscriptions": "Subscriptions", "predictive_analytics": "PredictiveAnalytics"} {
					if _, ok := attrs[name]; !ok {
						want = append(want, name)
						spec.check(t, s.Name+"."+name, map[string]any{"$ref": "#/components/schemas/" + comp, "nullable": true}, rs.Properties[name], false)
					}
				}
			}
			assert.ElementsMatch(t, dedupe(want), keys(rs.Properties))
		})
	}
}

// TestSchemasValidateFlatRecords checks a hand-written record of the shape DESIGN.md rule 2 describes.
func TestSchemasValidateFlatRecords(t *testing.T) {
	b, err := schemas.Get("events")
	require.NoError(t, err)
	schema, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(b))
	require.NoError(t, err)

	good := `{"id":"4vRpBT","datetime":"2024-01-02T03:04:05+00:00","timestamp":1704164645,"uuid":null,
		"event_properties":{"value":9.5},"metric_id":"WvcZZE","metric_name":"Placed Order","profile_id":null}`
	r, err := schema.Validate(gojsonschema.NewStringLoader(good))
	require.NoError(t, err)
	assert.True(t, r.Valid(), "%v", r.Errors())

	bad := `{"id":null,"datetime":"2024-01-02T03:04:05+00:00","timestamp":"soon"}`
	r, err = schema.Validate(gojsonschema.NewStringLoader(bad))
	require.NoError(t, err)
	assert.False(t, r.Valid())
}

// declaredDateTimes are the fields the generator declares date-time although stable.json gives them no format
// (schemas/internal/gen's dateTimeOverrides, which says why). Listing them again here means a change to either
// list fails this test until the other agrees.
var declaredDateTimes = map[string]bool{
	"metrics.created":           true,
	"metrics.updated":           true,
	"push_tokens.recorded_date": true,
}

// spec is stable.json decoded as plain maps.
type spec struct{ schemas map[string]any }

func loadSpec(t *testing.T) spec {
	t.Helper()
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	for {
		p := filepath.Join(dir, "shared", "klaviyo", "stable.json")
		if b, err := os.ReadFile(p); err == nil {
			var doc struct {
				Components struct {
					Schemas map[string]any `json:"schemas"`
				} `json:"components"`
			}
			require.NoError(t, json.Unmarshal(b, &doc))
			return spec{schemas: doc.Components.Schemas}
		}
		require.NotEqual(t, dir, filepath.Dir(dir), "shared/klaviyo/stable.json not found above the package")
		dir = filepath.Dir(dir)
	}
}

func (s spec) component(t *testing.T, name string) map[string]any {
	c, ok := s.schemas[name].(map[string]any)
	require.True(t, ok, "component %s not in stable.json", name)
	return c
}

// deref follows $refs; nullable flags on the way are read by nullable, not here.
func (s spec) deref(m map[string]any) map[string]any {
	for i := 0; i < 32; i++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		m = asMap(s.schemas[strings.TrimPrefix(ref, "#/components/schemas/")])
	}
	return m
}

func (s spec) nullable(m map[string]any) bool {
	for i := 0; i < 32; i++ {
		if m["nullable"] == true {
			return true
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return false
		}
		m = asMap(s.schemas[strings.TrimPrefix(ref, "#/components/schemas/")])
	}
	return false
}

func (s spec) props(m map[string]any) map[string]any { return asMap(m["properties"]) }

// check compares one schema property with the spec's schema of that value. The rules are the documented ones:
// unions of objects and free-form objects are nullable objects, unions of scalars list their types, keys and
// cursors (exempt) are never null, and write-only properties never appear in responses.
func (s spec) check(t *testing.T, path string, specSchema map[string]any, got any, notNull bool) {
	t.Helper()
	g, ok := got.(map[string]any)
	if !assert.True(t, ok, "%s missing from schema", path) {
		return
	}
	r := s.deref(specSchema)
	null := s.nullable(specSchema)
	var types []string
	members, _ := r["oneOf"].([]any)
	if members == nil {
		members, _ = r["anyOf"].([]any)
	}
	switch {
	case members != nil:
		for _, m := range members {
			mt, _ := s.deref(asMap(m))["type"].(string)
			if mt == "object" || mt == "array" || mt == "" {
				types = []string{"object"}
				null = true
				break
			}
			if !slices.Contains(types, mt) {
				types = append(types, mt)
			}
		}
	case r["type"] == "object" && len(s.props(r)) == 0:
		types, null = []string{"object"}, true
	case r["type"] == nil:
		assert.Nil(t, g["type"], "%s: untyped in the spec", path)
		return
	default:
		types = []string{r["type"].(string)}
	}
	if null && !notNull {
		types = append(types, "null")
	}
	assert.Equal(t, types, typeList(g["type"]), "%s: type", path)
	if r["format"] == "date-time" || declaredDateTimes[path] {
		assert.Equal(t, "date-time", g["format"], "%s: format", path)
	} else {
		assert.Nil(t, g["format"], "%s: a format stable.json does not give (add it to declaredDateTimes if meant)", path)
	}
	if members == nil && r["type"] == "object" && len(s.props(r)) > 0 {
		var want []string
		for name, sub := range s.props(r) {
			if asMap(sub)["writeOnly"] == true {
				continue
			}
			want = append(want, name)
			s.check(t, path+"."+name, asMap(sub), asMap(g["properties"])[name], false)
		}
		assert.ElementsMatch(t, want, keys(asMap(g["properties"])), "%s: nested properties", path)
	}
	if r["type"] == "array" && r["items"] != nil {
		s.check(t, path+"[]", asMap(r["items"]), g["items"], false)
	}
}

func typeList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func dedupe(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

func TestCompile(t *testing.T) {
	s, err := schemas.Compile("events")
	require.NoError(t, err)
	res, err := s.Validate(gojsonschema.NewStringLoader(`{"id":"e1"}`))
	require.NoError(t, err)
	require.True(t, res.Valid(), "%v", res.Errors())
	_, err = schemas.Compile("no_such_stream")
	require.Error(t, err)
}
