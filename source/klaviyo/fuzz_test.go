package klaviyo

import (
	"bytes"
	"testing"

	json "github.com/goccy/go-json"
)

// FuzzDecodeDocument proves the page decoder never panics on hostile bytes, and that what it accepts holds the
// promises the engine relies on. Seeds: the f.Add calls below and testdata/fuzz/FuzzDecodeDocument.
// Run longer with: go test ./source/klaviyo -run '^$' -fuzz FuzzDecodeDocument -fuzztime 60s
func FuzzDecodeDocument(f *testing.F) {
	f.Add(eventsPage(2))
	f.Add([]byte(`{"data":{"type":"list","id":"L1","attributes":{"name":"VIP"}},"links":{"self":"s"}}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`{"data":[{"type":"profile","id":"p1"}],"links":{"next":null}}`))
	f.Add([]byte(`{"data":[{"type":"e","id":"1","relationships":{"r":{"data":[{"type":"t","id":"x"}]}}}]}`))
	f.Add([]byte(`{"data":[{"type":"e","id":"1","attributes":{"a":"\u00e9\ud83d\ude00"}}],"included":[]}`))
	f.Add([]byte(`{"errors":[{"code":"not_found","title":"Not found","detail":"x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if got, want := checkJSON(body) == nil, checkJSONReference(body); got != want && !deep(body) {
			t.Fatalf("checkJSON says valid=%v, encoding/json and utf8 say %v", got, want)
		}
		doc, err := decodeDocument(bytes.NewReader(body))
		if err != nil {
			if doc != nil {
				t.Fatal("a document returned with an error")
			}
			return
		}
		for _, rs := range [][]Resource{doc.Data, doc.Included} {
			for _, r := range rs {
				if r.Type == "" || r.ID == "" {
					t.Fatalf("accepted a resource without type or id: %+v", r)
				}
				if len(r.Attributes) > 0 && !checkJSONReference(r.Attributes) {
					t.Fatalf("attributes are not valid JSON: %q", r.Attributes)
				}
				for name, rel := range r.Relationships {
					id, ok := rel.ToOneID()
					var l linkage
					wantOK := bytes.HasPrefix(bytes.TrimSpace(rel.Data), []byte("{")) &&
						json.Unmarshal(rel.Data, &l) == nil && l.ID != ""
					if ok != wantOK || (ok && id != l.ID) {
						t.Fatalf("relationship %q: ToOneID = %q, %v; the decoder says %q, %v", name, id, ok, l.ID, wantOK)
					}
					_ = rel.ToManyIDs()
				}
			}
		}
	})
}

// deep reports whether b nests brackets beyond maxDepth, where checkJSON refuses what encoding/json accepts.
func deep(b []byte) bool {
	depth := 0
	for _, c := range b {
		switch c {
		case '[', '{':
			depth++
			if depth > maxDepth {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}
