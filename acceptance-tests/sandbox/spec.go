package sandbox

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

//go:generate go run ./internal/specgen/cmd/specgen -spec ../../../shared/klaviyo/stable.json -out endpoints.json

// endpointsJSON is the request rules of every GET operation, derived from Klaviyo's OpenAPI
// document by internal/specgen and committed, so the sandbox needs no reference files at run time.
//
//go:embed endpoints.json
var endpointsJSON []byte

// specTable indexes the endpoint rules by path template and resolves concrete paths.
type specTable struct {
	byPath map[string]*specgen.Endpoint
	// templates are split path templates, longest first, for matching concrete paths.
	templates [][]string
}

func loadSpec() (*specTable, error) {
	var eps []specgen.Endpoint
	if err := json.Unmarshal(endpointsJSON, &eps); err != nil {
		return nil, fmt.Errorf("sandbox: decode embedded endpoint table: %w", err)
	}
	t := &specTable{byPath: make(map[string]*specgen.Endpoint, len(eps))}
	for i := range eps {
		t.byPath[eps[i].Path] = &eps[i]
		t.templates = append(t.templates, strings.Split(strings.Trim(eps[i].Path, "/"), "/"))
	}
	// Literal segments beat {id} so /api/campaign-messages/{id} never shadows a literal path.
	sort.Slice(t.templates, func(i, j int) bool {
		return strings.Join(t.templates[i], "/") < strings.Join(t.templates[j], "/")
	})
	return t, nil
}

// match finds the template for a concrete path (with or without a trailing slash) and returns it
// with the {id} values in order.
func (t *specTable) match(path string) (*specgen.Endpoint, []string, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var best []string
	var bestIDs []string
	bestLiterals := -1
	for _, tpl := range t.templates {
		if len(tpl) != len(parts) {
			continue
		}
		var ids []string
		literals := 0
		ok := true
		for i, seg := range tpl {
			if strings.HasPrefix(seg, "{") {
				if parts[i] == "" {
					ok = false
					break
				}
				ids = append(ids, parts[i])
				continue
			}
			if seg != parts[i] {
				ok = false
				break
			}
			literals++
		}
		if ok && literals > bestLiterals {
			best, bestIDs, bestLiterals = tpl, ids, literals
		}
	}
	if best == nil {
		return nil, nil, false
	}
	return t.byPath["/"+strings.Join(best, "/")], bestIDs, true
}
