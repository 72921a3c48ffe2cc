package klaviyo

import (
	stdjson "encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestCheckJSONAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-0.5e+10`, `1E3`, `"x"`, ` {"a" : [1, 2.5, "é", {"b": null}]} `,
		`"\u00e9\n\"\\\/\b\f\r\t"`, `{"":""}`, `[[[[]]]]`,
		``, ` `, `{`, `}`, `{""}`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `[1 2]`, `01`, `1.`, `.5`, `1e`, `-`, `+1`, `tru`, `nul`,
		`"abc`, `"\x"`, `"\u12"`, "\"a\x01b\"", `{} {}`, `{"a":1}x`, `NaN`, `[1,,2]`, `{,}`, `{"a":}`, `{1:2}`,
	} {
		want := stdjson.Valid([]byte(s))
		assert.Equal(t, want, checkJSON([]byte(s)) == nil, "%q", s)
	}
}

func TestCheckJSONRejectsInvalidUTF8AndDeepNesting(t *testing.T) {
	t.Parallel()
	assert.Error(t, checkJSON([]byte("\"\xff\"")))
	assert.Error(t, checkJSON([]byte("\"\xed\xa0\x80\"")), "a UTF-8 encoded surrogate")
	assert.NoError(t, checkJSON([]byte(`"😀 \ud83d\ude00"`)))
	assert.NoError(t, checkJSON([]byte(strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth))))
	assert.Error(t, checkJSON([]byte(strings.Repeat("[", maxDepth+1)+strings.Repeat("]", maxDepth+1))))
	assert.Error(t, checkJSON([]byte(strings.Repeat(`{"a":`, maxDepth+1)+"1"+strings.Repeat("}", maxDepth+1))))
}

func BenchmarkCheckJSON(b *testing.B) {
	page := eventsPage(1000)
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		if err := checkJSON(page); err != nil {
			b.Fatal(err)
		}
	}
}

// checkJSONReference is what checkJSON must agree with: the standard library's grammar check plus UTF-8.
func checkJSONReference(b []byte) bool { return stdjson.Valid(b) && utf8.Valid(b) }
