package klaviyo

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// maxDepth bounds nesting in a body. Klaviyo's documents nest a handful of levels; a body nested thousands deep is
// hostile and is refused before any recursive decoder sees it.
const maxDepth = 512

// checkJSON reports whether b is exactly one JSON value (RFC 8259) between optional whitespace, with every string
// valid UTF-8 and nesting at most maxDepth.
//
// goccy/go-json captures a json.RawMessage by balancing brackets and quotes, so it accepts attributes such as {""}
// or {"a" 1}. Attributes go to the output unparsed, so each is checked strictly: one pass, no allocation, about a
// third of the decode's cost (BenchmarkCheckJSON checks a whole page).
func checkJSON(b []byte) error {
	v := validator{b: b}
	v.ws()
	if err := v.value(0); err != nil {
		return err
	}
	v.ws()
	if v.i != len(v.b) {
		return v.fail("data after the document")
	}
	return nil
}

type validator struct {
	b []byte
	i int
}

func (v *validator) fail(what string) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", v.i, what)
}

func (v *validator) ws() {
	// Klaviyo's bodies are compact: between tokens there is almost never whitespace, and one comparison says so.
	if v.i < len(v.b) && v.b[v.i] > ' ' {
		return
	}
	for v.i < len(v.b) {
		switch v.b[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

func (v *validator) value(depth int) error {
	if v.i >= len(v.b) {
		return v.fail("unexpected end")
	}
	switch c := v.b[v.i]; {
	case c == '{':
		return v.object(depth + 1)
	case c == '[':
		return v.array(depth + 1)
	case c == '"':
		return v.str()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return v.number()
	default:
		return v.fail(fmt.Sprintf("unexpected %q", c))
	}
}

func (v *validator) object(depth int) error {
	if depth > maxDepth {
		return v.fail("nested too deep")
	}
	v.i++ // {
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == '}' {
		v.i++
		return nil
	}
	for {
		v.ws()
		if v.i >= len(v.b) || v.b[v.i] != '"' {
			return v.fail("expected a member name")
		}
		if err := v.str(); err != nil {
			return err
		}
		v.ws()
		if v.i >= len(v.b) || v.b[v.i] != ':' {
			return v.fail("expected ':'")
		}
		v.i++
		v.ws()
		if err := v.value(depth); err != nil {
			return err
		}
		v.ws()
		if v.i >= len(v.b) {
			return v.fail("unexpected end in an object")
		}
		switch v.b[v.i] {
		case ',':
			v.i++
		case '}':
			v.i++
			return nil
		default:
			return v.fail("expected ',' or '}'")
		}
	}
}

func (v *validator) array(depth int) error {
	if depth > maxDepth {
		return v.fail("nested too deep")
	}
	v.i++ // [
	v.ws()
	if v.i < len(v.b) && v.b[v.i] == ']' {
		v.i++
		return nil
	}
	for {
		v.ws()
		if err := v.value(depth); err != nil {
			return err
		}
		v.ws()
		if v.i >= len(v.b) {
			return v.fail("unexpected end in an array")
		}
		switch v.b[v.i] {
		case ',':
			v.i++
		case ']':
			v.i++
			return nil
		default:
			return v.fail("expected ',' or ']'")
		}
	}
}

// Eight-bytes-at-a-time string scanning (SWAR): a word is plain when none of its bytes is a quote, a backslash, a
// control character or non-ASCII. Strings are most of a page, so this is where the check's time goes.
const (
	ones     = 0x0101010101010101
	highBits = 0x8080808080808080
)

// special is non-zero when some byte of x (little-endian) needs a closer look. It may flag a plain byte above a
// flagged one (a borrow spills into the next), never one below it and never a plain word; the byte loop then
// decides exactly.
//
// Each term flags one kind in its byte's high bit: x - 0x20 a control character, q - 1 a quote, bs - 1 a backslash,
// x itself a non-ASCII byte. A term may also set the high bit of a byte that is non-ASCII already (flagged by x
// anyway), or of bytes above one that borrowed (a true flag below them), so no term needs masking on its own.
func special(x uint64) uint64 {
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((x - ones*0x20) | (q - ones) | (bs - ones) | x) & highBits
}

func (v *validator) str() error {
	b := v.b
	i := v.i + 1 // opening quote
	for {
		// Jump to the first byte that needs a look: the lowest flagged byte of a word always does (special's
		// false flags sit above a true one), so the bytes before it are not looked at twice.
		for i+8 <= len(b) {
			if m := special(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			v.i = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(b) {
				v.i = i
				return v.fail("unfinished escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					v.i = i
					return v.fail(`bad \u escape`)
				}
				i += 6
			default:
				v.i = i
				return v.fail("bad escape")
			}
		case c < 0x20:
			v.i = i
			return v.fail("control character in a string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				v.i = i
				return v.fail("invalid UTF-8 in a string")
			}
			i += size
		}
	}
	v.i = i
	return v.fail("unterminated string")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (v *validator) digits() int {
	start := v.i
	for v.i < len(v.b) && v.b[v.i] >= '0' && v.b[v.i] <= '9' {
		v.i++
	}
	return v.i - start
}

func (v *validator) number() error {
	if v.b[v.i] == '-' {
		v.i++
	}
	switch {
	case v.i < len(v.b) && v.b[v.i] == '0':
		v.i++
	case v.digits() == 0:
		return v.fail("bad number")
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if v.digits() == 0 {
			return v.fail("bad fraction")
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if v.digits() == 0 {
			return v.fail("bad exponent")
		}
	}
	return nil
}

func (v *validator) literal(word string) error {
	if len(v.b)-v.i < len(word) || string(v.b[v.i:v.i+len(word)]) != word {
		return v.fail("bad literal")
	}
	v.i += len(word)
	return nil
}
