package source

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// appendString writes a string and its bytes the same way, as encoding/json would (HTML-escaped, invalid UTF-8
// replaced): relationship ids are written from the page's bytes, other strings from strings.
func TestAppendStringSameForStringAndBytes(t *testing.T) {
	for _, s := range []string{"", "01GDDKASAP8TKDDA2GRZDSVP4H", `a"b\c`, "<&>", "é", "tab\there", "\xff", "\u2028"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendString(nil, s)), "%q", s)
		require.Equal(t, string(want), string(appendString([]byte(nil), []byte(s))), "%q", s)
	}
}
