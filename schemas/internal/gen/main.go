// Command gen writes schemas/<stream>.json for every stream of the stream table, from Klaviyo's OpenAPI document.
// Run it with `go generate ./schemas`; it finds ../shared/klaviyo/stable.json by walking up from the working
// directory unless -spec says where it is.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("gen", flag.ContinueOnError)
	spec := fl.String("spec", "", "path to Klaviyo's OpenAPI document (default: shared/klaviyo/stable.json found above the working directory)")
	out := fl.String("out", ".", "directory the schema files are written to")
	if err := fl.Parse(args); err != nil {
		return err
	}
	path := *spec
	if path == "" {
		var err error
		if path, err = FindSpec("."); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read OpenAPI document: %w", err)
	}
	files, err := Generate(b, catalog.Streams())
	if err != nil {
		return err
	}
	// Schemas of streams that left the table would otherwise linger in the embedded set.
	old, err := filepath.Glob(filepath.Join(*out, "*.json"))
	if err != nil {
		return fmt.Errorf("list old schemas: %w", err)
	}
	for _, f := range old {
		if _, keep := files[filepath.Base(f)]; !keep {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("remove stale schema: %w", err)
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(*out, n), files[n], 0o644); err != nil {
			return fmt.Errorf("write schema: %w", err)
		}
	}
	return nil
}

// FindSpec walks up from dir to the first directory holding shared/klaviyo/stable.json.
func FindSpec(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find OpenAPI document: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "klaviyo", "stable.json")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("find OpenAPI document: no shared/klaviyo/stable.json above " + strings.TrimSpace(abs) + "; pass -spec")
		}
	}
}
