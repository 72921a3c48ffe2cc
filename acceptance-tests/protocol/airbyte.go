package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Message is one line of Airbyte output with its payload decoded. Exactly one payload pointer is set, the one
// matching Type.
type Message struct {
	Line int    // 1-based line number in stdout
	Type string // RECORD, STATE, LOG, SPEC, CONNECTION_STATUS, CATALOG, TRACE or CONTROL
	Raw  []byte // the line as printed

	Record           *Record
	State            *State
	Log              *Log
	Trace            *Trace
	Spec             *Spec
	Catalog          *Catalog
	ConnectionStatus *ConnectionStatus
	Control          *Control
}

// Record is an AirbyteRecordMessage.
type Record struct {
	Stream    string
	Namespace string
	EmittedAt int64
	Data      map[string]any  // decoded with encoding/json defaults (numbers are float64)
	RawData   json.RawMessage // as printed, for schema validation and exact comparisons
}

// State is an AirbyteStateMessage.
type State struct {
	Type        string // STREAM, GLOBAL, LEGACY, or "" when the field is missing
	Stream      string // for STREAM states: the descriptor's name
	Namespace   string
	StreamState json.RawMessage // for STREAM states
	Global      json.RawMessage // for GLOBAL states
	// RecordCount is sourceStats.recordCount, nil when absent; RecordCountLiteral is the number as printed
	// ("250.0"), because the protocol wants a decimal point that a float64 cannot show.
	RecordCount        *float64
	RecordCountLiteral string
	Raw                json.RawMessage // the whole state object, as it goes into a --state file
}

// Log is an AirbyteLogMessage.
type Log struct {
	Level      string
	Message    string
	StackTrace string
}

// Trace is an AirbyteTraceMessage; one of Error, StreamStatus, Estimate is set for those trace types.
type Trace struct {
	Type         string
	EmittedAt    float64
	Error        *TraceError
	StreamStatus *StreamStatus
	Estimate     *Estimate
}

// TraceError is an AirbyteErrorTraceMessage.
type TraceError struct {
	Message         string
	InternalMessage string
	StackTrace      string
	FailureType     string
	Stream          string // from stream_descriptor, empty when absent
	Namespace       string
}

// String is "failure_type: message", the two parts a user sees, so that a failed assertion that prints errors
// reads like the platform's report rather than a struct dump.
func (e TraceError) String() string { return e.FailureType + ": " + e.Message }

// StreamStatus is an AirbyteStreamStatusTraceMessage.
type StreamStatus struct {
	Stream    string
	Namespace string
	Status    string
	Reasons   []StatusReason
}

// StatusReason is a stream status reason; QuotaReset is epoch ms for RATE_LIMITED, 0 when not given.
type StatusReason struct {
	Type       string
	QuotaReset int64
}

// Estimate is an AirbyteEstimateTraceMessage.
type Estimate struct {
	Name         string
	Type         string
	Namespace    string
	RowEstimate  int64
	ByteEstimate int64
}

// Spec is a ConnectorSpecification.
type Spec struct {
	DocumentationURL        string
	ChangelogURL            string
	ProtocolVersion         string
	SupportsIncremental     bool
	ConnectionSpecification json.RawMessage
	Raw                     json.RawMessage
}

// Catalog is an AirbyteCatalog.
type Catalog struct {
	Streams []CatalogStream
	Raw     json.RawMessage
}

// CatalogStream is an AirbyteStream. Pointers tell "false" from "absent" where the acceptance tests care.
type CatalogStream struct {
	Name                    string          `json:"name"`
	Namespace               string          `json:"namespace"`
	JSONSchema              json.RawMessage `json:"json_schema"`
	SupportedSyncModes      []string        `json:"supported_sync_modes"`
	SourceDefinedCursor     *bool           `json:"source_defined_cursor"`
	DefaultCursorField      []string        `json:"default_cursor_field"`
	SourceDefinedPrimaryKey [][]string      `json:"source_defined_primary_key"`
	IsResumable             *bool           `json:"is_resumable"`
	// Raw is the stream as printed, fields this type leaves out included: what a configured catalog must hand
	// back to read, unchanged.
	Raw json.RawMessage `json:"-"`
}

// ConnectionStatus is an AirbyteConnectionStatus.
type ConnectionStatus struct {
	Status  string
	Message string
}

// Control is an AirbyteControlMessage.
type Control struct {
	Type      string
	EmittedAt float64
	Config    json.RawMessage
}

// The wire shapes, decoded with encoding/json and then copied into the friendlier types above.
type (
	wireDescriptor struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	wireStreamState struct {
		StreamDescriptor wireDescriptor  `json:"stream_descriptor"`
		StreamState      json.RawMessage `json:"stream_state"`
	}
	wireEnvelope struct {
		Type   string          `json:"type"`
		Record json.RawMessage `json:"record"`
		State  json.RawMessage `json:"state"`
		Log    *struct {
			Level      string `json:"level"`
			Message    string `json:"message"`
			StackTrace string `json:"stack_trace"`
		} `json:"log"`
		Spec             json.RawMessage `json:"spec"`
		ConnectionStatus *struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"connectionStatus"`
		Catalog json.RawMessage `json:"catalog"`
		Trace   *struct {
			Type      string  `json:"type"`
			EmittedAt float64 `json:"emitted_at"`
			Error     *struct {
				Message          string          `json:"message"`
				InternalMessage  string          `json:"internal_message"`
				StackTrace       string          `json:"stack_trace"`
				FailureType      string          `json:"failure_type"`
				StreamDescriptor *wireDescriptor `json:"stream_descriptor"`
			} `json:"error"`
			StreamStatus *struct {
				StreamDescriptor wireDescriptor `json:"stream_descriptor"`
				Status           string         `json:"status"`
				Reasons          []struct {
					Type        string `json:"type"`
					RateLimited *struct {
						QuotaReset int64 `json:"quota_reset"`
					} `json:"rate_limited"`
				} `json:"reasons"`
			} `json:"stream_status"`
			Estimate *struct {
				Name         string `json:"name"`
				Type         string `json:"type"`
				Namespace    string `json:"namespace"`
				RowEstimate  int64  `json:"row_estimate"`
				ByteEstimate int64  `json:"byte_estimate"`
			} `json:"estimate"`
		} `json:"trace"`
		Control *struct {
			Type            string  `json:"type"`
			EmittedAt       float64 `json:"emitted_at"`
			ConnectorConfig *struct {
				Config json.RawMessage `json:"config"`
			} `json:"connectorConfig"`
		} `json:"control"`
	}
)

// ParseAirbyteOutput parses a source's stdout. Every line must be one JSON object with a known Airbyte message
// type and the payload that type names; the first line that is not fails the whole parse with its line number.
// It does not check the protocol schema: use Validator.ValidateOutput for that.
func ParseAirbyteOutput(stdout []byte) (Messages, error) {
	lines, err := splitLines(stdout)
	if err != nil {
		return nil, err
	}
	msgs := make(Messages, 0, len(lines))
	for i, l := range lines {
		m, err := ParseAirbyteLine(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %s", i+1, err, excerpt(l))
		}
		m.Line = i + 1
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// ParseAirbyteLine parses one line of a source's stdout (without its newline) as ParseAirbyteOutput does, leaving
// Line zero. It serves readers that cannot hold the whole output, such as a benchmark counting millions of records
// as they stream by, and readers that must tolerate a bad line, such as a helper explaining why a run failed.
func ParseAirbyteLine(line []byte) (Message, error) {
	m := Message{Raw: line}
	if t := bytes.TrimSpace(line); !json.Valid(t) || t[0] != '{' {
		return m, fmt.Errorf("not one JSON object")
	}
	var w wireEnvelope
	if err := json.Unmarshal(line, &w); err != nil {
		return m, fmt.Errorf("not an Airbyte message: %w", err)
	}
	m.Type = w.Type
	switch w.Type {
	case "RECORD":
		r, err := parseRecord(w.Record)
		if err != nil {
			return m, err
		}
		m.Record = r
	case "STATE":
		s, err := parseState(w.State)
		if err != nil {
			return m, err
		}
		m.State = s
	case "LOG":
		if w.Log == nil {
			return m, fmt.Errorf("a LOG message without log")
		}
		m.Log = &Log{Level: w.Log.Level, Message: w.Log.Message, StackTrace: w.Log.StackTrace}
	case "SPEC":
		s, err := parseSpec(w.Spec)
		if err != nil {
			return m, err
		}
		m.Spec = s
	case "CONNECTION_STATUS":
		if w.ConnectionStatus == nil {
			return m, fmt.Errorf("a CONNECTION_STATUS message without connectionStatus")
		}
		m.ConnectionStatus = &ConnectionStatus{Status: w.ConnectionStatus.Status, Message: w.ConnectionStatus.Message}
	case "CATALOG":
		c, err := parseCatalog(w.Catalog)
		if err != nil {
			return m, err
		}
		m.Catalog = c
	case "TRACE":
		if w.Trace == nil {
			return m, fmt.Errorf("a TRACE message without trace")
		}
		t := &Trace{Type: w.Trace.Type, EmittedAt: w.Trace.EmittedAt}
		if e := w.Trace.Error; e != nil {
			t.Error = &TraceError{Message: e.Message, InternalMessage: e.InternalMessage, StackTrace: e.StackTrace, FailureType: e.FailureType}
			if e.StreamDescriptor != nil {
				t.Error.Stream, t.Error.Namespace = e.StreamDescriptor.Name, e.StreamDescriptor.Namespace
			}
		}
		if s := w.Trace.StreamStatus; s != nil {
			t.StreamStatus = &StreamStatus{Stream: s.StreamDescriptor.Name, Namespace: s.StreamDescriptor.Namespace, Status: s.Status}
			for _, r := range s.Reasons {
				reason := StatusReason{Type: r.Type}
				if r.RateLimited != nil {
					reason.QuotaReset = r.RateLimited.QuotaReset
				}
				t.StreamStatus.Reasons = append(t.StreamStatus.Reasons, reason)
			}
		}
		if e := w.Trace.Estimate; e != nil {
			t.Estimate = &Estimate{Name: e.Name, Type: e.Type, Namespace: e.Namespace, RowEstimate: e.RowEstimate, ByteEstimate: e.ByteEstimate}
		}
		m.Trace = t
	case "CONTROL":
		if w.Control == nil {
			return m, fmt.Errorf("a CONTROL message without control")
		}
		m.Control = &Control{Type: w.Control.Type, EmittedAt: w.Control.EmittedAt}
		if w.Control.ConnectorConfig != nil {
			m.Control.Config = w.Control.ConnectorConfig.Config
		}
	default:
		return m, fmt.Errorf("unknown message type %q", w.Type)
	}
	return m, nil
}

func parseRecord(raw json.RawMessage) (*Record, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("a RECORD message without record")
	}
	var w struct {
		Stream    string          `json:"stream"`
		Namespace string          `json:"namespace"`
		Data      json.RawMessage `json:"data"`
		EmittedAt int64           `json:"emitted_at"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("bad record: %w", err)
	}
	r := &Record{Stream: w.Stream, Namespace: w.Namespace, EmittedAt: w.EmittedAt, RawData: w.Data}
	if err := json.Unmarshal(w.Data, &r.Data); err != nil || r.Data == nil {
		return nil, fmt.Errorf("record data of stream %q is not a JSON object", w.Stream)
	}
	return r, nil
}

func parseState(raw json.RawMessage) (*State, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("a STATE message without state")
	}
	var w struct {
		Type        string           `json:"type"`
		Stream      *wireStreamState `json:"stream"`
		Global      json.RawMessage  `json:"global"`
		SourceStats *struct {
			RecordCount json.Number `json:"recordCount"`
		} `json:"sourceStats"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("bad state: %w", err)
	}
	s := &State{Type: w.Type, Global: w.Global, Raw: raw}
	if w.Stream != nil {
		s.Stream, s.Namespace, s.StreamState = w.Stream.StreamDescriptor.Name, w.Stream.StreamDescriptor.Namespace, w.Stream.StreamState
	}
	if w.SourceStats != nil && w.SourceStats.RecordCount != "" {
		n, err := strconv.ParseFloat(w.SourceStats.RecordCount.String(), 64)
		if err != nil {
			return nil, fmt.Errorf("sourceStats.recordCount %q: %w", w.SourceStats.RecordCount, err)
		}
		s.RecordCount, s.RecordCountLiteral = &n, w.SourceStats.RecordCount.String()
	}
	return s, nil
}

// ParseAirbyteStateFile parses what read takes as --state: the JSON array of AirbyteStateMessages that StateFile
// writes, each element a state as a STATE message carries it. The first element that is not fails the parse with
// its index. It does not hold the states to the rules the Validator checks of a source's own states (a state file
// comes from the platform or a user, and may be LEGACY or lack sourceStats): a test asserts what it needs.
func ParseAirbyteStateFile(file []byte) ([]State, error) {
	doc := bytes.TrimSpace(file)
	var elems []json.RawMessage
	if len(doc) == 0 || doc[0] != '[' || json.Unmarshal(doc, &elems) != nil {
		return nil, fmt.Errorf("the state file is not one JSON array: %s", excerpt(doc))
	}
	out := make([]State, 0, len(elems))
	for i, e := range elems {
		s, err := parseState(e)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, *s)
	}
	return out, nil
}

func parseSpec(raw json.RawMessage) (*Spec, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("a SPEC message without spec")
	}
	var w struct {
		DocumentationURL        string          `json:"documentationUrl"`
		ChangelogURL            string          `json:"changelogUrl"`
		ProtocolVersion         string          `json:"protocol_version"`
		SupportsIncremental     bool            `json:"supportsIncremental"`
		ConnectionSpecification json.RawMessage `json:"connectionSpecification"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("bad spec: %w", err)
	}
	return &Spec{
		DocumentationURL: w.DocumentationURL, ChangelogURL: w.ChangelogURL, ProtocolVersion: w.ProtocolVersion,
		SupportsIncremental: w.SupportsIncremental, ConnectionSpecification: w.ConnectionSpecification, Raw: raw,
	}, nil
}

func parseCatalog(raw json.RawMessage) (*Catalog, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("a CATALOG message without catalog")
	}
	c := &Catalog{Raw: raw}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, fmt.Errorf("bad catalog: %w", err)
	}
	// A second pass keeps each stream's bytes: the typed pass above cannot, and the two lists line up.
	var w struct {
		Streams []json.RawMessage `json:"streams"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("bad catalog: %w", err)
	}
	for i := range c.Streams {
		c.Streams[i].Raw = w.Streams[i]
	}
	return c, nil
}

// Messages is parsed Airbyte output, in order, with the views end-to-end tests assert on.
type Messages []Message

// OfType returns the messages of one type, in order.
func (ms Messages) OfType(typ string) Messages {
	var out Messages
	for _, m := range ms {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// Records returns the records of one stream, in order.
func (ms Messages) Records(stream string) []Record {
	var out []Record
	for _, m := range ms {
		if m.Record != nil && m.Record.Stream == stream {
			out = append(out, *m.Record)
		}
	}
	return out
}

// Rows returns the data of one stream's records, in order: the rows a destination would load, as the comparisons
// with expected data want them.
func (ms Messages) Rows(stream string) []map[string]any {
	var out []map[string]any
	for _, m := range ms {
		if m.Record != nil && m.Record.Stream == stream {
			out = append(out, m.Record.Data)
		}
	}
	return out
}

// RecordsByStream groups every record by stream name, each group in order.
func (ms Messages) RecordsByStream() map[string][]Record {
	out := map[string][]Record{}
	for _, m := range ms {
		if m.Record != nil {
			out[m.Record.Stream] = append(out[m.Record.Stream], *m.Record)
		}
	}
	return out
}

// States returns every state, in order.
func (ms Messages) States() []State {
	var out []State
	for _, m := range ms {
		if m.State != nil {
			out = append(out, *m.State)
		}
	}
	return out
}

// StatesOf returns the STREAM states of one stream, in order.
func (ms Messages) StatesOf(stream string) []State {
	var out []State
	for _, m := range ms {
		if m.State != nil && m.State.Type == "STREAM" && m.State.Stream == stream {
			out = append(out, *m.State)
		}
	}
	return out
}

// LastStreamState returns the stream_state of the last STREAM state of one stream, the cursor a resumed read
// starts from; nil when the stream wrote none.
func (ms Messages) LastStreamState(stream string) json.RawMessage {
	for i := len(ms) - 1; i >= 0; i-- {
		if s := ms[i].State; s != nil && s.Type == "STREAM" && s.Stream == stream {
			return s.StreamState
		}
	}
	return nil
}

// Logs returns every LOG message, in order.
func (ms Messages) Logs() []Log {
	var out []Log
	for _, m := range ms {
		if m.Log != nil {
			out = append(out, *m.Log)
		}
	}
	return out
}

// Traces returns every TRACE message, in order.
func (ms Messages) Traces() []Trace {
	var out []Trace
	for _, m := range ms {
		if m.Trace != nil {
			out = append(out, *m.Trace)
		}
	}
	return out
}

// Errors returns every ERROR trace, in order.
func (ms Messages) Errors() []TraceError {
	var out []TraceError
	for _, m := range ms {
		if m.Trace != nil && m.Trace.Error != nil {
			out = append(out, *m.Trace.Error)
		}
	}
	return out
}

// StreamStatuses returns the statuses reported for one stream, in order (e.g. STARTED, RUNNING, COMPLETE).
func (ms Messages) StreamStatuses(stream string) []string {
	var out []string
	for _, m := range ms {
		if m.Trace != nil && m.Trace.StreamStatus != nil && m.Trace.StreamStatus.Stream == stream {
			out = append(out, m.Trace.StreamStatus.Status)
		}
	}
	return out
}

// StatusesByStream returns every stream's statuses, each in order.
func (ms Messages) StatusesByStream() map[string][]string {
	out := map[string][]string{}
	for _, m := range ms {
		if m.Trace != nil && m.Trace.StreamStatus != nil {
			s := m.Trace.StreamStatus
			out[s.Stream] = append(out[s.Stream], s.Status)
		}
	}
	return out
}

// Spec returns the first SPEC, or nil.
func (ms Messages) Spec() *Spec {
	for _, m := range ms {
		if m.Spec != nil {
			return m.Spec
		}
	}
	return nil
}

// Catalog returns the first CATALOG, or nil.
func (ms Messages) Catalog() *Catalog {
	for _, m := range ms {
		if m.Catalog != nil {
			return m.Catalog
		}
	}
	return nil
}

// ConnectionStatus returns the first CONNECTION_STATUS, or nil.
func (ms Messages) ConnectionStatus() *ConnectionStatus {
	for _, m := range ms {
		if m.ConnectionStatus != nil {
			return m.ConnectionStatus
		}
	}
	return nil
}

// StateFile returns what the platform would pass to the next read as --state: a JSON array holding the last
// STREAM state of every stream (in the order streams first reported one) and the last GLOBAL state, if any.
func (ms Messages) StateFile() ([]byte, error) {
	type key struct{ name, namespace string }
	last := map[key]json.RawMessage{}
	var order []key
	var global json.RawMessage
	for _, m := range ms {
		switch {
		case m.State == nil:
		case m.State.Type == "GLOBAL":
			global = m.State.Raw
		case m.State.Type == "STREAM":
			k := key{m.State.Stream, m.State.Namespace}
			if _, seen := last[k]; !seen {
				order = append(order, k)
			}
			last[k] = m.State.Raw
		}
	}
	out := make([]json.RawMessage, 0, len(order)+1)
	for _, k := range order {
		out = append(out, last[k])
	}
	if global != nil {
		out = append(out, global)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode state file: %w", err)
	}
	return b, nil
}
