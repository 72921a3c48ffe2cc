package sandboxtest

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

func TestStartServesUntilTheTestEnds(t *testing.T) {
	var url string
	t.Run("inner", func(t *testing.T) {
		srv := Start(t, sandbox.Options{Seed: 1})
		url = srv.URL()
		resp, err := http.Get(url + "/api/accounts")
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the sandbox answers, and wants a key")
	})
	_, err := http.Get(url + "/api/accounts")
	require.Error(t, err, "the sandbox is closed once its test ended")
}
