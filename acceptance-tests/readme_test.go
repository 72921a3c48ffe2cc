package acceptance_test

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// The README's stream and config tables are rendered from the stream table and spec.json; this test fails when
// they drift, and -update rewrites the blocks between the markers.

func streamsTable() string {
	var b strings.Builder
	b.WriteString("| stream | sync modes | primary key | cursor | API path | what it holds |\n|---|---|---|---|---|---|\n")
	for _, s := range catalog.Streams() {
		modes, cursor := "full refresh", ""
		if s.Cursor != nil {
			modes, cursor = "full refresh, incremental", "`"+s.Cursor.Field+"`"
			if s.Kind == catalog.PerParent {
				cursor += " (per " + strings.ReplaceAll(strings.TrimSuffix(s.ParentKey, "_id"), "_", " ") + ")"
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | `%s` | %s |\n", s.Name, modes, strings.Join(s.PrimaryKey, "`, `"), cursor, s.Path, s.Doc)
	}
	return b.String()
}

func configTable(t *testing.T) string {
	raw, err := os.ReadFile("../source/spec.json")
	require.NoError(t, err)
	var spec struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Type        string `json:"type"`
			Description string `json:"description"`
			Default     any    `json:"default"`
			Order       int    `json:"order"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(raw, &spec))
	names := make([]string, 0, len(spec.Properties))
	for n := range spec.Properties {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return spec.Properties[names[i]].Order < spec.Properties[names[j]].Order })
	var b strings.Builder
	b.WriteString("| option | type | default | what it does |\n|---|---|---|---|\n")
	for _, n := range names {
		p := spec.Properties[n]
		def := ""
		if p.Default != nil {
			def = fmt.Sprintf("`%v`", p.Default)
		}
		if contains(spec.Required, n) {
			def = "required"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", n, p.Type, def, p.Description)
	}
	return b.String()
}

func replaceBlock(t *testing.T, doc, name, body string) string {
	start, end := "<!-- "+name+":start -->\n", "<!-- "+name+":end -->"
	i, j := strings.Index(doc, start), strings.Index(doc, end)
	require.True(t, i >= 0 && j > i, "README.md lacks the %s markers", name)
	return doc[:i+len(start)] + body + doc[j:]
}

func TestReadmeTablesMatchTheCode(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	doc := string(raw)
	want := replaceBlock(t, doc, "streams", streamsTable())
	want = replaceBlock(t, want, "config", configTable(t))
	if *update {
		require.NoError(t, os.WriteFile("../README.md", []byte(want), 0o644))
		return
	}
	require.Equal(t, want, doc, "README.md tables are stale: run go test ./acceptance-tests -run TestReadme -update")
}
