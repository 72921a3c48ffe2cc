package maps

import (
	"encoding/json"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// Writer returns the writer the engine should talk to: w itself when no setting is active, otherwise a decorator
// that sends each record of a connector stream to every output made from it, mapped.
//
// States and stream statuses go to every output of their stream too, with the connector stream's state as their
// value. The engine keeps keying its work, and what it resumes from, by connector stream; the protocols key by the
// streams they receive. Airbyte needs that: the platform counts each stream's records against its state's
// recordCount, fails a sync whose status names a stream not in the configured catalog, and the acceptance tests
// want a state for every configured stream, while a configured catalog after discover names only outputs. A
// Singer state is one document the tap alone reads back, so its keys could be anything; keying it the same way
// keeps one rule for both dialects and lets the Singer writer announce only streams it emits. Plan.SourceStates
// turns such a state back into the engine's. Every copy is written after every record its output received, so each
// is as safe to resume from as the original.
//
// Logs and flushes pass through; an error naming a stream is reported for each of its outputs.
func (p *Plan) Writer(w emit.Writer) emit.Writer {
	if p.passthrough {
		return w
	}
	return &writer{w: w, p: p}
}

type writer struct {
	w emit.Writer
	p *Plan
}

var _ emit.Writer = (*writer)(nil)

func (w *writer) Record(stream string, data []byte) error { return w.p.Map(stream, data, w.w.Record) }

func (w *writer) State(stream string, state json.RawMessage) error {
	return w.each(stream, func(name string) error { return w.w.State(name, state) })
}

func (w *writer) StreamStatus(stream string, s emit.Status, rateLimitedUntil time.Time) error {
	return w.each(stream, func(name string) error { return w.w.StreamStatus(name, s, rateLimitedUntil) })
}

func (w *writer) Error(e emit.TraceError) error {
	if e.Stream == "" {
		return w.w.Error(e)
	}
	if outs, known := w.p.bySource[e.Stream]; known && len(outs) == 0 {
		e.Stream = "" // the stream is emitted under no name; the error still has to reach the user
		return w.w.Error(e)
	}
	return w.each(e.Stream, func(name string) error {
		e.Stream = name
		return w.w.Error(e)
	})
}

func (w *writer) Log(level, msg string) error { return w.w.Log(level, msg) }

// Progress is reported under every output of the stream; the counts are the connector stream's, which is what
// was read (a filter may keep fewer rows in an output).
func (w *writer) Progress(p emit.Progress) error {
	return w.each(p.Stream, func(name string) error {
		p.Stream = name
		return w.w.Progress(p)
	})
}

func (w *writer) Request(m emit.RequestMetric) error { return w.w.Request(m) }

func (w *writer) Flush() error { return w.w.Flush() }

// each calls fn with every output name of a connector stream, or with the name itself when the plan does not know
// it (a message the maps have no say on).
func (w *writer) each(stream string, fn func(string) error) error {
	outs, known := w.p.bySource[stream]
	if !known {
		return fn(stream)
	}
	for _, o := range outs {
		if err := fn(o.Name); err != nil {
			return err
		}
	}
	return nil
}
