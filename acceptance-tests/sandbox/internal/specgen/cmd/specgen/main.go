// Command specgen writes the sandbox's endpoint table (endpoints.json) from Klaviyo's OpenAPI
// document; run through `go generate` in acceptance-tests/sandbox.
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
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	table, err := specgen.Build(b)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, table, 0o644); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
