package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/source-klaviyo/source-klaviyo/schemas"
)

// Sync modes and replication methods as the two protocols spell them.
const (
	SyncFullRefresh = "full_refresh"
	SyncIncremental = "incremental"

	ReplicationFullTable   = "FULL_TABLE"
	ReplicationIncremental = "INCREMENTAL"
)

// AirbyteStream is the AirbyteStream object of the Airbyte protocol (v0) as discover prints it. The cursor and
// the primary key are defined by the source: Klaviyo's filters decide what can be read incrementally.
type AirbyteStream struct {
	Name                    string          `json:"name"`
	JSONSchema              json.RawMessage `json:"json_schema"`
	SupportedSyncModes      []string        `json:"supported_sync_modes"`
	SourceDefinedCursor     bool            `json:"source_defined_cursor"`
	DefaultCursorField      []string        `json:"default_cursor_field,omitempty"`
	SourceDefinedPrimaryKey [][]string      `json:"source_defined_primary_key"`
	IsResumable             bool            `json:"is_resumable"`
}

// SingerCatalogDoc is the catalog a Singer tap prints for --discover and reads back with --catalog.
type SingerCatalogDoc struct {
	Streams []SingerStream `json:"streams"`
}

// SingerStream is one entry of a Singer catalog.
type SingerStream struct {
	TapStreamID       string           `json:"tap_stream_id"`
	Stream            string           `json:"stream"`
	Schema            json.RawMessage  `json:"schema"`
	KeyProperties     []string         `json:"key_properties"`
	ReplicationKey    string           `json:"replication_key,omitempty"`
	ReplicationMethod string           `json:"replication_method"`
	Metadata          []SingerMetadata `json:"metadata"`
}

// SingerMetadata is one breadcrumb of a Singer catalog's metadata: [] is the stream, ["properties", name] a field.
type SingerMetadata struct {
	Breadcrumb []string       `json:"breadcrumb"`
	Metadata   map[string]any `json:"metadata"`
}

// AirbyteStreams renders every stream of the table as an AirbyteStream, in table order.
func AirbyteStreams() ([]AirbyteStream, error) { return AirbyteStreamsOf(Streams()) }

// AirbyteStreamsOf renders the given streams (the table's and the config's report streams) as AirbyteStreams.
func AirbyteStreamsOf(streams []Stream) ([]AirbyteStream, error) {
	out := make([]AirbyteStream, 0, len(streams))
	for _, s := range streams {
		schema, err := compactSchema(s)
		if err != nil {
			return nil, err
		}
		a := AirbyteStream{
			Name:                    s.Name,
			JSONSchema:              schema,
			SupportedSyncModes:      []string{SyncFullRefresh},
			SourceDefinedPrimaryKey: make([][]string, 0, len(s.PrimaryKey)),
		}
		for _, k := range s.PrimaryKey {
			a.SourceDefinedPrimaryKey = append(a.SourceDefinedPrimaryKey, []string{k})
		}
		if s.Incremental() {
			a.SupportedSyncModes = append(a.SupportedSyncModes, SyncIncremental)
			a.SourceDefinedCursor = true
			if s.Cursor.Field != "" {
				a.DefaultCursorField = []string{s.Cursor.Field}
			}
			// Incremental reads checkpoint by cursor, so an interrupted sync resumes where its last state was.
			a.IsResumable = true
		}
		out = append(out, a)
	}
	return out, nil
}

// SingerCatalog renders every stream of the table as a Singer catalog entry with the metadata Meltano and the
// Singer SDK read: keys and the replication key are automatic, every other field available and selected by default.
func SingerCatalog() (SingerCatalogDoc, error) { return SingerCatalogOf(Streams()) }

// SingerCatalogOf renders the given streams as a Singer catalog.
func SingerCatalogOf(streams []Stream) (SingerCatalogDoc, error) {
	doc := SingerCatalogDoc{Streams: make([]SingerStream, 0, len(streams))}
	for _, s := range streams {
		schema, err := compactSchema(s)
		if err != nil {
			return SingerCatalogDoc{}, err
		}
		props, err := schemaProperties(s)
		if err != nil {
			return SingerCatalogDoc{}, err
		}
		root := map[string]any{
			"inclusion":            "available",
			"selected-by-default":  s.SelectedByDefault,
			"table-key-properties": s.PrimaryKey,
		}
		e := SingerStream{
			TapStreamID:       s.Name,
			Stream:            s.Name,
			Schema:            schema,
			KeyProperties:     s.PrimaryKey,
			ReplicationMethod: ReplicationFullTable,
		}
		if s.Incremental() {
			e.ReplicationMethod = ReplicationIncremental
			root["replication-method"] = ReplicationIncremental
			if f := s.Cursor.Field; f != "" {
				e.ReplicationKey = f
				root["valid-replication-keys"] = []string{f}
				root["replication-key"] = f
			}
		} else {
			root["forced-replication-method"] = ReplicationFullTable
		}
		e.Metadata = append(make([]SingerMetadata, 0, len(props)+1), SingerMetadata{Breadcrumb: []string{}, Metadata: root})
		auto := s.automaticFields()
		for _, p := range props {
			inclusion := "available"
			if auto[p] {
				inclusion = "automatic"
			}
			e.Metadata = append(e.Metadata, SingerMetadata{
				Breadcrumb: []string{"properties", p},
				Metadata:   map[string]any{"inclusion": inclusion, "selected-by-default": true},
			})
		}
		doc.Streams = append(doc.Streams, e)
	}
	return doc, nil
}

// automaticFields are the fields every record keeps whatever the selection: the primary key and the cursor.
// Destinations need them to deduplicate, and the engine needs the cursor to advance state.
func (s Stream) automaticFields() map[string]bool {
	auto := make(map[string]bool, len(s.PrimaryKey)+1)
	for _, k := range s.PrimaryKey {
		auto[k] = true
	}
	if s.Cursor != nil {
		auto[s.Cursor.Field] = true
	}
	return auto
}

// schemaOf returns a stream's JSON Schema: its own when it carries one (a report stream's, made from its
// definition), else the schemas package's.
func schemaOf(s Stream) ([]byte, error) {
	if len(s.Schema) > 0 {
		return s.Schema, nil
	}
	b, err := schemas.Get(s.Name)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return b, nil
}

// compactSchema returns the stream's schema on one line, so any encoder writes it inside a one-line message.
func compactSchema(s Stream) (json.RawMessage, error) {
	stream := s.Name
	b, err := schemaOf(s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("catalog: schema of stream %s: %w", stream, err)
	}
	return buf.Bytes(), nil
}

// schemaProperties returns the top-level property names of the stream's schema, sorted.
func schemaProperties(st Stream) ([]string, error) {
	stream := st.Name
	b, err := schemaOf(st)
	if err != nil {
		return nil, err
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("catalog: schema of stream %s: %w", stream, err)
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
