package maps

import (
	"encoding/json"
	"testing"
)

// FuzzMap feeds arbitrary bytes as a profile record through a plan that uses every kind of operation. Mapping must
// never panic, and whatever it emits must be one valid JSON object.
func FuzzMap(f *testing.F) {
	for _, seed := range []string{profileRecord, `{}`, `{"email":null}`, `{"location":{"city":"\u00e9\"x"}}`, `{"a":[1,{"b":2}]}`,
		`{"email":"a@b","properties":{"x":{"y":[]}},"subscriptions":{"email":{"marketing":{"consent":"S"}}}}`, `[1]`, `{"a":1,}`, `{"a"`, `nul`} {
		f.Add([]byte(seed))
	}
	p := planFor(f, `{"stream_maps":{"profiles":{"email":"md5(email)","h":"sha256(str(first_name))","n":"len(str(record))",
		"__filter__":"email != 'drop'"},"pii":{"__source__":"profiles","email":"email","__else__":null}},
		"flattening_enabled":true,"flattening_max_depth":2}`)
	f.Fuzz(func(t *testing.T, record []byte) {
		_ = p.Map("profiles", record, func(_ string, data []byte) error {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("mapped %q into invalid JSON %q: %v", record, data, err)
			}
			return nil
		})
	})
}
