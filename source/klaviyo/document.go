package klaviyo

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// Document is one decoded JSON:API response.
type Document struct {
	// Data is the collection's resources, or a single-resource response's resource as the only element.
	Data []Resource
	// Included is the compound document's related resources (include=...), each once.
	Included []Resource
	// Next is links.next: the absolute URL of the next page, "" on the last page.
	Next string
}

// Resource is one JSON:API resource object, decoded straight from the page; its links and meta are skipped without
// being materialised. Attributes stay raw JSON so the engine can reshape a record without
// decoding it into Go values and encoding it again.
type Resource struct {
	Type          string                  `json:"type"`
	ID            string                  `json:"id"`
	Attributes    json.RawMessage         `json:"attributes"`
	Relationships map[string]Relationship `json:"relationships"`

	// keys are the offsets in Attributes of each top-level member's name, in order, when indexed is set: the page
	// decoder walks every member to validate it anyway, and noting where each starts lets Attribute find a
	// record's cursor without walking a profile's 3 KB of subscriptions and properties again.
	keys    []int32
	indexed bool
}

// Attribute returns the raw JSON value of the top-level attribute name, the first if it repeats. indexed is false
// when the resource carries no index of its attributes (it was not decoded by the page path, or a member name has
// escapes): the caller must then look for the name itself.
func (r Resource) Attribute(name string) (value []byte, found, indexed bool) {
	if !r.indexed {
		return nil, false, false
	}
	// Every step is checked, so that an index that is not of these attributes (a caller replaced them in its
	// copy of the resource) sends the caller to its own scan instead of reading out of place.
	a := r.Attributes
	last := len(a) - 1 // the object's closing brace
	if last < 1 || a[last] != '}' {
		return nil, false, false
	}
	for n, off := range r.keys {
		o, end := int(off), last
		if n+1 < len(r.keys) {
			end = int(r.keys[n+1]) // the next name, after a comma
		}
		if o <= 0 || end <= o || end > last || a[o] != '"' {
			return nil, false, false
		}
		m := a[o+1 : end] // name"  :  value  [,]
		if len(m) <= len(name) || m[len(name)] != '"' || string(m[:len(name)]) != name {
			continue
		}
		v := bytes.TrimSpace(m[len(name)+1:])
		if len(v) == 0 || v[0] != ':' {
			return nil, false, false
		}
		v = bytes.TrimSpace(v[1:])
		if end != last {
			if len(v) == 0 || v[len(v)-1] != ',' {
				return nil, false, false
			}
			v = bytes.TrimSpace(v[:len(v)-1])
		}
		return v, true, true
	}
	return nil, false, true
}

// Relationship is one entry of a resource's relationships: Data is a {type,id} object (to-one), an array of them
// (to-many), or null.
type Relationship struct {
	Data json.RawMessage `json:"data"`
}

// linkage is a JSON:API resource identifier.
type linkage struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// ToOneID returns the id of a to-one relationship; ok is false when it is null, absent or not an object.
func (r Relationship) ToOneID() (id string, ok bool) {
	b, ok := r.ToOneIDBytes()
	return string(b), ok
}

// ToOneIDBytes is ToOneID without a copy when the identifier is written plainly (as Klaviyo writes them): the id's
// bytes inside Data, which the caller must not change. A record's relationship ids are written into it and
// dropped, so copying them into strings was two allocations per event.
func (r Relationship) ToOneIDBytes() (id []byte, ok bool) {
	d := bytes.TrimSpace(r.Data)
	if len(d) == 0 || d[0] != '{' {
		return nil, false
	}
	if id, done, ok := plainLinkageID(d); done {
		return id, ok
	}
	var l linkage
	if err := json.Unmarshal(d, &l); err != nil || l.ID == "" {
		return nil, false
	}
	return []byte(l.ID), true
}

// plainLinkageID reads the id of a resource identifier written plainly, as Klaviyo writes them:
// {"type":"metric","id":"UxxK4u"}, string values without escapes. It runs for every relationship of every record,
// where a full decode costs several allocations. done is false when the object is anything else (escapes, nested
// values, odd key case) and the caller must use the full decoder.
func plainLinkageID(d []byte) (id []byte, done, ok bool) {
	i := 1
	ws := func() {
		for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
			i++
		}
	}
	// str reads a string starting at d[i] == '"' and returns its contents; ok is false on escapes or no end.
	str := func() ([]byte, bool) {
		if i >= len(d) || d[i] != '"' {
			return nil, false
		}
		end := bytes.IndexByte(d[i+1:], '"')
		if end < 0 {
			return nil, false
		}
		s := d[i+1 : i+1+end]
		if bytes.IndexByte(s, '\\') >= 0 {
			return nil, false
		}
		i += end + 2
		return s, true
	}
	var found []byte
	ws()
	if i < len(d) && d[i] == '}' {
		return nil, i == len(d)-1, false
	}
	for {
		ws()
		key, kok := str()
		if !kok {
			return nil, false, false
		}
		ws()
		if i >= len(d) || d[i] != ':' {
			return nil, false, false
		}
		i++
		ws()
		val, vok := str()
		if !vok {
			return nil, false, false
		}
		switch {
		case string(key) == "id":
			found = val
		case len(key) == 2 && bytes.EqualFold(key, []byte("id")):
			return nil, false, false // the full decoder matches keys case-insensitively; let it decide
		}
		ws()
		if i >= len(d) {
			return nil, false, false
		}
		switch d[i] {
		case ',':
			i++
		case '}':
			if i != len(d)-1 {
				return nil, false, false
			}
			if len(found) == 0 {
				return nil, true, false
			}
			return found, true, true
		default:
			return nil, false, false
		}
	}
}

// ToManyIDs returns the ids of a to-many relationship in order; nil when it is null, absent or not an array.
func (r Relationship) ToManyIDs() []string {
	d := bytes.TrimSpace(r.Data)
	if len(d) == 0 || d[0] != '[' {
		return nil
	}
	var ls []linkage
	if err := json.Unmarshal(d, &ls); err != nil {
		return nil
	}
	ids := make([]string, 0, len(ls))
	for _, l := range ls {
		if l.ID != "" {
			ids = append(ids, l.ID)
		}
	}
	return ids
}

// primaryData is a document's "data" member: an array of resources, one resource, or null. It decodes straight into
// a slice so a collection page is decoded once, whichever shape arrives.
type primaryData struct {
	present bool
	items   []Resource
}

// UnmarshalJSON dispatches on the first byte: '[' collection, '{' single resource, null nothing.
func (p *primaryData) UnmarshalJSON(b []byte) error {
	p.present = true
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errors.New("empty data member")
	case b[0] == '[':
		return json.Unmarshal(b, &p.items)
	case b[0] == '{':
		p.items = make([]Resource, 1)
		return json.Unmarshal(b, &p.items[0])
	case bytes.Equal(b, []byte("null")):
		p.items = nil
		return nil
	default:
		return fmt.Errorf("data is neither an array, an object nor null (starts with %q)", b[0])
	}
}

// wireDocument decodes any success document, whatever the shape of its data member.
type wireDocument struct {
	Data     primaryData `json:"data"`
	Included []Resource  `json:"included"`
	Links    struct {
		Next string `json:"next"`
	} `json:"links"`
}

// wireCollection decodes a collection document in one pass. It fails on a single-resource document, which then
// takes the wireDocument path.
type wireCollection struct {
	Data     []Resource `json:"data"`
	Included []Resource `json:"included"`
	Links    struct {
		Next string `json:"next"`
	} `json:"links"`
}

// maxBody bounds a response body. A 1,000-event page is a few MB; anything near this is not a page.
const maxBody = 256 << 20

// maxPooled is the largest body buffer a Client keeps for the next page; bigger ones go to the garbage collector.
const maxPooled = 8 << 20

// readBody reads a whole body into buf, refusing more than maxBody bytes.
//
// Reading first and decoding the bytes after is deliberate: goccy/go-json's byte decoder is about twice as fast on
// a 1,000-event page as its stream decoder (compare BenchmarkDecodeEventsPage with BenchmarkDecodeEventsStream),
// and the stream decoder buffers the whole top-level value anyway, so streaming saves no memory. Attributes are
// copied out of the buffer, so it can be reused for the next page.
func readBody(r io.Reader, buf *bytes.Buffer) error {
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r, maxBody+1)); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if buf.Len() > maxBody {
		return fmt.Errorf("body is larger than %d MiB", maxBody>>20)
	}
	return nil
}

// decodeDocument reads and decodes one document from r with a fresh buffer.
func decodeDocument(r io.Reader) (*Document, error) {
	var buf bytes.Buffer
	if err := readBody(r, &buf); err != nil {
		return nil, err
	}
	return decodeBytes(buf.Bytes(), nil)
}

// decodeBytes decodes one JSON:API document. It fails on anything that is not a complete document: truncated or
// malformed JSON, trailing bytes, a missing data member, a resource without type or id, or attributes that are not
// an object. A body that fails here is worth retrying; the caller decides.
//
// scratch, when not nil, is the page decoder's room from earlier pages (Client.bufs).
func decodeBytes(body []byte, scratch *scanScratch) (doc *Document, err error) {
	// The decoders parse bytes from the network; a bug in one must cost one retry, not the process.
	defer func() {
		if p := recover(); p != nil {
			doc, err = nil, fmt.Errorf("decode JSON:API document: decoder panicked: %v", p)
		}
	}()
	if scratch == nil {
		scratch = new(scanScratch)
	}
	if doc, ok := scratch.decode(body); ok {
		return doc, nil
	}
	return decodeGeneral(body)
}

// decodeGeneral is decodeBytes for any body: goccy/go-json decodes it, then checkResources validates (and repairs)
// what it captured. decodePage takes the common case first; this path keeps every other case as it always was.
// The body is checked to be one well-formed JSON value first: goccy indexes past the end of some broken bodies
// (`{"\`, after other decodes) and panics, which decodeBytes recovers from but which no decoder should be handed;
// a body cut off in transit is then an ordinary decode error, retried like any other. The standard library's check is the one that fits: it
// accepts invalid UTF-8 in strings, which checkResources repairs, where checkJSON refuses it.
func decodeGeneral(body []byte) (*Document, error) {
	if !stdjson.Valid(body) {
		return nil, errors.New("decode JSON:API document: the body is not one complete JSON value (cut off, or malformed)")
	}
	var c wireCollection
	if err := json.Unmarshal(body, &c); err == nil && c.Data != nil {
		return newDocument(c.Data, c.Included, c.Links.Next)
	}
	// A single resource, null or absent data, or a broken body: the general decoder tells them apart.
	var w wireDocument
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode JSON:API document: %w", err)
	}
	if !w.Data.present {
		return nil, errors.New("decode JSON:API document: no data member")
	}
	return newDocument(w.Data.items, w.Included, w.Links.Next)
}

func newDocument(data, included []Resource, next string) (*Document, error) {
	if err := checkResources(data, "data"); err != nil {
		return nil, err
	}
	if err := checkResources(included, "included"); err != nil {
		return nil, err
	}
	detachStrings(data)
	detachStrings(included)
	return &Document{Data: data, Included: included, Next: strings.Clone(next)}, nil
}

// detachStrings copies the ids and types of decoded resources out of the decoder's private copy of the page,
// which they point into: a caller that keeps an id (a checkpoint's ids, a parent list) would otherwise keep the
// whole page (about 1 MB of events) alive. Measured on 2 million events: peak RSS 140 -> 75 MiB for about 0.8 CPU
// seconds per million records. Types repeat, so they are shared per page. Attributes and relationship data are
// copied by their decoders already.
func detachStrings(rs []Resource) {
	names := map[string]string{}
	intern := func(s string) string {
		if v, ok := names[s]; ok {
			return v
		}
		v := strings.Clone(s)
		names[v] = v
		return v
	}
	for i := range rs {
		r := &rs[i]
		r.Type, r.ID = intern(r.Type), strings.Clone(r.ID)
	}
}

// checkResources validates decoded resources in place: every record needs a type and an id, and attributes must be
// a strictly valid JSON object (or absent, for relationship documents) because the engine splices them into the
// output unparsed, and goccy/go-json only balances brackets when it captures a RawMessage.
func checkResources(rs []Resource, member string) error {
	for i := range rs {
		r := &rs[i]
		if r.Type == "" || r.ID == "" {
			return fmt.Errorf("decode JSON:API document: %s[%d] has no type or id", member, i)
		}
		switch t := bytes.TrimSpace(r.Attributes); {
		case len(t) == 0 || bytes.Equal(t, []byte("null")):
			r.Attributes = nil
		case t[0] != '{':
			return fmt.Errorf("decode JSON:API document: %s[%d] (%s %s) has attributes that are not an object",
				member, i, r.Type, r.ID)
		default:
			if err := checkJSON(t); err != nil {
				// Invalid UTF-8 in user data (a name cut mid-character upstream) would fail the page on every
				// retry and lose the stream. Bytes >= 0x80 are never JSON structure, so replacing the bad
				// sequences with U+FFFD repairs the value and keeps the record.
				if !utf8.Valid(t) {
					if fixed := bytes.ToValidUTF8(t, []byte("\uFFFD")); checkJSON(fixed) == nil {
						r.Attributes = fixed
						continue
					}
				}
				return fmt.Errorf("decode JSON:API document: %s[%d] (%s %s) attributes: %w", member, i, r.Type, r.ID, err)
			}
		}
	}
	return nil
}
