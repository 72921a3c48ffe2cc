package sandbox

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trusting is a client that trusts only the sandbox's certificate and, like the connector's transport (a clone
// of http.DefaultTransport), takes HTTP/2 when the server offers it.
func trusting(t testing.TB, s *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(s.CertificatePEM()), "the certificate is PEM")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// getWith is an authenticated GET of the first events page through c: its protocol and body.
func getWith(t testing.TB, c *http.Client, s *Server) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/api/events?page[size]=50&include=metric", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Klaviyo-API-Key "+DefaultAPIKey)
	req.Header.Set("revision", LatestRevision)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return resp.ProtoMajor, strings.ReplaceAll(string(b), s.URL(), "BASE")
}

// Over HTTPS the sandbox serves the same documents, links included (with its https base), over HTTP/2 unless
// asked for HTTP/1.1, and only to clients that trust its certificate.
func TestTLS(t *testing.T) {
	plain := startSmall(t, nil)
	assert.Nil(t, plain.CertificatePEM(), "plain HTTP has no certificate")
	_, want := getWith(t, http.DefaultClient, plain)

	for _, c := range []struct {
		opts  TLS
		proto int
	}{{TLS{On: true}, 2}, {TLS{On: true, HTTP1: true}, 1}} {
		s := startSmall(t, func(o *Options) { o.TLS = c.opts })
		require.True(t, strings.HasPrefix(s.URL(), "https://127.0.0.1:"), s.URL())
		proto, got := getWith(t, trusting(t, s), s)
		assert.Equal(t, c.proto, proto, "%+v", c.opts)
		assert.Equal(t, want, got, "the same document, base URL aside")
		resp, err := http.DefaultClient.Get(s.URL() + "/_sandbox/clock")
		if err == nil {
			resp.Body.Close()
		}
		var unknown x509.UnknownAuthorityError
		assert.ErrorAs(t, err, &unknown, "a client that does not trust the certificate is refused")
	}
}
