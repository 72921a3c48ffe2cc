package maps

// What the commands need around the plan: the connector's streams as the plan's input, the discovered catalogs
// with outputs in place of streams, and the way back from a catalog naming outputs (and a state keyed by them) to
// the connector streams the engine reads.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// CatalogStreams returns every stream of the connector's table, then the extra ones (the config's report
// streams, which carry their schema), as the plan's input, in that order.
func CatalogStreams(extra ...catalog.Stream) ([]Stream, error) {
	table := append(catalog.Streams(), extra...)
	out := make([]Stream, 0, len(table))
	for _, s := range table {
		schema := s.Schema
		if len(schema) == 0 {
			var err error
			if schema, err = schemas.Get(s.Name); err != nil {
				return nil, fmt.Errorf("stream maps: %w", err)
			}
		}
		in := Stream{Name: s.Name, Schema: schema, KeyProperties: s.PrimaryKey, Catalog: &s}
		if s.Cursor != nil {
			in.ReplicationKey = s.Cursor.Field
		}
		out = append(out, in)
	}
	return out, nil
}

// catalogStreams are the connector streams the plan was made over; the table's when its inputs did not say.
func (p *Plan) catalogStreams() []catalog.Stream {
	if len(p.streams) > 0 {
		return p.streams
	}
	return catalog.Streams()
}

// unmapped reports whether an output is its connector stream exactly: same name, same records, same schema. Such
// an output keeps everything the catalog says about it, field selection included.
func (o *output) unmapped() bool { return o.identity && o.schemaKept && o.Name == o.Source }

// AirbyteStreams turns the discovered streams (catalog.AirbyteStreams) into the outputs: each stream is replaced by
// the outputs made from it, with their names, schemas and primary keys; sync modes and cursors stay the stream's.
func (p *Plan) AirbyteStreams(streams []catalog.AirbyteStream) ([]catalog.AirbyteStream, error) {
	out := make([]catalog.AirbyteStream, 0, len(streams))
	for _, s := range streams {
		for _, o := range p.outputsOf(s.Name) {
			a := s
			a.Name = o.Name
			if !o.unmapped() {
				schema, err := compact(o.Schema)
				if err != nil {
					return nil, err
				}
				a.JSONSchema = schema
				a.SourceDefinedPrimaryKey = make([][]string, 0, len(o.KeyProperties))
				for _, k := range o.KeyProperties {
					a.SourceDefinedPrimaryKey = append(a.SourceDefinedPrimaryKey, []string{k})
				}
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// SingerCatalog turns the discovered Singer catalog (catalog.SingerCatalog) into the outputs. A mapped output's
// metadata is written anew from its schema, with the stream's root metadata: keys and the replication key are
// automatic, every other property available and selected by default.
func (p *Plan) SingerCatalog(doc catalog.SingerCatalogDoc) (catalog.SingerCatalogDoc, error) {
	res := catalog.SingerCatalogDoc{Streams: make([]catalog.SingerStream, 0, len(doc.Streams))}
	for _, e := range doc.Streams {
		for _, o := range p.outputsOf(e.TapStreamID) {
			m := e
			m.TapStreamID, m.Stream = o.Name, o.Name
			if !o.unmapped() {
				var err error
				if m.Schema, err = compact(o.Schema); err != nil {
					return catalog.SingerCatalogDoc{}, err
				}
				m.KeyProperties = o.KeyProperties
				if m.Metadata, err = o.singerMetadata(e.Metadata); err != nil {
					return catalog.SingerCatalogDoc{}, err
				}
			}
			res.Streams = append(res.Streams, m)
		}
	}
	return res, nil
}

func (o *output) singerMetadata(source []catalog.SingerMetadata) ([]catalog.SingerMetadata, error) {
	var root map[string]any
	for _, md := range source {
		if len(md.Breadcrumb) == 0 {
			root = make(map[string]any, len(md.Metadata))
			for k, v := range md.Metadata {
				root[k] = v
			}
		}
	}
	if root == nil {
		root = map[string]any{"inclusion": "available"}
	}
	keys := o.KeyProperties
	if keys == nil {
		keys = []string{}
	}
	root["table-key-properties"] = keys
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(o.Schema, &schema); err != nil {
		return nil, fmt.Errorf("stream maps: the schema of %s: %w", o.Name, err)
	}
	names := make([]string, 0, len(schema.Properties))
	for n := range schema.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	out := append(make([]catalog.SingerMetadata, 0, len(names)+1), catalog.SingerMetadata{Breadcrumb: []string{}, Metadata: root})
	for _, n := range names {
		inclusion := "available"
		if contains(keys, n) || n == o.ReplicationKey {
			inclusion = "automatic"
		}
		out = append(out, catalog.SingerMetadata{Breadcrumb: []string{"properties", n},
			Metadata: map[string]any{"inclusion": inclusion, "selected-by-default": true}})
	}
	return out, nil
}

func (p *Plan) outputsOf(source string) []*output {
	if outs, known := p.bySource[source]; known {
		return outs
	}
	return nil
}

func compact(raw []byte) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fmt.Errorf("stream maps: compacting a schema: %w", err)
	}
	return b.Bytes(), nil
}

// SelectAirbyte reads a configured catalog whose streams are outputs (what discover listed) and returns the
// connector streams to read, for the engine, with the plan restricted to the configured outputs, for the writer.
// Each output is checked by catalog.SelectAirbyte as its connector stream; an unmapped output keeps its field
// selection, a mapped one reads every field (its expressions may need any). A stream is read incrementally only when
// every configured output of it asks for incremental, so that no output misses records it asked for.
func (p *Plan) SelectAirbyte(configured []byte) ([]catalog.Selection, *Plan, error) {
	return p.selectFrom(configured, "stream.name", func(raw []byte) ([]catalog.Selection, error) {
		return catalog.SelectAirbyteFrom(raw, p.catalogStreams())
	}, func(e map[string]json.RawMessage, o *output) error {
		var st map[string]json.RawMessage
		if err := json.Unmarshal(e["stream"], &st); err != nil {
			return fmt.Errorf("stream: expected an object")
		}
		st["name"], _ = json.Marshal(o.Source)
		delete(st, "json_schema")
		var err error
		e["stream"], err = json.Marshal(st)
		return err
	})
}

// SelectSinger is SelectAirbyte for a Singer catalog (--catalog or --properties) whose tap_stream_ids are outputs.
// A mapped output's property metadata is dropped before catalog.SelectSinger reads it: those properties are the
// output's, not the stream's.
func (p *Plan) SelectSinger(cat []byte) ([]catalog.Selection, *Plan, error) {
	return p.selectFrom(cat, "tap_stream_id", func(raw []byte) ([]catalog.Selection, error) {
		return catalog.SelectSingerFrom(raw, p.catalogStreams())
	}, func(e map[string]json.RawMessage, o *output) error {
		name, _ := json.Marshal(o.Source)
		e["tap_stream_id"], e["stream"] = name, name
		var md []map[string]json.RawMessage
		if json.Unmarshal(e["metadata"], &md) == nil {
			kept := md[:0]
			for _, item := range md {
				if b := bytes.TrimSpace(item["breadcrumb"]); string(b) == "[]" {
					kept = append(kept, item)
				}
			}
			var err error
			if e["metadata"], err = json.Marshal(kept); err != nil {
				return err
			}
		}
		return nil
	})
}

// SelectDefault is the selection of a Singer sync run without a catalog: every output of every stream the
// connector selects by default.
func (p *Plan) SelectDefault() ([]catalog.Selection, *Plan) {
	var sels []catalog.Selection
	var names []string
	for _, s := range p.catalogStreams() {
		outs := p.outputsOf(s.Name)
		if !s.SelectedByDefault || len(outs) == 0 {
			continue
		}
		sels = append(sels, catalog.Selection{Stream: s, Incremental: s.Incremental()})
		for _, o := range outs {
			names = append(names, o.Name)
		}
	}
	return sels, p.only(names)
}

// selectFrom runs the catalog package's selection on each configured output, renamed to its stream by rename,
// and merges the outputs of one stream into one selection.
func (p *Plan) selectFrom(doc []byte, nameAt string, sel func([]byte) ([]catalog.Selection, error),
	rename func(map[string]json.RawMessage, *output) error) ([]catalog.Selection, *Plan, error) {
	if p.passthrough {
		// Every output is its stream: the catalog package reads the document as it is, with every check it makes
		// of the whole document (an empty catalog, a stream configured twice).
		sels, err := sel(doc)
		return sels, p, err
	}
	var root struct {
		Streams []map[string]json.RawMessage `json:"streams"`
	}
	if err := json.Unmarshal(doc, &root); err != nil {
		// Let the catalog package word the error about the document's shape.
		if _, err := sel(doc); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("the catalog is not a JSON object with a streams list")
	}
	type merged struct {
		sel     catalog.Selection
		outputs int
	}
	if len(root.Streams) == 0 {
		_, err := sel(doc) // the catalog package words an empty catalog
		if err == nil {
			err = fmt.Errorf("the catalog is empty")
		}
		return nil, nil, err
	}
	bySource := map[string]*merged{}
	var order []string
	var selected []string
	seen := map[string]bool{}
	for i, e := range root.Streams {
		where := fmt.Sprintf("streams[%d]", i)
		name := entryName(e, nameAt)
		if seen[name] {
			return nil, nil, fmt.Errorf("%s.%s: %q is configured twice; keep one entry per stream", where, nameAt, name)
		}
		seen[name] = true
		o, ok := p.byName[name]
		if !ok {
			if _, err := sel([]byte(`{"streams":[` + string(mustJSON(e)) + `]}`)); err != nil {
				return nil, nil, fmt.Errorf("%s", strings.Replace(err.Error(), "streams[0]", where, 1))
			}
			return nil, nil, fmt.Errorf("%s.%s: %q is not a stream of this connector with its stream maps; run discover and configure streams from its catalog", where, nameAt, name)
		}
		if !o.unmapped() {
			if err := rename(e, o); err != nil {
				return nil, nil, fmt.Errorf("%s.%v", where, err)
			}
		}
		one, err := sel([]byte(`{"streams":[` + string(mustJSON(e)) + `]}`))
		if err != nil {
			return nil, nil, fmt.Errorf("%s", strings.Replace(err.Error(), "streams[0]", where, 1))
		}
		if len(one) == 0 {
			continue
		}
		selected = append(selected, o.Name)
		m := bySource[o.Source]
		if m == nil {
			m = &merged{sel: one[0]}
			bySource[o.Source] = m
			order = append(order, o.Source)
		} else {
			m.sel.Incremental = m.sel.Incremental && one[0].Incremental
			m.sel.Fields = nil
		}
		m.outputs++
		if !o.unmapped() {
			m.sel.Fields = nil
		}
	}
	sels := make([]catalog.Selection, 0, len(order))
	for _, s := range order {
		sels = append(sels, bySource[s].sel)
	}
	return sels, p.only(selected), nil
}

func entryName(e map[string]json.RawMessage, nameAt string) string {
	raw := e[nameAt]
	if stream, field, nested := strings.Cut(nameAt, "."); nested {
		var st map[string]json.RawMessage
		_ = json.Unmarshal(e[stream], &st)
		raw = st[field]
	}
	var name string
	_ = json.Unmarshal(raw, &name)
	return name
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}

// only is the plan restricted to the named outputs: records of a stream go only to its outputs among them, and a
// stream none of whose outputs is named is known but emits nothing.
func (p *Plan) only(names []string) *Plan {
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
	}
	q := &Plan{bySource: make(map[string][]*output, len(p.bySource)), byName: make(map[string]*output, len(names)),
		mapConfig: p.mapConfig, passthrough: p.passthrough}
	q.pool.New = p.pool.New
	for _, o := range p.outputs {
		if _, seen := q.bySource[o.Source]; !seen {
			q.bySource[o.Source] = nil
		}
		if keep[o.Name] {
			q.add(o)
		}
	}
	return q
}

// SourceStates turns a state read from a --state file, keyed by output as the decorated writer writes it, into
// the state of each connector stream the plan reads, which is what the engine resumes from. A stream resumes from
// its outputs' state only when every output it feeds has one and they agree; otherwise (an output added since the
// last sync, or outputs synced apart) it is read from its start, and a warning says so: reading again is safe,
// skipping records an output never received is not. States of streams the plan does not read pass through.
func (p *Plan) SourceStates(states map[string]json.RawMessage) (map[string]json.RawMessage, []string) {
	if p.passthrough {
		return states, nil
	}
	out := make(map[string]json.RawMessage, len(states))
	for name, st := range states {
		if _, isOutput := p.byName[name]; !isOutput {
			if _, isSource := p.bySource[name]; !isSource {
				out[name] = st
			}
		}
	}
	var warnings []string
	sources := make([]string, 0, len(p.bySource))
	for s := range p.bySource {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		outs := p.bySource[s]
		if len(outs) == 0 {
			continue
		}
		var first []byte
		agree, some := true, false
		for _, o := range outs {
			st, ok := states[o.Name]
			c, err := compact(st)
			if !ok || err != nil || string(c) == "null" {
				agree = false
				continue
			}
			some = true
			if first == nil {
				first = c
			} else if !bytes.Equal(first, c) {
				agree = false
			}
		}
		switch {
		case agree && first != nil:
			out[s] = first
		case some:
			names := make([]string, len(outs))
			for i, o := range outs {
				names[i] = o.Name
			}
			warnings = append(warnings, fmt.Sprintf("stream %s is read from its start: its outputs %s do not all carry the same state", s, strings.Join(names, ", ")))
		}
	}
	return out, warnings
}

// SingerStreamInfos returns what the Singer writer announces for the selected streams: one entry per output. An
// unmapped output is described by base (the connector's own, which trims deselected fields); a mapped one by its
// schema and keys, with its replication key as bookmark property when the stream is read incrementally.
func (p *Plan) SingerStreamInfos(sels []catalog.Selection, base func(catalog.Selection) (emit.StreamInfo, error)) ([]emit.StreamInfo, error) {
	infos := make([]emit.StreamInfo, 0, len(sels))
	for _, sel := range sels {
		for _, o := range p.outputsOf(sel.Stream.Name) {
			if o.unmapped() {
				info, err := base(sel)
				if err != nil {
					return nil, err
				}
				infos = append(infos, info)
				continue
			}
			info := emit.StreamInfo{Name: o.Name, Schema: o.Schema, KeyProperties: o.KeyProperties}
			if sel.Incremental && o.ReplicationKey != "" {
				info.BookmarkProperties = []string{o.ReplicationKey}
			}
			infos = append(infos, info)
		}
	}
	return infos, nil
}
