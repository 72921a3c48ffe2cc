package maps

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/expr-lang/expr/vm"
)

// flatNode is the flattening of one object level: the properties whose objects are spread into columns. Every
// other object or array value at a flattened level is written as JSON text, as the SDK does.
type flatNode struct {
	children map[string]*flatNode
}

// separator joins flattened names: user.first_name becomes user__first_name.
const separator = "__"

// flattenSchema spreads the object properties of props into out, up to maxDepth levels, recording in node which
// properties a record spreads. Objects beyond the depth, objects with no declared properties and arrays become
// text columns, since their records carry JSON text; a spread object's columns are nullable, since the object may
// be null or absent. It returns the first column name two properties would share, "" when there is none.
func flattenSchema(props map[string]any, depth, maxDepth int, prefix string, out map[string]any, node *flatNode) string {
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := prefix + name
		ps, _ := props[name].(map[string]any)
		if sub, ok := ps["properties"].(map[string]any); ok && len(sub) > 0 && depth < maxDepth && hasType(ps, "object") {
			child := &flatNode{}
			if node.children == nil {
				node.children = map[string]*flatNode{}
			}
			node.children[name] = child
			if dup := flattenSchema(sub, depth+1, maxDepth, key+separator, out, child); dup != "" {
				return dup
			}
			continue
		}
		leaf := props[name]
		if hasType(ps, "object") || hasType(ps, "array") {
			leaf = textSchema(ps, depth > 0)
		} else if depth > 0 {
			leaf = nullableSchema(ps)
		}
		if _, dup := out[key]; dup {
			return key
		}
		out[key] = leaf
	}
	return ""
}

// hasType reports whether a property schema's type is t or lists it.
func hasType(ps map[string]any, t string) bool {
	switch v := ps["type"].(type) {
	case string:
		return v == t
	case []any:
		for _, e := range v {
			if e == t {
				return true
			}
		}
	}
	return false
}

// textSchema is the schema of an object or array written as JSON text.
func textSchema(ps map[string]any, forceNull bool) map[string]any {
	s := map[string]any{"type": "string"}
	if forceNull || hasType(ps, "null") {
		s["type"] = []any{"string", "null"}
	}
	if d, ok := ps["description"]; ok {
		s["description"] = d
	}
	return s
}

// nullableSchema adds null to a schema's type (a copy; schemas are shared between outputs).
func nullableSchema(ps map[string]any) map[string]any {
	if ps == nil || hasType(ps, "null") {
		return ps
	}
	s := make(map[string]any, len(ps))
	for k, v := range ps {
		s[k] = v
	}
	switch t := ps["type"].(type) {
	case string:
		s["type"] = []any{t, "null"}
	case []any:
		s["type"] = append(append([]any{}, t...), "null")
	}
	return s
}

// scratch is the reusable state of one mapping call; a Plan pools them so that records cost no allocation for
// buffers, environments or VMs.
type scratch struct {
	members []member
	out     []member
	levels  [][]member // members of nested objects being flattened, one slice per depth
	env     map[string]any
	machine vm.VM
	vals    []byte   // encoded expression results
	offs    [][2]int // each expression's result in vals
	done    []bool
	buf     []byte // the mapped record
	text    []byte // compacting JSON for text columns
	key     []byte // flattened names being built
}

// Map maps one record of a connector stream and calls emit once per output it goes to, in plan order. data is
// the record as a JSON object; the bytes given to emit are valid until emit returns (an identity output gets data
// itself). A stream the plan does not know is passed through under its own name; a stream the maps drop emits
// nothing. Errors from expressions are *Error; emit's errors are returned as they are.
func (p *Plan) Map(source string, data []byte, emit func(output string, data []byte) error) error {
	outs, known := p.bySource[source]
	if !known {
		return emit(source, data)
	}
	if len(outs) == 1 && outs[0].identity {
		return emit(outs[0].Name, data)
	}
	if len(outs) == 0 {
		return nil
	}
	sc := p.pool.Get().(*scratch)
	defer p.pool.Put(sc)
	var err error
	if sc.members, err = scanObject(sc.members[:0], data); err != nil {
		return fmt.Errorf("stream maps: a record of stream %s: %w", source, err)
	}
	for _, o := range outs {
		if o.identity {
			if err := emit(o.Name, data); err != nil {
				return err
			}
			continue
		}
		keep, err := p.apply(o, sc)
		if err != nil {
			return err
		}
		if keep {
			if err := emit(o.Name, sc.buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply maps the scanned record into sc.buf for one output; false means the filter dropped it.
func (p *Plan) apply(o *output, sc *scratch) (bool, error) {
	if o.filter != nil || len(o.exprs) > 0 {
		if err := p.environment(o, sc); err != nil {
			return false, err
		}
	}
	if o.filter != nil {
		v, err := sc.machine.Run(o.filter.prog, sc.env)
		if err != nil {
			return false, runtimeError(o.filter, o.Source, err)
		}
		if !truthy(v) {
			return false, nil
		}
	}
	sc.vals, sc.offs = sc.vals[:0], sc.offs[:0]
	for _, e := range o.exprs {
		if e.prog.self {
			sc.env[varSelf] = nil
			if m := find(sc.members, e.name); m != nil {
				v, err := decodeValue(m.value)
				if err != nil {
					return false, fmt.Errorf("stream maps: a record of stream %s has an invalid value: %w", o.Source, err)
				}
				sc.env[varSelf] = v
			}
		}
		v, err := sc.machine.Run(e.prog.prog, sc.env)
		if err != nil {
			return false, runtimeError(e.prog, o.Source, err)
		}
		start := len(sc.vals)
		if sc.vals, err = appendValue(sc.vals, v); err != nil {
			return false, errorf(e.prog.path, "gave a value on a record of stream %s that JSON cannot hold (%v); change the expression", o.Source, err)
		}
		sc.offs = append(sc.offs, [2]int{start, len(sc.vals)})
	}
	sc.done = sc.done[:0]
	for range o.exprs {
		sc.done = append(sc.done, false)
	}
	sc.out = sc.out[:0]
	for _, m := range sc.members {
		if i, ok := o.exprIndex[m.key]; ok {
			if !sc.done[i] {
				sc.out = append(sc.out, member{rawKey: m.rawKey, key: m.key, value: sc.vals[sc.offs[i][0]:sc.offs[i][1]]})
				sc.done[i] = true
			}
			continue
		}
		if o.removed[m.key] || (o.keep != nil && !o.keep[m.key]) {
			continue
		}
		sc.out = append(sc.out, m)
	}
	for i, e := range o.exprs {
		if !sc.done[i] {
			sc.out = append(sc.out, member{rawKey: e.quoted, key: e.name, value: sc.vals[sc.offs[i][0]:sc.offs[i][1]]})
		}
	}
	sc.buf = append(sc.buf[:0], '{')
	if o.flat != nil {
		first := true
		if err := sc.writeFlat(o.flat, sc.out, 0, 0, &first); err != nil {
			return false, fmt.Errorf("stream maps: flattening a record of stream %s: %w", o.Source, err)
		}
	} else {
		for i, m := range sc.out {
			if i > 0 {
				sc.buf = append(sc.buf, ',')
			}
			sc.buf = append(append(append(sc.buf, m.rawKey...), ':'), m.value...)
		}
	}
	sc.buf = append(sc.buf, '}')
	return true, nil
}

// environment fills sc.env with what the output's expressions read: the named properties, decoded from the
// record (null when absent), the whole record when record or _ is read, and the constants.
func (p *Plan) environment(o *output, sc *scratch) error {
	for _, name := range o.reads {
		sc.env[name] = nil
		if m := find(sc.members, name); m != nil {
			v, err := decodeValue(m.value)
			if err != nil {
				return fmt.Errorf("stream maps: a record of stream %s has an invalid value: %w", o.Source, err)
			}
			sc.env[name] = v
		}
	}
	if o.whole {
		rec := make(map[string]any, len(sc.members))
		for _, m := range sc.members {
			v, err := decodeValue(m.value)
			if err != nil {
				return fmt.Errorf("stream maps: a record of stream %s has an invalid value: %w", o.Source, err)
			}
			rec[strings.Clone(m.key)] = v // m.key views the caller's buffer
		}
		sc.env[varRecord], sc.env[varShort] = rec, rec
	}
	sc.env[varConfig] = p.mapConfig
	sc.env[varStreamName] = o.Source
	return nil
}

func find(members []member, name string) *member {
	for i := range members {
		if members[i].key == name {
			return &members[i]
		}
	}
	return nil
}

// writeFlat writes members into sc.buf, spreading the objects node names into prefixed columns and writing every
// other object or array as JSON text. prefixLen is the length of the name prefix held in sc.key.
func (sc *scratch) writeFlat(node *flatNode, members []member, depth, prefixLen int, first *bool) error {
	for _, m := range members {
		v := bytes.TrimSpace(m.value)
		if child := node.children[m.key]; child != nil && len(v) > 0 && v[0] == '{' {
			for len(sc.levels) <= depth {
				sc.levels = append(sc.levels, nil)
			}
			nested, err := scanObject(sc.levels[depth][:0], v)
			if err != nil {
				return err
			}
			sc.levels[depth] = nested
			sc.key = append(append(sc.key[:prefixLen], m.key...), separator...)
			if err := sc.writeFlat(child, nested, depth+1, len(sc.key), first); err != nil {
				return err
			}
			continue
		}
		if node.children[m.key] != nil && len(v) > 0 && v[0] == 'n' {
			continue // a null object leaves its columns out, which reads as null
		}
		if !*first {
			sc.buf = append(sc.buf, ',')
		}
		*first = false
		if prefixLen == 0 {
			sc.buf = append(sc.buf, m.rawKey...)
		} else {
			sc.key = append(sc.key[:prefixLen], m.key...)
			sc.buf = appendString(sc.buf, unsafeString(sc.key))
		}
		sc.buf = append(sc.buf, ':')
		if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
			sc.buf, sc.text = appendJSONText(sc.buf, sc.text, v)
		} else {
			sc.buf = append(sc.buf, v...)
		}
	}
	return nil
}
