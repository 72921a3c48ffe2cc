package reports

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// paris is the sandbox account's timezone, and the one planning tests cut days in.
func paris(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	return loc
}

// sandboxStart is the sandbox clock of every test against it: fixed, so runs are identical.
var sandboxStart = time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)

// startSandbox runs an in-process sandbox and a client of it whose budgets never make a test wait: the
// Reporting API's 2 a minute are the client's business (its own tests), the daily quota is the Ledger's.
func startSandbox(t testing.TB, tweak func(*sandbox.Options)) (*sandbox.Server, *klaviyo.Client) {
	t.Helper()
	opts := sandbox.Options{Seed: 3, Now: sandboxStart, Scale: sandbox.Scale{Events: 6000}}
	if tweak != nil {
		tweak(&opts)
	}
	s, err := sandbox.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c, err := klaviyo.New(klaviyo.Config{BaseURL: s.URL(), APIKey: sandbox.DefaultAPIKey, RateScale: 1e4,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	require.NoError(t, err)
	return s, c
}

// memSink keeps what a stream writes.
type memSink struct {
	mu     sync.Mutex
	rows   [][]byte
	states [][]byte
	logs   []string
}

func (m *memSink) Row(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows = append(m.rows, b)
	return nil
}

func (m *memSink) State(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states = append(m.states, b)
	return nil
}

func (m *memSink) Log(level, msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs = append(m.logs, level+" "+msg)
}

// lastState decodes the last state written.
func (m *memSink) lastState(t testing.TB, stream string) State {
	t.Helper()
	require.NotEmpty(t, m.states, "a stream always ends on a state")
	s, err := DecodeState(stream, m.states[len(m.states)-1])
	require.NoError(t, err)
	return s
}

// decoded returns the rows as maps (numbers as json.Number).
func (m *memSink) decoded(t testing.TB) []map[string]any {
	t.Helper()
	out := make([]map[string]any, 0, len(m.rows))
	for _, r := range m.rows {
		out = append(out, decodeRow(t, r))
	}
	return out
}

func decodeRow(t testing.TB, r []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := stdjson.NewDecoder(bytes.NewReader(r))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&v), string(r))
	return v
}

// defaultDef returns the default definition of a stream.
func defaultDef(t testing.TB, stream string, cfg Config) Definition {
	t.Helper()
	defs, err := Definitions(cfg, nil)
	require.NoError(t, err)
	for _, d := range defs {
		if d.Name == stream {
			return d
		}
	}
	t.Fatalf("no default stream %s", stream)
	return Definition{}
}

// userDef parses one user-defined report.
func userDef(t testing.TB, cfg Config, report string) Definition {
	t.Helper()
	cfg.Reports = []byte("[" + report + "]")
	defs, err := Definitions(cfg, nil)
	require.NoError(t, err)
	return defs[len(defs)-1]
}

// syncOnce discovers the account, plans def against prev at the sandbox clock and reads it.
func syncOnce(t testing.TB, s *sandbox.Server, c *klaviyo.Client, def Definition, prev State, led *Ledger) (*memSink, *Plan, error) {
	t.Helper()
	acct, err := Discover(context.Background(), c, true)
	require.NoError(t, err)
	if led == nil {
		led = NewLedger(s.Now(), 1)
	}
	p, err := def.Plan(prev, s.Now(), acct, led)
	require.NoError(t, err)
	sink := &memSink{}
	return sink, p, p.Read(context.Background(), c, sink)
}

// keyOf is a row's primary key as one string.
func keyOf(t testing.TB, def Definition, row map[string]any) string {
	t.Helper()
	var k []byte
	for _, col := range def.KeyProperties() {
		v, ok := row[col].(string)
		require.True(t, ok, "key column %s of %v is a string", col, row)
		k = append(append(k, v...), 0)
	}
	return string(k)
}
