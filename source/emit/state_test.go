package emit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

func TestParseStateAcceptsEveryShape(t *testing.T) {
	events := `{"datetime":"2026-01-01T00:00:00Z"}`
	profiles := `{"updated":"2026-02-01T00:00:00Z"}`
	cases := map[string]struct {
		in   string
		want map[string]string
	}{
		"empty file":       {in: "", want: map[string]string{}},
		"whitespace":       {in: " \n\t", want: map[string]string{}},
		"null":             {in: "null", want: map[string]string{}},
		"empty array":      {in: "[]", want: map[string]string{}},
		"empty object":     {in: "{}", want: map[string]string{}},
		"byte order mark":  {in: "\xef\xbb\xbf[]\n", want: map[string]string{}},
		"singer no marks":  {in: `{"bookmarks":{},"currently_syncing":null}`, want: map[string]string{}},
		"legacy null data": {in: `{"data":{"events":null}}`, want: map[string]string{}},
		"airbyte stream states": {
			in: `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"events","namespace":"k"},"stream_state":` + events + `},"sourceStats":{"recordCount":3.0}},
			      {"type":"STREAM","stream":{"stream_descriptor":{"name":"profiles"},"stream_state":{ "updated" : "2026-02-01T00:00:00Z" }},"extra":true},
			      {"type":"STREAM","stream":{"stream_descriptor":{"name":"lists"},"stream_state":null}},
			      {"type":"STREAM","stream":{"stream_descriptor":{"name":"metrics"}}}]`,
			want: map[string]string{"events": events, "profiles": profiles},
		},
		"stream state without type": {
			in:   `[{"stream":{"stream_descriptor":{"name":"events"},"stream_state":` + events + `}}]`,
			want: map[string]string{"events": events},
		},
		"later entry wins, null resets": {
			in: `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":{"datetime":"old"}}},
			      {"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":` + events + `}},
			      {"type":"STREAM","stream":{"stream_descriptor":{"name":"profiles"},"stream_state":` + profiles + `}},
			      {"type":"STREAM","stream":{"stream_descriptor":{"name":"profiles"},"stream_state":null}}]`,
			want: map[string]string{"events": events},
		},
		"airbyte global": {
			in: `[{"type":"GLOBAL","global":{"shared_state":{"cdc":1},"stream_states":[
			      {"stream_descriptor":{"name":"events"},"stream_state":` + events + `},
			      {"stream_descriptor":{"name":"profiles"},"stream_state":` + profiles + `}]}}]`,
			want: map[string]string{"events": events, "profiles": profiles},
		},
		"airbyte legacy in array": {
			in:   `[{"type":"LEGACY","data":{"events":` + events + `}}]`,
			want: map[string]string{"events": events},
		},
		"airbyte legacy object": {
			in:   `{"data":{"events":` + events + `,"profiles":` + profiles + `}}`,
			want: map[string]string{"events": events, "profiles": profiles},
		},
		"legacy data holding singer bookmarks": {
			in:   `{"type":"LEGACY","data":{"bookmarks":{"events":` + events + `}}}`,
			want: map[string]string{"events": events},
		},
		"bare legacy object": {
			in:   `{"events":` + events + `,"profiles":` + profiles + `}`,
			want: map[string]string{"events": events, "profiles": profiles},
		},
		"singer state": {
			in:   "{\n  \"bookmarks\": {\n    \"events\": {\"datetime\": \"2026-01-01T00:00:00Z\"}\n  },\n  \"currently_syncing\": \"events\"\n}",
			want: map[string]string{"events": events},
		},
		"singer STATE message": {
			in:   `{"type":"STATE","value":{"bookmarks":{"events":` + events + `}}}`,
			want: map[string]string{"events": events},
		},
		"airbyte STATE envelope": {
			in:   `{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":` + events + `}}}`,
			want: map[string]string{"events": events},
		},
		"one airbyte state message": {
			in:   `{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":` + events + `}}`,
			want: map[string]string{"events": events},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := emit.ParseState([]byte(tc.in))
			require.NoError(t, err)
			asStrings := map[string]string{}
			for k, v := range got {
				asStrings[k] = string(v)
			}
			assert.Equal(t, tc.want, asStrings)
		})
	}
}

func TestParseStateErrorsNameWhatIsWrong(t *testing.T) {
	ok := `{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":{}}}`
	cases := map[string]string{
		`[` + ok + `,{"type":"STREAM","stream":{"stream_descriptor":{}}}]`: "state file: element 2 is a STREAM state without stream.stream_descriptor.name",
		`42`:                              "state file: the state is a number; want a JSON array of Airbyte state messages or a JSON object",
		`"[]"`:                            "state file: the state is a string; want a JSON array of Airbyte state messages or a JSON object",
		`["x"]`:                           "state file: element 1 is a string, not a state message object",
		`[null]`:                          "state file: element 1 is null, not a state message object",
		`[{}]`:                            "state file: element 1 has no type and none of stream, global or data",
		`[{"type":"CDC"}]`:                `state file: element 1 has state type "CDC"; want STREAM, GLOBAL or LEGACY`,
		`[{"type":1}]`:                    `state file: element 1 has a "type" that is a number, not a string`,
		`[{"type":"STREAM"}]`:             "state file: element 1 is a STREAM state without stream",
		`[{"type":"STREAM","stream":[]}]`: "state file: element 1 is a STREAM state whose stream is an array, not an object",
		`[{"type":"STREAM","stream":{}}]`: "state file: element 1 is a STREAM state without stream.stream_descriptor",
		`[{"type":"STREAM","stream":{"stream_descriptor":"a"}}]`:                             "state file: element 1 is a STREAM state whose stream.stream_descriptor is a string, not an object",
		`[{"type":"STREAM","stream":{"stream_descriptor":{"name":""}}}]`:                     "state file: element 1 is a STREAM state whose stream.stream_descriptor.name is empty",
		`[{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":"x"}}]`: "state file: element 1 is a STREAM state whose stream.stream_state is a string, not a JSON object",
		`[{"type":"GLOBAL"}]`:                               "state file: element 1 is a GLOBAL state without global",
		`[{"type":"GLOBAL","global":{}}]`:                   "state file: element 1 is a GLOBAL state without global.stream_states",
		`[{"type":"GLOBAL","global":{"stream_states":{}}}]`: "state file: element 1 is a GLOBAL state whose global.stream_states is an object, not an array",
		`[{"type":"GLOBAL","global":{"stream_states":[{"stream_descriptor":{"name":true}}]}}]`: "state file: element 1 is a GLOBAL state whose global.stream_states[0].stream_descriptor.name is a boolean, not a string",
		`[{"type":"LEGACY"}]`:                                  "state file: element 1 is a LEGACY state without data",
		`[{"type":"LEGACY","data":[]}]`:                        "state file: element 1's data is an array, not an object",
		`{"bookmarks":[]}`:                                     "state file: bookmarks is an array, not an object",
		`{"bookmarks":{"events":5}}`:                           `state file: the state of stream "events" (bookmarks.events) is a number, not a JSON object`,
		`{"events":"2026-01-01"}`:                              `state file: the state of stream "events" (events) is a string, not a JSON object`,
		`{"data":{"events":[]}}`:                               `state file: the state of stream "events" (data.events) is an array, not a JSON object`,
		`{"type":"STATE"}`:                                     "state file: the STATE message has neither value (Singer) nor state (Airbyte)",
		`{"type":"STATE","value":[]}`:                          "state file: the STATE message's value is an array, not a JSON object",
		`{"type":"STATE","value":{"type":"STATE","value":{}}}`: `state file: the state message has state type "STATE"; want STREAM, GLOBAL or LEGACY`,
		`{"type":false}`:                                       `state file: the state's "type" is a boolean, not a string`,
		`{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":1}}}`: "state file: the STATE message's state is a STREAM state whose stream.stream_state is a number, not a JSON object",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			got, err := emit.ParseState([]byte(in))
			require.Error(t, err)
			assert.Nil(t, got)
			assert.Equal(t, want, err.Error())
		})
	}

	_, err := emit.ParseState([]byte(`[{"type":`))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "state file: not valid JSON: "), err.Error())
}

// TestParseStateReadsWhatTheWritersWrite closes the loop: the states each writer prints are accepted back.
func TestParseStateReadsWhatTheWritersWrite(t *testing.T) {
	events := json.RawMessage(`{"datetime":"2026-01-01T00:00:00Z"}`)

	var ab bytes.Buffer
	a := emit.NewAirbyte(&ab, emit.Options{Now: fixedNow})
	require.NoError(t, a.State("events", events))
	var msg struct{ State json.RawMessage }
	require.NoError(t, json.Unmarshal(ab.Bytes(), &msg))
	got, err := emit.ParseState([]byte("[" + string(msg.State) + "]"))
	require.NoError(t, err)
	assert.Equal(t, map[string]json.RawMessage{"events": events}, got)

	var out, errOut bytes.Buffer
	s := newSinger(&out, &errOut, emit.SingerState{}, fixedNow)
	require.NoError(t, s.State("events", events))
	var sm struct{ Value json.RawMessage }
	require.NoError(t, json.Unmarshal([]byte(lines(out.String())[1]), &sm))
	got, err = emit.ParseState(sm.Value)
	require.NoError(t, err)
	assert.Equal(t, map[string]json.RawMessage{"events": events}, got)
}

// FuzzParseState checks that no input makes the parser panic, that errors are one "state file:" sentence, and that
// every accepted state is a compact JSON object that survives a round trip through the Singer form.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(`[{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":{"datetime":"x"}}}]`))
	f.Add([]byte(`{"bookmarks":{"events":{"datetime":"x"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := emit.ParseState(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "state file: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one state file sentence: %q", err)
			}
			return
		}
		for name, v := range got {
			if !json.Valid(v) || len(v) == 0 || v[0] != '{' || bytes.IndexByte(v, '\n') >= 0 {
				t.Fatalf("state of %q is not a compact JSON object: %q", name, v)
			}
		}
		var doc bytes.Buffer
		enc := json.NewEncoder(&doc)
		enc.SetEscapeHTML(false) // Marshal would rewrite "&" as \u0026 and make equal states differ byte for byte
		if err := enc.Encode(emit.SingerState{Bookmarks: got}); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := emit.ParseState(doc.Bytes())
		if err != nil {
			t.Fatalf("round trip of %s: %v", doc.String(), err)
		}
		if len(again) != len(got) {
			t.Fatalf("round trip changed the streams: %v vs %v", got, again)
		}
		for name, v := range got {
			if !bytes.Equal(again[name], v) {
				t.Fatalf("round trip changed %q: %s vs %s", name, v, again[name])
			}
		}
	})
}
