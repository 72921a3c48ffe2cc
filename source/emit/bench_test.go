package emit_test

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// benchRecord is a typical flat event record, about 400 bytes.
var benchRecord = []byte(`{"id":"4Ae9Xk2fQ7bZ","metric_id":"Y6nRLr","profile_id":"01HZ8Q3W9K5T6V7X8Y9Z0A1B2C","datetime":"2026-01-02T03:04:05+00:00","timestamp":1767323045,"uuid":"6a1d5c2e-8f3b-11ee-b9d1-0242ac120002","event_properties":{"$value":12.5,"$extra":{"Items":["Shirt","Hat"],"OrderId":"ORD-10042"},"Campaign Name":"Spring launch","$message":"01HZ8Q3W9K5T6V7X8Y9Z0A1B2D"}}`)

// BenchmarkAirbyteRecord measures one RECORD through the Airbyte writer; the goal is 0 allocs/op.
func BenchmarkAirbyteRecord(b *testing.B) {
	a := emit.NewAirbyte(io.Discard, emit.Options{Secrets: []string{"pk_secret"}})
	if err := a.Record("events", benchRecord); err != nil { // first sight of a stream allocates its prefix
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.Record("events", benchRecord); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := a.State("events", json.RawMessage(`{"datetime":"2026-01-02T03:04:05+00:00"}`)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSingerRecord measures one RECORD through the Singer writer; the goal is 0 allocs/op.
func BenchmarkSingerRecord(b *testing.B) {
	s := emit.NewSinger(io.Discard, []emit.StreamInfo{{
		Name: "events", Schema: json.RawMessage(`{"type":"object"}`), KeyProperties: []string{"id"},
	}}, emit.SingerState{}, emit.Options{Now: time.Now, Stderr: io.Discard})
	if err := s.Record("events", benchRecord); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Record("events", benchRecord); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
}
