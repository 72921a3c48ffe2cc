// Command specgen writes the sandbox's endpoint table (endpoints.json), or with -kind reports its
// table of POST query endpoints (reports.json), from Klaviyo's OpenAPI document; run through
// `go generate` in acceptance-tests/sandbox.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

func main() {
	in := flag.String("spec", "../../../shared/klaviyo/stable.json", "Klaviyo OpenAPI document")
	out := flag.String("out", "endpoints.json", "output file")
	kind := flag.String("kind", "endpoints", "table to write: endpoints (GET operations) or reports (Reporting API and metric aggregates)")
	flag.Parse()
	if err := run(*in, *out, *kind); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(in, out, kind string) error {
	build := map[string]func([]byte) ([]byte, error){"endpoints": specgen.Build, "reports": specgen.BuildReports}[kind]
	if build == nil {
		return fmt.Errorf("unknown -kind %q (want endpoints or reports)", kind)
	}
	b, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	table, err := build(b)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, table, 0o644); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
