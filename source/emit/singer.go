package emit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/secret"
)

// SingerState is a Singer state document, the `value` of a STATE message and the content of the --state file.
type SingerState struct {
	Bookmarks map[string]json.RawMessage `json:"bookmarks"`
}

// Singer writes Singer messages: SCHEMA, RECORD and STATE on stdout, everything else as plain text on stderr,
// because Singer targets read stdout as messages only. It implements Writer.
type Singer struct {
	mu        sync.Mutex
	w         *bufio.Writer
	stderr    io.Writer
	now       func() time.Time
	masker    secret.Masker
	streams   map[string]*singerStream
	bookmarks map[string]json.RawMessage // every stream's latest bookmark, seeded from the initial state
	initErr   error                      // a bad initial bookmark, reported by the first State call
	reported  map[string]int64           // each stream's record count at its previous progress report

	stampSec int64  // the second the cached stamp was formatted for
	stamp    []byte // `,"time_extracted":"<RFC 3339>"}` + "\n", reformatted once per second, not per record
	scratch  []byte
	// lastState is the STATE line written last: a line equal to it is not written again. A stream's checkpoint that
	// did not move (a resumed sync's first, or another stream's while this one waits) would otherwise repeat the
	// whole document, which tells a target nothing new.
	lastState []byte
}

// singerStream is one stream of the catalog: its SCHEMA line, encoded up front, and its record prefix.
type singerStream struct {
	schemaLine   []byte
	schemaErr    error // the schema could not be encoded; reported when the stream is first used
	announced    bool  // SCHEMA has been written
	recordPrefix []byte
	// versionSuffix is `,"version":N` for a versioned stream, written after each record's data; activateLine is
	// its ACTIVATE_VERSION message.
	versionSuffix []byte
	activateLine  []byte
}

// singerSchema is the SCHEMA message. key_properties is required even when empty, so it has no omitempty.
type singerSchema struct {
	Type               string          `json:"type"`
	Stream             string          `json:"stream"`
	Schema             json.RawMessage `json:"schema"`
	KeyProperties      []string        `json:"key_properties"`
	BookmarkProperties []string        `json:"bookmark_properties,omitempty"`
}

var _ Writer = (*Singer)(nil)

// NewSinger returns a writer of Singer messages to w (normally stdout) for the given streams. initial is the state
// the run started from: its bookmarks are carried into every STATE written, so that a stream not synced in this run
// keeps its bookmark for the next one.
func NewSinger(w io.Writer, streams []StreamInfo, initial SingerState, opts Options) *Singer {
	s := &Singer{
		w:         bufio.NewWriterSize(w, bufferSize),
		stderr:    opts.stderr(),
		now:       opts.now(),
		masker:    secret.New(opts.Secrets...),
		streams:   make(map[string]*singerStream, len(streams)),
		bookmarks: make(map[string]json.RawMessage, len(initial.Bookmarks)),
		reported:  map[string]int64{},
		stampSec:  -1 << 63,
	}
	for _, info := range streams {
		s.streams[info.Name] = newSingerStream(info)
	}
	for name, b := range initial.Bookmarks {
		if len(b) == 0 || string(b) == "null" {
			continue
		}
		c, err := compactJSON(b)
		if err != nil {
			s.initErr = fmt.Errorf("initial state: bookmark of stream %q: %w", name, err)
			continue
		}
		s.bookmarks[name] = c
	}
	return s
}

func newSingerStream(info StreamInfo) *singerStream {
	st := &singerStream{}
	q, err := encodeJSON(info.Name)
	if err != nil {
		st.schemaErr = fmt.Errorf("encode stream name %q: %w", info.Name, err)
		return st
	}
	st.recordPrefix = append(append([]byte(`{"type":"RECORD","stream":`), q...), `,"record":`...)
	schema, err := compactObject(info.Schema)
	if err != nil {
		st.schemaErr = fmt.Errorf("schema of stream %q: %w", info.Name, err)
		return st
	}
	keys := info.KeyProperties
	if keys == nil {
		keys = []string{}
	}
	b, err := encodeJSON(&singerSchema{
		Type: "SCHEMA", Stream: info.Name, Schema: schema, KeyProperties: keys, BookmarkProperties: info.BookmarkProperties,
	})
	if err != nil {
		st.schemaErr = fmt.Errorf("encode SCHEMA of stream %q: %w", info.Name, err)
		return st
	}
	st.schemaLine = append(b, '\n')
	if info.Version != 0 {
		st.versionSuffix = strconv.AppendInt([]byte(`,"version":`), info.Version, 10)
		st.activateLine = append(append([]byte(`{"type":"ACTIVATE_VERSION","stream":`), q...), `,"version":`...)
		st.activateLine = append(strconv.AppendInt(st.activateLine, info.Version, 10), "}\n"...)
	}
	return st
}

// announce returns the stream, writing its SCHEMA first if this is the stream's first message. Called with s.mu held.
func (s *Singer) announce(name string) (*singerStream, error) {
	st, ok := s.streams[name]
	if !ok {
		return nil, fmt.Errorf("stream %q is not among the streams the Singer writer was given", name)
	}
	if st.schemaErr != nil {
		return nil, st.schemaErr
	}
	if !st.announced {
		if _, err := s.w.Write(st.schemaLine); err != nil {
			return nil, fmt.Errorf("write SCHEMA of stream %q: %w", name, err)
		}
		st.announced = true
	}
	return st, nil
}

// Record writes a RECORD message (after the stream's SCHEMA if it is the first), copying data as given.
func (s *Singer) Record(stream string, data []byte) error {
	data, err := recordData(data)
	if err != nil {
		return fmt.Errorf("record of stream %q: %w", stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.announce(stream)
	if err != nil {
		return err
	}
	if sec := s.now().Unix(); sec != s.stampSec {
		s.stampSec = sec
		s.stamp = append(s.stamp[:0], `,"time_extracted":"`...)
		s.stamp = time.Unix(sec, 0).UTC().AppendFormat(s.stamp, time.RFC3339)
		s.stamp = append(s.stamp, "\"}\n"...)
	}
	_, _ = s.w.Write(st.recordPrefix)
	_, _ = s.w.Write(data)
	_, _ = s.w.Write(st.versionSuffix)
	if _, err := s.w.Write(s.stamp); err != nil { // bufio errors are sticky: the last write reports any failure
		return fmt.Errorf("write record of stream %q: %w", stream, err)
	}
	return nil
}

// State records stream's new bookmark and writes a STATE holding the bookmarks of every stream, because a Singer
// state is one document that the next run receives whole.
func (s *Singer) State(stream string, state json.RawMessage) error {
	st, err := compactObject(state)
	if err != nil {
		return fmt.Errorf("state of stream %q: %w", stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initErr != nil {
		return s.initErr
	}
	if _, err := s.announce(stream); err != nil {
		return err
	}
	s.bookmarks[stream] = st // st is a fresh copy, not the caller's slice
	names := make([]string, 0, len(s.bookmarks))
	for name := range s.bookmarks {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order makes states comparable byte for byte
	b := append(s.scratch[:0], `{"type":"STATE","value":{"bookmarks":{`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		q, err := encodeJSON(name)
		if err != nil {
			return fmt.Errorf("encode bookmark name %q: %w", name, err)
		}
		b = append(b, q...)
		b = append(b, ':')
		b = append(b, s.bookmarks[name]...)
	}
	b = append(b, "}}}\n"...)
	if bytes.Equal(b, s.lastState) {
		s.scratch = b
		return s.flush() // a checkpoint still pushes the records before it out, as a written STATE does
	}
	s.scratch, s.lastState = s.lastState, b
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return s.flush()
}

// StreamStatus logs a stream's progress on stderr; Singer has no status message. A versioned stream that
// completes writes its ACTIVATE_VERSION on stdout, after all its records (announcing the stream first if it had
// none, so a target learns that every row is gone); one that did not complete writes none, since its version holds
// only part of the rows.
func (s *Singer) StreamStatus(stream string, st Status, rateLimitedUntil time.Time) error {
	if !st.valid() {
		return fmt.Errorf("stream status %q of stream %q is not one of STARTED, RUNNING, COMPLETE, INCOMPLETE", st, stream)
	}
	if st == Complete {
		if err := s.activate(stream); err != nil {
			return err
		}
	}
	msg := "stream " + stream + " " + string(st)
	if !rateLimitedUntil.IsZero() {
		msg += ", rate limited until " + rateLimitedUntil.UTC().Format(time.RFC3339)
	}
	return s.logLine("INFO", msg)
}

// Progress writes the Singer SDK's metrics as Meltano reads them, "INFO METRIC: {...}" on stderr: a record_count
// counter with the records since the stream's previous report (a counter's value is its count over the interval,
// as the SDK logs it), and on the final report a sync_duration timer.
func (s *Singer) Progress(p Progress) error {
	s.mu.Lock()
	delta := p.Records - s.reported[p.Stream]
	s.reported[p.Stream] = p.Records
	s.mu.Unlock()
	if err := s.metric("counter", "record_count", float64(delta), map[string]any{"stream": p.Stream}); err != nil {
		return err
	}
	if !p.Final {
		return nil
	}
	return s.metric("timer", "sync_duration", p.Elapsed.Seconds(), map[string]any{"stream": p.Stream, "status": "succeeded"})
}

// Request writes an http_request_duration timer, tagged as the SDK tags it.
func (s *Singer) Request(m RequestMetric) error {
	status := "succeeded"
	if !m.OK {
		status = "failed"
	}
	// The endpoint, not the stream, is the tag: streams share endpoints (campaigns feed six), and the client that
	// sends a request serves them all.
	tags := map[string]any{"endpoint": m.Endpoint, "status": status}
	if m.Status != 0 {
		tags["http_status_code"] = m.Status
	}
	return s.metric("timer", "http_request_duration", m.Duration.Seconds(), tags)
}

// metric writes one METRIC line.
func (s *Singer) metric(kind, name string, value float64, tags map[string]any) error {
	b, err := encodeJSON(map[string]any{"type": kind, "metric": name, "value": value, "tags": tags})
	if err != nil {
		return fmt.Errorf("encode metric %s: %w", name, err)
	}
	return s.logLine("INFO", "METRIC: "+string(b))
}

// activate writes a versioned stream's ACTIVATE_VERSION.
func (s *Singer) activate(stream string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.streams[stream]; !ok || info.activateLine == nil {
		return nil
	}
	ss, err := s.announce(stream)
	if err != nil {
		return err
	}
	if _, err := s.w.Write(ss.activateLine); err != nil {
		return fmt.Errorf("write ACTIVATE_VERSION of stream %q: %w", stream, err)
	}
	return s.flush()
}

// Log writes "LEVEL message" on stderr with secrets masked.
func (s *Singer) Log(level, msg string) error {
	l, err := logLevel(level)
	if err != nil {
		return err
	}
	return s.logLine(l, msg)
}

// Error writes the error on stderr, masked, with its failure type and stream so that a Meltano log says whose
// fault it is. The process's non-zero exit is what fails the pipeline.
func (s *Singer) Error(e TraceError) error {
	msg := e.Message
	if e.Stream != "" {
		msg = "stream " + e.Stream + ": " + msg
	}
	msg += " (" + string(e.failure())
	if e.Internal != "" {
		msg += "; " + e.Internal
	}
	msg += ")"
	return s.logLine("ERROR", msg)
}

// logLine writes one masked line on stderr. The mutex keeps lines from concurrent goroutines whole.
func (s *Singer) logLine(level, msg string) error {
	line := level + " " + strings.TrimRight(s.masker.Text(msg), "\n") + "\n"
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.stderr, line); err != nil {
		return fmt.Errorf("write log line: %w", err)
	}
	return nil
}

// Flush writes out buffered messages.
func (s *Singer) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flush()
}

func (s *Singer) flush() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("flush output: %w", err)
	}
	return nil
}
