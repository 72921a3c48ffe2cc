package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// TestCommittedSchemasAreCurrent regenerates every schema and compares it byte for byte with the committed file,
// so the embedded schemas never drift from stable.json or the stream table. Fix a failure with
// `go generate ./schemas`.
func TestCommittedSchemasAreCurrent(t *testing.T) {
	specPath, err := FindSpec(".")
	require.NoError(t, err)
	spec, err := os.ReadFile(specPath)
	require.NoError(t, err)
	files, err := Generate(spec, catalog.Streams())
	require.NoError(t, err)

	committed, err := filepath.Glob(filepath.Join("..", "..", "*.json"))
	require.NoError(t, err)
	assert.Len(t, committed, len(files)-1, "committed schema files and streams differ; run go generate ./schemas")
	assert.Contains(t, files, RelationshipsFile)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", name))
		if assert.NoError(t, err, "run go generate ./schemas") {
			assert.Equal(t, string(want), string(got), "%s is stale; run go generate ./schemas", name)
		}
	}
}

// TestGenerateIsDeterministic guards the byte-for-byte comparison above against map-order noise.
func TestGenerateIsDeterministic(t *testing.T) {
	specPath, err := FindSpec(".")
	require.NoError(t, err)
	spec, err := os.ReadFile(specPath)
	require.NoError(t, err)
	a, err := Generate(spec, catalog.Streams())
	require.NoError(t, err)
	b, err := Generate(spec, catalog.Streams())
	require.NoError(t, err)
	assert.Equal(t, a, b)
}

func TestGenerateReportsBadInput(t *testing.T) {
	_, err := Generate([]byte(`{`), catalog.Streams())
	assert.ErrorContains(t, err, "decode OpenAPI document")

	_, err = Generate([]byte(`{"components":{"schemas":{}}}`), catalog.Streams())
	assert.ErrorContains(t, err, "no components.schemas")

	cyclic := []byte(`{"components":{"schemas":{"A":{"$ref":"#/components/schemas/A"}}}}`)
	_, err = Generate(cyclic, []catalog.Stream{{Name: "x", Component: "A", PrimaryKey: []string{"id"}}})
	assert.ErrorContains(t, err, "cyclic")
}

func TestConvertCollapsesUnions(t *testing.T) {
	g := generator{components: node{
		"Obj": node{"type": "object", "properties": node{"a": node{"type": "string"}}},
	}}
	scalar, err := g.convert(node{"nullable": true, "oneOf": []any{node{"type": "string"}, node{"type": "number"}}}, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"string", "number", "null"}, scalar["type"])

	objects, err := g.convert(node{"oneOf": []any{node{"$ref": "#/components/schemas/Obj"}, node{"type": "string"}}}, 0)
	require.NoError(t, err)
	assert.Equal(t, node{"type": []string{"object", "null"}}, objects)

	ref, err := g.convert(node{"$ref": "#/components/schemas/Obj", "nullable": true}, 0)
	require.NoError(t, err)
	assert.Equal(t, []string{"object", "null"}, ref["type"])
	assert.Equal(t, node{"a": node{"type": "string"}}, ref["properties"])
}

// TestDateTimeOverridesStayHonest checks the override list cannot silently outlive its reason: a field that is not
// in the record, is not a string, or already has a format in stable.json is an error, not a no-op.
func TestDateTimeOverridesStayHonest(t *testing.T) {
	props := func() node {
		return node{"at": node{"type": []string{"string", "null"}}, "n": node{"type": "integer"},
			"done": node{"type": "string", "format": "date-time"}}
	}
	p := props()
	require.NoError(t, declareDateTimes(p, []string{"at"}))
	assert.Equal(t, "date-time", p["at"].(node)["format"])

	assert.ErrorContains(t, declareDateTimes(props(), []string{"gone"}), "not a record field")
	assert.ErrorContains(t, declareDateTimes(props(), []string{"n"}), "not a string field")
	assert.ErrorContains(t, declareDateTimes(props(), []string{"done"}), "remove the override")

	for stream := range dateTimeOverrides {
		_, ok := catalog.Lookup(stream)
		assert.True(t, ok, "date-time override for %q, which is not a stream", stream)
	}
}
