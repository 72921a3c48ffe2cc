package source

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	json "github.com/goccy/go-json"
)

// topLevelString returns the string value of key in a JSON object, looking only at the object's own members, and
// false when the key is absent or its value is not a string. It scans without decoding the other members, so
// finding a record's cursor costs no allocation for the fields around it (profiles carry large nested
// properties); only a key or value with escapes is decoded. The object is one the client has already validated;
// on malformed input it reports false rather than guessing.
func topLevelString(obj []byte, key string) (string, bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return "", false // '}' of an empty object, or malformed
		}
		kEnd, kEsc, ok := stringEnd(obj, i)
		if !ok {
			return "", false
		}
		match := keyEquals(obj[i:kEnd], kEsc, key)
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return "", false
		}
		i = skipSpace(obj, i+1)
		if match {
			if i >= len(obj) || obj[i] != '"' {
				return "", false
			}
			vEnd, vEsc, ok := stringEnd(obj, i)
			if !ok {
				return "", false
			}
			if !vEsc {
				return string(obj[i+1 : vEnd-1]), true
			}
			var v string
			if json.Unmarshal(obj[i:vEnd], &v) != nil {
				return "", false
			}
			return v, true
		}
		if i, ok = valueEnd(obj, i); !ok {
			return "", false
		}
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ',' {
			return "", false // '}' ends the object: the key is not there
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at b[i] (a '"'), and whether it has escapes.
//
// Strings are most of the bytes a cursor scan passes over (a profile's properties, location and subscriptions
// come before "updated" when attributes are sorted, as the sandbox sorts them), so it looks at eight bytes at a
// time for a quote or a backslash: about 5% off BenchmarkCursorOf/profiles: strings there are short, so most of the
// cost is the walk itself.
func stringEnd(b []byte, i int) (end int, escaped, ok bool) {
	j := i + 1
	for {
		for j+8 <= len(b) {
			m := quoteOrBackslash(binary.LittleEndian.Uint64(b[j:]))
			if m != 0 {
				j += bits.TrailingZeros64(m) / 8
				break
			}
			j += 8
		}
		if j >= len(b) {
			return 0, false, false
		}
		switch b[j] {
		case '\\':
			escaped = true
			j += 2
		case '"':
			return j + 1, escaped, true
		default:
			j++
		}
	}
}

// quoteOrBackslash is non-zero when one of the eight bytes of x (little-endian) is a '"' or a '\\': the zero-byte
// test of x xor the repeated byte. It may also flag a byte above a match (a borrow), never one below, so its lowest
// flagged byte is the first match.
func quoteOrBackslash(x uint64) uint64 {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	q, bs := x^(ones*'"'), x^(ones*'\\')
	return ((q-ones)&^q | (bs-ones)&^bs) & high
}

// keyEquals compares a raw JSON string token (quotes included) with key.
func keyEquals(tok []byte, escaped bool, key string) bool {
	if !escaped {
		return string(tok[1:len(tok)-1]) == key
	}
	var k string
	return json.Unmarshal(tok, &k) == nil && k == key
}

// valueEnd returns the index just past the JSON value starting at b[i]: a string, an object or array (nesting
// counted, strings inside skipped whole), or a literal (number, true, false, null).
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, _, ok := stringEnd(b, i)
		return end, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, ok := stringEnd(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(b) && bytes.IndexByte([]byte(",}] \t\r\n"), b[j]) < 0 {
		j++
	}
	return j, j > i
}
