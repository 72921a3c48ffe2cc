package klaviyo

import (
	"bytes"
	"slices"
)

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
func decodePage(body []byte) (*Document, bool) { return new(scanScratch).decode(body) }

// decode is decodePage with the slices of an earlier page to build in: a client keeps one scanScratch with each
// body buffer (Client.bufs), so that a page's resources, relationships and attribute offsets are appended into room
// the pages before it grew, and the Document gets exact-size copies. Appending from nothing cost a dozen growing
// allocations a page, 4% of a profiles sync's CPU.
func (sc *scanScratch) decode(body []byte) (*Document, bool) {
	s := pageScanner{validator: validator{b: body}, scanScratch: sc}
	s.reset()
	if !s.document() {
		return nil, false
	}
	return s.finish(), true
}

// scanScratch is what a pageScanner builds only while it scans a page; its zero value is ready to use. Kept
// between pages, it holds on to nothing but capacity: reset (by the client when it keeps the buffer, and again
// before each page) clears what the last page left.
type scanScratch struct {
	// data and included are the page's resources, pointing into the body until finish copies them out.
	data, included []Resource
	// names interns resource types and relationship names: a page has a few, repeated on every resource.
	names map[string]string
	// rels are the relationships of the page's resources in the body's order; dataRels and includedRels say
	// which are each resource's. finish builds each map once, from these.
	rels                   []relEntry
	dataRels, includedRels []relSpan
	// keys are the offsets of the attributes' member names (Resource.keys) of every resource of the page, in the
	// body's order; finish hands each resource its part, with offsets made relative to its attributes.
	keys []int32
}

// maxInterned bounds the names a scanScratch keeps interned from page to page; a body with more distinct names than
// any Klaviyo resource has starts the next page with an empty table.
const maxInterned = 64

// maxKeptResources bounds the resources (and ten times that the relationships and attribute offsets) a
// scanScratch keeps room for after a page: a Klaviyo page holds at most 1,000 resources and their included ones.
const maxKeptResources = 4096

// large reports whether the scratch grew beyond what an ordinary page needs, so that one hostile page does not
// keep its room for the rest of the sync.
func (sc *scanScratch) large() bool {
	return cap(sc.data)+cap(sc.included) > maxKeptResources || cap(sc.rels) > 10*maxKeptResources ||
		cap(sc.keys) > 10*maxKeptResources || cap(sc.dataRels)+cap(sc.includedRels) > maxKeptResources
}

// reset empties the scratch for a new page, keeping its room. Resources and relationships are cleared, not only
// truncated, so that a kept buffer does not keep the last page's ids and values alive.
func (sc *scanScratch) reset() {
	clear(sc.data)
	clear(sc.included)
	clear(sc.rels)
	sc.data, sc.included, sc.rels = sc.data[:0], sc.included[:0], sc.rels[:0]
	sc.dataRels, sc.includedRels, sc.keys = sc.dataRels[:0], sc.includedRels[:0], sc.keys[:0]
	if len(sc.names) > maxInterned {
		clear(sc.names)
	}
}

// pageScanner walks a body with the strict validator, keeping the spans of the members the engine reads.
type pageScanner struct {
	validator
	*scanScratch
	hasData, hasIncluded bool
	next                 string
	// raw counts the bytes of attributes and relationship data, to copy them out in one allocation.
	raw int
}

// relSpan is where a resource's relationships are in pageScanner.rels; n is -1 when it has no relationships
// member (or null), which leaves its map nil, as goccy does. keys and nkeys are where its attributes' member names
// are in pageScanner.keys (nkeys -1: not indexed).
type relSpan struct{ first, n, keys, nkeys int }

// relEntry is one relationship while the page is scanned; data is still in the body.
type relEntry struct {
	name string
	data []byte
}

// maxRelationships bounds the relationships of one resource on this path (duplicates are found by comparing
// names pairwise); Klaviyo's resources have a handful.
const maxRelationships = 32

// intern returns a string equal to b, shared by every resource of the page that has it.
func (s *pageScanner) intern(b []byte) string {
	if t, ok := s.names[string(b)]; ok {
		return t
	}
	if s.names == nil {
		s.names = map[string]string{}
	}
	t := string(b)
	s.names[t] = t
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
			if s.data, s.dataRels, ok = s.resources(s.data, s.dataRels); !ok {
				return false
			}
			s.hasData = true
		case 1:
			if !s.isNull() {
				if s.included, s.includedRels, ok = s.resources(s.included, s.includedRels); !ok {
					return false
				}
				s.hasIncluded = true
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
	return s.oneMember("next", 2, func() bool {
		if s.isNull() {
			return true
		}
		v, ok := s.plainString()
		if ok {
			s.next = string(v)
		}
		return ok
	})
}

// oneMember reads an object of which one member, want, matters: read reads its value (it may appear once), every
// other member's value is skipped at most depth levels deep.
func (s *pageScanner) oneMember(want string, depth int, read func() bool) bool {
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
		m, ok := member(name, want)
		if !ok {
			return false
		}
		switch {
		case m == 0 && seen:
			return false
		case m == 0:
			seen = true
			if !read() {
				return false
			}
		default:
			if !s.skip(depth) {
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

// resources reads an array of resource objects, appending them to out and where each one's relationships are in
// s.rels to rels.
func (s *pageScanner) resources(out []Resource, rels []relSpan) ([]Resource, []relSpan, bool) {
	empty, ok := s.open('[', ']')
	if !ok {
		return nil, nil, false
	}
	if empty {
		return out, rels, true
	}
	for {
		s.ws()
		out = append(out, Resource{})
		rel, ok := s.resource(&out[len(out)-1])
		if !ok {
			return nil, nil, false
		}
		rels = append(rels, rel)
		if more, ok := s.more(']'); !ok {
			return nil, nil, false
		} else if !more {
			return out, rels, true
		}
	}
}

// resource reads one resource object: type and id (plain, non-empty strings), attributes (an object or null),
// relationships (an object of objects, or null) and any other member, validated and skipped.
func (s *pageScanner) resource(r *Resource) (relSpan, bool) {
	empty, ok := s.open('{', '}')
	if !ok || empty {
		return relSpan{}, false
	}
	var seen [4]bool
	rels := relSpan{n: -1, nkeys: -1}
	for {
		name, ok := s.key()
		if !ok {
			return relSpan{}, false
		}
		m, ok := member(name, "type", "id", "attributes", "relationships")
		if !ok {
			return relSpan{}, false
		}
		if m >= 0 {
			if seen[m] {
				return relSpan{}, false
			}
			seen[m] = true
		}
		switch m {
		case 0, 1:
			v, ok := s.plainString()
			if !ok || len(v) == 0 {
				return relSpan{}, false
			}
			if m == 0 {
				r.Type = s.intern(v)
			} else {
				r.ID = string(v) // a copy: a caller may keep an id (a checkpoint's) long after the page
			}
		case 2:
			if !s.isNull() {
				start := s.i
				rels.keys = len(s.keys)
				if rels.nkeys, ok = s.attributes(); !ok {
					return relSpan{}, false
				}
				r.Attributes = s.b[start:s.i]
				s.raw += s.i - start
			}
		case 3:
			if !s.isNull() {
				rels.first = len(s.rels)
				if rels.n, ok = s.relationships(); !ok {
					return relSpan{}, false
				}
			}
		default:
			if !s.skip(3) {
				return relSpan{}, false
			}
		}
		if more, ok := s.more('}'); !ok {
			return relSpan{}, false
		} else if !more {
			return rels, seen[0] && seen[1]
		}
	}
}

// attributes reads an attributes object, noting where each member's name starts in s.keys (relative to the
// object), and returns how many it noted; -1 when a name has escapes, which leaves the resource unindexed.
func (s *pageScanner) attributes() (int, bool) {
	start, first := s.i, len(s.keys)
	empty, ok := s.open('{', '}')
	if !ok {
		return 0, false
	}
	if empty {
		return 0, true
	}
	plain := true
	for {
		s.ws()
		at := s.i
		if s.i >= len(s.b) || s.b[s.i] != '"' || s.str() != nil {
			return 0, false
		}
		if bytes.IndexByte(s.b[at+1:s.i-1], '\\') >= 0 {
			plain = false
		}
		s.keys = append(s.keys, int32(at-start))
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return 0, false
		}
		s.i++
		s.ws()
		if !s.skip(4) {
			return 0, false
		}
		if more, ok := s.more('}'); !ok {
			return 0, false
		} else if !more {
			break
		}
	}
	if !plain {
		s.keys = s.keys[:first]
		return -1, true
	}
	return len(s.keys) - first, true
}

// relationships reads {"name": {"data": ..., other members}, ...} into s.rels and returns how many it read.
func (s *pageScanner) relationships() (int, bool) {
	empty, ok := s.open('{', '}')
	if !ok {
		return 0, false
	}
	if empty {
		return 0, true
	}
	first := len(s.rels)
	for {
		name, ok := s.key()
		if !ok {
			return 0, false
		}
		if len(s.rels)-first >= maxRelationships {
			return 0, false
		}
		for _, e := range s.rels[first:] {
			if e.name == string(name) {
				return 0, false // goccy keeps the last of duplicates; the general path decides
			}
		}
		e := relEntry{name: s.intern(name)}
		if !s.relationship(&e) {
			return 0, false
		}
		s.rels = append(s.rels, e)
		if more, ok := s.more('}'); !ok {
			return 0, false
		} else if !more {
			return len(s.rels) - first, true
		}
	}
}

// relationship reads one relationship object, keeping its data member raw.
func (s *pageScanner) relationship(rel *relEntry) bool {
	return s.oneMember("data", 5, func() bool {
		start := s.i
		if !s.skip(5) {
			return false
		}
		rel.data = s.b[start:s.i]
		s.raw += s.i - start
		return true
	})
}

// finish copies the resources out of the scratch and their raw values out of the body, both of which the client
// reuses for the next page: attributes and relationship data go into one allocation for the page, the attributes'
// member offsets into another (ids and types were copied as they were read). A data member that was an empty array
// gives an empty, non-nil Data; included gives nil when it was absent or null.
func (s *pageScanner) finish() *Document {
	doc := &Document{Data: make([]Resource, len(s.data)), Next: s.next}
	copy(doc.Data, s.data)
	if s.hasIncluded {
		doc.Included = make([]Resource, len(s.included))
		copy(doc.Included, s.included)
	}
	keys := slices.Clone(s.keys)
	slab := make([]byte, 0, s.raw)
	keep := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(slab)
		slab = append(slab, b...)
		return slab[start:len(slab):len(slab)]
	}
	for _, list := range []struct {
		rs   []Resource
		rels []relSpan
	}{{doc.Data, s.dataRels}, {doc.Included, s.includedRels}} {
		for i := range list.rs {
			r := &list.rs[i]
			r.Attributes = keep(r.Attributes)
			span := list.rels[i]
			if span.nkeys >= 0 && r.Attributes != nil {
				r.keys, r.indexed = keys[span.keys:span.keys+span.nkeys:span.keys+span.nkeys], true
			}
			if span.n < 0 {
				continue
			}
			r.Relationships = make(map[string]Relationship, span.n)
			for _, e := range s.rels[span.first : span.first+span.n] {
				r.Relationships[e.name] = Relationship{Data: keep(e.data)}
			}
		}
	}
	return doc
}
