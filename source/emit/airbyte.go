package emit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/secret"
)

// bufferSize is the output buffer. Large enough that a page of records costs a handful of write syscalls, small
// enough that memory stays flat whatever the account size.
const bufferSize = 256 << 10

// Airbyte writes Airbyte protocol messages, one JSON object per line. It implements Writer.
type Airbyte struct {
	mu      sync.Mutex
	w       *bufio.Writer
	now     func() time.Time
	masker  secret.Masker
	streams map[string]*airbyteStream
	scratch []byte // reused for numbers and hand-built lines, so records cost no allocation
}

// airbyteStream is what the writer remembers per stream: its pre-encoded name and the state bookkeeping.
type airbyteStream struct {
	recordPrefix []byte // {"type":"RECORD","record":{"stream":"<name>","data":
	descriptor   []byte // {"name":"<name>"}
	sinceState   int64  // records written since this stream's previous state: the next state's recordCount
	stated       bool   // a state has been written for this stream
	lastState    []byte // the previous state, compacted, to skip exact repeats
}

var _ Writer = (*Airbyte)(nil)

// NewAirbyte returns a writer of Airbyte messages to w (normally stdout).
func NewAirbyte(w io.Writer, opts Options) *Airbyte {
	return &Airbyte{
		w:       bufio.NewWriterSize(w, bufferSize),
		now:     opts.now(),
		masker:  secret.New(opts.Secrets...),
		streams: make(map[string]*airbyteStream),
	}
}

// stream returns the bookkeeping for name, creating it on first use. Called with a.mu held.
func (a *Airbyte) stream(name string) (*airbyteStream, error) {
	if s, ok := a.streams[name]; ok {
		return s, nil
	}
	if name == "" {
		return nil, fmt.Errorf("empty stream name: every Airbyte message names a stream of the catalog")
	}
	q, err := encodeJSON(name)
	if err != nil {
		return nil, fmt.Errorf("encode stream name %q: %w", name, err)
	}
	s := &airbyteStream{
		recordPrefix: append(append([]byte(`{"type":"RECORD","record":{"stream":`), q...), `,"data":`...),
		descriptor:   append(append([]byte(`{"name":`), q...), '}'),
	}
	a.streams[name] = s
	return s, nil
}

// Record writes a RECORD message. data is copied into the output as given, without decoding or re-encoding; it
// must be one JSON object on one line (trailing whitespace, such as json.Encoder's newline, is dropped).
func (a *Airbyte) Record(stream string, data []byte) error {
	data, err := recordData(data)
	if err != nil {
		return fmt.Errorf("record of stream %q: %w", stream, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.stream(stream)
	if err != nil {
		return err
	}
	a.scratch = append(a.scratch[:0], `,"emitted_at":`...)
	a.scratch = strconv.AppendInt(a.scratch, a.now().UnixMilli(), 10)
	a.scratch = append(a.scratch, "}}\n"...)
	_, _ = a.w.Write(s.recordPrefix)
	_, _ = a.w.Write(data)
	if _, err := a.w.Write(a.scratch); err != nil { // bufio errors are sticky: the last write reports any failure
		return fmt.Errorf("write record of stream %q: %w", stream, err)
	}
	s.sinceState++
	return nil
}

// recordData trims trailing whitespace and checks, cheaply, that data looks like one JSON object on one line.
// A full parse would double the cost of a record; the engine encodes records itself, so the shape check catches
// the mistakes that matter (an empty slice, an array, an indented document breaking the one-line framing).
func recordData(data []byte) ([]byte, error) {
	data = bytes.TrimRight(data, " \t\r\n")
	if len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' {
		return nil, fmt.Errorf("data is not a JSON object")
	}
	if bytes.IndexByte(data, '\n') >= 0 {
		return nil, fmt.Errorf("data spans several lines; the protocol needs one JSON object per line")
	}
	return data, nil
}

// State writes a STREAM state for stream, after every record of that stream written before it, with
// sourceStats.recordCount set to the number of those records since the stream's previous state. A state equal to
// the previous one with no records in between says nothing new and is skipped; the first state of a stream is
// always written, so that even an empty stream checkpoints once.
func (a *Airbyte) State(stream string, state json.RawMessage) error {
	st, err := compactObject(state)
	if err != nil {
		return fmt.Errorf("state of stream %q: %w", stream, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.stream(stream)
	if err != nil {
		return err
	}
	if s.stated && s.sinceState == 0 && bytes.Equal(s.lastState, st) {
		return a.flush()
	}
	b := append(a.scratch[:0], `{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":`...)
	b = append(b, s.descriptor...)
	b = append(b, `,"stream_state":`...)
	b = append(b, st...)
	b = append(b, `},"sourceStats":{"recordCount":`...)
	// recordCount is a double in the protocol and must carry a decimal point ("250.0").
	b = strconv.AppendInt(b, s.sinceState, 10)
	b = append(b, ".0}}}\n"...)
	a.scratch = b
	if _, err := a.w.Write(b); err != nil {
		return fmt.Errorf("write state of stream %q: %w", stream, err)
	}
	s.lastState = append(s.lastState[:0], st...)
	s.stated = true
	s.sinceState = 0
	return a.flush()
}

// StreamStatus writes a STREAM_STATUS trace. A non-zero rateLimitedUntil adds a RATE_LIMITED reason with the
// quota reset time, which the platform shows while the stream backs off.
func (a *Airbyte) StreamStatus(stream string, s Status, rateLimitedUntil time.Time) error {
	if stream == "" {
		return fmt.Errorf("stream status %s without a stream name", s)
	}
	if !s.valid() {
		return fmt.Errorf("stream status %q of stream %q is not one of STARTED, RUNNING, COMPLETE, INCOMPLETE", s, stream)
	}
	st := &StreamStatusTrace{StreamDescriptor: StreamDescriptor{Name: stream}, Status: s}
	if !rateLimitedUntil.IsZero() {
		st.Reasons = []StreamStatusReason{{
			Type:        "RATE_LIMITED",
			RateLimited: &RateLimitedDetails{QuotaReset: rateLimitedUntil.UnixMilli()},
		}}
	}
	return a.writeFlushed(&Message{Type: TypeTrace, Trace: &TraceMessage{
		Type: "STREAM_STATUS", EmittedAt: a.now().UnixMilli(), StreamStatus: st,
	}})
}

// Log writes a LOG message with secrets masked.
func (a *Airbyte) Log(level, msg string) error {
	l, err := logLevel(level)
	if err != nil {
		return err
	}
	return a.writeFlushed(&Message{Type: TypeLog, Log: &LogMessage{Level: l, Message: a.masker.Text(msg)}})
}

// Error writes an ERROR trace with secrets masked in both messages. The engine writes one before any non-zero
// exit, and marks the affected streams INCOMPLETE itself.
func (a *Airbyte) Error(e TraceError) error {
	et := &ErrorTrace{
		Message:         a.masker.Text(e.Message),
		InternalMessage: a.masker.Text(e.Internal),
		FailureType:     e.failure(),
	}
	if e.Stream != "" {
		et.StreamDescriptor = &StreamDescriptor{Name: e.Stream}
	}
	return a.writeFlushed(&Message{Type: TypeTrace, Trace: &TraceMessage{
		Type: "ERROR", EmittedAt: a.now().UnixMilli(), Error: et,
	}})
}

// Progress writes the report as an INFO LOG and, when the stream's total can honestly be extrapolated from its
// finished windows or parents, a STREAM ESTIMATE trace, which the platform shows as the sync's progress.
func (a *Airbyte) Progress(p Progress) error {
	if err := a.Log("INFO", "progress: "+p.Text()); err != nil {
		return err
	}
	rows, ok := p.RowEstimate()
	if !ok {
		return nil
	}
	return a.writeFlushed(&Message{Type: TypeTrace, Trace: &TraceMessage{
		Type: "ESTIMATE", EmittedAt: a.now().UnixMilli(),
		Estimate: &EstimateTrace{Name: p.Stream, Type: "STREAM", RowEstimate: max(rows, p.Records)},
	}})
}

// Request writes nothing: Airbyte has no per-request message, and the platform counts records itself.
func (a *Airbyte) Request(RequestMetric) error { return nil }

// ConnectionStatus writes the check command's CONNECTION_STATUS through this writer, masked with its secrets, so
// that it cannot overtake logs written before it.
func (a *Airbyte) ConnectionStatus(ok bool, msg string) error {
	return a.writeFlushed(connectionStatus(ok, a.masker.Text(msg)))
}

// Flush writes out buffered records.
func (a *Airbyte) Flush() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flush()
}

func (a *Airbyte) flush() error {
	if err := a.w.Flush(); err != nil {
		return fmt.Errorf("flush output: %w", err)
	}
	return nil
}

// writeFlushed writes a non-record message and flushes, so that statuses, logs and errors are seen as they happen.
func (a *Airbyte) writeFlushed(m *Message) error {
	line, err := m.appendLine(nil)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(line); err != nil {
		return fmt.Errorf("write %s message: %w", m.Type, err)
	}
	return a.flush()
}
