// Package schemas holds one JSON Schema per stream, generated from Klaviyo's OpenAPI components and embedded.
//
// The files (and relationships_gen.go) are generated, never edited by hand: `go generate ./schemas` rewrites them from
// ../shared/klaviyo/stable.json and the stream table, and a test fails when the committed files drift from
// what the generator writes.
package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/xeipuuv/gojsonschema"
)

//go:generate go run ./internal/gen

//go:embed *.json
var files embed.FS

// Get returns the JSON Schema of the stream's flat records. The bytes are a fresh copy, so a caller may keep or
// change them.
func Get(stream string) ([]byte, error) {
	if stream == "" || strings.ContainsAny(stream, `/\.`) {
		return nil, fmt.Errorf("schema for stream %q: not a stream name", stream)
	}
	b, err := files.ReadFile(stream + ".json")
	if err != nil {
		return nil, fmt.Errorf("schema for stream %q: %w", stream, err)
	}
	return b, nil
}

// Relationships returns the record fields of a stream that carry a to-one relationship's id (events:
// metric_id -> metric), each mapped to the JSON:API relationship name, or nil. The engine needs it because a
// field's name cannot tell an attribute (external_id) from a relationship id (item_id). The map is fresh per call.
func Relationships(stream string) map[string]string { return relationships(stream) }

// Names returns the streams that have a schema, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		// The embedded root always exists; an error here would be a toolchain bug, and no names is the honest answer.
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Compile returns the stream's schema compiled for validating records, for the tests and tools that check what
// the connector writes against what it declares.
func Compile(stream string) (*gojsonschema.Schema, error) {
	raw, err := Get(stream)
	if err != nil {
		return nil, err
	}
	s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
	if err != nil {
		return nil, fmt.Errorf("compiling the schema of stream %s: %w", stream, err)
	}
	return s, nil
}
