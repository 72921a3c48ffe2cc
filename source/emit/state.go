package emit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/catalog/jsonkind"
)

// ParseState reads a state file into one state object per stream name. It accepts every shape a user or an
// orchestrator may hand over, whichever protocol the binary is speaking, because people move state between tools:
//
//   - the Airbyte array of state messages (STREAM, GLOBAL or LEGACY elements); `[]`, `null` and an empty file
//     mean no state;
//   - one Airbyte state message on its own, or an Airbyte STATE envelope;
//   - an Airbyte LEGACY object `{"data": {...}}`, or a bare legacy object keyed by stream name;
//   - a Singer state `{"bookmarks": {...}}`, or a Singer STATE message holding one.
//
// A stream whose state is null is treated as having none (Airbyte uses null for a reset). Every other per-stream
// state must be a JSON object. Errors are one sentence naming what is wrong and where, counting array elements
// from 1. The standard library decoder is used on purpose: this runs once per sync on a user-supplied file, where
// a hardened, fuzzed parser matters more than speed.
func ParseState(data []byte) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage)
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))) // editors on Windows add a BOM
	if len(data) == 0 || string(data) == "null" {
		return out, nil
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("state file: not valid JSON: %w", err)
	}
	p := stateParser{out: out}
	var err error
	switch data[0] {
	case '[':
		err = p.array(data)
	case '{':
		err = p.document(data, true)
	default:
		err = fmt.Errorf("the state is %s; want a JSON array of Airbyte state messages or a JSON object", jsonkind.Of(data))
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	return out, nil
}

// stateParser collects per-stream states; later entries for the same stream replace earlier ones.
type stateParser struct {
	out map[string]json.RawMessage
}

// array reads the Airbyte form: a list of AirbyteStateMessage objects.
func (p stateParser) array(data []byte) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return fmt.Errorf("not a JSON array: %w", err)
	}
	for i, e := range elems {
		if err := p.message(e, fmt.Sprintf("element %d", i+1)); err != nil {
			return err
		}
	}
	return nil
}

// document reads a top-level object, which may be a Singer state, an Airbyte message of either kind, or a legacy
// object. envelopes allows unwrapping a STATE message once (and only once, so nesting cannot recurse).
func (p stateParser) document(data []byte, envelopes bool) error {
	obj, err := object(data)
	if err != nil {
		return err
	}
	if _, ok := obj["bookmarks"]; ok {
		return p.bookmarks(obj["bookmarks"], "bookmarks")
	}
	if t, ok := obj["type"]; ok {
		var typ string
		if err := json.Unmarshal(t, &typ); err != nil {
			return fmt.Errorf("the state's \"type\" is %s, not a string", jsonkind.Of(t))
		}
		if strings.EqualFold(typ, "STATE") && envelopes {
			if v, ok := obj["value"]; ok {
				if jsonkind.Of(v) != "an object" {
					return fmt.Errorf("the STATE message's value is %s, not a JSON object", jsonkind.Of(v))
				}
				return p.document(v, false)
			}
			if s, ok := obj["state"]; ok {
				return p.message(s, "the STATE message's state")
			}
			return fmt.Errorf("the STATE message has neither value (Singer) nor state (Airbyte)")
		}
		return p.message(data, "the state message")
	}
	if _, ok := obj["stream"]; ok {
		return p.message(data, "the state message")
	}
	if _, ok := obj["global"]; ok {
		return p.message(data, "the state message")
	}
	if d, ok := obj["data"]; ok {
		return p.legacy(d, "data")
	}
	return p.perStream(obj, "")
}

// message reads one AirbyteStateMessage; where names it in errors ("element 2").
func (p stateParser) message(data []byte, where string) error {
	obj, err := object(data)
	if err != nil {
		return fmt.Errorf("%s is %s, not a state message object", where, jsonkind.Of(data))
	}
	var typ string
	if t, ok := obj["type"]; ok {
		if err := json.Unmarshal(t, &typ); err != nil {
			return fmt.Errorf("%s has a \"type\" that is %s, not a string", where, jsonkind.Of(t))
		}
		typ = strings.ToUpper(typ)
	} else {
		// A missing type means LEGACY in the protocol; the payload present is the better guide.
		switch {
		case obj["stream"] != nil:
			typ = "STREAM"
		case obj["global"] != nil:
			typ = "GLOBAL"
		case obj["data"] != nil:
			typ = "LEGACY"
		default:
			return fmt.Errorf("%s has no type and none of stream, global or data", where)
		}
	}
	switch typ {
	case "STREAM":
		s, ok := obj["stream"]
		if !ok {
			return fmt.Errorf("%s is a STREAM state without stream", where)
		}
		return p.streamState(s, where+" is a STREAM state", "stream.")
	case "GLOBAL":
		g, ok := obj["global"]
		if !ok {
			return fmt.Errorf("%s is a GLOBAL state without global", where)
		}
		gobj, err := object(g)
		if err != nil {
			return fmt.Errorf("%s is a GLOBAL state whose global is %s, not an object", where, jsonkind.Of(g))
		}
		ss, ok := gobj["stream_states"]
		if !ok {
			return fmt.Errorf("%s is a GLOBAL state without global.stream_states", where)
		}
		var states []json.RawMessage
		if err := json.Unmarshal(ss, &states); err != nil {
			return fmt.Errorf("%s is a GLOBAL state whose global.stream_states is %s, not an array", where, jsonkind.Of(ss))
		}
		for i, s := range states {
			if err := p.streamState(s, where+" is a GLOBAL state", fmt.Sprintf("global.stream_states[%d].", i)); err != nil {
				return err
			}
		}
		return nil
	case "LEGACY":
		d, ok := obj["data"]
		if !ok {
			return fmt.Errorf("%s is a LEGACY state without data", where)
		}
		return p.legacy(d, where+"'s data")
	}
	return fmt.Errorf("%s has state type %q; want STREAM, GLOBAL or LEGACY", where, typ)
}

// streamState reads an AirbyteStreamState ({stream_descriptor, stream_state}). what and path build the error
// sentence: "<what> without <path>stream_descriptor.name".
func (p stateParser) streamState(data []byte, what, path string) error {
	obj, err := object(data)
	if err != nil {
		return fmt.Errorf("%s whose %s is %s, not an object", what, strings.TrimSuffix(path, "."), jsonkind.Of(data))
	}
	d, ok := obj["stream_descriptor"]
	if !ok {
		return fmt.Errorf("%s without %sstream_descriptor", what, path)
	}
	desc, err := object(d)
	if err != nil {
		return fmt.Errorf("%s whose %sstream_descriptor is %s, not an object", what, path, jsonkind.Of(d))
	}
	n, ok := desc["name"]
	if !ok {
		return fmt.Errorf("%s without %sstream_descriptor.name", what, path)
	}
	var name string
	if err := json.Unmarshal(n, &name); err != nil {
		return fmt.Errorf("%s whose %sstream_descriptor.name is %s, not a string", what, path, jsonkind.Of(n))
	}
	if name == "" {
		return fmt.Errorf("%s whose %sstream_descriptor.name is empty", what, path)
	}
	return p.put(name, obj["stream_state"], fmt.Sprintf("%s whose %sstream_state", what, path))
}

// legacy reads the data of a LEGACY state: either a Singer-style {"bookmarks": ...} or an object keyed by stream.
func (p stateParser) legacy(data []byte, where string) error {
	if string(data) == "null" {
		return nil
	}
	obj, err := object(data)
	if err != nil {
		return fmt.Errorf("%s is %s, not an object", where, jsonkind.Of(data))
	}
	if b, ok := obj["bookmarks"]; ok {
		return p.bookmarks(b, where+".bookmarks")
	}
	return p.perStream(obj, where+".")
}

// bookmarks reads a Singer bookmarks object.
func (p stateParser) bookmarks(data []byte, where string) error {
	if string(data) == "null" {
		return nil
	}
	obj, err := object(data)
	if err != nil {
		return fmt.Errorf("%s is %s, not an object", where, jsonkind.Of(data))
	}
	return p.perStream(obj, where+".")
}

// perStream reads an object whose keys are stream names and values their states.
func (p stateParser) perStream(obj map[string]json.RawMessage, prefix string) error {
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	sort.Strings(names) // so that the error, if several streams are wrong, is always about the same one
	for _, name := range names {
		v := obj[name]
		if err := p.put(name, v, fmt.Sprintf("the state of stream %q (%s%s)", name, prefix, name)); err != nil {
			return err
		}
	}
	return nil
}

// put stores one stream's state, compacted. what names the value in the error sentence.
func (p stateParser) put(name string, v json.RawMessage, what string) error {
	if len(v) == 0 || string(v) == "null" {
		delete(p.out, name)
		return nil
	}
	c, err := compactObject(v)
	if err != nil {
		return fmt.Errorf("%s is %s, not a JSON object", what, jsonkind.Of(v))
	}
	p.out[name] = c
	return nil
}

// object decodes a JSON object into its members, or fails when data is anything else.
func object(data []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("the state is %s; want a JSON object", jsonkind.Of(data))
	}
	return obj, nil
}
