package source_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// files is the content of the files an error case passes: name -> content (a string is written as is, anything
// else as JSON). The name "dir" is a directory, which cannot be read as a file.
type files map[string]any

// errorCase is one invocation that must fail in a given way.
type errorCase struct {
	name  string
	files files
	// argv names files by their key in files; "@name" is replaced by the file's path.
	argv []string
	code int
	// failure is the Airbyte TRACE error's failure_type, or for Singer the type in parentheses after CRITICAL; ""
	// for the argument errors that precede any dialect (stderr "ERROR ...").
	failure string
	// want are substrings of the error message the user reads.
	want []string
	// streamErrors: the last trace error is the summary and stream errors precede it; streamWant are substrings
	// of the stream's own error.
	streamErrors bool
	streamWant   []string
}

// TestErrors runs every way of calling the connector wrongly and checks the exit code, the channel and type of
// the error (Airbyte: one TRACE error on stdout with failure_type; Singer: CRITICAL on stderr; argument errors:
// ERROR on stderr with exit 2) and that the sentence names what to fix. invoke checks on every case that no API
// key reaches stdout or stderr; several configs hold the key where the error is.
func TestErrors(t *testing.T) {
	srv := shared(t)
	good := configFor(srv, nil)
	cat := map[string]any{"streams": []any{map[string]any{
		"stream":    map[string]any{"name": "metrics", "json_schema": map[string]any{}, "supported_sync_modes": []string{"full_refresh"}},
		"sync_mode": "full_refresh", "destination_sync_mode": "append"}}}
	eventsCat := map[string]any{"streams": []any{map[string]any{
		"stream":    map[string]any{"name": "events", "json_schema": map[string]any{}, "supported_sync_modes": []string{"full_refresh", "incremental"}},
		"sync_mode": "incremental", "destination_sync_mode": "append"}}}
	membersCat := map[string]any{"streams": []any{map[string]any{
		"stream":    map[string]any{"name": "list_memberships", "json_schema": map[string]any{}, "supported_sync_modes": []string{"full_refresh", "incremental"}},
		"sync_mode": "incremental", "destination_sync_mode": "append"}}}
	singerCat := map[string]any{"streams": []any{map[string]any{"tap_stream_id": "metrics",
		"metadata": []any{map[string]any{"breadcrumb": []any{}, "metadata": map[string]any{"selected": true}}}}}}
	streamState := func(name string, st any) []any {
		return []any{map[string]any{"type": "STREAM", "stream": map[string]any{"stream_descriptor": map[string]any{"name": name}, "stream_state": st}}}
	}
	// A config that breaks off inside the key: the parser's message must not quote it.
	truncated := `{"api_key": "` + testKey + `", "base_url": `

	cases := []errorCase{
		// Argument errors, before any dialect is known.
		{name: "unknown command", argv: []string{"sync"}, code: 2, want: []string{`unknown command "sync"`, "spec, check, discover or read"}},
		{name: "no arguments", argv: nil, code: 2, want: []string{"nothing to do"}},
		{name: "singer --config without a path", argv: []string{"--config"}, code: 2, want: []string{"--config needs a file path"}},

		// Airbyte read: config.
		{name: "read without --config", argv: []string{"read", "--catalog", "@cat"}, files: files{"cat": cat}, code: 1, failure: "config_error",
			want: []string{"--config is required"}},
		{name: "read --config without a path", argv: []string{"read", "--config"}, code: 1, failure: "config_error",
			want: []string{"--config needs a file path"}},
		{name: "config file missing", argv: []string{"read", "--config", "@absent", "--catalog", "@cat"}, files: files{"cat": cat}, code: 1, failure: "config_error",
			want: []string{"config file", "cannot be read (no such file or directory)", "check the path given to --config"}},
		{name: "config unreadable", argv: []string{"read", "--config", "@dir", "--catalog", "@cat"}, files: files{"cat": cat, "dir": nil}, code: 1, failure: "config_error",
			want: []string{"cannot be read (is a directory)"}},
		{name: "config empty", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": "  \n", "cat": cat}, code: 1, failure: "config_error",
			want: []string{"is empty", "at least api_key"}},
		{name: "config not JSON", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": truncated, "cat": cat}, code: 1, failure: "config_error",
			want: []string{"is not valid JSON", "fix the file's syntax"}},
		{name: "config not an object", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": `["` + testKey + `"]`, "cat": cat}, code: 1, failure: "config_error",
			want: []string{"must hold a JSON object"}},
		{name: "config without api_key", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": map[string]any{"base_url": srv.URL()}, "cat": cat}, code: 1, failure: "config_error",
			want: []string{"does not match the connector's spec", "api_key is required", "run `spec`"}},
		{name: "api_key not a string", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": map[string]any{"api_key": 42}, "cat": cat}, code: 1, failure: "config_error",
			want: []string{"api_key must be string, not integer"}},
		{name: "start_date not a date", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"start_date": testKey}), "cat": cat}, code: 1, failure: "config_error",
			want: []string{"start_date must be an RFC 3339 date-time like 2024-01-01T00:00:00Z"}},
		{name: "start_date without a zone", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"start_date": "2024-01-01T00:00:00"}), "cat": cat}, code: 1, failure: "config_error",
			want: []string{"start_date"}},
		{name: "base_url not http", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"base_url": "ftp://example.com"}), "cat": cat}, code: 1, failure: "config_error",
			want: []string{"base_url has the wrong format"}},
		{name: "base_url without host", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"base_url": "http://"}), "cat": cat}, code: 1, failure: "config_error",
			want: []string{"base_url is not an http(s) URL with a host"}},
		{name: "rate_limit_scale out of range", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"rate_limit_scale": 5000}), "cat": cat}, code: 1, failure: "config_error",
			want: []string{"rate_limit_scale is out of range (lte)"}},
		{name: "max_concurrency zero", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"max_concurrency": -1}), "cat": cat}, code: 1, failure: "config_error",
			want: []string{"max_concurrency is out of range (gte)"}},

		// Airbyte read: catalog.
		{name: "read without --catalog", argv: []string{"read", "--config", "@cfg"}, files: files{"cfg": good}, code: 1, failure: "config_error",
			want: []string{"--catalog is required"}},
		{name: "catalog file missing", argv: []string{"read", "--config", "@cfg", "--catalog", "@absent"}, files: files{"cfg": good}, code: 1, failure: "config_error",
			want: []string{"catalog file", "cannot be read (no such file or directory)", "--catalog"}},
		{name: "catalog unreadable", argv: []string{"read", "--config", "@cfg", "--catalog", "@dir"}, files: files{"cfg": good, "dir": nil}, code: 1, failure: "config_error",
			want: []string{"cannot be read (is a directory)"}},
		{name: "catalog not JSON", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": good, "cat": "{streams"}, code: 1, failure: "config_error",
			want: []string{"catalog file"}},
		{name: "catalog unknown stream", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": good, "cat": map[string]any{"streams": []any{map[string]any{
			"stream": map[string]any{"name": "nope"}, "sync_mode": "full_refresh", "destination_sync_mode": "append"}}}}, code: 1, failure: "config_error",
			want: []string{`streams[0].stream.name: "nope" is not a Klaviyo stream`}},

		// Airbyte read: state.
		{name: "state unreadable", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@dir"}, files: files{"cfg": good, "cat": cat, "dir": nil}, code: 1, failure: "config_error",
			want: []string{"state file", "cannot be read (is a directory)", "--state"}},
		{name: "state not JSON", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": cat, "st": "[{"}, code: 1, failure: "config_error",
			want: []string{"state file", "not valid JSON"}},
		{name: "state a number", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": cat, "st": "42"}, code: 1, failure: "config_error",
			want: []string{"the state is a number"}},
		{name: "stream state a string", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": cat, "st": streamState("metrics", "x")}, code: 1, failure: "config_error",
			want: []string{"stream_state is a string, not a JSON object"}},
		// A state the stream cannot use fails that stream only, with a sentence naming the field.
		{name: "cursor not a string", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": eventsCat, "st": streamState("events", map[string]any{"datetime": 5})}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"1 of 1 streams did not sync: events"}, streamWant: []string{`datetime of stream "events" must be a date-time string`}},
		{name: "cursor not a date-time", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": eventsCat, "st": streamState("events", map[string]any{"datetime": "yesterday"})}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"events"}, streamWant: []string{`datetime of stream "events" is "yesterday", not an RFC 3339 date-time`}},
		{name: "ids_at_cursor not a list", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": eventsCat, "st": streamState("events", map[string]any{"datetime": "2026-01-01T00:00:00Z", "ids_at_cursor": "a"})}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"events"}, streamWant: []string{`ids_at_cursor of stream "events" must be a list of ids`}},
		{name: "parents not a map", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": membersCat, "st": streamState("list_memberships", map[string]any{"parents": []int{1}})}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"list_memberships"}, streamWant: []string{`"parents" of stream "list_memberships" must map parent ids to {"joined_group_at": date-time}`}},
		{name: "parent cursor not a date-time", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": membersCat, "st": streamState("list_memberships", map[string]any{"parents": map[string]any{"x": map[string]any{"joined_group_at": "soon"}}})}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"list_memberships"}, streamWant: []string{`parents.x.joined_group_at of stream "list_memberships" is "soon"`}},
		{name: "parent ids not a list", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": membersCat, "st": streamState("list_memberships", map[string]any{"parents": map[string]any{"x": map[string]any{"joined_group_at": "2026-01-01T00:00:00Z", "ids_at_cursor": 1}}})}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"list_memberships"}, streamWant: []string{`parents.x.ids_at_cursor of stream "list_memberships" must be a list of ids`}},
		{name: "state not an object for the stream", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": eventsCat, "st": map[string]any{"bookmarks": map[string]any{"events": []int{1}}}}, code: 1, failure: "config_error",
			want: []string{"events", "not a JSON object"}},

		// Klaviyo refuses.
		{name: "unknown key", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"api_key": unknownKey}), "cat": cat}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"metrics"}, streamWant: []string{"Klaviyo refused the API key (401) on /api/metrics"}},
		{name: "key without the scope", argv: []string{"read", "--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"api_key": noReadKey}), "cat": cat}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"metrics"}, streamWant: []string{"the API key lacks scope metrics:read"}},

		// discover.
		{name: "discover without config", argv: []string{"discover"}, code: 1, failure: "config_error", want: []string{"--config is required"}},
		{name: "discover config missing", argv: []string{"discover", "--config", "@absent"}, code: 1, failure: "config_error", want: []string{"cannot be read"}},

		// Singer.
		{name: "singer config missing", argv: []string{"--config", "@absent"}, code: 1, failure: "config_error",
			want: []string{"config file", "cannot be read (no such file or directory)"}},
		{name: "singer config invalid", argv: []string{"--config", "@cfg"}, files: files{"cfg": truncated}, code: 1, failure: "config_error",
			want: []string{"is not valid JSON"}},
		{name: "singer second config missing", argv: []string{"--config", "@cfg", "--config", "@absent"}, files: files{"cfg": good}, code: 1, failure: "config_error",
			want: []string{"cannot be read (no such file or directory)"}},
		{name: "singer second config not an object", argv: []string{"--config", "@cfg", "--config", "@bad"}, files: files{"cfg": good, "bad": "[1]"}, code: 1, failure: "config_error",
			want: []string{"must hold a JSON object"}},
		{name: "singer merged config invalid", argv: []string{"--config", "@cfg", "--config", "@bad"}, files: files{"cfg": good, "bad": map[string]any{"api_key": ""}}, code: 1, failure: "config_error",
			want: []string{"config files", "api_key must not be empty"}},
		{name: "singer catalog missing", argv: []string{"--config", "@cfg", "--catalog", "@absent"}, files: files{"cfg": good}, code: 1, failure: "config_error",
			want: []string{"catalog file", "cannot be read"}},
		{name: "singer catalog unknown stream", argv: []string{"--config", "@cfg", "--properties", "@cat"}, files: files{"cfg": good, "cat": map[string]any{"streams": []any{map[string]any{"tap_stream_id": "nope"}}}}, code: 1, failure: "config_error",
			want: []string{`"nope" is not a Klaviyo stream`}},
		{name: "singer state invalid", argv: []string{"--config", "@cfg", "--catalog", "@cat", "--state", "@st"}, files: files{"cfg": good, "cat": singerCat, "st": "{"}, code: 1, failure: "config_error",
			want: []string{"state file", "not valid JSON"}},
		{name: "singer state unreadable", argv: []string{"--config", "@cfg", "--catalog", "@cat", "--state", "@dir"}, files: files{"cfg": good, "cat": singerCat, "dir": nil}, code: 1, failure: "config_error",
			want: []string{"state file", "cannot be read"}},
		{name: "singer discover config invalid", argv: []string{"--config", "@cfg", "--discover"}, files: files{"cfg": map[string]any{"api_key": 1}}, code: 1, failure: "config_error",
			want: []string{"api_key must be string"}},
		{name: "singer stream fails", argv: []string{"--config", "@cfg", "--catalog", "@cat"}, files: files{"cfg": configFor(srv, map[string]any{"api_key": noReadKey}), "cat": singerCat}, code: 1, failure: "config_error", streamErrors: true,
			want: []string{"1 of 1 streams did not sync: metrics"}, streamWant: []string{"the API key lacks scope metrics:read"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := map[string]string{"absent": dir + "/absent.json", "dir": dir}
			for name, content := range c.files {
				if name != "dir" {
					paths[name] = writeFile(t, dir, name+".json", content)
				}
			}
			argv := make([]string, len(c.argv))
			for i, a := range c.argv {
				if p, ok := strings.CutPrefix(a, "@"); ok {
					a = paths[p]
					require.NotEmpty(t, a, "no file %q", p)
				}
				argv[i] = a
			}
			r := invoke(t, srv.Now(), argv...)
			require.Equal(t, c.code, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			switch {
			case c.failure == "":
				require.Empty(t, r.stdout)
				require.True(t, strings.HasPrefix(r.stderr, "ERROR "), r.stderr)
				requireContainsAll(t, r.stderr, c.want)
			case len(argv) > 0 && !strings.HasPrefix(argv[0], "-"):
				requireAirbyteFailure(t, r, c)
			default:
				// Singer: stdout carries only Singer messages. An error before the sync is one CRITICAL line on
				// stderr; errors during it are ERROR lines, the last the summary. Each ends with its failure type.
				parseSinger(t, r.stdout)
				prefix := "CRITICAL "
				if c.streamErrors {
					prefix = "ERROR "
				}
				var found []string
				for _, l := range strings.Split(r.stderr, "\n") {
					if strings.HasPrefix(l, prefix) {
						found = append(found, l)
					}
				}
				require.NotEmpty(t, found, "no %sline:\n%s", prefix, r.stderr)
				last := found[len(found)-1]
				if !c.streamErrors {
					require.Len(t, found, 1, "one CRITICAL line:\n%s", r.stderr)
					require.NotContains(t, r.stderr, "ERROR ")
				}
				require.True(t, strings.HasSuffix(last, "("+c.failure+")"), "%q ends with the failure type %s", last, c.failure)
				requireContainsAll(t, last, c.want)
				requireContainsAll(t, r.stderr, c.streamWant)
			}
		})
	}
}

// requireAirbyteFailure checks that an Airbyte invocation ended on a TRACE error of the case's type, and that
// before a sync starts that error is the only message on stdout.
func requireAirbyteFailure(t *testing.T, r result, c errorCase) {
	t.Helper()
	require.Empty(t, r.stderr, "Airbyte errors go to stdout")
	o := parseAirbyte(t, r.stdout)
	errs := o.errors
	require.NotEmpty(t, errs, "no TRACE error:\n%s", r.stdout)
	last := errs[len(errs)-1]
	require.Equal(t, c.failure, last.FailureType, last.Message)
	requireContainsAll(t, last.Message, c.want)
	if !c.streamErrors {
		require.Equal(t, 1, o.messages, "an error before the sync is the only message:\n%s", r.stdout)
		return
	}
	// A stream that fails gets its own error naming it, ends INCOMPLETE, and still has a state.
	for _, e := range errs[:len(errs)-1] {
		name := e.Stream
		require.NotEmpty(t, name, "a stream error names its stream")
		require.Contains(t, e.Message, "Stream "+name+" did not finish")
		requireContainsAll(t, e.Message, c.streamWant)
		require.Equal(t, "INCOMPLETE", o.statuses[name][len(o.statuses[name])-1])
		stated := false
		for _, st := range o.states {
			stated = stated || st.stream == name
		}
		require.True(t, stated, "failed stream %s still writes a state", name)
	}
	require.Greater(t, len(errs), 1, "the stream's own error precedes the summary")
}

func requireContainsAll(t *testing.T, s string, want []string) {
	t.Helper()
	for _, w := range want {
		require.Contains(t, s, w)
	}
}
