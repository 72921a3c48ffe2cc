package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/catalog/jsonkind"
)

// Selection is one stream the user asked to sync, how, and which of its fields.
type Selection struct {
	Stream Stream
	// Incremental is true when the stream is read from its cursor; false means a full refresh.
	Incremental bool
	// Fields are the top-level record fields to write, sorted; nil means all of them. The primary key and the
	// cursor are always among them.
	Fields []string
}

// SelectAirbyte reads a ConfiguredAirbyteCatalog (the --catalog file of `read`) and returns its streams in the
// order given. Unknown JSON members are ignored, as the protocol grows; an unknown stream, a repeated stream or a
// sync_mode that is not a sync mode is an error naming its JSON path. Incremental on a stream without a cursor is
// read as a full refresh, because PyAirbyte asks every stream for incremental.
func SelectAirbyte(configuredCatalog []byte) ([]Selection, error) {
	return SelectAirbyteFrom(configuredCatalog, Streams())
}

// SelectAirbyteFrom is SelectAirbyte over the given streams (the table's and the config's report streams).
func SelectAirbyteFrom(configuredCatalog []byte, streams []Stream) ([]Selection, error) {
	root, err := decodeRoot(configuredCatalog, "run discover and configure streams from its catalog")
	if err != nil {
		return nil, err
	}
	entries, err := arrayAt(root["streams"], "streams", true)
	if err != nil {
		return nil, err
	}
	out := make([]Selection, 0, len(entries))
	seen := map[string]bool{}
	for i, raw := range entries {
		path := fmt.Sprintf("streams[%d]", i)
		cs, err := objectAt(raw, path)
		if err != nil {
			return nil, err
		}
		st, err := objectAt(cs["stream"], path+".stream")
		if err != nil {
			return nil, err
		}
		name, ok, err := stringAt(st["name"], path+".stream.name")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s.stream.name: missing; every configured stream needs the name discover gave it", path)
		}
		s, found := lookupIn(streams, name)
		if !found {
			return nil, fmt.Errorf("%s.stream.name: %q is not a Klaviyo stream; run discover and pick streams from its catalog", path, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%s.stream.name: %q is configured twice; keep one entry per stream", path, name)
		}
		seen[name] = true
		mode, ok, err := stringAt(cs["sync_mode"], path+".sync_mode")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s.sync_mode: missing; set it to %q or %q", path, SyncFullRefresh, SyncIncremental)
		}
		if mode != SyncFullRefresh && mode != SyncIncremental {
			return nil, fmt.Errorf("%s.sync_mode: %q is not a sync mode; use %q or %q", path, mode, SyncFullRefresh, SyncIncremental)
		}
		sel := Selection{Stream: s, Incremental: mode == SyncIncremental && s.Incremental()}
		if sel.Fields, err = airbyteFields(s, st["json_schema"], path+".stream.json_schema"); err != nil {
			return nil, err
		}
		out = append(out, sel)
	}
	return out, nil
}

// airbyteFields returns the fields of a configured (possibly trimmed) json_schema, nil when it keeps them all or
// lists none. Properties we do not have are ignored: they would never be filled.
func airbyteFields(s Stream, rawSchema json.RawMessage, path string) ([]string, error) {
	if isAbsent(rawSchema) {
		return nil, nil
	}
	schema, err := objectAt(rawSchema, path)
	if err != nil {
		return nil, err
	}
	if isAbsent(schema["properties"]) {
		return nil, nil
	}
	props, err := objectAt(schema["properties"], path+".properties")
	if err != nil {
		return nil, err
	}
	return fieldsOf(s, func(name string) bool { _, ok := props[name]; return ok })
}

// fieldsOf returns the stream's fields that keep is true for, plus the automatic ones; nil when that is all of them.
func fieldsOf(s Stream, keep func(string) bool) ([]string, error) {
	all, err := schemaProperties(s)
	if err != nil {
		return nil, err
	}
	auto := s.automaticFields()
	fields := make([]string, 0, len(all))
	for _, f := range all {
		if auto[f] || keep(f) {
			fields = append(fields, f)
		}
	}
	if len(fields) == len(all) {
		return nil, nil
	}
	return fields, nil
}

// SelectSinger reads a Singer catalog (--catalog or --properties) and returns the selected streams in the order
// given, resolving selection as the Meltano SDK does: for the stream, root metadata `inclusion` (unsupported: no;
// automatic: yes), then `selected`, then the legacy `selected` in the schema, then `selected-by-default`; a stream
// whose root metadata says none of these is not selected, and a stream with no root metadata at all is.
// Properties follow the same order under a selected stream, defaulting to selected; keys and the replication key
// are always kept. The replication method comes from root metadata `replication-method` or the entry's
// `replication_method`; when neither is set an incremental stream is read incrementally.
func SelectSinger(catalog []byte) ([]Selection, error) { return SelectSingerFrom(catalog, Streams()) }

// SelectSingerFrom is SelectSinger over the given streams.
func SelectSingerFrom(catalog []byte, streams []Stream) ([]Selection, error) {
	root, err := decodeRoot(catalog, "run --discover and select streams in its catalog")
	if err != nil {
		return nil, err
	}
	entries, err := arrayAt(root["streams"], "streams", true)
	if err != nil {
		return nil, err
	}
	out := make([]Selection, 0, len(entries))
	seen := map[string]bool{}
	for i, raw := range entries {
		path := fmt.Sprintf("streams[%d]", i)
		entry, err := objectAt(raw, path)
		if err != nil {
			return nil, err
		}
		idPath := path + ".tap_stream_id"
		id, ok, err := stringAt(entry["tap_stream_id"], idPath)
		if err != nil {
			return nil, err
		}
		if !ok {
			// Older tools name streams only by "stream".
			idPath = path + ".stream"
			if id, ok, err = stringAt(entry["stream"], idPath); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s.tap_stream_id: missing; every stream needs the tap_stream_id --discover gave it", path)
		}
		s, found := lookupIn(streams, id)
		if !found {
			return nil, fmt.Errorf("%s: %q is not a Klaviyo stream; run --discover and pick streams from its catalog", idPath, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("%s: %q appears twice; keep one entry per stream", idPath, id)
		}
		seen[id] = true
		sel, selected, err := singerEntry(s, entry, path)
		if err != nil {
			return nil, err
		}
		if selected {
			out = append(out, sel)
		}
	}
	return out, nil
}

// singerEntry resolves one catalog entry: whether it is selected, how it replicates and which fields it keeps.
func singerEntry(s Stream, entry map[string]json.RawMessage, path string) (Selection, bool, error) {
	md, err := metadataOf(entry["metadata"], path+".metadata")
	if err != nil {
		return Selection{}, false, err
	}
	rootMD, hasRoot := md[""]
	var legacy *bool
	if !isAbsent(entry["schema"]) {
		schema, err := objectAt(entry["schema"], path+".schema")
		if err != nil {
			return Selection{}, false, err
		}
		if legacy, err = boolAt(schema["selected"], path+".schema.selected"); err != nil {
			return Selection{}, false, err
		}
	}
	// With no root metadata and no legacy flag the Meltano SDK selects the stream; with root metadata that
	// decides nothing it does not.
	selected := true
	if hasRoot || legacy != nil {
		selected = rootMD.selected(legacy, false)
	}
	if !selected {
		return Selection{}, false, nil
	}

	method, hasMethod := rootMD.strings["replication-method"]
	methodPath := rootMD.path + ".replication-method"
	if !hasMethod {
		var err error
		if method, hasMethod, err = stringAt(entry["replication_method"], path+".replication_method"); err != nil {
			return Selection{}, false, err
		}
		methodPath = path + ".replication_method"
	}
	incremental := s.Incremental()
	if hasMethod {
		switch strings.ToUpper(method) {
		case ReplicationIncremental:
		case ReplicationFullTable:
			incremental = false
		default:
			return Selection{}, false, fmt.Errorf("%s: %q is not supported; use %q or %q", methodPath, method, ReplicationIncremental, ReplicationFullTable)
		}
	}
	if incremental {
		key, hasKey := rootMD.strings["replication-key"]
		keyPath := rootMD.path + ".replication-key"
		if !hasKey {
			var err error
			if key, hasKey, err = stringAt(entry["replication_key"], path+".replication_key"); err != nil {
				return Selection{}, false, err
			}
			keyPath = path + ".replication_key"
		}
		if hasKey && key != "" && key != s.Cursor.Field {
			return Selection{}, false, fmt.Errorf("%s: %q is not a replication key of stream %s; use %q or remove it", keyPath, key, s.Name, s.Cursor.Field)
		}
	}

	deselected := map[string]bool{}
	for key, m := range md {
		name, ok := strings.CutPrefix(key, "properties/")
		if !ok {
			continue
		}
		// A property without a decision inherits its stream's, which is selected here.
		deselected[name] = !m.selected(nil, true)
	}
	fields, err := fieldsOf(s, func(name string) bool { return !deselected[name] })
	if err != nil {
		return Selection{}, false, err
	}
	return Selection{Stream: s, Incremental: incremental, Fields: fields}, true, nil
}

// breadcrumbMD is the metadata of one breadcrumb with the keys selection reads, already type-checked.
type breadcrumbMD struct {
	path              string // JSON path of the metadata object, for errors
	strings           map[string]string
	explicit          *bool // selected
	selectedByDefault *bool
}

// selected applies the Meltano SDK's order: inclusion, then selected, then (for streams) the legacy schema flag,
// then selected-by-default, then the inherited value.
func (m breadcrumbMD) selected(legacy *bool, inherited bool) bool {
	switch m.strings["inclusion"] {
	case "unsupported":
		return false
	case "automatic":
		return true
	}
	switch {
	case m.explicit != nil:
		return *m.explicit
	case legacy != nil:
		return *legacy
	case m.selectedByDefault != nil:
		return *m.selectedByDefault
	}
	return inherited
}

// metadataOf indexes a catalog entry's metadata by breadcrumb: "" for the stream, "properties/<name>" for a
// top-level field. Deeper breadcrumbs are accepted and ignored, since records are flat.
func metadataOf(raw json.RawMessage, path string) (map[string]breadcrumbMD, error) {
	out := map[string]breadcrumbMD{}
	if isAbsent(raw) {
		return out, nil
	}
	items, err := arrayAt(raw, path, false)
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		item, err := objectAt(it, ip)
		if err != nil {
			return nil, err
		}
		crumbs, err := arrayAt(item["breadcrumb"], ip+".breadcrumb", true)
		if err != nil {
			return nil, err
		}
		parts := make([]string, 0, len(crumbs))
		for j, c := range crumbs {
			p, ok, err := stringAt(c, fmt.Sprintf("%s.breadcrumb[%d]", ip, j))
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("%s.breadcrumb[%d]: expected a string, found null; use [] or [\"properties\", \"<field>\"]", ip, j)
			}
			parts = append(parts, p)
		}
		if len(parts) != 0 && (len(parts) != 2 || parts[0] != "properties") {
			continue
		}
		key := strings.Join(parts, "/")
		mp := ip + ".metadata"
		values := map[string]json.RawMessage{}
		if !isAbsent(item["metadata"]) {
			if values, err = objectAt(item["metadata"], mp); err != nil {
				return nil, err
			}
		}
		m := breadcrumbMD{path: mp, strings: map[string]string{}}
		for _, k := range []string{"inclusion", "replication-method", "replication-key"} {
			v, ok, err := stringAt(values[k], mp+"."+k)
			if err != nil {
				return nil, err
			}
			if ok {
				m.strings[k] = v
			}
		}
		switch inc := m.strings["inclusion"]; inc {
		case "", "available", "automatic", "unsupported":
		default:
			return nil, fmt.Errorf("%s.inclusion: %q is not an inclusion; use available, automatic or unsupported", mp, inc)
		}
		if m.explicit, err = boolAt(values["selected"], mp+".selected"); err != nil {
			return nil, err
		}
		if m.selectedByDefault, err = boolAt(values["selected-by-default"], mp+".selected-by-default"); err != nil {
			return nil, err
		}
		out[key] = m
	}
	return out, nil
}

// decodeRoot decodes a catalog document's top-level object.
func decodeRoot(doc []byte, hint string) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, fmt.Errorf("the catalog is empty; %s", hint)
	}
	if !json.Valid(doc) {
		var v any
		err := json.Unmarshal(doc, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("the catalog is not valid JSON (byte %d: %s); %s", se.Offset, se.Error(), hint)
		}
		return nil, fmt.Errorf("the catalog is not valid JSON; %s", hint)
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(doc, &root); err != nil || root == nil {
		return nil, fmt.Errorf("top level: expected an object with \"streams\", found %s; %s", jsonkind.Of(doc), hint)
	}
	return root, nil
}

// isAbsent reports whether a member is missing or null.
func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func objectAt(raw json.RawMessage, path string) (map[string]json.RawMessage, error) {
	if isAbsent(raw) {
		return nil, fmt.Errorf("%s: missing; expected an object", path)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: expected an object, found %s", path, jsonkind.Of(raw))
	}
	return m, nil
}

// arrayAt decodes an array; a missing or null one is an error only when required.
func arrayAt(raw json.RawMessage, path string, required bool) ([]json.RawMessage, error) {
	if isAbsent(raw) {
		if required {
			return nil, fmt.Errorf("%s: missing; expected an array", path)
		}
		return nil, nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("%s: expected an array, found %s", path, jsonkind.Of(raw))
	}
	return a, nil
}

// stringAt decodes a string; ok is false when it is missing or null.
func stringAt(raw json.RawMessage, path string) (string, bool, error) {
	if isAbsent(raw) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("%s: expected a string, found %s", path, jsonkind.Of(raw))
	}
	return s, true, nil
}

// boolAt decodes a boolean; nil when it is missing or null.
func boolAt(raw json.RawMessage, path string) (*bool, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s: expected true or false, found %s", path, jsonkind.Of(raw))
	}
	return &b, nil
}
