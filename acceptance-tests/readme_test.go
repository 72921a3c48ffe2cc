package acceptance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
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
	spec := readConfigSpec(t)
	var b strings.Builder
	b.WriteString("| option | type | default | what it does |\n|---|---|---|---|\n")
	for _, n := range spec.Names {
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

// readmeSection returns the README's text from the heading to the next heading of the same level.
func readmeSection(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	require.True(t, i >= 0, "README.md has no %q section", heading)
	rest := doc[i+len(heading)+2:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestReadmeTestStepsAreTheMakefiles pins the README's numbered list of what make test runs to the prerequisites
// of the Makefile's test target, in order: the README once said the race pass ran last when it ran first.
func TestReadmeTestStepsAreTheMakefiles(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^test:[ \t]*(.*)$`).FindSubmatch(mk)
	require.NotNil(t, m, "the Makefile has no test target")
	want := strings.Fields(string(m[1]))

	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	var got []string
	for _, step := range regexp.MustCompile("(?m)^\\d+\\. `([a-z-]+)`:").FindAllStringSubmatch(readmeSection(t, string(raw), "## Tests"), -1) {
		got = append(got, step[1])
	}
	require.Equal(t, want, got, "README.md's Tests section must list the Makefile's test prerequisites, in order")
}

// TestReadmeInstallsArePinned requires every pip install in the README to install one of the requirement files the
// interop tests install (every dependency pinned, --no-deps), and every name==version the README quotes to be a pin
// of those files: a version the README names is one the tests ran.
func TestReadmeInstallsArePinned(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	doc := string(raw)
	const reqs = "acceptance-tests/interop/requirements/"
	pinned := map[string]bool{}
	files, err := filepath.Glob(filepath.Join("..", reqs, "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range strings.Fields(string(b)) {
			pinned[normalPin(line)] = true
		}
	}

	installs := 0
	install := regexp.MustCompile("pip install --no-deps -r " + regexp.QuoteMeta(reqs) + "([a-z-]+)\\.txt(?:$|`)")
	for _, line := range strings.Split(doc, "\n") {
		if !strings.Contains(line, "pip install") {
			continue
		}
		installs++
		m := install.FindStringSubmatch(strings.TrimSpace(line))
		if assert.NotNil(t, m, "README.md installs something other than a pinned requirement file: %s", line) {
			assert.FileExists(t, filepath.Join("..", reqs, m[1]+".txt"), "README.md: %s", line)
		}
	}
	assert.Positive(t, installs, "README.md has no pip install lines: the check above would prove nothing")

	for _, q := range regexp.MustCompile("`([A-Za-z0-9_.-]+==[^`\\s]+)`").FindAllStringSubmatch(doc, -1) {
		assert.True(t, pinned[normalPin(q[1])], "README.md quotes %s, which no file in %s pins", q[1], reqs)
	}
}

// normalPin spells a name==version pin the way pip compares names: case-insensitive, - and _ the same.
func normalPin(pin string) string {
	return strings.ReplaceAll(strings.ToLower(pin), "_", "-")
}

// TestReadmeSaysWhatCanDisappearPerStream: the README's table of rows that disappear names every stream once, in
// the stream table's order, and says "its only mode" exactly for the streams that have no incremental mode.
func TestReadmeSaysWhatCanDisappearPerStream(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(raw), "<!-- removals:start -->")
	require.True(t, ok, "the README has a removals table")
	block, _, ok = strings.Cut(block, "<!-- removals:end -->")
	require.True(t, ok)
	var names []string
	for _, line := range strings.Split(block, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		names = append(names, name)
		s, ok := catalog.Lookup(name)
		require.True(t, ok, "%s is not a stream", name)
		onlyFull := strings.Contains(line, "its only mode")
		if onlyFull {
			require.Nil(t, s.Cursor, "%s has an incremental mode, so full refresh is not its only one", name)
		}
	}
	var want []string
	for _, s := range catalog.Streams() {
		want = append(want, s.Name)
	}
	require.Equal(t, want, names)
}
