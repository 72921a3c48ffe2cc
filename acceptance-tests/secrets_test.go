package acceptance_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// This file hunts for the API key in everything the binary writes. Every run goes through runBin or
// runSignalled, which fail the test when testKey appears on stdout or stderr; the cases here add the paths where
// the key is most likely to slip out: a server that echoes the Authorization header back in its error bodies and
// links, and config values that carry the key where it does not belong.

// echoServer answers like a hostile or buggy Klaviyo: every answer quotes the request's Authorization header.
// mode picks the answer; "<status> then ok" modes answer the first request of each path with the fault and the
// next ones with an empty page. It counts the requests that carried testKey, so a test can prove the echo happened.
type echoServer struct {
	*httptest.Server
	mu       sync.Mutex
	seen     map[string]int
	withKey  int
	mode     string
	redirect string
}

func newEchoServer(t *testing.T, mode string) *echoServer {
	e := &echoServer{seen: map[string]int{}, mode: mode}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

func (e *echoServer) serve(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	e.mu.Lock()
	e.seen[r.URL.Path]++
	n := e.seen[r.URL.Path]
	if strings.Contains(auth, testKey) {
		e.withKey++
	}
	e.mu.Unlock()
	errBody := func(status int) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.Header().Set("X-Echo", auth)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"id":"e1","status":%d,"code":"echo","title":"You sent %s","detail":"Header was: %s","source":{"parameter":"%s"}}]}`,
			status, auth, auth, auth)
	}
	emptyPage := func() {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		fmt.Fprintf(w, `{"data":[],"links":{"self":"%s"}}`, e.URL+r.URL.Path)
	}
	switch e.mode {
	case "401", "403", "400", "404", "405", "501":
		var status int
		fmt.Sscan(e.mode, &status)
		errBody(status)
	case "429 daily quota":
		w.Header().Set("Retry-After", "86400")
		errBody(http.StatusTooManyRequests)
	case "500 then ok", "503 then ok", "429 then ok":
		if n > 1 {
			emptyPage()
			return
		}
		var status int
		fmt.Sscan(e.mode, &status)
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		errBody(status)
	case "malformed then ok":
		if n > 1 {
			emptyPage()
			return
		}
		w.Header().Set("Content-Type", "application/vnd.api+json")
		fmt.Fprintf(w, `{"data":[{"type":"metric","id":"%s","attributes":{"name":"%s"`, auth, auth)
	case "next link to another host":
		w.Header().Set("Content-Type", "application/vnd.api+json")
		key := strings.TrimPrefix(auth, "Klaviyo-API-Key ")
		fmt.Fprintf(w, `{"data":[],"links":{"self":"x","next":"http://%s.example.invalid/api/metrics?k=%s"}}`, strings.ToLower(key), key)
	case "redirect to another host":
		key := strings.TrimPrefix(auth, "Klaviyo-API-Key ")
		w.Header().Set("Location", "http://"+strings.ToLower(key)+".example.invalid/?key="+key)
		w.WriteHeader(http.StatusFound)
		fmt.Fprintf(w, "moved: %s", auth)
	default:
		errBody(http.StatusTeapot)
	}
}

// TestSecretsNeverEchoed runs check, read and a Singer sync against servers that echo the key back in every way a
// server can, and requires the key to be absent from all output (runBin checks every byte).
func TestSecretsNeverEchoed(t *testing.T) {
	t.Parallel() // mostly waits (backoffs, latency): it overlaps the other waiting tests
	srv := startSandbox(t, sandboxOptionsForCatalog())
	cat := configuredCatalog(t, configFor(t, srv, nil), false, "metrics", "lists")
	singerCat := writeJSON(t, "singer_catalog.json", `{"streams":[{"tap_stream_id":"metrics"}]}`)
	modes := []string{"401", "403", "400", "404", "405", "501", "429 daily quota", "500 then ok", "503 then ok", "429 then ok",
		"malformed then ok", "next link to another host", "redirect to another host"}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			e := newEchoServer(t, mode)
			cfg := writeJSON(t, "config.json", map[string]any{"api_key": testKey, "base_url": e.URL, "max_retry_wait_seconds": 5})
			check := runBin(t, "check", "--config", cfg)
			requireNoCrash(t, check)
			read := runBin(t, "read", "--config", cfg, "--catalog", cat)
			requireNoCrash(t, read)
			parseAirbyte(t, read.stdout)
			singer := runBin(t, "--config", cfg, "--catalog", singerCat)
			requireNoCrash(t, singer)
			e.mu.Lock()
			defer e.mu.Unlock()
			require.Positive(t, e.withKey, "the server never saw the key: the case proves nothing")
		})
	}
}

// sandboxOptionsForCatalog is a sandbox only used to discover the catalog.
func sandboxOptionsForCatalog() sandbox.Options { return sandbox.Options{Seed: 1} }

// TestSecretsInMisplacedConfigValues puts the key where it does not belong (inside base_url, in a field of the
// wrong type) and requires every command to keep it out of its output, whatever it says about the mistake. read
// is skipped where it would only wait out the client's retries against an unreachable host (about 45 s); check
// takes the same path with two attempts.
func TestSecretsInMisplacedConfigValues(t *testing.T) {
	t.Parallel() // mostly waits (backoffs, latency): it overlaps the other waiting tests
	srv := startSandbox(t, sandboxOptionsForCatalog())
	cat := configuredCatalog(t, configFor(t, srv, nil), false, "metrics")
	cases := []struct {
		name string
		cfg  map[string]any
		read bool
	}{
		{"base_url without host", map[string]any{"api_key": testKey, "base_url": "http:///" + testKey}, true},
		{"base_url bad escape", map[string]any{"api_key": testKey, "base_url": "http://%zz" + testKey}, true},
		{"base_url with a space", map[string]any{"api_key": testKey, "base_url": "https:// " + testKey}, true},
		{"base_url userinfo", map[string]any{"api_key": testKey, "base_url": "http://user:" + testKey + "@127.0.0.1:1"}, true},
		{"base_url key in query", map[string]any{"api_key": testKey, "base_url": "http://127.0.0.1:1/?key=" + testKey}, true},
		{"base_url key as host", map[string]any{"api_key": testKey, "base_url": "http://" + strings.ToLower(testKey) + ".invalid"}, false},
		{"key in start_date", map[string]any{"api_key": testKey, "start_date": testKey}, true},
		{"key in a boolean field", map[string]any{"api_key": testKey, "profile_subscriptions": testKey}, true},
		{"key with spaces around", map[string]any{"api_key": " " + testKey + " ", "base_url": srv.URL(), "rate_limit_scale": 10}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeJSON(t, "config.json", tc.cfg)
			runs := [][]string{{"check", "--config", cfg}, {"discover", "--config", cfg}, {"--config", cfg, "--discover"}}
			if tc.read {
				runs = append(runs, []string{"read", "--config", cfg, "--catalog", cat})
			}
			for _, args := range runs {
				requireNoCrash(t, runBin(t, args...))
			}
		})
	}
}
