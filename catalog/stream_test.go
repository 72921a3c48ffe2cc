package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openAPI is the part of stable.json the stream table is checked against.
type openAPI struct {
	Paths map[string]struct {
		Get *operation `json:"get"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]any `json:"schemas"`
	} `json:"components"`
}

type operation struct {
	Parameters []parameter `json:"parameters"`
	Filters    map[string]struct {
		Operators struct {
			Single []string `json:"single"`
			List   []string `json:"list"`
		} `json:"operators"`
		Value struct {
			Format string `json:"format"`
		} `json:"value"`
	} `json:"x-klaviyo-filters"`
	Scopes    []string `json:"x-klaviyo-scopes"`
	RateLimit struct {
		Burst  string `json:"burst"`
		Steady string `json:"steady"`
	} `json:"x-klaviyo-ratelimit"`
	Responses map[string]any `json:"responses"`
}

type parameter struct {
	Name        string `json:"name"`
	In          string `json:"in"`
	Description string `json:"description"`
	Schema      struct {
		Maximum *int     `json:"maximum"`
		Enum    []string `json:"enum"`
		Items   struct {
			Enum []string `json:"enum"`
		} `json:"items"`
	} `json:"schema"`
}

func (o *operation) param(name string) (parameter, bool) {
	for _, p := range o.Parameters {
		if p.Name == name && p.In == "query" {
			return p, true
		}
	}
	return parameter{}, false
}

// filterOperators parses the filter parameter's "Allowed field(s)/operator(s)" text: `field`: `op`, `op`<br>...
func (o *operation) filterOperators() map[string][]string {
	p, ok := o.param("filter")
	if !ok {
		return nil
	}
	_, allowed, ok := strings.Cut(p.Description, "Allowed field(s)/operator(s):")
	if !ok {
		return nil
	}
	out := map[string][]string{}
	for _, line := range strings.Split(allowed, "<br>") {
		field, ops, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		for _, op := range strings.Split(ops, ", ") {
			out[strings.Trim(field, "`")] = append(out[strings.Trim(field, "`")], strings.Trim(op, "`"))
		}
	}
	return out
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	dir, err := filepath.Abs(".")
	require.NoError(t, err)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "shared", "klaviyo", "stable.json"))
		if err == nil {
			var doc openAPI
			require.NoError(t, json.Unmarshal(b, &doc))
			return doc
		}
		require.NotEqual(t, dir, filepath.Dir(dir), "shared/klaviyo/stable.json not found above the package")
		dir = filepath.Dir(dir)
	}
}

// parseRate reads "75/s" or "750/m" and checks the unit.
func parseRate(t *testing.T, v, unit string) int {
	t.Helper()
	n, u, ok := strings.Cut(v, "/")
	require.True(t, ok && u == unit, "rate %q: want a count per %s", v, unit)
	i, err := strconv.Atoi(n)
	require.NoError(t, err)
	return i
}

// filterTerm matches one term of a filter expression: operator(field,...
var filterTerm = regexp.MustCompile(`([a-z-]+)\(([^,()]+),`)

func TestStreamTableMatchesOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, s := range Streams() {
		t.Run(s.Name, func(t *testing.T) {
			item, ok := doc.Paths[s.Path]
			require.True(t, ok && item.Get != nil, "no GET %s in stable.json", s.Path)
			op := item.Get

			assert.Equal(t, op.Scopes, s.Scopes, "scopes")
			assert.Equal(t, parseRate(t, op.RateLimit.Burst, "s"), s.Rate.Burst, "burst rate")
			assert.Equal(t, parseRate(t, op.RateLimit.Steady, "m"), s.Rate.PerMinute, "steady rate")

			pageSize := 0
			if p, ok := op.param("page[size]"); ok && p.Schema.Maximum != nil {
				pageSize = *p.Schema.Maximum
			}
			assert.Equal(t, pageSize, s.PageSize, "page size")

			filters := op.filterOperators()
			var sorts []string
			if p, ok := op.param("sort"); ok {
				sorts = p.Schema.Enum
			}
			if c := s.Cursor; c != nil {
				field := c.FilterField
				if field == "" {
					field = c.Field
				}
				ops := filters[field]
				require.NotEmpty(t, ops, "cursor filter field %s is not filterable", field)
				assert.Contains(t, []string{"greater-or-equal", "greater-than"}, c.Lower)
				assert.Contains(t, ops, c.Lower, "lower bound operator on %s", field)
				if c.Upper == "" {
					assert.NotContains(t, ops, "less-than", "the API has an upper bound on %s; use it", field)
					assert.NotContains(t, ops, "less-or-equal", "the API has an upper bound on %s; use it", field)
				} else {
					assert.Contains(t, []string{"less-than", "less-or-equal"}, c.Upper)
					assert.Contains(t, ops, c.Upper, "upper bound operator on %s", field)
				}
				if c.Lower == "greater-than" {
					assert.NotContains(t, ops, "greater-or-equal", "the API has greater-or-equal on %s; prefer it", field)
				}
				if c.Sort == "" {
					assert.NotContains(t, sorts, field, "the API sorts on %s; say so", field)
				} else {
					assert.Contains(t, sorts, c.Sort, "sort")
					assert.Equal(t, field, c.Sort, "sort must be ascending on the cursor's filter field")
				}
			}
			for _, f := range append(slices.Clone(s.Variants), s.Filter) {
				for _, m := range filterTerm.FindAllStringSubmatch(f, -1) {
					assert.Contains(t, filters[m[2]], m[1], "filter %s: operator %s on %s", f, m[1], m[2])
				}
				if f != "" {
					assert.NotEmpty(t, filterTerm.FindAllString(f, -1), "filter %q has no term", f)
				}
			}

			checkEnum := func(param string, values []string) {
				if len(values) == 0 {
					return
				}
				p, ok := op.param(param)
				require.True(t, ok, "%s is not a parameter of GET %s", param, s.Path)
				for _, v := range values {
					assert.Contains(t, p.Schema.Items.Enum, v, param)
				}
			}
			checkEnum("include", s.Include)
			checkEnum("fields["+s.ResourceType+"]", s.Fields)
			checkEnum("additional-fields["+s.ResourceType+"]", s.AdditionalFields)
			for _, f := range s.OptionalFields {
				checkEnum("additional-fields["+s.ResourceType+"]", []string{f.Field})
			}
			if ov := s.OptionVariants; ov != nil {
				for _, m := range filterTerm.FindAllStringSubmatch(ov.Filter, -1) {
					assert.Contains(t, filters[m[2]], m[1], "option variant filter %s: operator %s on %s", ov.Filter, m[1], m[2])
				}
			}

			if uf := s.UserFilter; uf != nil {
				assert.Len(t, uf.Fields, len(op.Filters), "a user filter knows every field the endpoint filters on")
				for field, want := range op.Filters {
					got := uf.Fields[field]
					assert.ElementsMatch(t, want.Operators.Single, got.Single, "user filter %s: single operators", field)
					assert.ElementsMatch(t, want.Operators.List, got.List, "user filter %s: list operators", field)
					assert.Equal(t, want.Value.Format == "date-time", got.DateTime, "user filter %s: date-time", field)
				}
			}

			resp := responseData(t, doc, op)
			assert.Equal(t, s.ResourceType, resourceType(doc, resp), "resource type of GET %s", s.Path)
			if s.Shape == Flat && s.Kind != PerParentLinks {
				assert.Equal(t, s.Component, componentName(resp), "component of GET %s", s.Path)
			}
			if s.Shape == Membership || s.Shape == Suppressions || s.Shape == ListSuppressions {
				assert.Equal(t, s.Component, componentName(resp), "component of GET %s", s.Path)
			}
			if s.Kind == PerParentObject {
				_, plural := resp["items"]
				assert.False(t, plural, "GET %s should return one resource", s.Path)
			}
		})
	}
}

// TestStreamTableIsConsistent checks the rules the engine relies on, independent of Klaviyo's spec.
func TestStreamTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Streams() {
		assert.False(t, seen[s.Name], "%s declared twice", s.Name)
		seen[s.Name] = true
		assert.Regexp(t, `^[a-z][a-z_]*$`, s.Name)
		assert.NotEmpty(t, s.Doc, s.Name)
		assert.NotEmpty(t, s.PrimaryKey, s.Name)
		assert.NotEmpty(t, s.Scopes, s.Name)
		assert.Positive(t, s.Rate.Burst, s.Name)
		assert.Positive(t, s.Rate.PerMinute, s.Name)
		if s.Kind == Collection {
			assert.Empty(t, s.Parent, "%s: a collection has no parent", s.Name)
			assert.NotContains(t, s.Path+s.Filter, "{id}", s.Name)
		} else {
			p, ok := Lookup(s.Parent)
			assert.True(t, ok, "%s: parent %q is not a stream", s.Name, s.Parent)
			assert.NotEqual(t, s.Name, p.Name)
			assert.NotEmpty(t, s.ParentKey, s.Name)
			assert.Contains(t, s.Path+s.Filter, "{id}", s.Name)
		}
		if s.Kind == PerParentLinks {
			assert.NotEmpty(t, s.LinkKey, s.Name)
			assert.Equal(t, []string{s.ParentKey, s.LinkKey}, s.PrimaryKey, s.Name)
		} else {
			assert.NotEmpty(t, s.Component, s.Name)
		}
		if s.Cursor != nil {
			assert.NotEmpty(t, s.Cursor.Field, s.Name)
		}
		lk, ok := Lookup(s.Name)
		assert.True(t, ok)
		assert.Equal(t, s.Path, lk.Path)
	}
	_, ok := Lookup("nope")
	assert.False(t, ok)
}

// responseData returns the schema of the data member of an operation's 200 response, with a top-level allOf
// overlay (profiles, templates) reduced to its $ref member and array items unwrapped into "items".
func responseData(t *testing.T, doc openAPI, op *operation) map[string]any {
	t.Helper()
	ok200 := asObj(op.Responses["200"])
	content := asObj(asObj(ok200["content"])["application/vnd.api+json"])
	body := deref(doc, asObj(content["schema"]))
	data := asObj(asObj(body["properties"])["data"])
	require.NotNil(t, data, "200 response has no data")
	return data
}

// componentName is the component the data member's resource refers to.
func componentName(data map[string]any) string {
	res := data
	if items, ok := data["items"]; ok {
		res = asObj(items)
	}
	if all, ok := res["allOf"].([]any); ok {
		for _, m := range all {
			if ref, ok := asObj(m)["$ref"].(string); ok {
				return strings.TrimPrefix(ref, "#/components/schemas/")
			}
		}
	}
	ref, _ := res["$ref"].(string)
	return strings.TrimPrefix(ref, "#/components/schemas/")
}

// resourceType is the JSON:API type enum of the data member's resources.
func resourceType(doc openAPI, data map[string]any) string {
	res := data
	if items, ok := data["items"]; ok {
		res = asObj(items)
	}
	if name := componentName(data); name != "" {
		res = asObj(doc.Components.Schemas[name])
	}
	typ := deref(doc, asObj(asObj(res["properties"])["type"]))
	enum, _ := typ["enum"].([]any)
	if len(enum) != 1 {
		return fmt.Sprintf("%v", enum)
	}
	s, _ := enum[0].(string)
	return s
}

func deref(doc openAPI, m map[string]any) map[string]any {
	for i := 0; i < 32; i++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			break
		}
		m = asObj(doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")])
	}
	return m
}

func asObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
