package source_test

// The helpers every test of the external package shares. They drive the connector only through its stable seams,
// source.Run with an Env and the acceptance-tests sandbox, so that an engine refactor which keeps the output keeps
// these tests green without touching them.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/sandboxtest"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source"
)

// The API keys of the tests. Every one starts with keyPrefix, which no byte of output may contain.
const (
	keyPrefix = "pk_seam_test_"
	// partialKey can read the five scopes check names as the minimum, so some streams are out of its reach.
	partialKey = keyPrefix + "partial_51c0"
	// noReadKey is valid but has no read scope at all.
	noReadKey = keyPrefix + "noread_7d22"
	// unknownKey is not a key of any sandbox.
	unknownKey = keyPrefix + "unknown_0e9b"
)

// testKey is the API key every sandbox of these tests accepts. Like every key the tests use it starts with
// keyPrefix, so a leak of any of them into any byte of stdout or stderr is found by a plain substring search.
const testKey = keyPrefix + "9f3c1a7e5b2d4680"

// result is what one in-process invocation produced.
type result struct {
	code           int
	stdout, stderr string
}

// invoke runs the connector in process with argv, a clock pinned to now and the real file system. now is pinned
// because emitted_at, time_extracted and the sync start (which bounds every cursor) all read it.
func invoke(t *testing.T, now time.Time, argv ...string) result {
	t.Helper()
	return invokeCtx(context.Background(), t, now, argv...)
}

func invokeCtx(ctx context.Context, t *testing.T, now time.Time, argv ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := source.Run(ctx, argv, source.Env{
		Stdout:   &stdout,
		Stderr:   &stderr,
		Now:      func() time.Time { return now },
		ReadFile: os.ReadFile,
	})
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	require.NotContains(t, r.stdout, keyPrefix, "an API key leaked into stdout")
	require.NotContains(t, r.stderr, keyPrefix, "an API key leaked into stderr")
	return r
}

// startSandbox starts a sandbox that accepts testKey (with every scope unless opts.APIKeys says otherwise) and
// closes it when the test ends.
func startSandbox(t *testing.T, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	if opts.APIKeys == nil {
		opts.APIKeys = map[string][]string{testKey: nil}
	}
	return sandboxtest.Start(t, opts)
}

// writeFile writes content (a string, []byte or anything JSON-encodable) to a file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, content any) string {
	t.Helper()
	var b []byte
	switch c := content.(type) {
	case string:
		b = []byte(c)
	case []byte:
		b = c
	default:
		var err error
		b, err = json.Marshal(c)
		require.NoError(t, err)
	}
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// configFor is a config reading srv as fast as the sandbox allows: its rate limits are off, so the connector's
// own budgets are scaled to the maximum the spec accepts.
func configFor(srv *sandbox.Server, extra map[string]any) map[string]any {
	cfg := map[string]any{"api_key": testKey, "base_url": srv.URL(), "rate_limit_scale": 1000}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// ---- sync output, decoded with the shared protocol parser ----

// stateEvent is one STATE in output order: the stream it belongs to (empty for a Singer STATE, which holds every
// stream), its raw state and, for Airbyte, how many records of the stream it says were written since the last one.
type stateEvent struct {
	stream      string
	state       json.RawMessage
	recordCount float64
	// bookmarks are a Singer STATE's bookmarks, state_version stripped as in state.
	bookmarks map[string]json.RawMessage
	// recordsBefore is how many records were on stdout between the previous state and this one: of this stream
	// for Airbyte, of any stream for Singer (whose states hold every stream).
	recordsBefore int
}

// record is one RECORD: its line as printed, which the goldens compare byte for byte, and its data as printed,
// which is the same in both dialects.
type record struct {
	line string
	data json.RawMessage
}

// syncOutput is a parsed sync.
type syncOutput struct {
	records  map[string][]record // per stream, in output order
	states   []stateEvent
	statuses map[string][]string // Airbyte stream statuses in order
	errors   []protocol.TraceError
	logs     []string // Airbyte LOG messages as "LEVEL message"
	messages int      // how many messages stdout held
	schemas  map[string]protocol.SingerSchema
	// versions and activations are the Singer record versions and ACTIVATE_VERSION messages of versioned
	// (full-table) streams.
	versions, activations map[string]int64
}

func newSyncOutput() *syncOutput {
	return &syncOutput{records: map[string][]record{}, statuses: map[string][]string{}, schemas: map[string]protocol.SingerSchema{},
		versions: map[string]int64{}, activations: map[string]int64{}}
}

// parseAirbyte reads an Airbyte sync's stdout with the protocol parser, which fails on any line that is not one
// Airbyte message. On top of it, the connector's promises: only the messages of a sync, and every state a STREAM
// state of a named stream that carries sourceStats.recordCount.
func parseAirbyte(t *testing.T, stdout string) *syncOutput {
	t.Helper()
	msgs, err := protocol.ParseAirbyteOutput([]byte(stdout))
	require.NoError(t, err, "stdout is not Airbyte messages")
	o := newSyncOutput()
	o.messages = len(msgs)
	since := map[string]int{}
	for _, m := range msgs {
		switch m.Type {
		case "RECORD":
			o.records[m.Record.Stream] = append(o.records[m.Record.Stream], record{line: string(m.Raw), data: m.Record.RawData})
			since[m.Record.Stream]++
		case "STATE":
			st := m.State
			require.Equal(t, "STREAM", st.Type, "every state is a per-stream state: %s", m.Raw)
			require.NotEmpty(t, st.Stream, "every state names its stream: %s", m.Raw)
			require.NotNil(t, st.RecordCount, "every state carries sourceStats.recordCount: %s", m.Raw)
			o.states = append(o.states, stateEvent{stream: st.Stream, state: releaseState(t, st.StreamState),
				recordCount: *st.RecordCount, recordsBefore: since[st.Stream]})
			since[st.Stream] = 0
		case "TRACE":
			switch tr := m.Trace; tr.Type {
			case "STREAM_STATUS":
				require.NotNil(t, tr.StreamStatus, "%s", m.Raw)
				o.statuses[tr.StreamStatus.Stream] = append(o.statuses[tr.StreamStatus.Stream], tr.StreamStatus.Status)
			case "ERROR":
				require.NotNil(t, tr.Error, "%s", m.Raw)
				o.errors = append(o.errors, *tr.Error)
			default:
				t.Fatalf("unexpected trace type %q: %.300s", tr.Type, m.Raw)
			}
		case "LOG":
			o.logs = append(o.logs, m.Log.Level+" "+m.Log.Message)
		default:
			t.Fatalf("unexpected message type %q in a sync: %.300s", m.Type, m.Raw)
		}
	}
	return o
}

// parseSinger reads a Singer sync's stdout with the protocol parser, which fails on any line that is not one
// Singer message and on a RECORD before its stream's SCHEMA. On top of it: SCHEMA, RECORD and STATE only, one
// SCHEMA per stream, and every STATE holds bookmarks.
func parseSinger(t *testing.T, stdout string) *syncOutput {
	t.Helper()
	msgs, err := protocol.ParseSingerOutput([]byte(stdout))
	require.NoError(t, err, "stdout is not Singer messages")
	o := newSyncOutput()
	o.messages = len(msgs)
	records := 0
	for _, m := range msgs {
		switch m.Type {
		case "SCHEMA":
			_, dup := o.schemas[m.Schema.Stream]
			require.False(t, dup, "SCHEMA of %s written twice", m.Schema.Stream)
			o.schemas[m.Schema.Stream] = *m.Schema
		case "RECORD":
			line := string(m.Raw)
			if v := m.Record.Version; v != nil {
				// Full-table streams are versioned (activate-version, issue 14): the line is compared with the
				// release's without its version, which must be the one its ACTIVATE_VERSION announces at the end.
				_, announced := o.activations[m.Record.Stream]
				require.False(t, announced, "a RECORD of %s after its ACTIVATE_VERSION", m.Record.Stream)
				line = strings.Replace(line, fmt.Sprintf(`,"version":%d`, *v), "", 1)
				o.versions[m.Record.Stream] = *v
			}
			o.records[m.Record.Stream] = append(o.records[m.Record.Stream], record{line: line, data: m.Record.RawRecord})
			records++
		case "ACTIVATE_VERSION":
			a := m.ActivateVersion
			if v, ok := o.versions[a.Stream]; ok {
				require.Equal(t, v, a.Version, "ACTIVATE_VERSION of %s names the version its records carry", a.Stream)
			}
			o.activations[a.Stream] = a.Version
		case "STATE":
			require.NotNil(t, m.State.Bookmarks, "a Singer STATE has bookmarks: %s", m.Raw)
			bookmarks := map[string]json.RawMessage{}
			for name, b := range m.State.Bookmarks {
				bookmarks[name] = releaseState(t, b)
			}
			raw, err := json.Marshal(map[string]any{"bookmarks": bookmarks})
			require.NoError(t, err)
			o.states = append(o.states, stateEvent{state: raw, bookmarks: bookmarks, recordsBefore: records})
			records = 0
		default:
			t.Fatalf("unexpected Singer message type %q: %.300s", m.Type, m.Raw)
		}
	}
	return o
}

// releaseState returns a stream state as release 0.1.0 wrote it: without state_version, which must be 1 when it is
// there. The release wrote the same format with no version, and its goldens are what the states are compared
// with, so the version is the one difference allowed, and it is checked here rather than ignored. A state without
// the key is one the sync passed on as it received it (a stream that failed before its first checkpoint, or a
// Singer bookmark of a stream not synced yet), in the format the release wrote.
func releaseState(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw // not an object: the state checks say so
	}
	v, versioned := obj["state_version"]
	if !versioned {
		return raw
	}
	require.JSONEq(t, "1", string(v), "a state this release writes carries state_version 1: %s", raw)
	delete(obj, "state_version")
	// The events lookback (issue 14) lists the events written within it; on the golden account no event falls in
	// that hour, so the list is empty and only its lower bound is new. A non-empty list stays, and differs.
	if string(obj["lookback_ids"]) == "[]" {
		delete(obj, "lookback_ids")
		delete(obj, "lookback_from")
	}
	out, err := json.Marshal(obj)
	require.NoError(t, err)
	return out
}

// sortedRecords returns a stream's record lines sorted: records are written concurrently, so only their set
// (with multiplicity) is a property of the release, not their order.
func (o *syncOutput) sortedRecords(stream string) []string {
	out := make([]string, 0, len(o.records[stream]))
	for _, r := range o.records[stream] {
		out = append(out, r.line)
	}
	sort.Strings(out)
	return out
}

// rows returns the data of a stream's records, as printed, in output order.
func (o *syncOutput) rows(stream string) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(o.records[stream]))
	for _, r := range o.records[stream] {
		out = append(out, r.data)
	}
	return out
}

// ---- state invariants ----

// cursorsOf flattens a state into its cursor values by JSON path: every string member that parses as an RFC 3339
// date-time ("/datetime", "/parents/<id>/joined_group_at", "/bookmarks/<stream>/updated"). ids_at_cursor and
// other members are not cursors and are left out. A Singer SDK bookmark counts under the field it names.
func cursorsOf(t *testing.T, raw json.RawMessage) map[string]time.Time {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(raw, &v), "a state is not JSON: %s", raw)
	out := map[string]time.Time{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if key, ok := x["replication_key"].(string); ok {
				// The Singer SDK's bookmark names its cursor field in replication_key; it means {key: value}.
				if val, ok := x["replication_key_value"].(string); ok {
					x = map[string]any{key: val}
				}
			}
			for k, c := range x {
				if k == "lookback_from" || k == "start_date" {
					continue // the lower bound of the listed lookback and the fixed start: bounds, not cursors
				}
				walk(prefix+"/"+k, c)
			}
		case string:
			if ts, err := time.Parse(time.RFC3339, x); err == nil {
				out[prefix] = ts
			}
		}
	}
	walk("", v)
	return out
}

// requireForward fails when a cursor of before is missing from after or has moved back. Cursors only ever gain
// parents and move forward within a sync, and a sync never drops or rewinds what it resumed from.
func requireForward(t *testing.T, what string, before, after json.RawMessage) {
	t.Helper()
	if len(before) == 0 {
		return
	}
	b, a := cursorsOf(t, before), cursorsOf(t, after)
	for path, tb := range b {
		ta, ok := a[path]
		require.True(t, ok, "%s: cursor %s (%s) disappeared: %s -> %s", what, path, tb.Format(time.RFC3339), before, after)
		require.False(t, ta.Before(tb), "%s: cursor %s moved backwards from %s to %s", what, path, tb.Format(time.RFC3339), ta.Format(time.RFC3339))
	}
}

// requireWithinSyncStart fails when a state holds a cursor past the sync start that it did not inherit from the
// state the sync resumed from: a cursor never passes the moment its sync started (DESIGN.md rule 4).
func requireWithinSyncStart(t *testing.T, what string, initial, st json.RawMessage, syncStart time.Time) {
	t.Helper()
	var inherited map[string]time.Time
	if len(initial) > 0 {
		inherited = cursorsOf(t, initial)
	}
	for path, c := range cursorsOf(t, st) {
		if c.After(syncStart) && !c.Equal(inherited[path]) {
			t.Fatalf("%s: cursor %s is %s, past the sync start %s", what, path, c.Format(time.RFC3339), syncStart.Format(time.RFC3339))
		}
	}
}

// checkAirbyteStates asserts what must hold of every Airbyte sync's states whatever the timing: each is a JSON
// object; its recordCount is exactly the records of its stream written since the stream's previous state (so a
// state never overtakes its records); per stream no state repeats the previous one byte for byte and no cursor
// moves backwards, starting from the state the sync resumed from; no cursor passes the sync start. It returns
// each stream's final state.
func checkAirbyteStates(t *testing.T, o *syncOutput, initial map[string]json.RawMessage, syncStart time.Time) map[string]json.RawMessage {
	t.Helper()
	last := map[string]json.RawMessage{}
	for i, ev := range o.states {
		what := fmt.Sprintf("state %d (stream %s)", i+1, ev.stream)
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(ev.state, &obj), "%s is not a JSON object: %s", what, ev.state)
		require.NotNil(t, obj, "%s is null", what)
		require.Equal(t, float64(ev.recordsBefore), ev.recordCount, "%s: recordCount says %v records since the previous state, stdout has %d", what, ev.recordCount, ev.recordsBefore)
		prev, seen := last[ev.stream]
		if seen {
			require.NotEqual(t, string(prev), string(ev.state), "%s repeats the stream's previous state", what)
		} else {
			prev = initial[ev.stream]
		}
		requireForward(t, what, prev, ev.state)
		requireWithinSyncStart(t, what, initial[ev.stream], ev.state, syncStart)
		last[ev.stream] = ev.state
	}
	return last
}

// checkSingerStates asserts the same of a Singer sync, whose every STATE holds the bookmarks of every stream: each
// parses, keeps every bookmark, and no bookmark's cursor moves backwards (from the initial state on) or passes the
// sync start. A STATE never repeats the previous one byte for byte in a sync that starts from no state. A resumed
// sync does repeat it today: each stream's first checkpoint re-announces the bookmark it resumed from, and when
// that is unchanged the whole document is unchanged too. That is harmless to a Singer target, which keeps the last
// state, and since a Singer STATE belongs to no one stream the records between two equal STATEs may be another
// stream's, beyond its bookmark; so in a resumed sync repeats are counted, not failed. It returns the bookmarks of
// the last STATE and how many STATEs repeated the previous one.
func checkSingerStates(t *testing.T, o *syncOutput, initial map[string]json.RawMessage, syncStart time.Time) (map[string]json.RawMessage, int) {
	t.Helper()
	last := map[string]json.RawMessage{}
	for k, v := range initial {
		last[k] = v
	}
	var prevDoc json.RawMessage
	repeats := 0
	for i, ev := range o.states {
		what := fmt.Sprintf("STATE %d", i+1)
		if bytes.Equal(prevDoc, ev.state) {
			require.NotEmpty(t, initial, "%s repeats the previous STATE in a sync that started from no state", what)
			repeats++
		}
		prevDoc = ev.state
		for name := range last {
			_, ok := ev.bookmarks[name]
			require.True(t, ok, "%s dropped the bookmark of stream %s", what, name)
		}
		for name, b := range ev.bookmarks {
			var obj map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(b, &obj), "%s: the bookmark of %s is not a JSON object: %s", what, name, b)
			requireForward(t, what+" stream "+name, last[name], b)
			requireWithinSyncStart(t, what+" stream "+name, initial[name], b, syncStart)
			last[name] = b
		}
	}
	return last, repeats
}

// requireCompleted asserts a clean Airbyte sync: exit 0, no error trace, and every configured stream STARTED and
// then COMPLETE, with at least one state.
func requireCompleted(t *testing.T, r result, o *syncOutput, streams []string) {
	t.Helper()
	require.Equal(t, 0, r.code, "the sync failed: %v\n%s", o.errors, r.stderr)
	require.Empty(t, o.errors)
	stated := map[string]bool{}
	for _, ev := range o.states {
		stated[ev.stream] = true
	}
	for _, s := range streams {
		st := o.statuses[s]
		require.NotEmpty(t, st, "stream %s has no status", s)
		require.Equal(t, "STARTED", st[0], "stream %s statuses %v", s, st)
		require.Equal(t, "COMPLETE", st[len(st)-1], "stream %s statuses %v", s, st)
		require.True(t, stated[s], "stream %s wrote no state", s)
	}
}

// oneMessage parses stdout that must hold exactly one Airbyte message, as every command but read prints.
func oneMessage(t *testing.T, stdout string) protocol.Message {
	t.Helper()
	msgs, err := protocol.ParseAirbyteOutput([]byte(stdout))
	require.NoError(t, err)
	require.Len(t, msgs, 1, "want exactly one message:\n%s", stdout)
	return msgs[0]
}

// ---- catalogs, built from the connector's own discover output ----

// fileSeq numbers the catalog files written into a test's folder, so that no two share a name.
var fileSeq atomic.Int64

// streamNames lists every stream of the table, in catalog order.
func streamNames() []string {
	var out []string
	for _, s := range catalog.Streams() {
		out = append(out, s.Name)
	}
	return out
}

// incrementalNames lists the streams that can be read incrementally.
func incrementalNames() []string {
	var out []string
	for _, s := range catalog.Streams() {
		if s.Incremental() {
			out = append(out, s.Name)
		}
	}
	return out
}

// airbyteCatalog writes a configured catalog of the named streams (all when none are named), built from what
// `discover` prints, each stream incremental when incremental is set and the stream supports it.
func airbyteCatalog(t *testing.T, dir, cfg string, incremental bool, names ...string) string {
	t.Helper()
	r := invoke(t, time.Time{}, "discover", "--config", cfg)
	require.Equal(t, 0, r.code, r.stdout)
	cat := oneMessage(t, r.stdout).Catalog
	require.NotNil(t, cat, "discover printed no CATALOG:\n%s", r.stdout)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var streams []map[string]any
	for _, s := range cat.Streams {
		if len(names) > 0 && !want[s.Name] {
			continue
		}
		mode := "full_refresh"
		if incremental && slices.Contains(s.SupportedSyncModes, "incremental") {
			mode = "incremental"
		}
		streams = append(streams, map[string]any{"stream": s.Raw, "sync_mode": mode, "destination_sync_mode": "append"})
	}
	require.NotEmpty(t, streams, "no stream of %v in the discovered catalog", names)
	return writeFile(t, dir, fmt.Sprintf("catalog-%d.json", fileSeq.Add(1)), map[string]any{"streams": streams})
}

// singerCatalog writes a Singer catalog selecting the named streams (all when none are named), built from what
// `--discover` prints, with the replication method discover proposes (INCREMENTAL wherever the stream has a key).
func singerCatalog(t *testing.T, dir, cfg string, names ...string) string {
	t.Helper()
	return singerCatalogAs(t, dir, cfg, "", names...)
}

// singerCatalogAs is singerCatalog with every selected stream's root replication-method set to method ("" keeps
// what discover proposes).
func singerCatalogAs(t *testing.T, dir, cfg, method string, names ...string) string {
	t.Helper()
	r := invoke(t, time.Time{}, "--config", cfg, "--discover")
	require.Equal(t, 0, r.code, r.stderr)
	var doc struct {
		Streams []map[string]any `json:"streams"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var streams []map[string]any
	for _, s := range doc.Streams {
		if len(names) > 0 && !want[s["tap_stream_id"].(string)] {
			continue
		}
		for _, md := range s["metadata"].([]any) {
			m := md.(map[string]any)
			if len(m["breadcrumb"].([]any)) == 0 {
				m["metadata"].(map[string]any)["selected"] = true
				if method != "" {
					m["metadata"].(map[string]any)["replication-method"] = method
				}
			}
		}
		streams = append(streams, s)
	}
	require.NotEmpty(t, streams, "no stream of %v in the discovered catalog", names)
	return writeFile(t, dir, fmt.Sprintf("singer-catalog-%d.json", fileSeq.Add(1)), map[string]any{"streams": streams})
}

// airbyteRead runs `read` and parses its output; state may be "".
func airbyteRead(t *testing.T, now time.Time, cfg, cat, state string) (result, *syncOutput) {
	t.Helper()
	argv := []string{"read", "--config", cfg, "--catalog", cat}
	if state != "" {
		argv = append(argv, "--state", state)
	}
	r := invoke(t, now, argv...)
	return r, parseAirbyte(t, r.stdout)
}

// singerSync runs a Singer sync and parses its output; state may be "".
func singerSync(t *testing.T, now time.Time, cfg, cat, state string) (result, *syncOutput) {
	t.Helper()
	argv := []string{"--config", cfg, "--catalog", cat}
	if state != "" {
		argv = append(argv, "--state", state)
	}
	r := invoke(t, now, argv...)
	return r, parseSinger(t, r.stdout)
}
