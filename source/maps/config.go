package maps

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// The connector config keys this package reads, as the Singer SDK names them.
const (
	KeyStreamMaps         = "stream_maps"
	KeyStreamMapConfig    = "stream_map_config"
	KeyFlatteningEnabled  = "flattening_enabled"
	KeyFlatteningMaxDepth = "flattening_max_depth"
)

// The operations a stream map may hold besides properties, and the SDK's spelling of null for YAML users.
const (
	opAlias  = "__alias__"
	opSource = "__source__"
	opFilter = "__filter__"
	opElse   = "__else__"
	opKeys   = "__key_properties__"
	nullWord = "__NULL__"
)

// Error is a stream maps or flattening setting the user must fix. Its text is one sentence that starts with the
// setting's key path and says what to do; it never quotes a config value, because the config also carries the API
// key and a misplaced secret could sit in any field. The connector reports it as an Airbyte config_error.
type Error struct {
	// Path is the config key path, such as stream_maps.profiles.email_hash.
	Path string
	// Msg says what is wrong and what to do, without the path.
	Msg string
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }

func errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Options are what Parse needs beyond the config.
type Options struct {
	// Now is the clock behind now() and utcnow() in expressions; nil means time.Now. Tests pin it.
	Now func() time.Time
}

// Config is the parsed and compiled stream maps and flattening settings. It is read-only once Parse returns, so one
// Config may serve any number of plans and goroutines.
type Config struct {
	maps      []*streamMap   // sorted by key, so that plans and errors do not depend on map iteration order
	elseNull  bool           // stream_maps.__else__ is null: streams no map names are dropped
	mapConfig map[string]any // stream_map_config, the `config` of expressions
	maxDepth  int            // flattening depth; 0 when flattening is off
	now       func() time.Time
}

// streamMap is one entry of stream_maps.
type streamMap struct {
	key      string // the entry's key: a stream name, a glob pattern, or the name of a derived stream
	path     string // stream_maps.<key>
	remove   bool   // the entry is null: the stream is not synced
	glob     bool   // key is a pattern matching several streams
	source   string // __source__, or "" when the entry maps the stream named by its key
	alias    alias
	filter   *exprSrc // __filter__, or nil
	keys     []string
	keysSet  bool // __key_properties__ is present; keys nil with keysSet means no keys
	elseNull bool // __else__ is null: only the listed properties (and the keys) are kept
	props    []*propMap
}

// propMap is one property of a stream map: removed (null) or set by an expression.
type propMap struct {
	name   string
	path   string
	remove bool
	expr   *exprSrc
}

// alias is __alias__: a literal name, or an expression over __stream_name__ (SDK 0.42 and later).
type alias struct {
	path    string
	literal string
	expr    *exprSrc
}

// exprSrc is one expression's text, checked for syntax at parse time and compiled per stream by Plan.
type exprSrc struct {
	path string
	text string
}

// Parse reads stream_maps, stream_map_config, flattening_enabled and flattening_max_depth from a connector config
// (the whole JSON object; other keys are ignored) and checks every expression's syntax. stream_maps and
// stream_map_config may be JSON objects (Singer, Meltano) or strings holding a JSON object (the Airbyte form, whose
// UI has no free-form object field). An absent or empty setting means no maps and no flattening; Config.Plan then
// passes every stream through untouched. Errors are *Error.
func Parse(config []byte, opts Options) (*Config, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(config, &root); err != nil {
		return nil, errorf("config", "is not a JSON object; fix the file's syntax")
	}
	c := &Config{now: opts.Now}
	if c.now == nil {
		c.now = time.Now
	}
	var err error
	if c.mapConfig, err = parseMapConfig(root[KeyStreamMapConfig]); err != nil {
		return nil, err
	}
	if c.maxDepth, err = parseFlattening(root[KeyFlatteningEnabled], root[KeyFlatteningMaxDepth]); err != nil {
		return nil, err
	}
	entries, err := objectSetting(root[KeyStreamMaps], KeyStreamMaps)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := KeyStreamMaps + "." + k
		if k == opElse {
			if !isNull(entries[k]) {
				return nil, errorf(p, "only null (or %q) is supported, which drops every stream no map names; set it to null or remove it", nullWord)
			}
			c.elseNull = true
			continue
		}
		if k == "" {
			return nil, errorf(KeyStreamMaps, "has an entry with an empty name; name each entry after a stream")
		}
		m, err := parseStreamMap(k, p, entries[k])
		if err != nil {
			return nil, err
		}
		c.maps = append(c.maps, m)
	}
	return c, nil
}

// Active reports whether the settings change anything. When false, Plan's outputs are its inputs and the writer
// decorator is not needed.
func (c *Config) Active() bool { return c != nil && (len(c.maps) > 0 || c.elseNull || c.maxDepth > 0) }

// objectSetting decodes a setting that holds a JSON object, given as an object or as a string holding one.
func objectSetting(raw json.RawMessage, p string) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if isAbsent(raw) {
		return nil, nil
	}
	if raw[0] == '"' {
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, errorf(p, "is not a valid JSON string; write it as a JSON object")
		}
		raw = bytes.TrimSpace([]byte(text))
		if len(raw) == 0 {
			return nil, nil
		}
	}
	var obj map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return nil, errorf(p, "must be a JSON object (or a string holding one); see docs/stream-maps.md for its shape")
	}
	return obj, nil
}

func parseMapConfig(raw json.RawMessage) (map[string]any, error) {
	obj, err := objectSetting(raw, KeyStreamMapConfig)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if out[k], err = decodeValue(v); err != nil {
			return nil, errorf(KeyStreamMapConfig+"."+k, "is not valid JSON; fix its syntax")
		}
	}
	return out, nil
}

// parseFlattening returns the flattening depth, 0 when flattening is off. As in the SDK, a depth is required once
// flattening is on: there is no depth that suits every schema.
func parseFlattening(enabled, depth json.RawMessage) (int, error) {
	on, err := boolSetting(enabled, KeyFlatteningEnabled)
	if err != nil || !on {
		return 0, err
	}
	if isAbsent(depth) {
		return 0, errorf(KeyFlatteningMaxDepth, "is required when %s is true; set it to how many levels of nested objects to flatten, 1 or more", KeyFlatteningEnabled)
	}
	var n json.Number
	text := bytes.Trim(bytes.TrimSpace(depth), `"`) // Meltano's environment variables arrive as strings
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	if d.Decode(&n) != nil {
		return 0, errorf(KeyFlatteningMaxDepth, "must be a whole number of levels, 1 or more")
	}
	v, err := strconv.Atoi(n.String())
	if err != nil || v < 1 || v > 100 {
		return 0, errorf(KeyFlatteningMaxDepth, "must be a whole number of levels from 1 to 100; set %s to false to turn flattening off", KeyFlatteningEnabled)
	}
	return v, nil
}

func boolSetting(raw json.RawMessage, p string) (bool, error) {
	if isAbsent(raw) {
		return false, nil
	}
	switch string(bytes.Trim(bytes.TrimSpace(raw), `"`)) {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, errorf(p, "must be true or false")
}

// parseStreamMap reads one entry of stream_maps: null (drop the stream) or an object of operations and properties.
func parseStreamMap(key, p string, raw json.RawMessage) (*streamMap, error) {
	m := &streamMap{key: key, path: p, glob: strings.ContainsAny(key, "*?[")}
	if m.glob {
		if _, err := path.Match(key, ""); err != nil {
			return nil, errorf(p, "is not a valid stream name pattern; use * and ? as wildcards, and close every [")
		}
	}
	if isNull(raw) {
		m.remove = true
		return m, nil
	}
	var ops map[string]json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &ops) != nil {
		return nil, errorf(p, "must be an object of properties and operations, or null to drop the stream")
	}
	names := make([]string, 0, len(ops))
	for k := range ops {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v, pp := ops[name], p+"."+name
		var err error
		switch name {
		case opAlias:
			m.alias.path = pp
			m.alias.literal, err = stringOp(v, pp, "a stream name or an expression over __stream_name__")
			if err == nil && m.alias.literal == "" {
				err = errorf(pp, "is empty; give the stream a name, or remove %s", opAlias)
			}
		case opSource:
			m.source, err = stringOp(v, pp, "the name of the stream to derive this one from")
			if err == nil && (m.source == "" || strings.ContainsAny(m.source, "*?[")) {
				err = errorf(pp, "must name one stream, without wildcards")
			}
		case opFilter:
			var text string
			if text, err = stringOp(v, pp, "an expression that is true for the records to keep"); err == nil {
				m.filter, err = checkSyntax(pp, text)
			}
		case opElse:
			if !isNull(v) {
				err = errorf(pp, "only null (or %q) is supported, which keeps only the listed properties and the keys; set it to null or remove it", nullWord)
			}
			m.elseNull = true
		case opKeys:
			m.keysSet = true
			if !isNull(v) && json.Unmarshal(v, &m.keys) != nil {
				err = errorf(pp, "must be a list of property names, or null for no key")
			}
		default:
			if strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__") {
				err = errorf(pp, "is not a stream map operation; use %s, %s, %s, %s or %s", opAlias, opSource, opFilter, opElse, opKeys)
				break
			}
			var pm *propMap
			pm, err = parseProp(name, pp, v)
			m.props = append(m.props, pm)
		}
		if err != nil {
			return nil, err
		}
	}
	if m.glob && m.source != "" {
		return nil, errorf(p, "derives a stream (%s) but its name is a pattern; give the derived stream a plain name", opSource)
	}
	return m, nil
}

func parseProp(name, p string, raw json.RawMessage) (*propMap, error) {
	if isNull(raw) {
		return &propMap{name: name, path: p, remove: true}, nil
	}
	text, err := stringOp(raw, p, "an expression, or null to remove the property")
	if err != nil {
		return nil, err
	}
	src, err := checkSyntax(p, text)
	if err != nil {
		return nil, err
	}
	return &propMap{name: name, path: p, expr: src}, nil
}

func stringOp(raw json.RawMessage, p, want string) (string, error) {
	var s string
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '"' || json.Unmarshal(t, &s) != nil {
		return "", errorf(p, "must be a string: %s", want)
	}
	return s, nil
}

// isNull reports whether a setting value means null: JSON null or the SDK's "__NULL__" string (YAML users write it
// because a YAML null is easy to lose).
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return string(t) == "null" || string(t) == `"`+nullWord+`"`
}

func isAbsent(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}
