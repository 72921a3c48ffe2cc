package klaviyo

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDefaultClientSpeaksHTTP1OverTLS: the default client reads pages over HTTP/1.1 from a server that offers
// HTTP/2, even after http.DefaultTransport has been used in the process (which is when a clone of it can carry h2
// in its ALPN list; see defaultHTTPClient for why HTTP/1.1).
func TestDefaultClientSpeaksHTTP1OverTLS(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var protos []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.Proto)
		mu.Unlock()
		writeJSON(w, http.StatusOK, page("", "p1"))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	if resp, err := http.DefaultClient.Get(srv.URL); err == nil { // fails on the certificate; it need not succeed
		_ = resp.Body.Close()
	}
	resp, err := srv.Client().Get(srv.URL) // trusts the server and offers HTTP/2
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, "HTTP/2.0", resp.Proto, "the server must offer HTTP/2 for this test to mean anything")

	hc := defaultHTTPClient(4)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	hc.Transport.(*http.Transport).TLSClientConfig.RootCAs = roots
	c, err := New(Config{BaseURL: srv.URL, APIKey: "k", HTTPClient: hc})
	require.NoError(t, err)
	for range 3 {
		doc, err := c.Get(context.Background(), profilesRequest())
		require.NoError(t, err)
		assert.Len(t, doc.Data, 1)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"HTTP/2.0", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1"}, protos[len(protos)-4:])
}
