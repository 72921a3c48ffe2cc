package emit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	gojson "github.com/goccy/go-json"
	"github.com/source-klaviyo/source-klaviyo/source/secret"
)

// MessageType is the type of an AirbyteMessage envelope.
type MessageType string

// The envelope types a source writes. DESTINATION_CATALOG is destination-only and deliberately absent.
const (
	TypeRecord           MessageType = "RECORD"
	TypeState            MessageType = "STATE"
	TypeLog              MessageType = "LOG"
	TypeSpec             MessageType = "SPEC"
	TypeConnectionStatus MessageType = "CONNECTION_STATUS"
	TypeCatalog          MessageType = "CATALOG"
	TypeTrace            MessageType = "TRACE"
	TypeControl          MessageType = "CONTROL"
)

// Message is the AirbyteMessage envelope for everything except RECORD and STATE, which the Airbyte writer builds
// by hand for speed. Exactly one payload is set; the others are omitted, never written as null.
type Message struct {
	Type             MessageType       `json:"type"`
	Log              *LogMessage       `json:"log,omitempty"`
	Spec             json.RawMessage   `json:"spec,omitempty"`
	ConnectionStatus *ConnectionStatus `json:"connectionStatus,omitempty"` // camelCase, as the protocol spells it
	Catalog          json.RawMessage   `json:"catalog,omitempty"`
	Trace            *TraceMessage     `json:"trace,omitempty"`
}

// LogMessage is an AirbyteLogMessage.
type LogMessage struct {
	Level      string `json:"level"`
	Message    string `json:"message"`
	StackTrace string `json:"stack_trace,omitempty"`
}

// ConnectionStatus is an AirbyteConnectionStatus: the one answer of the check command.
type ConnectionStatus struct {
	Status  string `json:"status"` // SUCCEEDED or FAILED
	Message string `json:"message,omitempty"`
}

// TraceMessage is an AirbyteTraceMessage carrying an error, a stream status or an estimate.
type TraceMessage struct {
	Type         string             `json:"type"`       // ERROR, STREAM_STATUS or ESTIMATE
	EmittedAt    int64              `json:"emitted_at"` // epoch ms; the schema allows a float, an integer is exact
	Error        *ErrorTrace        `json:"error,omitempty"`
	StreamStatus *StreamStatusTrace `json:"stream_status,omitempty"`
	Estimate     *EstimateTrace     `json:"estimate,omitempty"`
}

// EstimateTrace is an AirbyteEstimateTraceMessage: how many rows a stream will have written when it ends. The
// connector sends only STREAM estimates (the protocol asks not to mix them with SYNC ones); a later estimate
// replaces an earlier one.
type EstimateTrace struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // STREAM
	RowEstimate int64  `json:"row_estimate"`
}

// ErrorTrace is an AirbyteErrorTraceMessage.
type ErrorTrace struct {
	Message          string            `json:"message"`
	InternalMessage  string            `json:"internal_message,omitempty"`
	StackTrace       string            `json:"stack_trace,omitempty"`
	FailureType      FailureType       `json:"failure_type,omitempty"`
	StreamDescriptor *StreamDescriptor `json:"stream_descriptor,omitempty"`
}

// StreamStatusTrace is an AirbyteStreamStatusTraceMessage.
type StreamStatusTrace struct {
	StreamDescriptor StreamDescriptor     `json:"stream_descriptor"`
	Status           Status               `json:"status"`
	Reasons          []StreamStatusReason `json:"reasons,omitempty"`
}

// StreamStatusReason explains a status; the protocol knows one reason, RATE_LIMITED.
type StreamStatusReason struct {
	Type        string              `json:"type"`
	RateLimited *RateLimitedDetails `json:"rate_limited,omitempty"`
}

// RateLimitedDetails says when the API quota resets, in epoch ms.
type RateLimitedDetails struct {
	QuotaReset int64 `json:"quota_reset,omitempty"`
}

// StreamDescriptor names a stream. Namespace is omitted when empty: the platform matches descriptors against the
// catalog exactly, and a missing namespace is not the same as "".
type StreamDescriptor struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// appendLine appends m as one JSON line.
func (m *Message) appendLine(dst []byte) ([]byte, error) {
	b, err := encodeJSON(m)
	if err != nil {
		return dst, fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

// encodeJSON encodes v on one line without a trailing newline. HTML characters are left unescaped so that log
// text stays readable (goccy's MarshalNoEscape still escapes nested strings; its Encoder honours the setting).
// Invalid UTF-8 in strings becomes U+FFFD, so a message is always valid JSON.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := gojson.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeMessage writes m as one line with a single Write call, so that a one-shot command's output is never torn.
func writeMessage(w io.Writer, m *Message) error {
	line, err := m.appendLine(nil)
	if err != nil {
		return err
	}
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("write %s message: %w", m.Type, err)
	}
	return nil
}

// compactObject returns src compacted onto one line, or an error naming what is wrong when src is not one JSON
// object. Every protocol message must fit on one line, and callers may hand over indented documents (golden files).
func compactObject(src []byte) ([]byte, error) {
	b, err := compactJSON(src)
	if err != nil {
		return nil, err
	}
	if b[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	return b, nil
}

// compactJSON returns a compacted copy of any one JSON value.
func compactJSON(src []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, src); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if buf.Len() == 0 {
		return nil, fmt.Errorf("empty")
	}
	return buf.Bytes(), nil
}

// WriteSpec writes the SPEC message of the spec command. spec is a ConnectorSpecification document; it may be
// indented, it is written compacted.
func WriteSpec(w io.Writer, spec json.RawMessage) error {
	b, err := compactObject(spec)
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	return writeMessage(w, &Message{Type: TypeSpec, Spec: b})
}

// WriteCatalog writes the CATALOG message of the discover command. catalog is either an already encoded
// AirbyteCatalog (json.RawMessage or []byte) or any value that encodes to one.
func WriteCatalog(w io.Writer, catalog any) error {
	var raw []byte
	switch c := catalog.(type) {
	case json.RawMessage:
		raw = c
	case []byte:
		raw = c
	default:
		b, err := encodeJSON(catalog)
		if err != nil {
			return fmt.Errorf("encode catalog: %w", err)
		}
		raw = b
	}
	b, err := compactObject(raw)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return writeMessage(w, &Message{Type: TypeCatalog, Catalog: b})
}

// WriteConnectionStatus writes the CONNECTION_STATUS message of the check command, with every secret masked in
// msg. The check command prints exactly one of these and exits 0, whether ok or not.
func WriteConnectionStatus(w io.Writer, ok bool, msg string, secrets ...string) error {
	return writeMessage(w, connectionStatus(ok, secret.New(secrets...).Text(msg)))
}

func connectionStatus(ok bool, msg string) *Message {
	status := "FAILED"
	if ok {
		status = "SUCCEEDED"
	}
	return &Message{Type: TypeConnectionStatus, ConnectionStatus: &ConnectionStatus{Status: status, Message: msg}}
}
