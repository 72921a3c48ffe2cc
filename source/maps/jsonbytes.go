package maps

// Byte-level JSON helpers for the record path. A record is scanned at its top level only, values are decoded only
// when an expression reads them, and untouched members are copied as bytes, so mapping costs little more than the
// copy the writer makes anyway.

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	json "github.com/goccy/go-json"
)

var errNotObject = errors.New("the record is not a JSON object")

// member is one top-level member of a JSON object: its name as written (quotes and escapes included), its decoded
// name, and its value's bytes.
type member struct {
	rawKey []byte
	key    string
	value  []byte
}

// scanObject splits a JSON object into its members, appending them to dst. Member names without escapes are not
// copied: key is built with an allocation only when the name has a backslash. Malformed input is an error, never
// a panic.
func scanObject(dst []member, data []byte) ([]member, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return dst, errNotObject
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		if skipSpace(data, i+1) != len(data) {
			return dst, errNotObject
		}
		return dst, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return dst, errNotObject
		}
		end, escaped, err := skipString(data, i)
		if err != nil {
			return dst, err
		}
		m := member{rawKey: data[i:end]}
		if escaped {
			key, err := unescapeKey(m.rawKey)
			if err != nil {
				return dst, errNotObject
			}
			m.key = key
		} else {
			m.key = unsafeString(data[i+1 : end-1])
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return dst, errNotObject
		}
		i = skipSpace(data, i+1)
		vend, err := skipValue(data, i, 0)
		if err != nil {
			return dst, err
		}
		m.value = data[i:vend]
		dst = append(dst, m)
		i = skipSpace(data, vend)
		if i >= len(data) {
			return dst, errNotObject
		}
		if data[i] == '}' {
			if skipSpace(data, i+1) != len(data) {
				return dst, errNotObject
			}
			return dst, nil
		}
		if data[i] != ',' {
			return dst, errNotObject
		}
		i = skipSpace(data, i+1)
	}
}

// unescapeKey decodes a member name that has escapes. It is apart from scanObject so that decoding into a
// variable does not move every member to the heap.
func unescapeKey(raw []byte) (string, error) {
	var key string
	err := json.Unmarshal(raw, &key)
	return key, err
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i] (a quote) and whether it has escapes. Escapes
// and control characters are checked, since untouched members are copied to the output as they are.
func skipString(data []byte, i int) (int, bool, error) {
	escaped := false
	for j := i + 1; j < len(data); j++ {
		c := data[j]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue // the common byte, tested first: this loop is the record path's hottest
		}
		switch {
		case c == '"':
			return j + 1, escaped, nil
		case c < 0x20:
			return 0, false, errNotObject
		}
		escaped = true
		if j+1 >= len(data) {
			return 0, false, errNotObject
		}
		j++
		switch data[j] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if j+4 >= len(data) || !isHex(data[j+1]) || !isHex(data[j+2]) || !isHex(data[j+3]) || !isHex(data[j+4]) {
				return 0, false, errNotObject
			}
			j += 4
		default:
			return 0, false, errNotObject
		}
	}
	return 0, false, errNotObject
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// maxNesting bounds recursion on hostile input; the engine's records are a few levels deep.
const maxNesting = 1000

// skipValue returns the index after the JSON value starting at data[i].
func skipValue(data []byte, i, depth int) (int, error) {
	if i >= len(data) || depth > maxNesting {
		return 0, errNotObject
	}
	switch c := data[i]; c {
	case '"':
		end, _, err := skipString(data, i)
		return end, err
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(data) || data[i] != '"' {
					return 0, errNotObject
				}
				end, _, err := skipString(data, i)
				if err != nil {
					return 0, err
				}
				i = skipSpace(data, end)
				if i >= len(data) || data[i] != ':' {
					return 0, errNotObject
				}
				i = skipSpace(data, i+1)
			}
			end, err := skipValue(data, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipSpace(data, end)
			if i >= len(data) {
				return 0, errNotObject
			}
			if data[i] == closer {
				return i + 1, nil
			}
			if data[i] != ',' {
				return 0, errNotObject
			}
			i = skipSpace(data, i+1)
		}
	default:
		j := i
		for j < len(data) && !isDelimiter(data[j]) {
			j++
		}
		if j == i || !validScalar(data[i:j]) {
			return 0, errNotObject
		}
		return j, nil
	}
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r', ':', '"', '{', '[':
		return true
	}
	return false
}

func validScalar(b []byte) bool {
	switch string(b) {
	case "null", "true", "false":
		return true
	}
	return stdjson.Valid(b)
}

// decodeValue decodes one JSON value for an expression. Whole numbers become int, as in Python, so that int
// arithmetic and str() give what an SDK user expects; scalars are decoded by hand, containers by goccy/go-json.
func decodeValue(raw []byte) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errNotObject
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		if bytes.IndexByte(raw, '\\') < 0 && len(raw) >= 2 {
			return string(raw[1 : len(raw)-1]), nil
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[':
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		return numbers(v), nil
	}
	return number(string(raw))
}

func number(s string) (any, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("not a JSON value")
	}
	return f, nil
}

// numbers replaces json.Number in a decoded container by int or float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		n, _ := number(x.String())
		return n
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// appendValue appends an expression's result as JSON. Date-times become ISO 8601 text, durations seconds.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case float64:
		return appendFloat(b, x)
	case time.Time:
		return appendString(b, isoformat(x)), nil
	case time.Duration:
		return appendFloat(b, x.Seconds())
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, rv.Uint(), 10), nil
	case reflect.Float32:
		return appendFloat(b, rv.Float())
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("the result cannot be written as JSON")
	}
	return append(b, enc...), nil
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, errors.New("the result is an infinite or NaN number, which JSON cannot hold")
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64), nil
}

// appendString appends s as a JSON string, escaping what JSON requires and replacing invalid UTF-8.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONText appends a JSON value's bytes as a JSON string holding its compact text: how flattening writes an
// object or array it does not spread into columns, as the SDK's json.dumps does.
func appendJSONText(b, scratch []byte, raw []byte) ([]byte, []byte) {
	scratch = scratch[:0]
	buf := bytes.NewBuffer(scratch)
	if stdjson.Compact(buf, raw) == nil {
		scratch = buf.Bytes()
	} else {
		scratch = append(scratch[:0], raw...)
	}
	return appendString(b, unsafeString(scratch)), scratch
}

// unsafeString views bytes as a string without copying. The result is only for lookups and appends that finish
// before the bytes change; it is never stored (map keys, environments), because the record buffer is reused.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
