package jsonkind_test

import (
	"testing"

	"github.com/source-klaviyo/source-klaviyo/catalog/jsonkind"
)

func TestOf(t *testing.T) {
	cases := map[string]string{
		`{"a":1}`:        "an object",
		` {}`:            "an object",
		`[1,2]`:          "an array",
		"\n\t[]\n":       "an array",
		`"x"`:            "a string",
		`true`:           "a boolean",
		`false`:          "a boolean",
		`null`:           "null",
		`0`:              "a number",
		`-1.5e3`:         "a number",
		``:               "nothing",
		" \r\n\t":        "nothing",
		`  "padded"    `: "a string",
	}
	for in, want := range cases {
		if got := jsonkind.Of([]byte(in)); got != want {
			t.Errorf("Of(%q) = %q, want %q", in, got, want)
		}
	}
}
