// Package jsonkind names the JSON kind of a raw value for error messages.
//
// Both the configured-catalog reader (catalog) and the state-file reader (source/emit) tell users what they found
// where they wanted something else ("expected an object, found an array"). They share this one helper so that the
// two files name a value the same way.
package jsonkind

import "bytes"

// Of names the kind of raw, a JSON value, with its article as a sentence uses it: "an object", "an array",
// "a string", "a boolean", "null" or "a number". It looks only at the first byte, so callers validate raw first;
// a blank raw is "nothing".
func Of(raw []byte) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
