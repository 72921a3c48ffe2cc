package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SingerMessage is one line of Singer output with its payload decoded; the pointer matching Type is set.
type SingerMessage struct {
	Line int    // 1-based line number in stdout
	Type string // SCHEMA, RECORD, STATE, ACTIVATE_VERSION or BATCH, upper-cased
	Raw  []byte

	Schema          *SingerSchema
	Record          *SingerRecord
	State           *SingerState
	ActivateVersion *SingerActivateVersion
}

// SingerSchema is a SCHEMA message.
type SingerSchema struct {
	Stream             string
	Schema             json.RawMessage
	KeyProperties      []string
	BookmarkProperties []string
}

// SingerRecord is a RECORD message. TimeExtracted is zero when the tap did not send one.
type SingerRecord struct {
	Stream        string
	Record        map[string]any
	RawRecord     json.RawMessage
	TimeExtracted time.Time
	Version       *int64
}

// SingerState is a STATE message. Bookmarks is the conventional value.bookmarks object, nil when absent.
type SingerState struct {
	Value     json.RawMessage
	Bookmarks map[string]json.RawMessage
}

// SingerActivateVersion is an ACTIVATE_VERSION message.
type SingerActivateVersion struct {
	Stream  string
	Version int64
}

// ParseSingerOutput parses a tap's stdout and checks what Singer targets rely on: every line is one JSON object
// of a known type (case-insensitive, as the spec allows); SCHEMA has a stream, an object schema and key_properties
// (present even if empty) naming top-level properties of that schema; each RECORD comes after a SCHEMA of its
// stream, is an object, carries every key property, and has an RFC 3339 time_extracted if any; STATE has a value.
// The first violation fails the parse with its line number.
func ParseSingerOutput(stdout []byte) (SingerMessages, error) {
	lines, err := splitLines(stdout)
	if err != nil {
		return nil, err
	}
	schemas := map[string]*SingerSchema{}
	msgs := make(SingerMessages, 0, len(lines))
	for i, l := range lines {
		m, err := parseSingerLine(l, schemas)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %s", i+1, err, excerpt(l))
		}
		m.Line = i + 1
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// ParseSingerLine parses one line of a tap's stdout (without its newline) as ParseSingerOutput does, leaving Line
// zero, except for what only the lines before it can tell: a RECORD is not required to follow a SCHEMA of its
// stream, nor to carry that SCHEMA's key properties. It serves readers that see lines out of their output, such
// as a file of one stream's RECORD lines sorted for a golden comparison.
func ParseSingerLine(line []byte) (SingerMessage, error) {
	return parseSingerLine(line, nil)
}

// parseSingerLine parses one line. schemas holds the SCHEMA of every stream seen so far, which a RECORD must
// follow and is checked against, and gains the line's own SCHEMA; nil parses the line on its own.
func parseSingerLine(line []byte, schemas map[string]*SingerSchema) (SingerMessage, error) {
	m := SingerMessage{Raw: line}
	if t := bytes.TrimSpace(line); !json.Valid(t) || t[0] != '{' {
		return m, fmt.Errorf("not one JSON object")
	}
	var w struct {
		Type               string          `json:"type"`
		Stream             *string         `json:"stream"`
		Schema             json.RawMessage `json:"schema"`
		KeyProperties      *[]string       `json:"key_properties"`
		BookmarkProperties []string        `json:"bookmark_properties"`
		Record             json.RawMessage `json:"record"`
		TimeExtracted      *string         `json:"time_extracted"`
		Version            *int64          `json:"version"`
		Value              json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(line, &w); err != nil {
		return m, fmt.Errorf("not a Singer message: %w", err)
	}
	m.Type = strings.ToUpper(w.Type)
	stream := ""
	if w.Stream != nil {
		stream = *w.Stream
	}
	needStream := func() error {
		if w.Stream == nil || stream == "" {
			return fmt.Errorf("a %s message without stream", m.Type)
		}
		return nil
	}
	switch m.Type {
	case "SCHEMA":
		if err := needStream(); err != nil {
			return m, err
		}
		props, ok := schemaProperties(w.Schema)
		if !ok {
			return m, fmt.Errorf("the SCHEMA of stream %q has no schema object", stream)
		}
		if w.KeyProperties == nil {
			return m, fmt.Errorf("the SCHEMA of stream %q has no key_properties (required, even if empty)", stream)
		}
		if k, ok := missingProperty(props, *w.KeyProperties...); ok {
			return m, fmt.Errorf("the SCHEMA of stream %q names key property %q, which is not a property of its schema", stream, k)
		}
		m.Schema = &SingerSchema{Stream: stream, Schema: w.Schema, KeyProperties: *w.KeyProperties, BookmarkProperties: w.BookmarkProperties}
		if schemas != nil {
			schemas[stream] = m.Schema
		}
	case "RECORD":
		if err := needStream(); err != nil {
			return m, err
		}
		var keys []string
		if schemas != nil {
			schema, ok := schemas[stream]
			if !ok {
				return m, fmt.Errorf("a RECORD of stream %q before any SCHEMA of it", stream)
			}
			keys = schema.KeyProperties
		}
		r := &SingerRecord{Stream: stream, RawRecord: w.Record, Version: w.Version}
		if err := json.Unmarshal(w.Record, &r.Record); err != nil || r.Record == nil {
			return m, fmt.Errorf("a RECORD of stream %q whose record is not a JSON object", stream)
		}
		for _, k := range keys {
			if _, ok := r.Record[k]; !ok {
				return m, fmt.Errorf("a RECORD of stream %q without its key property %q", stream, k)
			}
		}
		if w.TimeExtracted != nil {
			t, err := time.Parse(time.RFC3339, *w.TimeExtracted)
			if err != nil {
				return m, fmt.Errorf("a RECORD of stream %q whose time_extracted %q is not RFC 3339", stream, *w.TimeExtracted)
			}
			r.TimeExtracted = t
		}
		m.Record = r
	case "STATE":
		if len(w.Value) == 0 {
			return m, fmt.Errorf("a STATE message without value")
		}
		m.State = singerState(w.Value)
	case "ACTIVATE_VERSION":
		if err := needStream(); err != nil {
			return m, err
		}
		if w.Version == nil {
			return m, fmt.Errorf("an ACTIVATE_VERSION of stream %q without version", stream)
		}
		m.ActivateVersion = &SingerActivateVersion{Stream: stream, Version: *w.Version}
	case "BATCH":
		if err := needStream(); err != nil {
			return m, err
		}
	default:
		return m, fmt.Errorf("unknown message type %q", w.Type)
	}
	return m, nil
}

// singerState reads a STATE's value, taking its bookmarks where the value holds the conventional object.
func singerState(value json.RawMessage) *SingerState {
	s := &SingerState{Value: value}
	var v struct {
		Bookmarks map[string]json.RawMessage `json:"bookmarks"`
	}
	if err := json.Unmarshal(value, &v); err == nil {
		s.Bookmarks = v.Bookmarks
	}
	return s
}

// ParseSingerStateFile parses what a tap takes as --state: the value of a STATE message, which a runner saves
// from the last one (LastState). The file must hold one JSON object; Bookmarks is nil when it has none, as for a
// STATE message.
func ParseSingerStateFile(file []byte) (*SingerState, error) {
	doc := bytes.TrimSpace(file)
	if !json.Valid(doc) || doc[0] != '{' {
		return nil, fmt.Errorf("the state file is not one JSON object: %s", excerpt(doc))
	}
	return singerState(doc), nil
}

// SingerMessages is parsed Singer output, in order.
type SingerMessages []SingerMessage

// Schemas returns the last SCHEMA of each stream.
func (ms SingerMessages) Schemas() map[string]SingerSchema {
	out := map[string]SingerSchema{}
	for _, m := range ms {
		if m.Schema != nil {
			out[m.Schema.Stream] = *m.Schema
		}
	}
	return out
}

// Records returns the records of one stream, in order.
func (ms SingerMessages) Records(stream string) []SingerRecord {
	var out []SingerRecord
	for _, m := range ms {
		if m.Record != nil && m.Record.Stream == stream {
			out = append(out, *m.Record)
		}
	}
	return out
}

// RecordsByStream groups every record by stream, each group in order.
func (ms SingerMessages) RecordsByStream() map[string][]SingerRecord {
	out := map[string][]SingerRecord{}
	for _, m := range ms {
		if m.Record != nil {
			out[m.Record.Stream] = append(out[m.Record.Stream], *m.Record)
		}
	}
	return out
}

// States returns every STATE, in order.
func (ms SingerMessages) States() []SingerState {
	var out []SingerState
	for _, m := range ms {
		if m.State != nil {
			out = append(out, *m.State)
		}
	}
	return out
}

// LastState returns the value of the last STATE, which is exactly what the next run takes as --state; nil if none.
func (ms SingerMessages) LastState() json.RawMessage {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].State != nil {
			return ms[i].State.Value
		}
	}
	return nil
}

// schemaProperties returns the top-level properties of a JSON Schema; ok is false when schema is not an object.
func schemaProperties(schema json.RawMessage) (props map[string]json.RawMessage, ok bool) {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if !bytes.HasPrefix(bytes.TrimSpace(schema), []byte("{")) || json.Unmarshal(schema, &s) != nil {
		return nil, false
	}
	return s.Properties, true
}

// missingProperty returns the first of names that props lacks.
func missingProperty(props map[string]json.RawMessage, names ...string) (string, bool) {
	for _, n := range names {
		if _, ok := props[n]; !ok {
			return n, true
		}
	}
	return "", false
}

// SingerCatalog is a tap's --discover output: the catalog a user or an orchestrator edits and hands back with
// --catalog.
type SingerCatalog struct {
	Streams []SingerCatalogStream
	Raw     json.RawMessage // the document as printed
}

// SingerCatalogStream is one stream of a Singer catalog. Metadata stays raw: its breadcrumbs are for the tap and
// the orchestrator, and a test that reads them decodes what it needs.
type SingerCatalogStream struct {
	TapStreamID       string
	Stream            string
	Schema            json.RawMessage
	KeyProperties     []string
	ReplicationKey    string // "" when the stream has none
	ReplicationMethod string
	Metadata          json.RawMessage
}

// ParseSingerCatalog parses a tap's --discover output and checks what Singer targets and orchestrators rely on,
// as ParseSingerOutput does for SCHEMA messages: the output is one JSON object with a streams array; every stream
// has a tap_stream_id no other stream has, an object schema, and key_properties (present, even if empty) that
// name top-level properties of that schema, as its replication_key does if it has one. The first violation fails
// the parse.
func ParseSingerCatalog(stdout []byte) (*SingerCatalog, error) {
	doc := bytes.TrimSpace(stdout)
	if !json.Valid(doc) || doc[0] != '{' {
		return nil, fmt.Errorf("the catalog is not one JSON object: %s", excerpt(doc))
	}
	var w struct {
		Streams *[]json.RawMessage `json:"streams"`
	}
	if err := json.Unmarshal(doc, &w); err != nil || w.Streams == nil {
		return nil, fmt.Errorf("the catalog has no streams array: %s", excerpt(doc))
	}
	c := &SingerCatalog{Raw: doc, Streams: make([]SingerCatalogStream, 0, len(*w.Streams))}
	seen := map[string]bool{}
	for i, raw := range *w.Streams {
		s, err := parseSingerCatalogStream(raw)
		if err != nil {
			return nil, fmt.Errorf("streams[%d]: %w", i, err)
		}
		if seen[s.TapStreamID] {
			return nil, fmt.Errorf("streams[%d]: tap_stream_id %q is listed twice", i, s.TapStreamID)
		}
		seen[s.TapStreamID] = true
		c.Streams = append(c.Streams, s)
	}
	return c, nil
}

func parseSingerCatalogStream(raw json.RawMessage) (SingerCatalogStream, error) {
	// The wire shape, where a pointer tells absent key_properties from empty ones.
	var w struct {
		TapStreamID       string          `json:"tap_stream_id"`
		Stream            string          `json:"stream"`
		Schema            json.RawMessage `json:"schema"`
		KeyProperties     *[]string       `json:"key_properties"`
		ReplicationKey    string          `json:"replication_key"`
		ReplicationMethod string          `json:"replication_method"`
		Metadata          json.RawMessage `json:"metadata"`
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) || json.Unmarshal(raw, &w) != nil {
		return SingerCatalogStream{}, fmt.Errorf("not a stream object: %s", excerpt(raw))
	}
	s := SingerCatalogStream{
		TapStreamID: w.TapStreamID, Stream: w.Stream, Schema: w.Schema, ReplicationKey: w.ReplicationKey,
		ReplicationMethod: w.ReplicationMethod, Metadata: w.Metadata,
	}
	if s.TapStreamID == "" {
		return s, fmt.Errorf("a stream without tap_stream_id")
	}
	props, ok := schemaProperties(s.Schema)
	if !ok {
		return s, fmt.Errorf("stream %q has no schema object", s.TapStreamID)
	}
	if w.KeyProperties == nil {
		return s, fmt.Errorf("stream %q has no key_properties (required, even if empty)", s.TapStreamID)
	}
	s.KeyProperties = *w.KeyProperties
	if k, ok := missingProperty(props, s.KeyProperties...); ok {
		return s, fmt.Errorf("stream %q names key property %q, which is not a property of its schema", s.TapStreamID, k)
	}
	if s.ReplicationKey != "" {
		if _, ok := missingProperty(props, s.ReplicationKey); ok {
			return s, fmt.Errorf("stream %q names replication_key %q, which is not a property of its schema", s.TapStreamID, s.ReplicationKey)
		}
	}
	return s, nil
}
