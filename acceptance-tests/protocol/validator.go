// Package protocol is the test helpers' view of the connector's output: it validates Airbyte lines against the
// official protocol schema and parses Airbyte and Singer output into typed messages for assertions.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"
)

// ProtocolFileEnv overrides where the Airbyte protocol YAML is read from, for checkouts that do not sit beside
// the shared reference folder.
const ProtocolFileEnv = "AIRBYTE_PROTOCOL_YAML"

// protocolFile is the file's place relative to the directory that holds the project and the shared folder.
const protocolFile = "shared/airbyte/airbyte_protocol.yaml"

// FindProtocolFile returns the path of airbyte_protocol.yaml: $AIRBYTE_PROTOCOL_YAML if set, otherwise the first
// shared/airbyte/airbyte_protocol.yaml found walking up from the working directory. Walking up makes the helper work
// from any package directory (go test runs each package in its own directory) without a fixed relative path.
func FindProtocolFile() (string, error) {
	if p := os.Getenv(ProtocolFileEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", ProtocolFileEnv, err)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the Airbyte protocol file: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, filepath.FromSlash(protocolFile))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no %s in %s or any parent directory; set $%s", protocolFile, wd, ProtocolFileEnv)
		}
	}
}

// Validator checks lines of a source's Airbyte output against the AirbyteMessage definition of the protocol and
// against the rules the schema cannot express (see ValidateLine).
type Validator struct {
	schema *gojsonschema.Schema
}

// NewAirbyteValidator loads the protocol file (see FindProtocolFile) and compiles AirbyteMessage, failing the test
// if it cannot.
func NewAirbyteValidator(t testing.TB) *Validator {
	t.Helper()
	path, err := FindProtocolFile()
	if err != nil {
		t.Fatalf("Airbyte validator: %v", err)
	}
	v, err := LoadAirbyteValidator(path)
	if err != nil {
		t.Fatalf("Airbyte validator: %v", err)
	}
	return v
}

// LoadAirbyteValidator compiles the AirbyteMessage definition of the protocol YAML at path.
func LoadAirbyteValidator(path string) (*Validator, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read protocol: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse protocol %s: %w", path, err)
	}
	defs, ok := doc["definitions"].(map[string]any)
	if !ok || defs["AirbyteMessage"] == nil {
		return nil, fmt.Errorf("protocol %s has no definitions.AirbyteMessage", path)
	}
	// A fresh root that points at AirbyteMessage. The file's own $id (a GitHub URL) is left out so that the
	// "#/definitions/..." references resolve inside this document and nothing is fetched over the network.
	root := map[string]any{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"definitions": defs,
		"allOf":       []any{map[string]any{"$ref": "#/definitions/AirbyteMessage"}},
	}
	schema, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(root))
	if err != nil {
		return nil, fmt.Errorf("compile AirbyteMessage from %s: %w", path, err)
	}
	return &Validator{schema: schema}, nil
}

// payloadFields maps each message type a source sends to its payload field; the envelope must carry that one and
// no other. DESTINATION_CATALOG is left out on purpose: a source never sends it.
func payloadFields() map[string]string {
	return map[string]string{
		"RECORD":            "record",
		"STATE":             "state",
		"LOG":               "log",
		"SPEC":              "spec",
		"CONNECTION_STATUS": "connectionStatus",
		"CATALOG":           "catalog",
		"TRACE":             "trace",
		"CONTROL":           "control",
	}
}

// traceField returns the payload field of a trace type.
func traceField(traceType string) string {
	switch traceType {
	case "ERROR":
		return "error"
	case "ESTIMATE":
		return "estimate"
	case "STREAM_STATUS":
		return "stream_status"
	case "ANALYTICS":
		return "analytics"
	}
	return ""
}

// ValidateLine checks one line of a source's stdout (without its newline). On top of the AirbyteMessage schema it
// enforces what the platform and the acceptance tests expect of a source but the schema leaves open:
//   - the line is exactly one JSON object;
//   - the payload field named by type is present, and no other payload is;
//   - a source never sends DESTINATION_CATALOG;
//   - a TRACE carries the payload its type names;
//   - a STATE is of type STREAM or GLOBAL (never LEGACY or untyped) and has sourceStats.recordCount written with
//     a decimal point ("250.0");
//   - no namespace is the empty string (an absent namespace is not "" to the platform).
func (v *Validator) ValidateLine(line []byte) error {
	if bytes.IndexByte(line, '\n') >= 0 {
		return errors.New("the message spans several lines")
	}
	if !json.Valid(line) {
		return errors.New("not valid JSON")
	}
	if t := bytes.TrimSpace(line); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	res, err := v.schema.Validate(gojsonschema.NewBytesLoader(line))
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	if !res.Valid() {
		msgs := make([]string, 0, len(res.Errors()))
		for _, e := range res.Errors() {
			msgs = append(msgs, e.String())
		}
		return fmt.Errorf("not an AirbyteMessage: %s", strings.Join(msgs, "; "))
	}
	return sourceRules(line)
}

// ValidateOutput validates every line of a source's stdout and returns all problems, each with its line number.
func (v *Validator) ValidateOutput(stdout []byte) error {
	lines, err := splitLines(stdout)
	if err != nil {
		return err
	}
	var errs []error
	for i, l := range lines {
		if err := v.ValidateLine(l); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w: %s", i+1, err, excerpt(l)))
		}
	}
	return errors.Join(errs...)
}

// sourceRules checks the rules listed on ValidateLine that the schema does not express.
func sourceRules(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // to see recordCount as printed
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	typ, _ := m["type"].(string)
	fields := payloadFields()
	want, ok := fields[typ]
	if !ok {
		return fmt.Errorf("type %q is not a message a source sends", typ)
	}
	payload, ok := m[want].(map[string]any)
	if !ok {
		return fmt.Errorf("a %s message without its %q object", typ, want)
	}
	for other, field := range fields {
		if _, has := m[field]; has && other != typ {
			return fmt.Errorf("a %s message carries a %q payload", typ, field)
		}
	}
	switch typ {
	case "STATE":
		st, _ := payload["type"].(string)
		if st != "STREAM" && st != "GLOBAL" {
			return fmt.Errorf("state type %q; a source sends STREAM or GLOBAL states", st)
		}
		stats, _ := payload["sourceStats"].(map[string]any)
		n, ok := stats["recordCount"].(json.Number)
		if !ok {
			return errors.New("a state without sourceStats.recordCount")
		}
		if !strings.Contains(n.String(), ".") {
			return fmt.Errorf("sourceStats.recordCount %s has no decimal point", n)
		}
	case "TRACE":
		tt, _ := payload["type"].(string)
		if f := traceField(tt); f != "" {
			if _, ok := payload[f].(map[string]any); !ok {
				return fmt.Errorf("a %s trace without its %q object", tt, f)
			}
		}
	}
	return emptyNamespace(m, "")
}

// emptyNamespace finds a "namespace": "" anywhere in the envelope, except inside record data, schemas, specs and
// state blobs, which belong to the connector's data, not to the protocol.
func emptyNamespace(v any, path string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "data", "json_schema", "connectionSpecification", "stream_state", "shared_state", "config":
				continue
			}
			if k == "namespace" {
				if s, ok := e.(string); ok && s == "" {
					return fmt.Errorf("%snamespace is \"\"; leave it out instead", path)
				}
			}
			if err := emptyNamespace(e, path+k+"."); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := emptyNamespace(e, fmt.Sprintf("%s%d.", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitLines cuts stdout into lines. Every line must end with a newline, and none may be empty: the connector
// writes whole messages only, so anything else is a framing bug worth failing on.
func splitLines(stdout []byte) ([][]byte, error) {
	if len(stdout) == 0 {
		return nil, nil
	}
	if stdout[len(stdout)-1] != '\n' {
		return nil, errors.New("the output does not end with a newline (a message was cut short)")
	}
	lines := bytes.Split(stdout[:len(stdout)-1], []byte("\n"))
	for i, l := range lines {
		if len(bytes.TrimSpace(l)) == 0 {
			return nil, fmt.Errorf("line %d is empty", i+1)
		}
	}
	return lines, nil
}

// excerpt shortens a line for an error message.
func excerpt(line []byte) string {
	const max = 300
	if len(line) > max {
		return string(line[:max]) + "…"
	}
	return string(line)
}
