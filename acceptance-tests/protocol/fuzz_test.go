package protocol_test

import (
	"testing"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
)

// FuzzParseOutput checks that no parser panics on arbitrary output: a broken connector must fail a test with
// a message, not crash the test binary.
func FuzzParseOutput(f *testing.F) {
	f.Add([]byte(`{"type":"RECORD","record":{"stream":"s","data":{},"emitted_at":1}}` + "\n"))
	f.Add([]byte(`{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1,"stream_status":{"stream_descriptor":{"name":"s"},"status":"RUNNING","reasons":[{"type":"RATE_LIMITED","rate_limited":{"quota_reset":2}}]}}}` + "\n"))
	f.Add([]byte(`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":{}},"sourceStats":{"recordCount":1.0}}}` + "\n"))
	f.Add([]byte(`{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{}}},"key_properties":["id"]}` + "\n" + `{"type":"RECORD","stream":"s","record":{"id":1},"time_extracted":"2026-01-01T00:00:00Z"}` + "\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		if msgs, err := protocol.ParseAirbyteOutput(out); err == nil {
			if _, err := msgs.StateFile(); err != nil {
				t.Fatalf("state file of parsed output: %v", err)
			}
		}
		if msgs, err := protocol.ParseSingerOutput(out); err == nil {
			_ = msgs.LastState()
		}
		_, _ = protocol.ParseSingerCatalog(out)
		_, _ = protocol.ParseSingerLine(out)
		_, _ = protocol.ParseAirbyteStateFile(out)
		_, _ = protocol.ParseSingerStateFile(out)
	})
}
