package acceptance_test

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// This file feeds the binary broken config, catalog and state files, and states in other tools' shapes. A broken
// file gets exactly one sentence that names the file and the field, the right failure type and exit code, and
// never a panic; a state in another known shape is honoured.

// badFiles are the files one bad-input case runs with; empty fields take a valid default.
type badFiles struct {
	config, catalog, state string
}

// requireNoCrash fails on a Go panic or stack trace in any output.
func requireNoCrash(t *testing.T, r run) {
	t.Helper()
	for _, out := range [][]byte{r.stdout, r.stderr} {
		for _, sign := range []string{"panic:", "goroutine ", ".go:", "internal error"} {
			require.NotContains(t, string(out), sign, "a crash or stack trace in the output:\n%s", out)
		}
	}
}

// requireOneSentence checks that a message is one line that names every want.
func requireOneSentence(t *testing.T, msg string, want []string) {
	t.Helper()
	require.NotEmpty(t, msg)
	require.NotContains(t, msg, "\n", "the message is not one line: %q", msg)
	for _, w := range want {
		require.Contains(t, msg, w, "the message does not name %q", w)
	}
}

// requireAirbyteFailure: exit 1 and exactly one ERROR trace of the failure type that names want, and nothing else
// but logs.
func requireAirbyteFailure(t *testing.T, r run, failure string, want []string) {
	t.Helper()
	requireNoCrash(t, r)
	require.Equal(t, 1, r.code, "exit code; output:\n%s", r.stdout)
	o := parseAirbyte(t, r.stdout)
	errs := o.Errors()
	require.Len(t, errs, 1, "want exactly one error trace, got %v", errs)
	require.Equal(t, failure, errs[0].FailureType, errs[0].Message)
	requireOneSentence(t, errs[0].Message, want)
	require.Empty(t, o.OfType("RECORD"))
}

// requireCheckFailed: exit 0 and one CONNECTION_STATUS FAILED whose message names want.
func requireCheckFailed(t *testing.T, r run, want []string) {
	t.Helper()
	requireNoCrash(t, r)
	require.Equal(t, 0, r.code, "check exits 0 on a config the user must fix; output:\n%s", r.stdout)
	o := parseAirbyte(t, r.stdout)
	require.Len(t, o, 1, "check prints exactly one message:\n%s", r.stdout)
	cs := o[0].ConnectionStatus
	require.NotNil(t, cs, "%s", r.stdout)
	require.Equal(t, "FAILED", cs.Status)
	requireOneSentence(t, cs.Message, want)
}

// requireSingerFailure: exit 1, nothing on stdout, one CRITICAL line on stderr that names want and the failure type.
func requireSingerFailure(t *testing.T, r run, failure string, want []string) {
	t.Helper()
	requireNoCrash(t, r)
	require.Equal(t, 1, r.code, "exit code; stderr:\n%s", r.stderr)
	require.Empty(t, r.stdout, "a failed Singer run writes no message")
	lines := strings.Split(strings.TrimRight(string(r.stderr), "\n"), "\n")
	require.Len(t, lines, 1, "stderr:\n%s", r.stderr)
	require.True(t, strings.HasPrefix(lines[0], "CRITICAL "), lines[0])
	requireOneSentence(t, lines[0], append(want, "("+failure+")"))
}

// TestBadConfig runs every command on broken config files: discover, read and a Singer sync fail with one
// config_error sentence naming the file and the field; check reports FAILED with exit 0.
func TestBadConfig(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 4})
	good := configFor(t, srv, nil)
	cat := configuredCatalog(t, good, false, "metrics")
	valid := func(extra string) string {
		return `{"api_key":"` + testKey + `","base_url":"` + srv.URL() + `"` + extra + `}`
	}
	cases := []struct {
		name    string
		content string // written to config.json; "" with missing=true means no file at all
		missing bool
		want    []string
	}{
		{name: "not JSON", content: `{"api_key":"` + testKey + `", "start_date": `, want: []string{"not valid JSON"}},
		{name: "empty", content: " \n", want: []string{"is empty"}},
		{name: "an array", content: `[{"api_key":"` + testKey + `"}]`, want: []string{"must hold a JSON object"}},
		{name: "a string", content: `"` + testKey + `"`, want: []string{"must hold a JSON object"}},
		{name: "api_key missing", content: `{"apikey":"` + testKey + `"}`, want: []string{"api_key is required"}},
		{name: "api_key a number", content: `{"api_key":5,"old_key":"` + testKey + `"}`, want: []string{"api_key must be string"}},
		{name: "api_key empty", content: `{"api_key":""}`, want: []string{"api_key"}},
		{name: "start_date not a date", content: valid(`,"start_date":"yesterday"`), want: []string{"start_date", "2024-01-01T00:00:00Z"}},
		{name: "start_date impossible", content: valid(`,"start_date":"2024-02-30T00:00:00Z"`), want: []string{"start_date"}},
		{name: "max_concurrency a string", content: valid(`,"max_concurrency":"ten"`), want: []string{"max_concurrency must be integer"}},
		{name: "max_concurrency too large", content: valid(`,"max_concurrency":100000`), want: []string{"max_concurrency is out of range"}},
		{name: "rate_limit_scale negative", content: valid(`,"rate_limit_scale":-1`), want: []string{"rate_limit_scale"}},
		{name: "profile_subscriptions a string", content: valid(`,"profile_subscriptions":"yes"`), want: []string{"profile_subscriptions must be boolean"}},
		{name: "event_metric_ids a string", content: valid(`,"event_metric_ids":"Abc"`), want: []string{"event_metric_ids must be array"}},
		{name: "base_url not http", content: `{"api_key":"` + testKey + `","base_url":"ftp://example.com"}`, want: []string{"base_url"}},
		{name: "missing file", missing: true, want: []string{"cannot be read", "--config"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if !tc.missing {
				path = writeJSON(t, "config.json", tc.content)
			}
			want := append([]string{path}, tc.want...)
			t.Run("discover", func(t *testing.T) {
				requireAirbyteFailure(t, runBin(t, "discover", "--config", path), "config_error", want)
			})
			t.Run("read", func(t *testing.T) {
				requireAirbyteFailure(t, runBin(t, "read", "--config", path, "--catalog", cat), "config_error", want)
			})
			t.Run("check", func(t *testing.T) {
				requireCheckFailed(t, runBin(t, "check", "--config", path), want)
			})
			t.Run("singer", func(t *testing.T) {
				requireSingerFailure(t, runBin(t, "--config", path), "config_error", want)
			})
		})
	}
}

// TestBadCatalog: a broken configured catalog fails read (and a Singer sync) with one sentence naming the file and
// the JSON path of the problem.
func TestBadCatalog(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 4})
	cfg := configFor(t, srv, nil)
	events := `{"name":"events","json_schema":{},"supported_sync_modes":["full_refresh","incremental"]}`
	cases := []struct {
		name, content string
		missing       bool
		want          []string
	}{
		{name: "not JSON", content: `{"streams":[`, want: []string{"not valid JSON"}},
		{name: "no streams", content: `{}`, want: []string{"streams"}},
		{name: "streams an object", content: `{"streams":{}}`, want: []string{"streams"}},
		{name: "entry a string", content: `{"streams":["events"]}`, want: []string{"streams[0]"}},
		{name: "stream without name", content: `{"streams":[{"stream":{},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}`, want: []string{"streams[0].stream.name"}},
		{name: "name a number", content: `{"streams":[{"stream":{"name":7},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}`, want: []string{"streams[0].stream.name"}},
		{name: "unknown stream", content: `{"streams":[{"stream":` + events + `,"sync_mode":"full_refresh","destination_sync_mode":"append"},{"stream":{"name":"no_such_stream","json_schema":{}},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}`, want: []string{"streams[1].stream.name", "no_such_stream"}},
		{name: "bad sync_mode", content: `{"streams":[{"stream":` + events + `,"sync_mode":"sometimes","destination_sync_mode":"append"}]}`, want: []string{"streams[0].sync_mode", "sometimes"}},
		{name: "sync_mode missing", content: `{"streams":[{"stream":` + events + `,"destination_sync_mode":"append"}]}`, want: []string{"streams[0].sync_mode"}},
		{name: "stream twice", content: `{"streams":[{"stream":` + events + `,"sync_mode":"full_refresh","destination_sync_mode":"append"},{"stream":` + events + `,"sync_mode":"full_refresh","destination_sync_mode":"append"}]}`, want: []string{"streams[1].stream.name", "twice"}},
		{name: "missing file", missing: true, want: []string{"cannot be read", "--catalog"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.json")
			if !tc.missing {
				path = writeJSON(t, "catalog.json", tc.content)
			}
			want := append([]string{"catalog file " + path}, tc.want...)
			requireAirbyteFailure(t, runBin(t, "read", "--config", cfg, "--catalog", path), "config_error", want)
		})
	}
	t.Run("no --catalog", func(t *testing.T) {
		requireAirbyteFailure(t, runBin(t, "read", "--config", cfg), "config_error", []string{"--catalog"})
	})
	t.Run("singer unknown stream", func(t *testing.T) {
		path := writeJSON(t, "catalog.json", `{"streams":[{"tap_stream_id":"no_such_stream","schema":{},"metadata":[]}]}`)
		requireSingerFailure(t, runBin(t, "--config", cfg, "--catalog", path), "config_error",
			[]string{"catalog file " + path, "streams[0].tap_stream_id", "no_such_stream"})
	})
	t.Run("singer not JSON", func(t *testing.T) {
		path := writeJSON(t, "catalog.json", `{"streams":`)
		requireSingerFailure(t, runBin(t, "--config", cfg, "--properties", path), "config_error", []string{"catalog file " + path})
	})
}

// TestBadState: a state file that cannot be read fails the whole read with one sentence naming the file and the
// place in it; a cursor of the wrong type fails only its stream, naming the stream and the field.
func TestBadState(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 4})
	cfg := configFor(t, srv, nil)
	cat := configuredCatalog(t, cfg, true, "events", "metrics", "list_memberships")
	singerCat := writeJSON(t, "singer_catalog.json", `{"streams":[{"tap_stream_id":"metrics"}]}`)
	stream := func(name, state string) string {
		return `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"` + name + `"},"stream_state":` + state + `}}]`
	}
	fileCases := []struct{ name, content string }{
		{"not JSON", `[{"type":"STREAM",`},
		{"a number", `5`},
		{"a string", `"events"`},
		{"stream_state a string", stream("events", `"2024-01-01T00:00:00Z"`)},
		{"element a string", `["events"]`},
		{"unknown state type", `[{"type":"SOMETIMES","stream":{}}]`},
		{"stream without descriptor", `[{"type":"STREAM","stream":{"stream_state":{}}}]`},
		{"global without stream_states", `[{"type":"GLOBAL","global":{"shared_state":{}}}]`},
		{"bookmark a string", `{"bookmarks":{"events":"2024-01-01T00:00:00Z"}}`},
	}
	want := map[string][]string{
		"not JSON":                     {"not valid JSON"},
		"a number":                     {"a number"},
		"a string":                     {"a string"},
		"stream_state a string":        {"element 1", "stream_state"},
		"element a string":             {"element 1"},
		"unknown state type":           {"element 1", "SOMETIMES"},
		"stream without descriptor":    {"element 1", "stream_descriptor"},
		"global without stream_states": {"element 1", "global.stream_states"},
		"bookmark a string":            {"bookmarks.events"},
	}
	for _, tc := range fileCases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeJSON(t, "state.json", tc.content)
			w := append([]string{"state file " + path}, want[tc.name]...)
			requireAirbyteFailure(t, runBin(t, "read", "--config", cfg, "--catalog", cat, "--state", path), "config_error", w)
			requireSingerFailure(t, runBin(t, "--config", cfg, "--catalog", singerCat, "--state", path), "config_error", w)
		})
	}

	streamCases := []struct {
		name, stream, state string
		want                []string
	}{
		{"cursor a number", "events", `{"datetime":5}`, []string{"datetime", `"events"`, "date-time"}},
		{"cursor not a date", "events", `{"datetime":"yesterday"}`, []string{"datetime", `"events"`, "yesterday"}},
		{"parents a list", "list_memberships", `{"parents":[]}`, []string{"parents", `"list_memberships"`}},
		{"parent cursor a bool", "list_memberships", `{"parents":{"X1":{"joined_group_at":true}}}`, []string{"parents.X1.joined_group_at", `"list_memberships"`}},
	}
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			r := runBin(t, "read", "--config", cfg, "--catalog", cat, "--state", writeJSON(t, "state.json", stream(tc.stream, tc.state)))
			requireNoCrash(t, r)
			require.Equal(t, 1, r.code, "%s", tail(r.stdout))
			o := parseAirbyte(t, r.stdout)
			var others []string
			for _, n := range []string{"events", "metrics", "list_memberships"} {
				if n != tc.stream {
					others = append(others, n)
				}
			}
			requireStatuses(t, o, others, "COMPLETE")
			st := o.StreamStatuses(tc.stream)
			require.Equal(t, "INCOMPLETE", st[len(st)-1])
			require.Empty(t, o.Rows(tc.stream))
			errs := o.Errors()
			require.NotEmpty(t, errs)
			require.Equal(t, "config_error", errs[0].FailureType, errs[0].Message)
			requireOneSentence(t, errs[0].Message, append([]string{"state file"}, tc.want...))
			for _, e := range errs {
				require.NotContains(t, e.String(), "\n")
			}
		})
	}
}

// TestStateInOtherShapes: states written by other tools (Airbyte's legacy object, Singer bookmarks, the Singer SDK's
// replication_key_value) are honoured by read, an Airbyte state array is honoured by a Singer sync, and states of
// streams not in the catalog are ignored.
func TestStateInOtherShapes(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 4})
	cfg := configFor(t, srv, nil)
	cat := configuredCatalog(t, cfg, true, "events", "metrics")
	events, _ := catalog.Lookup("events")
	full := runBin(t, "read", "--config", cfg, "--catalog", cat)
	require.Equal(t, 0, full.code)
	fo := parseAirbyte(t, full.stdout)
	all := fo.Rows("events")
	require.NotEmpty(t, all)
	// The cursor of the middle event: a state there must bring roughly the later half, none older than it.
	times := make([]time.Time, 0, len(all))
	for _, row := range all {
		times = append(times, cursorOf(t, events, row))
	}
	mid := medianTime(times)
	from := mid.UTC().Format(time.RFC3339)
	cursor := `{"datetime":"` + from + `"}`

	shapes := []struct{ name, state string }{
		{"airbyte legacy data", `{"data":{"events":` + cursor + `}}`},
		{"airbyte legacy without type in array", `[{"data":{"events":` + cursor + `}}]`},
		{"bare legacy object", `{"events":` + cursor + `}`},
		{"singer bookmarks", `{"bookmarks":{"events":` + cursor + `}}`},
		{"singer sdk replication_key_value", `{"bookmarks":{"events":{"replication_key":"datetime","replication_key_value":"` + from + `"}}}`},
		{"singer STATE message", `{"type":"STATE","value":{"bookmarks":{"events":` + cursor + `}}}`},
		{"streams not in the catalog", `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":` + cursor + `}},` +
			`{"type":"STREAM","stream":{"stream_descriptor":{"name":"flows"},"stream_state":{"updated":"2999-01-01T00:00:00Z"}}},` +
			`{"type":"STREAM","stream":{"stream_descriptor":{"name":"no_such_stream"},"stream_state":{"x":1}}}]`},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			r := runBin(t, "read", "--config", cfg, "--catalog", cat, "--state", writeJSON(t, "state.json", sh.state))
			requireNoCrash(t, r)
			require.Equal(t, 0, r.code, "%s", tail(r.stdout))
			o := parseAirbyte(t, r.stdout)
			requireStatuses(t, o, []string{"events", "metrics"}, "COMPLETE")
			require.Empty(t, o.StatesOf("flows"), "a state for a stream not in the catalog was written back")
			requireResumedFrom(t, events, mid, all, o.Rows("events"))
			require.Len(t, o.Rows("metrics"), len(fo.Rows("metrics")))
		})
	}

	t.Run("airbyte array to singer", func(t *testing.T) {
		state := `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":` + cursor + `}}]`
		singerCat := writeJSON(t, "singer_catalog.json", `{"streams":[{"tap_stream_id":"events"}]}`)
		r := runBin(t, "--config", cfg, "--catalog", singerCat, "--state", writeJSON(t, "state.json", state))
		requireNoCrash(t, r)
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		so, err := protocol.ParseSingerOutput(r.stdout)
		require.NoError(t, err)
		var rows []map[string]any
		for _, rec := range so.Records("events") {
			rows = append(rows, rec.Record)
		}
		requireResumedFrom(t, events, mid, all, rows)
		lastState := so.LastState()
		require.NotNil(t, lastState, "the Singer sync wrote no STATE")
		var st struct {
			Bookmarks map[string]map[string]any `json:"bookmarks"`
		}
		require.NoError(t, json.Unmarshal(lastState, &st))
		require.Contains(t, st.Bookmarks, "events")
	})
}

// requireResumedFrom checks a read resumed at `from`: no event older than it, every event at or after it present.
func requireResumedFrom(t *testing.T, s catalog.Stream, from time.Time, all, got []map[string]any) {
	t.Helper()
	var want []map[string]any
	for _, row := range all {
		if !cursorOf(t, s, row).Before(from) {
			want = append(want, row)
		}
	}
	require.Less(t, len(want), len(all), "the chosen cursor filters nothing: the case proves nothing")
	for _, row := range got {
		require.False(t, cursorOf(t, s, row).Before(from), "event %v is older than the state %s: the state was not honoured", row["id"], from)
	}
	requireSameRows(t, s, want, got)
}

func medianTime(ts []time.Time) time.Time {
	c := append([]time.Time(nil), ts...)
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j].Before(c[j-1]); j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c[len(c)/2]
}

// TestKeyWithoutScopes: a key Klaviyo accepts but that may read nothing fails check (exit 0, FAILED) and fails every
// stream of read with a config_error naming the missing scope.
func TestKeyWithoutScopes(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 4, APIKeys: map[string][]string{testKey: {}}})
	cfg := configFor(t, srv, nil)
	requireCheckFailed(t, runBin(t, "check", "--config", cfg), []string{"none of the Klaviyo streams", "accounts:read"})

	names := []string{"metrics", "lists", "events"}
	cat := configuredCatalog(t, cfg, true, names...)
	r := runBin(t, "read", "--config", cfg, "--catalog", cat)
	requireNoCrash(t, r)
	require.Equal(t, 1, r.code)
	o := parseAirbyte(t, r.stdout)
	require.Empty(t, o.OfType("RECORD"))
	for _, n := range names {
		st := o.StreamStatuses(n)
		require.Equal(t, "INCOMPLETE", st[len(st)-1], "stream %s", n)
	}
	joined := errorLines(o)
	for _, scope := range []string{"metrics:read", "lists:read", "events:read"} {
		require.Contains(t, joined, scope)
	}
	for _, e := range o.Errors() {
		require.Equal(t, "config_error", e.FailureType, e.Message)
	}
}

// closedPortURL returns a loopback URL nothing listens on: connections to it are refused.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// TestRefusedConnection: a base_url that refuses connections makes check say FAILED naming base_url, and read end
// with a transient_error after the client's bounded retries (about 45 s of backoff).
func TestRefusedConnection(t *testing.T) {
	t.Parallel() // mostly waits (backoffs, latency): it overlaps the other waiting tests
	base := closedPortURL(t)
	cfg := writeJSON(t, "config.json", map[string]any{"api_key": testKey, "base_url": base})
	requireCheckFailed(t, runBin(t, "check", "--config", cfg), []string{base, "base_url"})

	srv := startSandbox(t, sandbox.Options{Seed: 4})
	cat := configuredCatalog(t, configFor(t, srv, nil), false, "metrics")
	r := runBin(t, "read", "--config", cfg, "--catalog", cat)
	requireNoCrash(t, r)
	require.Equal(t, 1, r.code)
	o := parseAirbyte(t, r.stdout)
	st := o.StreamStatuses("metrics")
	require.Equal(t, "INCOMPLETE", st[len(st)-1])
	errs := o.Errors()
	require.NotEmpty(t, errs)
	require.Equal(t, "transient_error", errs[0].FailureType, errs[0].Message)
	requireOneSentence(t, errs[0].Message, []string{"metrics", "/api/metrics"})
}

// TestMissingStateFileMeansNoState documents a choice: a --state path that does not exist is read as "no state"
// (orchestrators pass a path before the first state exists), so the sync starts from the beginning.
func TestMissingStateFileMeansNoState(t *testing.T) {
	srv := startSandbox(t, sandbox.Options{Seed: 4})
	cfg := configFor(t, srv, nil)
	cat := configuredCatalog(t, cfg, true, "metrics")
	r := runBin(t, "read", "--config", cfg, "--catalog", cat, "--state", filepath.Join(t.TempDir(), "absent.json"))
	requireNoCrash(t, r)
	require.Equal(t, 0, r.code, "%s", tail(r.stdout))
	requireStatuses(t, parseAirbyte(t, r.stdout), []string{"metrics"}, "COMPLETE")
}
