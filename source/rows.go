package source

import (
	"bytes"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// rowSink collects the rows of one resource in a buffer reused for every resource of a sync. A row is a JSON
// object built member by member with typed setters, so every row is valid JSON by construction: strings are
// escaped here, raw values are ones the client decoded as JSON, and a missing raw value is written as null.
type rowSink struct {
	buf  []byte
	ends []int
	// members counts the members of the row being built, for the commas.
	n int
}

func (s *rowSink) reset() {
	s.buf, s.ends = s.buf[:0], s.ends[:0]
}

// begin opens a row; end closes it.
func (s *rowSink) begin() {
	s.buf = append(s.buf, '{')
	s.n = 0
}

func (s *rowSink) end() {
	s.buf = append(s.buf, '}')
	s.ends = append(s.ends, len(s.buf))
}

func (s *rowSink) key(k string) {
	if s.n > 0 {
		s.buf = append(s.buf, ',')
	}
	s.n++
	s.buf = appendString(s.buf, k)
	s.buf = append(s.buf, ':')
}

// str adds a string member.
func (s *rowSink) str(k, v string) {
	s.key(k)
	s.buf = appendString(s.buf, v)
}

// strBytes is str for a value still in a page's bytes (a relationship id), which would otherwise be copied into a
// string only to be written here.
func (s *rowSink) strBytes(k string, v []byte) {
	s.key(k)
	s.buf = appendString(s.buf, v)
}

// nullableStr adds a string member that is null when v is nil.
func (s *rowSink) nullableStr(k string, v *string) {
	s.key(k)
	if v == nil {
		s.buf = append(s.buf, "null"...)
		return
	}
	s.buf = appendString(s.buf, *v)
}

// raw adds a member whose value is JSON the client decoded (a field of a resource's attributes); empty is null.
func (s *rowSink) raw(k string, v json.RawMessage) {
	s.key(k)
	if len(v) == 0 {
		s.buf = append(s.buf, "null"...)
		return
	}
	s.buf = append(s.buf, v...)
}

// members splices the members of a JSON object (a resource's raw attributes) into the row, so attributes are
// never decoded and re-encoded one by one. Empty and null add nothing; it reports false for anything that is not
// an object.
func (s *rowSink) members(obj []byte) bool {
	obj = bytes.TrimSpace(obj)
	switch {
	case len(obj) == 0 || bytes.Equal(obj, []byte("null")):
		return true
	case len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}':
		return false
	}
	inner := bytes.TrimSpace(obj[1 : len(obj)-1])
	if len(inner) == 0 {
		return true
	}
	if s.n > 0 {
		s.buf = append(s.buf, ',')
	}
	s.n++
	s.buf = append(s.buf, inner...)
	return true
}

// rows calls fn with each finished row, in order.
func (s *rowSink) rows(fn func(row []byte) error) error {
	start := 0
	for _, end := range s.ends {
		if err := fn(s.buf[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// appendString appends s as a JSON string. Klaviyo ids and names are mostly plain ASCII, which takes the fast
// path; anything else goes through the JSON encoder so escaping is always right.
func appendString[T string | []byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(string(s))
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
