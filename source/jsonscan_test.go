package source

import (
	"bytes"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"
)

func TestTopLevelString(t *testing.T) {
	for _, tc := range []struct {
		name, obj, key, want string
		ok                   bool
	}{
		{"first member", `{"updated":"2026-01-02T00:00:00+00:00","x":1}`, "updated", "2026-01-02T00:00:00+00:00", true},
		{"after nested values", `{"a":{"updated":"no","b":[1,{"c":"]}"}]},"s":"x\"y","n":-1.5e3,"t":true,"z":null,"updated":"yes"}`, "updated", "yes", true},
		{"nested only", `{"a":{"updated":"no"}}`, "updated", "", false},
		{"absent", `{"a":1}`, "updated", "", false},
		{"empty object", `{}`, "updated", "", false},
		{"not a string", `{"updated":null}`, "updated", "", false},
		{"escaped value", `{"updated":"a\u0041\"b"}`, "updated", `aA"b`, true},
		{"escaped key", `{"upd\u0061ted":"v"}`, "updated", "v", true},
		{"white space", " {\n \"a\" : [ ] ,\t\"updated\" :\r\"v\" } ", "updated", "v", true},
		{"not an object", `["updated","v"]`, "updated", "", false},
		{"truncated", `{"a":"x`, "updated", "", false},
		{"truncated value", `{"updated":"x`, "updated", "", false},
		{"truncated nesting", `{"a":{"b":[`, "updated", "", false},
		{"missing colon", `{"a" 1}`, "updated", "", false},
		{"empty input", ``, "updated", "", false},
		// stringEnd reads eight bytes at a time: quotes and escapes at every offset of a word, and a string that
		// ends in the last bytes of the input.
		{"long strings", `{"a":"0123456789abcdef","bb":"01234567\\","ccc":"0123456\"x\\\"","updated":"0123456789abcdefg"}`, "updated", "0123456789abcdefg", true},
		{"escaped quote at a word's end", `{"abcdef":"0123456\"","updated":"v"}`, "updated", "v", true},
		{"long truncated string", `{"updated":"0123456789abcdef`, "updated", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := topLevelString([]byte(tc.obj), tc.key)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// FuzzTopLevelString holds the scanner to the decoder: for any valid JSON object, it finds exactly the string the
// decoder finds at the top level.
func FuzzTopLevelString(f *testing.F) {
	for _, s := range []string{`{"updated":"x"}`, `{"a":{"updated":"y"},"updated":"z"}`, `{"updated":1}`, `{"u\"pdated":"q"}`, `{}`} {
		f.Add([]byte(s), "updated")
	}
	f.Fuzz(func(t *testing.T, obj []byte, key string) {
		var m map[string]json.RawMessage
		if json.Unmarshal(obj, &m) != nil {
			topLevelString(obj, key) // must not panic on anything
			return
		}
		var want string
		wantOK := false
		if raw, ok := m[key]; ok && json.Unmarshal(raw, &want) == nil {
			wantOK = true
		}
		if dupKeys(obj) {
			return // the decoder keeps the last of duplicate keys, the scanner the first: both are valid readings
		}
		got, ok := topLevelString(obj, key)
		require.Equal(t, wantOK, ok, "%s", obj)
		if ok {
			require.Equal(t, want, got)
		}
	})
}

// dupKeys reports whether a JSON object has a key twice at the top level.
func dupKeys(obj []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		k, _ := tok.(string)
		if seen[k] {
			return true
		}
		seen[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}

// TestCursorTimeAgreesWithParseTime: the allocation-free form must give exactly parseTime's time (==, location
// included), and every other form must still be parseTime's answer.
func TestCursorTimeAgreesWithParseTime(t *testing.T) {
	for _, s := range []string{
		"2026-05-03T12:07:49+00:00", "2026-05-03T12:07:49Z", "0000-01-01T00:00:00+00:00", "2024-02-29T23:59:59+00:00",
		"2023-02-29T00:00:00+00:00", "2026-04-31T00:00:00+00:00", "2026-13-01T00:00:00+00:00", "2026-00-10T00:00:00Z",
		"2026-05-03T24:00:00+00:00", "2026-05-03T12:60:00+00:00", "2026-05-03T12:07:60+00:00", "2026-05-03T12:07:49+01:00",
		"2026-05-03T12:07:49-00:00", "2026-05-03T12:07:49.123+00:00", "2026-05-03T12:07:49.123456", "2026-05-03 12:07:49+00:00",
		"2026-5-03T12:07:49+00:00", "2026-05-03T12:07:4a+00:00", "", "x", "2026-05-03T12:07:49z",
	} {
		assertCursorTime(t, s)
	}
	_, ok := cursorTime([]byte(`null`))
	require.False(t, ok)
	_, ok = cursorTime([]byte(`1700000000`))
	require.False(t, ok)
	got, ok := cursorTime([]byte(`"2026-05-03T12:07:49\u002B00:00"`))
	require.True(t, ok, "an escaped plus sign")
	want, _ := parseTime("2026-05-03T12:07:49+00:00")
	require.Equal(t, want, got)
}

func assertCursorTime(t *testing.T, s string) {
	t.Helper()
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	got, ok := cursorTime(raw)
	want, werr := parseTime(s)
	require.Equal(t, werr == nil && s != "", ok, "%q", s)
	if ok {
		require.True(t, got == want, "%q: %v (%v) != %v (%v)", s, got, got.Location(), want, want.Location())
	}
}

func FuzzCursorTime(f *testing.F) {
	for _, s := range []string{"2026-05-03T12:07:49+00:00", "2026-05-03T12:07:49Z", "2024-02-30T00:00:00+00:00"} {
		f.Add(s)
	}
	f.Fuzz(assertCursorTime)
}
