package source

import (
	"fmt"
	"os"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
)

// streamSteps checks the steps of CONTRIBUTING.md's "Adding a stream" that can be checked for one stream, and
// returns the first one missing ("" when none is), so a new stream's author is told what to do next.
type streamSteps struct {
	srv     *sandbox.Server
	readme  string
	goldens map[string]string // path -> contents
}

func (c streamSteps) missing(s catalog.Stream) string {
	if _, err := schemas.Get(s.Name); err != nil {
		return "step 2 (generate its schema: go generate ./schemas)"
	}
	if _, err := shapeOf(s.Shape); err != nil {
		return fmt.Sprintf("step 3 (declare shape %q in shapeOf, source/shape.go)", s.Shape)
	}
	if err := c.sandboxServes(s); err != nil {
		return fmt.Sprintf("step 4 (the sandbox must serve %s with records: %v)", s.Path, err)
	}
	if !strings.Contains(c.readme, "| `"+s.Name+"` |") {
		return "step 5 (regenerate the README's stream table: go test ./acceptance-tests -run TestReadmeTablesMatchTheCode -update)"
	}
	for path, body := range c.goldens {
		if !strings.Contains(body, `"`+s.Name+`"`) {
			return fmt.Sprintf("step 6 (regenerate the golden catalogs; %s lacks it)", path)
		}
	}
	return ""
}

// sandboxServes reads the stream from the sandbox with the request a sync starts with (for its first parent that
// has records, when it has parents).
func (c streamSteps) sandboxServes(s catalog.Stream) error {
	parents := []string{""}
	if s.Kind != catalog.Collection {
		parent, ok := catalog.Lookup(s.Parent)
		if !ok {
			return fmt.Errorf("parent %q is not a stream", s.Parent)
		}
		var err error
		if parents, err = c.ids(parent); err != nil {
			return err
		}
	}
	reqs := newRequestBuilder(Config{}, s, s.Fields)
	for _, id := range parents {
		req := reqs.build(id, reqs.variants[0], nil)
		n, err := c.srv.Count(req.Path, req.Query)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("no records")
}

// ids lists a stream's record ids (for a child stream, those of its first parent).
func (c streamSteps) ids(s catalog.Stream) ([]string, error) {
	parent := ""
	if s.Kind != catalog.Collection {
		p, _ := catalog.Lookup(s.Parent)
		ids, err := c.ids(p)
		if err != nil || len(ids) == 0 {
			return nil, fmt.Errorf("listing %s: %v", p.Name, err)
		}
		parent = ids[0]
	}
	reqs := newRequestBuilder(Config{}, s, s.Fields)
	req := reqs.build(parent, reqs.variants[0], nil)
	raw, err := c.srv.Resources(req.Path, req.Query)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range raw {
		var res struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r, &res); err != nil {
			return nil, fmt.Errorf("decoding a %s resource: %w", s.Name, err)
		}
		ids = append(ids, res.ID)
	}
	return ids, nil
}

func newStreamSteps(t *testing.T) streamSteps {
	t.Helper()
	srv, err := sandbox.Start(sandbox.Options{Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	c := streamSteps{srv: srv, readme: string(readme), goldens: map[string]string{}}
	for _, p := range []string{"../catalog/testdata/airbyte_catalog.golden.json", "../catalog/testdata/singer_catalog.golden.json", "../acceptance-tests/testdata/discover.golden.json"} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		c.goldens[p] = string(b)
	}
	return c
}

// TestEveryStreamHasEveryStep walks the stream table: every stream has done every step of adding a stream.
func TestEveryStreamHasEveryStep(t *testing.T) {
	c := newStreamSteps(t)
	for _, s := range catalog.Streams() {
		require.Empty(t, c.missing(s), "stream %s is missing a step of CONTRIBUTING.md", s.Name)
	}
}

// A stream declared in the table and nothing else is told its next step.
func TestANewStreamIsToldItsMissingStep(t *testing.T) {
	c := newStreamSteps(t)
	events, _ := catalog.Lookup("events")
	fresh := events
	fresh.Name = "fresh_events"
	require.Contains(t, c.missing(fresh), "step 2 (generate its schema")

	shaped := events
	shaped.Shape = "pivot"
	require.Contains(t, c.missing(shaped), `step 3 (declare shape "pivot"`)

	unserved := events
	unserved.Path = "/api/events-that-do-not-exist"
	require.Contains(t, c.missing(unserved), "step 4 (the sandbox must serve /api/events-that-do-not-exist")

	c.readme = strings.ReplaceAll(c.readme, "| `events` |", "")
	require.Contains(t, c.missing(events), "step 5 (regenerate the README's stream table")
}
