package sandbox

import (
	"bytes"
	"net/url"
	"strings"

	json "github.com/goccy/go-json"
)

// ref is a JSON:API resource identifier.
type ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// relation is one entry of a resource's relationships. To-one relations always carry data; to-many
// relations carry data only when it is bounded (e.g. a campaign's messages) or when the caller
// asked for it through include, as Klaviyo leaves unbounded lists (a list's profiles) to links.
type relation struct {
	Name string
	Many bool
	Refs []ref
	Data bool
}

// record is one resource object before serialisation.
type record struct {
	Type    string
	ID      string
	Attrs   map[string]any
	NoAttrs bool   // attribution and webhook-topic objects have no attributes member
	Coll    string // collection path segment for links, e.g. "events"
	Rels    []relation
	idx     int64
	ext     map[string]any // filter-only fields that are not attributes (metric_id, messages.channel...)
}

// field returns the record's value for a filter or sort field: a filter-only value, the id, or a
// dot path into the attributes (collecting across arrays of objects).
func (r *record) field(name string) any {
	if v, ok := r.ext[name]; ok {
		return v
	}
	if name == "id" {
		return r.ID
	}
	if v := lookupPath(r.Attrs, name); v != nil {
		return v
	}
	// Hidden attributes (subscriptions without additional-fields) still answer filters.
	return lookupPath(r.ext, name)
}

func lookupPath(m map[string]any, path string) any {
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		cur = step(cur, part)
		if cur == nil {
			return nil
		}
	}
	return cur
}

func step(cur any, key string) any {
	switch c := cur.(type) {
	case map[string]any:
		return c[key]
	case []any:
		var out []any
		for _, e := range c {
			if v := step(e, key); v != nil {
				if l, ok := v.([]any); ok {
					out = append(out, l...)
				} else {
					out = append(out, v)
				}
			}
		}
		if out == nil {
			return nil
		}
		return out
	}
	return nil
}

// encode writes the resource object: type, id, attributes, relationships, links.
func (r *record) encode(buf *bytes.Buffer, base string, fields []string, hasFields bool) error {
	buf.WriteString(`{"type":`)
	writeString(buf, r.Type)
	buf.WriteString(`,"id":`)
	writeString(buf, r.ID)
	if !r.NoAttrs {
		buf.WriteString(`,"attributes":`)
		attrs := r.Attrs
		if hasFields {
			attrs = sparse(attrs, fields)
		}
		if attrs == nil {
			attrs = map[string]any{}
		}
		if err := writeValue(buf, attrs); err != nil {
			return err
		}
	}
	if len(r.Rels) > 0 {
		buf.WriteString(`,"relationships":{`)
		for i, rel := range r.Rels {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, rel.Name)
			buf.WriteString(`:{`)
			if !rel.Many {
				if len(rel.Refs) > 0 {
					buf.WriteString(`"data":{"type":`)
					writeString(buf, rel.Refs[0].Type)
					buf.WriteString(`,"id":`)
					writeString(buf, rel.Refs[0].ID)
					buf.WriteString(`},`)
				}
			} else if rel.Data {
				buf.WriteString(`"data":[`)
				for j, rf := range rel.Refs {
					if j > 0 {
						buf.WriteByte(',')
					}
					buf.WriteString(`{"type":`)
					writeString(buf, rf.Type)
					buf.WriteString(`,"id":`)
					writeString(buf, rf.ID)
					buf.WriteByte('}')
				}
				buf.WriteString(`],`)
			}
			buf.WriteString(`"links":{"self":`)
			r.writeLink(buf, base, "relationships/", rel.Name)
			buf.WriteString(`,"related":`)
			r.writeLink(buf, base, "", rel.Name)
			buf.WriteString(`}}`)
		}
		buf.WriteByte('}')
	}
	buf.WriteString(`,"links":{"self":`)
	r.writeLink(buf, base, "", "")
	buf.WriteString(`}}`)
	return nil
}

// writeLink writes the quoted URL base/api/<coll>/<id>/[<mid><name>/] without building strings;
// IDs and names are URL-safe except catalog IDs, whose "$" and ":" are valid in a path.
func (r *record) writeLink(buf *bytes.Buffer, base, mid, name string) {
	buf.WriteByte('"')
	buf.WriteString(base)
	buf.WriteString("/api/")
	buf.WriteString(r.Coll)
	buf.WriteByte('/')
	writeRaw(buf, pathSegment(r.ID))
	buf.WriteByte('/')
	if name != "" {
		buf.WriteString(mid)
		buf.WriteString(name)
		buf.WriteByte('/')
	}
	buf.WriteByte('"')
}

// pathSegment percent-encodes an ID for a URL path when it needs it (coupon ÉTÉ25, webhook topics).
func pathSegment(id string) string {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 0x80 || c <= ' ' || c == '/' || c == '?' || c == '#' || c == '%' || c == '"' || c == '\\' {
			return url.PathEscape(id)
		}
	}
	return id
}

// writeRaw writes s inside an already open JSON string, escaping only what JSON requires.
func writeRaw(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			buf.Write(b[1 : len(b)-1])
			return
		}
	}
	buf.WriteString(s)
}

func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf.WriteString(s[start:i])
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\n':
			buf.WriteString(`\n`)
		case '\t':
			buf.WriteString(`\t`)
		case '\r':
			buf.WriteString(`\r`)
		default:
			const hexd = "0123456789abcdef"
			buf.WriteString(`\u00`)
			buf.WriteByte(hexd[c>>4])
			buf.WriteByte(hexd[c&15])
		}
		start = i + 1
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

// sparse keeps only the listed attributes; "location.city" keeps location with only city.
func sparse(attrs map[string]any, fields []string) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		if f == "id" {
			continue
		}
		parts := strings.Split(f, ".")
		copyPath(out, attrs, parts)
	}
	return out
}

func copyPath(dst, src map[string]any, parts []string) {
	v, ok := src[parts[0]]
	if !ok {
		return
	}
	if len(parts) == 1 {
		dst[parts[0]] = v
		return
	}
	sub, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			if _, exists := dst[parts[0]]; !exists {
				dst[parts[0]] = nil
			}
		}
		return
	}
	d, ok := dst[parts[0]].(map[string]any)
	if !ok {
		d = map[string]any{}
		dst[parts[0]] = d
	}
	copyPath(d, sub, parts[1:])
}
