// Package emit writes the connector's output in the Airbyte or the Singer protocol behind one small writer interface.
//
// The sync engine never builds protocol messages itself: it hands records, per-stream states, stream statuses, logs
// and errors to a Writer, and only the Writer knows whether they become Airbyte envelopes or Singer messages. The
// package also reads state files (ParseState), because recognising Airbyte and Singer state shapes is protocol
// knowledge too.
package emit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Status is a stream's progress as the Airbyte STREAM_STATUS trace names it.
type Status string

// The four stream statuses of the Airbyte protocol. A stream goes STARTED, RUNNING (one or more times), then
// COMPLETE or INCOMPLETE; the acceptance tests check that order.
const (
	Started    Status = "STARTED"
	Running    Status = "RUNNING"
	Complete   Status = "COMPLETE"
	Incomplete Status = "INCOMPLETE"
)

func (s Status) valid() bool {
	switch s {
	case Started, Running, Complete, Incomplete:
		return true
	}
	return false
}

// FailureType tells the platform whose fault an error is, which decides whether it retries.
type FailureType string

// The failure types of the Airbyte error trace.
const (
	// ConfigError is the user's to fix (bad key, missing scope); retrying does not help.
	ConfigError FailureType = "config_error"
	// TransientError should clear on retry (rate limit beyond our patience, outage).
	TransientError FailureType = "transient_error"
	// SystemError is a connector bug.
	SystemError FailureType = "system_error"
)

// TraceError is an error the user must see: Message is one sentence saying what to fix, Internal carries detail
// for the maintainers, Stream names the affected stream (empty when the error is not about one stream).
type TraceError struct {
	Message  string
	Internal string
	Failure  FailureType
	Stream   string
}

// failure returns the failure type to write. An empty or unknown value is a connector bug by definition, so it is
// reported as system_error rather than dropping the error report or writing an invalid message.
func (e TraceError) failure() FailureType {
	switch e.Failure {
	case ConfigError, TransientError, SystemError:
		return e.Failure
	}
	return SystemError
}

// StreamInfo is what the Singer writer needs to announce a stream with a SCHEMA message.
type StreamInfo struct {
	Name               string
	Schema             json.RawMessage
	KeyProperties      []string
	BookmarkProperties []string // the cursor field, or empty for full-table streams
	// Version, when not zero, makes a full-table stream versioned, the Singer SDK's activate-version: every RECORD
	// carries it, and when the stream completes an ACTIVATE_VERSION message tells the target that rows of older
	// versions are gone at the source (a member who left a list), so a target that supports it deletes them.
	Version int64
}

// Writer is what the sync engine talks to. Implementations are safe for concurrent use. Records are buffered;
// every other message flushes the buffer, so a state or a status is on the wire as soon as the call returns.
type Writer interface {
	// Record writes one record. data must be one flat JSON object, already encoded; it is copied as is.
	Record(stream string, data []byte) error
	// State writes this stream's state. It lands after every record of the stream passed to Record before it.
	State(stream string, state json.RawMessage) error
	// StreamStatus reports a stream's progress; a non-zero rateLimitedUntil says the stream waits for a quota reset.
	StreamStatus(stream string, s Status, rateLimitedUntil time.Time) error
	// Log writes a log line at level INFO, WARN, ERROR, DEBUG, FATAL (or TRACE).
	Log(level, msg string) error
	// Error reports an error the user must see.
	Error(e TraceError) error
	// Progress reports where a stream stands, in the protocol's own way: LOG and ESTIMATE for Airbyte, the Singer
	// SDK's METRIC log lines for Singer.
	Progress(p Progress) error
	// Request reports one finished HTTP request (Singer's http_request_duration metric; Airbyte has no message
	// for it).
	Request(m RequestMetric) error
	// Flush writes out any buffered records.
	Flush() error
}

// Options are the settings both writers share.
type Options struct {
	// Secrets are masked as "****" in every log, trace and status text (never in record data). Empty strings are
	// ignored.
	Secrets []string
	// Now is the clock for emitted_at and time_extracted; nil means time.Now. Tests pin it.
	Now func() time.Time
	// Stderr receives the Singer writer's log lines; nil means os.Stderr. The Airbyte writer does not use it,
	// because Airbyte logs travel on stdout as LOG messages.
	Stderr io.Writer
}

func (o Options) now() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

func (o Options) stderr() io.Writer {
	if o.Stderr != nil {
		return o.Stderr
	}
	return os.Stderr
}

// logLevel normalises a level to the Airbyte LogMessage enum. Unknown levels are an error rather than a guess,
// because an invalid LOG line is silently dropped by PyAirbyte and logged as noise by the platform.
func logLevel(level string) (string, error) {
	l := strings.ToUpper(strings.TrimSpace(level))
	switch l {
	case "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE":
		return l, nil
	case "WARNING":
		return "WARN", nil
	}
	return "", fmt.Errorf("log level %q is not one of FATAL, ERROR, WARN, INFO, DEBUG, TRACE", level)
}
