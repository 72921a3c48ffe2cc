package maps

import (
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
	json "github.com/goccy/go-json"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// Stream is a stream of the connector as the engine produces it, before any map.
type Stream struct {
	Name string
	// Schema is the JSON Schema of the stream's records.
	Schema         json.RawMessage
	KeyProperties  []string
	ReplicationKey string // "" for a full-refresh stream
	// Catalog is the connector stream itself, when the input comes from one (CatalogStreams): the plan selects
	// from a configured catalog over these streams, report streams included.
	Catalog *catalog.Stream
}

// Output is a stream the sync emits after the maps: the same stream, an alias of it, or one derived from it.
type Output struct {
	Name string
	// Source is the connector stream whose records the output is made from; the engine reads, resumes and
	// checkpoints that stream.
	Source         string
	Schema         json.RawMessage
	KeyProperties  []string
	ReplicationKey string
}

// Plan is the settings resolved against the connector's streams: every output, its schema, and the compiled
// programs that map its records. It is safe for concurrent use.
type Plan struct {
	outputs   []*output
	bySource  map[string][]*output
	byName    map[string]*output
	mapConfig map[string]any
	// passthrough: no setting is active, every output is its input and records are never looked at.
	passthrough bool
	pool        sync.Pool // *scratch
	// streams are the connector streams the plan was made over, for selecting from configured catalogs.
	streams []catalog.Stream
}

// output is one output stream and what its records need.
type output struct {
	Output
	// identity: records pass as they are (the map renames the stream at most).
	identity bool
	// schemaKept: the schema and keys are the input's (no map changes them, no flattening).
	schemaKept bool
	filter     *program
	exprs      []*exprProp // properties set by expressions, in key order
	exprIndex  map[string]int
	removed    map[string]bool
	keep       map[string]bool // under __else__: null, the only properties kept; nil otherwise
	flat       *flatNode       // nil when flattening is off
	reads      []string        // every property some expression of this output reads
	whole      bool            // some expression reads record or _
}

type exprProp struct {
	name   string
	quoted []byte // the name as a JSON string, for records that lack the property
	prog   *program
}

// input is a connector stream with its schema decoded.
type input struct {
	Stream
	schema map[string]any
	props  map[string]any
	names  []string // property names, sorted
}

// Plan resolves the settings against the connector's streams, in the order given. Pass every stream of the
// connector (not only those selected for a sync): a map naming a stream that does not exist is an error, and the
// outputs must not depend on selection. The result's outputs come in input order, a stream's own output before the
// ones derived from it. Errors are *Error.
func (c *Config) Plan(streams []Stream) (*Plan, error) {
	p := &Plan{bySource: make(map[string][]*output), byName: make(map[string]*output), passthrough: !c.Active()}
	if c != nil {
		p.mapConfig = c.mapConfig
	}
	p.pool.New = func() any { return &scratch{env: make(map[string]any)} }
	inputs := make(map[string]*input, len(streams))
	ordered := make([]*input, 0, len(streams))
	for _, s := range streams {
		in, err := newInput(s)
		if err != nil {
			return nil, err
		}
		inputs[s.Name] = in
		ordered = append(ordered, in)
		if s.Catalog != nil {
			p.streams = append(p.streams, *s.Catalog)
		}
		p.bySource[s.Name] = nil // known, even if the maps drop it: its records are then dropped, not passed on
	}
	if p.passthrough {
		for _, in := range ordered {
			p.add(&output{Output: in.output(in.Name), identity: true, schemaKept: true})
		}
		return p, nil
	}
	if err := c.checkNames(inputs, ordered); err != nil {
		return nil, err
	}
	type made struct {
		m      *streamMap // nil for a stream under its own name, unmapped
		source string
	}
	origin := map[string]made{} // output name -> what produced it, for clash errors
	for _, in := range ordered {
		primary, err := c.primaryMap(in.Name)
		if err != nil {
			return nil, err
		}
		var maps []*streamMap
		switch {
		case primary != nil && primary.remove:
		case primary != nil:
			maps = append(maps, primary)
		case !c.elseNull:
			maps = append(maps, nil)
		}
		for _, m := range c.maps {
			if m.source == in.Name && m.key != in.Name {
				maps = append(maps, m)
			}
		}
		for _, m := range maps {
			o, err := c.build(in, m)
			if err != nil {
				return nil, err
			}
			if prev, clash := origin[o.Name]; clash {
				return nil, clashError(prev.m, prev.source, m, in.Name)
			}
			origin[o.Name] = made{m: m, source: in.Name}
			p.add(o)
		}
	}
	return p, nil
}

// clashError words two outputs with one name. Its path is a map's (an unmapped stream has no setting to fix);
// the names it gives are the connector's stream names, never the aliases the user typed.
func clashError(a *streamMap, aSource string, b *streamMap, bSource string) error {
	if b == nil {
		a, aSource, b, bSource = b, bSource, a, aSource
	}
	other := "the output of stream " + aSource
	if a != nil {
		other = "the output of " + a.path
	}
	return errorf(b.path, "gives stream %s the name of %s; choose distinct names with %s, or drop one of them with null", bSource, other, opAlias)
}

func (p *Plan) add(o *output) {
	p.outputs = append(p.outputs, o)
	p.bySource[o.Source] = append(p.bySource[o.Source], o)
	p.byName[o.Name] = o
}

func newInput(s Stream) (*input, error) {
	in := &input{Stream: s}
	if err := json.Unmarshal(s.Schema, &in.schema); err != nil || in.schema == nil {
		return nil, fmt.Errorf("stream maps: the schema of stream %s is not a JSON object", s.Name)
	}
	in.props, _ = in.schema["properties"].(map[string]any)
	if in.props == nil {
		in.props = map[string]any{}
	}
	for name := range in.props {
		in.names = append(in.names, name)
	}
	sort.Strings(in.names)
	return in, nil
}

// output is the input as it is, under name.
func (in *input) output(name string) Output {
	return Output{Name: name, Source: in.Name, Schema: in.Schema, KeyProperties: in.KeyProperties, ReplicationKey: in.ReplicationKey}
}

// checkNames refuses map entries that reach no stream: a typo would otherwise silently map nothing.
func (c *Config) checkNames(inputs map[string]*input, ordered []*input) error {
	for _, m := range c.maps {
		switch {
		case m.source != "" && m.source != m.key:
			if inputs[m.source] == nil {
				return errorf(m.path+"."+opSource, "names no stream of this connector; set it to a stream discover lists")
			}
		case m.glob:
			matched := false
			for _, in := range ordered {
				if ok, _ := path.Match(m.key, in.Name); ok {
					matched = true
					break
				}
			}
			if !matched {
				return errorf(m.path, "matches no stream of this connector; fix the pattern or remove the entry")
			}
		case inputs[m.key] == nil:
			return errorf(m.path, "names no stream of this connector; use a stream name discover lists, or add %s to derive a new stream from one", opSource)
		}
	}
	return nil
}

// primaryMap is the entry that maps a stream under its own name: the entry named after it, else the one pattern
// that matches it. Two patterns matching one stream would make the result depend on their order, so that is an error.
func (c *Config) primaryMap(stream string) (*streamMap, error) {
	var glob *streamMap
	for _, m := range c.maps {
		if m.source != "" && m.source != m.key {
			continue
		}
		if m.key == stream {
			return m, nil
		}
		if ok, _ := path.Match(m.key, stream); ok && m.glob {
			if glob != nil {
				return nil, errorf(m.path, "and %s both match stream %s; make the patterns match different streams, or add an entry named after the stream", glob.path, stream)
			}
			glob = m
		}
	}
	return glob, nil
}

// build makes the output of one stream map (nil: the stream as it is) applied to in.
func (c *Config) build(in *input, m *streamMap) (*output, error) {
	name := in.Name
	if m != nil && m.source != "" && m.source != m.key {
		name = m.key
	}
	if m != nil && m.alias.path != "" {
		var err error
		if name, err = c.aliasName(m.alias, in.Name); err != nil {
			return nil, err
		}
	}
	o := &output{Output: in.output(name)}
	if m == nil || (len(m.props) == 0 && m.filter == nil && !m.elseNull) {
		o.identity = c.maxDepth == 0
		o.schemaKept = o.identity && (m == nil || !m.keysSet)
		if m != nil && m.keysSet {
			o.KeyProperties = m.keys
			if err := c.checkKeys(in, m, o.KeyProperties, in.props); err != nil {
				return nil, err
			}
		}
		return o, c.finishSchema(o, in, in.props)
	}
	keys := in.KeyProperties
	if m.keysSet {
		keys = m.keys
	}
	o.KeyProperties = keys
	props := make(map[string]any, len(in.props))
	for k, v := range in.props {
		props[k] = v
	}
	var err error
	if m.filter != nil {
		if o.filter, err = compile(m.filter, in.names, c.mapConfig, c.now); err != nil {
			return nil, err
		}
		o.addReads(o.filter)
	}
	o.removed = map[string]bool{}
	o.exprIndex = map[string]int{}
	for _, pm := range m.props {
		if pm.remove {
			if contains(keys, pm.name) {
				return nil, errorf(pm.path, "removes a key property; keep it, or also set %s to a list without it", opKeys)
			}
			if pm.name == in.ReplicationKey && in.ReplicationKey != "" {
				return nil, errorf(pm.path, "removes the stream's replication key, which incremental syncs and state need; keep it, or replace its value with an expression")
			}
			o.removed[pm.name] = true
			delete(props, pm.name)
			continue
		}
		prog, err := compile(pm.expr, in.names, c.mapConfig, c.now)
		if err != nil {
			return nil, err
		}
		o.addReads(prog)
		o.exprIndex[pm.name] = len(o.exprs)
		o.exprs = append(o.exprs, &exprProp{name: pm.name, quoted: appendString(nil, pm.name), prog: prog})
		props[pm.name] = inferSchema(prog, pm.name, in)
	}
	if m.elseNull {
		o.keep = map[string]bool{}
		for _, pm := range m.props {
			if !pm.remove {
				o.keep[pm.name] = true
			}
		}
		for _, k := range keys {
			o.keep[k] = true
		}
		if in.ReplicationKey != "" {
			o.keep[in.ReplicationKey] = true
		}
		for k := range props {
			if !o.keep[k] {
				delete(props, k)
			}
		}
	}
	if err := c.checkKeys(in, m, keys, props); err != nil {
		return nil, err
	}
	return o, c.finishSchema(o, in, props)
}

func (o *output) addReads(p *program) {
	o.whole = o.whole || p.whole
	for _, r := range p.reads {
		o.reads = appendOnce(o.reads, r)
	}
}

// checkKeys makes sure every key property exists in the mapped stream, as the SDK requires.
func (c *Config) checkKeys(in *input, m *streamMap, keys []string, props map[string]any) error {
	for _, k := range keys {
		if _, ok := props[k]; !ok {
			return errorf(m.path+"."+opKeys, "names a property stream %s does not have after the map; list only properties it keeps", in.Name)
		}
	}
	return nil
}

// finishSchema writes the output's schema: the input's schema with the mapped properties, flattened when asked.
func (c *Config) finishSchema(o *output, in *input, props map[string]any) error {
	if c.maxDepth > 0 {
		flat := map[string]any{}
		o.flat = &flatNode{}
		if dup := flattenSchema(props, 0, c.maxDepth, "", flat, o.flat); dup != "" {
			return errorf(KeyFlatteningMaxDepth, "flattening stream %s gives two properties the name %s; lower the depth, or remove or rename one of them with a stream map", o.Name, dup)
		}
		props = flat
	}
	if o.identity {
		return nil
	}
	schema := make(map[string]any, len(in.schema))
	for k, v := range in.schema {
		schema[k] = v
	}
	schema["properties"] = props
	b, err := json.Marshal(schema)
	if err != nil {
		return fmt.Errorf("stream maps: encoding the schema of %s: %w", o.Name, err)
	}
	o.Schema = b
	return nil
}

// aliasName is the stream name __alias__ gives. Since SDK 0.42 the alias is an expression over __stream_name__
// (so that a pattern can rename many streams); a plain name such as customers_v2 does not compile as one, or is
// not text, and is taken literally, which is what it meant before.
func (c *Config) aliasName(a alias, stream string) (string, error) {
	opts := append(functionOptions(c.now), expr.Env(types.Map{varStreamName: types.String}))
	name := a.literal
	if prog, err := expr.Compile(a.literal, opts...); err == nil {
		if t := prog.Node().Type(); t != nil && t.Kind() == reflect.String {
			v, err := expr.Run(prog, map[string]any{varStreamName: stream})
			if err != nil {
				return "", errorf(a.path, "could not be evaluated for stream %s; fix the expression", stream)
			}
			name, _ = v.(string)
		}
	}
	if strings.TrimSpace(name) == "" {
		return "", errorf(a.path, "gives stream %s an empty name; give it a name", stream)
	}
	return name, nil
}

// inferSchema is the schema of a property set by an expression. The SDK reads the type from the expression's text
// (str(, int(, float( ...); expr's type checker does this better: a result it knows to be text, a whole number, a
// number, a boolean or a date-time gets that type, always nullable since the conversions keep null as null. An
// expression that only names a property keeps that property's schema; a property that existed keeps its schema
// (the SDK's second rule); anything else may hold any JSON value.
func inferSchema(p *program, name string, in *input) any {
	if t := p.resultType(); t != nil {
		if s := schemaOfType(t); s != nil {
			return s
		}
	}
	if ref := p.propertyRef(); ref != "" {
		if s, ok := in.props[ref]; ok {
			return s
		}
	}
	if s, ok := in.props[name]; ok {
		return s
	}
	return map[string]any{}
}

func schemaOfType(t reflect.Type) map[string]any {
	nullable := func(kind string) map[string]any { return map[string]any{"type": []any{kind, "null"}} }
	switch {
	case t == reflect.TypeOf(time.Time{}):
		s := nullable("string")
		s["format"] = "date-time"
		return s
	case t == reflect.TypeOf(time.Duration(0)):
		return nullable("number")
	}
	switch t.Kind() {
	case reflect.String:
		return nullable("string")
	case reflect.Bool:
		return nullable("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return nullable("integer")
	case reflect.Float32, reflect.Float64:
		return nullable("number")
	case reflect.Map:
		return nullable("object")
	case reflect.Slice, reflect.Array:
		return nullable("array")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Outputs returns every output stream, in plan order.
func (p *Plan) Outputs() []Output {
	out := make([]Output, len(p.outputs))
	for i, o := range p.outputs {
		out[i] = o.Output
	}
	return out
}

// OutputsOf returns the outputs made from a connector stream; none when the maps drop it.
func (p *Plan) OutputsOf(source string) []Output {
	outs := p.bySource[source]
	res := make([]Output, len(outs))
	for i, o := range outs {
		res[i] = o.Output
	}
	return res
}

// Lookup returns the output of that name.
func (p *Plan) Lookup(name string) (Output, bool) {
	o, ok := p.byName[name]
	if !ok {
		return Output{}, false
	}
	return o.Output, true
}

// Passthrough reports whether no setting is active: every output is its input, unchanged.
func (p *Plan) Passthrough() bool { return p.passthrough }
