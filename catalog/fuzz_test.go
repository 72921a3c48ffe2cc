package catalog

import (
	"slices"
	"strings"
	"testing"
)

// checkSelections asserts what every successful selection promises, whatever the input was.
func checkSelections(t *testing.T, sels []Selection) {
	seen := map[string]bool{}
	for _, s := range sels {
		want, ok := Lookup(s.Stream.Name)
		if !ok {
			t.Fatalf("selected unknown stream %q", s.Stream.Name)
		}
		if seen[s.Stream.Name] {
			t.Fatalf("stream %q selected twice", s.Stream.Name)
		}
		seen[s.Stream.Name] = true
		if s.Incremental && !want.Incremental() {
			t.Fatalf("%s: incremental without a cursor", s.Stream.Name)
		}
		if s.Fields == nil {
			continue
		}
		all, err := schemaProperties(s.Stream)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSorted(s.Fields) || len(s.Fields) >= len(all) {
			t.Fatalf("%s: fields %v are not a sorted strict subset of %v", s.Stream.Name, s.Fields, all)
		}
		for _, f := range s.Fields {
			if !slices.Contains(all, f) {
				t.Fatalf("%s: field %q is not in the schema", s.Stream.Name, f)
			}
		}
		for f := range want.automaticFields() {
			if !slices.Contains(s.Fields, f) {
				t.Fatalf("%s: key or cursor %q dropped", s.Stream.Name, f)
			}
		}
	}
}

// checkError asserts an error is one sentence a user can read on one line.
func checkError(t *testing.T, err error) {
	if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
		t.Fatalf("error is not one line: %q", msg)
	}
}

// FuzzSelectAirbyte feeds arbitrary bytes as a configured catalog; seeds live in testdata/fuzz/FuzzSelectAirbyte.
func FuzzSelectAirbyte(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		sels, err := SelectAirbyte(doc)
		if err != nil {
			checkError(t, err)
			return
		}
		checkSelections(t, sels)
	})
}

// FuzzSelectSinger feeds arbitrary bytes as a Singer catalog; seeds live in testdata/fuzz/FuzzSelectSinger.
func FuzzSelectSinger(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		sels, err := SelectSinger(doc)
		if err != nil {
			checkError(t, err)
			return
		}
		checkSelections(t, sels)
	})
}
