package klaviyo

import (
	"encoding/binary"
	stdjson "encoding/json"
	"math/bits"
	"math/rand/v2"
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

// specialByte is what special must find: a byte a string scan has to look at.
func specialByte(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80 }

// special's contract, which str relies on to skip bytes: a word with no special byte gives 0, and otherwise its
// lowest flag is on the first special byte (flags above that one may be false). Every byte value is tried at every
// position of a plain word, then pairs of values and random words.
func TestSpecialFlagsTheFirstByteToLookAt(t *testing.T) {
	t.Parallel()
	check := func(w [8]byte) {
		first := -1
		for i, c := range w {
			if specialByte(c) {
				first = i
				break
			}
		}
		m := special(binary.LittleEndian.Uint64(w[:]))
		if first < 0 {
			if m != 0 {
				t.Fatalf("%q has no special byte, special flags %#x", w, m)
			}
			return
		}
		if m == 0 || bits.TrailingZeros64(m)/8 != first {
			t.Fatalf("%q: first special byte at %d, special flags %#x", w, first, m)
		}
	}
	plain := [8]byte{'a', 'b', ' ', '~', '0', '!', '#', '['}
	check(plain)
	for pos := range 8 {
		for c := range 256 {
			w := plain
			w[pos] = byte(c)
			check(w)
			for pos2 := pos + 1; pos2 < 8; pos2++ {
				for _, c2 := range []byte{0, 0x1f, 0x20, '"', '#', '\\', ']', 0x7f, 0x80, 0xff} {
					w2 := w
					w2[pos2] = c2
					check(w2)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		for i := range w { // mostly plain bytes, so that words with no or late special bytes are common
			if r.IntN(4) != 0 {
				w[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		check(w)
	}
}
