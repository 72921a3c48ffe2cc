package sandbox

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

//go:generate go run ./internal/specgen/cmd/specgen -spec ../../../shared/klaviyo/stable.json -kind reports -out reports.json

// reportsJSON is the request rules of the Reporting API and metric aggregates POSTs, derived from
// Klaviyo's OpenAPI document by internal/specgen and committed beside endpoints.json.
//
//go:embed reports.json
var reportsJSON []byte

// loadReports indexes the report table by path.
func loadReports() (map[string]*specgen.Report, error) {
	var reps []specgen.Report
	if err := json.Unmarshal(reportsJSON, &reps); err != nil {
		return nil, fmt.Errorf("sandbox: decode embedded report table: %w", err)
	}
	out := make(map[string]*specgen.Report, len(reps))
	for i := range reps {
		out[reps[i].Path] = &reps[i]
	}
	return out, nil
}

// reportPath is the report table key of a request path: Klaviyo accepts a trailing slash.
func reportPath(path string) string { return strings.TrimSuffix(path, "/") }
