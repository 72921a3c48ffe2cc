package acceptance_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
)

// A field declared "format": "date-time" is typed as a timestamp by warehouses, so a value that is not RFC 3339
// fails the load or, worse, is loaded as NULL. gojsonschema's date-time check is no proof: it also accepts a bare
// date or a bare time of day. These tests parse every such value strictly.

// dateTimeNode is the part of a JSON Schema the date-time walk reads.
type dateTimeNode struct {
	Format     string                  `json:"format"`
	Properties map[string]dateTimeNode `json:"properties"`
	Items      *dateTimeNode           `json:"items"`
}

// streamDateTimeSchema is a stream's schema, decoded for the walk.
func streamDateTimeSchema(t *testing.T, stream string) dateTimeNode {
	t.Helper()
	raw, err := schemas.Get(stream)
	require.NoError(t, err)
	var n dateTimeNode
	require.NoError(t, json.Unmarshal(raw, &n), stream)
	return n
}

// dateTimePaths lists every property path of the schema declared date-time ("a.b", "a[].b").
func dateTimePaths(n dateTimeNode, path string) []string {
	var out []string
	if n.Format == "date-time" {
		out = append(out, path)
	}
	for name, p := range n.Properties {
		out = append(out, dateTimePaths(p, strings.TrimPrefix(path+"."+name, "."))...)
	}
	if n.Items != nil {
		out = append(out, dateTimePaths(*n.Items, path+"[]")...)
	}
	return out
}

// checkDateTimes walks a value along its schema. Every non-null value of a date-time property must be a string
// that parses as RFC 3339; each one found is counted in seen under its path, and each that fails is reported.
func checkDateTimes(n dateTimeNode, v any, path string, seen map[string]int) []string {
	if v == nil {
		return nil
	}
	var bad []string
	if n.Format == "date-time" {
		seen[path]++
		s, ok := v.(string)
		if !ok {
			return []string{fmt.Sprintf("%s: %v is not a string", path, v)}
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %q is not RFC 3339", path, s))
		}
	}
	if obj, ok := v.(map[string]any); ok {
		for name, p := range n.Properties {
			bad = append(bad, checkDateTimes(p, obj[name], strings.TrimPrefix(path+"."+name, "."), seen)...)
		}
	}
	if list, ok := v.([]any); ok && n.Items != nil {
		for _, e := range list {
			bad = append(bad, checkDateTimes(*n.Items, e, path+"[]", seen)...)
		}
	}
	return bad
}

// firstFew keeps a failure message readable when every row of a stream has the same bad value.
func firstFew(bad []string) []string {
	if len(bad) > 5 {
		return bad[:5]
	}
	return bad
}

// requireDateTimesParse checks every record of the output with checkDateTimes: what the connector writes is what
// the warehouse types.
func requireDateTimesParse(t *testing.T, o protocol.Messages) {
	t.Helper()
	for stream, recs := range o.RecordsByStream() {
		schema := streamDateTimeSchema(t, stream)
		for _, rec := range recs {
			bad := checkDateTimes(schema, rec.Data, "", map[string]int{})
			require.Empty(t, firstFew(bad), "stream %s: %d date-time values do not parse", stream, len(bad))
		}
	}
}

// TestSandboxDateTimesParse takes every row the sandbox holds for every stream (computed from the sandbox, not
// read by the connector) and parses the value of every property any stream schema declares date-time, the
// fields stable.json leaves without a format but the generator declares (metrics.created, metrics.updated,
// push_tokens.recorded_date) included. Every declared date-time property, nested ones too, must have values, so
// the test cannot pass by finding nothing.
func TestSandboxDateTimesParse(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 11})
	declared := 0
	for _, s := range catalog.Streams() {
		schema := streamDateTimeSchema(t, s.Name)
		paths := dateTimePaths(schema, "")
		sort.Strings(paths)
		seen := map[string]int{}
		var bad []string
		for _, row := range expectedRows(t, srv, s, "predictive_analytics") {
			bad = append(bad, checkDateTimes(schema, row, "", seen)...)
		}
		assert.Empty(t, firstFew(bad), "stream %s: %d date-time values do not parse", s.Name, len(bad))
		for _, p := range paths {
			declared++
			assert.Positive(t, seen[p], "stream %s: no row has a value for date-time field %s, so nothing proves it", s.Name, p)
		}
		for _, f := range map[string][]string{"metrics": {"created", "updated"}, "push_tokens": {"recorded_date"}}[s.Name] {
			assert.True(t, slices.Contains(paths, f), "stream %s: %s is not declared date-time", s.Name, f)
		}
	}
	t.Logf("%d date-time properties declared across all schemas, each with values in the sandbox", declared)
}

// TestCheckDateTimesRejects proves the walk finds bad values at every depth, so the test above cannot pass by
// looking at nothing.
func TestCheckDateTimesRejects(t *testing.T) {
	schema := dateTimeNode{Properties: map[string]dateTimeNode{
		"at":   {Format: "date-time"},
		"obj":  {Properties: map[string]dateTimeNode{"at": {Format: "date-time"}}},
		"list": {Items: &dateTimeNode{Properties: map[string]dateTimeNode{"at": {Format: "date-time"}}}},
	}}
	seen := map[string]int{}
	good := map[string]any{"at": "2024-01-02T03:04:05+00:00", "obj": map[string]any{"at": "2024-01-02T03:04:05.123456Z"},
		"list": []any{map[string]any{"at": nil}, map[string]any{"at": "2024-01-02T03:04:05-05:00"}}}
	assert.Empty(t, checkDateTimes(schema, good, "", seen))
	assert.Equal(t, map[string]int{"at": 1, "obj.at": 1, "list[].at": 1}, seen)

	bad := map[string]any{"at": "2024-01-02", "obj": map[string]any{"at": "2024-01-02T03:04:05.123456"},
		"list": []any{map[string]any{"at": 1704164645}}}
	got := checkDateTimes(schema, bad, "", map[string]int{})
	sort.Strings(got)
	assert.Equal(t, []string{
		`at: "2024-01-02" is not RFC 3339`,
		`list[].at: 1704164645 is not a string`,
		`obj.at: "2024-01-02T03:04:05.123456" is not RFC 3339`,
	}, got)
	assert.ElementsMatch(t, []string{"at", "obj.at", "list[].at"}, dateTimePaths(schema, ""))
}
