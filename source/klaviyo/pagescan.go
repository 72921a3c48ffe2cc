package klaviyo

import "bytes"

// decodePage decodes the common case of a success body, a collection page, in one strict pass over its bytes, and
// reports false for anything else (a single resource, null data, an escaped or odd-cased member name, a duplicate
// member, a value of an unexpected type, any byte that is not strictly valid JSON with valid UTF-8). The caller then
// takes the general path (goccy/go-json, then checkResources), which decides, repairs or fails exactly as before, so
// this is a shortcut and never a second opinion: whatever it accepts, the general path decodes to the same Document
// (FuzzDecodePageAgrees and TestDecodePageAgrees hold it to that).
//
// Why it exists: profiling the CPU-bound benchmark put the general path at about half the connector's CPU. It
// decodes every page twice over (goccy copies the body, balances brackets to capture each raw attributes and
// relationship value, allocates each; then checkJSON walks the attributes again to validate them strictly, and the
// ids are cloned out of goccy's copy). Here the strict validator is the parser: one walk validates the whole body,
// finds the members the engine reads, and the raw values are then copied into one allocation per page.
func decodePage(body []byte) (*Document, bool) {
	s := pageScanner{validator: validator{b: body}}
	if !s.document() {
		return nil, false
	}
	return s.finish(), true
}

// pageScanner walks a body with the strict validator, keeping the spans of the members the engine reads. Its
// resources point into the body until finish copies them out.
type pageScanner struct {
	validator
	data, included []Resource
	hasData        bool
	next           string
	// raw counts the bytes of attributes and relationship data, to copy them out in one allocation.
	raw int
	// types interns resource types: a page has one or two.
	types map[string]string
}

// intern returns a string equal to b, shared by every resource of the page with that type.
func (s *pageScanner) intern(b []byte) string {
	if t, ok := s.types[string(b)]; ok {
		return t
	}
	if s.types == nil {
		s.types = map[string]string{}
	}
	t := string(b)
	s.types[t] = t
	return t
}

// key reads a member name and the ':' after it. ok is false on an escape (goccy would decode it, and a name that
// differs only by an escape is not worth a second implementation) or broken JSON.
func (s *pageScanner) key() (name []byte, ok bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i
	if s.str() != nil {
		return nil, false
	}
	name = s.b[start+1 : s.i-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		return nil, false
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false
	}
	s.i++
	s.ws()
	return name, true
}

// more reads the ',' or the closing bracket after a member or element: more is true after a ',', false after the
// closer; ok is false on anything else.
func (s *pageScanner) more(closer byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case closer:
		s.i++
		return false, true
	}
	return false, false
}

// open reads an opening bracket and reports whether the object or array is empty (its closer read too).
func (s *pageScanner) open(opener, closer byte) (empty, ok bool) {
	if s.i >= len(s.b) || s.b[s.i] != opener {
		return false, false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == closer {
		s.i++
		return true, true
	}
	return false, true
}

// skip validates and passes over one value.
func (s *pageScanner) skip(depth int) bool { return s.value(depth) == nil }

// isNull reads a null literal if one is next.
func (s *pageScanner) isNull() bool {
	if s.i < len(s.b) && s.b[s.i] == 'n' {
		return s.literal("null") == nil
	}
	return false
}

// plainString reads a string value without escapes and returns its bytes (still in the body).
func (s *pageScanner) plainString() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i
	if s.str() != nil {
		return nil, false
	}
	v := s.b[start+1 : s.i-1]
	return v, bytes.IndexByte(v, '\\') < 0
}

// member tells a member name apart: the index of the exact name among names, -1 for another name, and ok false
// for a name that matches one of them only when case is ignored (goccy matches field names that way; the general
// path decides those).
func member(name []byte, names ...string) (int, bool) {
	for i, n := range names {
		if string(name) == n {
			return i, true
		}
		if len(name) == len(n) && bytes.EqualFold(name, []byte(n)) {
			return -1, false
		}
	}
	return -1, true
}

// document reads {"data":[...], "included":[...]|null, "links":{...}|null, anything else} and nothing after it.
func (s *pageScanner) document() bool {
	s.ws()
	empty, ok := s.open('{', '}')
	if !ok || empty {
		return false
	}
	var seen [3]bool
	for {
		name, ok := s.key()
		if !ok {
			return false
		}
		m, ok := member(name, "data", "included", "links")
		if !ok {
			return false
		}
		if m >= 0 {
			if seen[m] {
				return false
			}
			seen[m] = true
		}
		switch m {
		case 0:
			if s.data, ok = s.resources(); !ok || s.data == nil {
				return false
			}
			s.hasData = true
		case 1:
			if !s.isNull() {
				if s.included, ok = s.resources(); !ok {
					return false
				}
			}
		case 2:
			if !s.isNull() && !s.links() {
				return false
			}
		default:
			if !s.skip(1) {
				return false
			}
		}
		if more, ok := s.more('}'); !ok {
			return false
		} else if !more {
			break
		}
	}
	s.ws()
	return s.i == len(s.b) && s.hasData
}

// links reads the links object for next, a string or null.
func (s *pageScanner) links() bool {
	empty, ok := s.open('{', '}')
	if !ok {
		return false
	}
	if empty {
		return true
	}
	seen := false
	for {
		name, ok := s.key()
		if !ok {
			return false
		}
		m, ok := member(name, "next")
		if !ok {
			return false
		}
		switch {
		case m == 0 && seen:
			return false
		case m == 0:
			seen = true
			if !s.isNull() {
				v, ok := s.plainString()
				if !ok {
					return false
				}
				s.next = string(v)
			}
		default:
			if !s.skip(2) {
				return false
			}
		}
		if more, ok := s.more('}'); !ok {
			return false
		} else if !more {
			return true
		}
	}
}

// resources reads an array of resource objects; an empty array gives an empty, non-nil slice.
func (s *pageScanner) resources() ([]Resource, bool) {
	empty, ok := s.open('[', ']')
	if !ok {
		return nil, false
	}
	if empty {
		return []Resource{}, true
	}
	var out []Resource
	for {
		s.ws()
		out = append(out, Resource{})
		if !s.resource(&out[len(out)-1]) {
			return nil, false
		}
		if more, ok := s.more(']'); !ok {
			return nil, false
		} else if !more {
			return out, true
		}
	}
}

// resource reads one resource object: type and id (plain, non-empty strings), attributes (an object or null),
// relationships (an object of objects, or null) and any other member, validated and skipped.
func (s *pageScanner) resource(r *Resource) bool {
	empty, ok := s.open('{', '}')
	if !ok || empty {
		return false
	}
	var seen [4]bool
	for {
		name, ok := s.key()
		if !ok {
			return false
		}
		m, ok := member(name, "type", "id", "attributes", "relationships")
		if !ok {
			return false
		}
		if m >= 0 {
			if seen[m] {
				return false
			}
			seen[m] = true
		}
		switch m {
		case 0, 1:
			v, ok := s.plainString()
			if !ok || len(v) == 0 {
				return false
			}
			if m == 0 {
				r.Type = s.intern(v)
			} else {
				r.ID = string(v) // a copy: a caller may keep an id (a checkpoint's) long after the page
			}
		case 2:
			if !s.isNull() {
				start := s.i
				if s.i >= len(s.b) || s.b[s.i] != '{' || !s.skip(3) {
					return false
				}
				r.Attributes = s.b[start:s.i]
				s.raw += s.i - start
			}
		case 3:
			if !s.isNull() && !s.relationships(r) {
				return false
			}
		default:
			if !s.skip(3) {
				return false
			}
		}
		if more, ok := s.more('}'); !ok {
			return false
		} else if !more {
			return seen[0] && seen[1]
		}
	}
}

// relationships reads {"name": {"data": ..., other members}, ...}.
func (s *pageScanner) relationships(r *Resource) bool {
	empty, ok := s.open('{', '}')
	if !ok {
		return false
	}
	r.Relationships = map[string]Relationship{}
	if empty {
		return true
	}
	for {
		name, ok := s.key()
		if !ok {
			return false
		}
		if _, dup := r.Relationships[string(name)]; dup {
			return false
		}
		var rel Relationship
		if !s.relationship(&rel) {
			return false
		}
		r.Relationships[string(name)] = rel
		if more, ok := s.more('}'); !ok {
			return false
		} else if !more {
			return true
		}
	}
}

// relationship reads one relationship object, keeping its data member raw.
func (s *pageScanner) relationship(rel *Relationship) bool {
	empty, ok := s.open('{', '}')
	if !ok {
		return false
	}
	if empty {
		return true
	}
	seen := false
	for {
		name, ok := s.key()
		if !ok {
			return false
		}
		m, ok := member(name, "data")
		if !ok {
			return false
		}
		switch {
		case m == 0 && seen:
			return false
		case m == 0:
			seen = true
			start := s.i
			if !s.skip(5) {
				return false
			}
			rel.Data = s.b[start:s.i]
			s.raw += s.i - start
		default:
			if !s.skip(5) {
				return false
			}
		}
		if more, ok := s.more('}'); !ok {
			return false
		} else if !more {
			return true
		}
	}
}

// finish copies the raw values the resources hold out of the body, which the client reuses for the next page:
// attributes and relationship data go into one allocation for the page (ids and types were copied as they were
// read).
func (s *pageScanner) finish() *Document {
	slab := make([]byte, 0, s.raw)
	keep := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(slab)
		slab = append(slab, b...)
		return slab[start:len(slab):len(slab)]
	}
	for _, rs := range [][]Resource{s.data, s.included} {
		for i := range rs {
			r := &rs[i]
			r.Attributes = keep(r.Attributes)
			for name, rel := range r.Relationships {
				if rel.Data != nil {
					r.Relationships[name] = Relationship{Data: keep(rel.Data)}
				}
			}
		}
	}
	return &Document{Data: s.data, Included: s.included, Next: s.next}
}
