package source_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/source"
)

// cancelOnWrite is a stdout that cancels the sync's context the first time a line containing marker is written,
// so the sync is interrupted while its other streams are mid-flight. Everything written is kept.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte(w.marker)) {
		w.cancel()
	}
	return w.buf.Write(p)
}

// TestSyncsLeaveNoGoroutines runs a complete sync, syncs interrupted mid-flight in both dialects and a sync whose
// streams fail, then closes the sandbox and requires that every goroutine started since the test began has ended.
// TestMain checks the whole binary at the end; this names the syncs most likely to leak (an interruption cancels
// workers, pagers and parent listings at once) and fails on them alone. It runs no subtest in parallel, so the
// goroutines it counts are its own.
func TestSyncsLeaveNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	srv, err := sandbox.Start(sandbox.Options{Seed: 3, Now: releaseOptions().Now, Scale: releaseOptions().Scale,
		APIKeys: map[string][]string{testKey: nil, partialKey: {"accounts:read", "profiles:read"}}})
	require.NoError(t, err)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, nil))
	partial := writeFile(t, dir, "partial.json", configFor(srv, map[string]any{"api_key": partialKey}))
	incCat := airbyteCatalog(t, dir, cfg, true)
	singerCat := singerCatalog(t, dir, cfg)

	t.Run("complete", func(t *testing.T) {
		r, o := airbyteRead(t, srv.Now(), cfg, incCat, "")
		requireCompleted(t, r, o, streamNames())
	})
	t.Run("interrupted", func(t *testing.T) {
		// Cancelled when the first stream reports RUNNING: the others are then between requests.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &cancelOnWrite{marker: `"status":"RUNNING"`, cancel: cancel}
		var stderr bytes.Buffer
		code := source.Run(ctx, []string{"read", "--config", cfg, "--catalog", incCat},
			source.Env{Stdout: out, Stderr: &stderr, Now: srv.Now, ReadFile: os.ReadFile})
		require.Equal(t, source.ExitInterrupted, code)
		o := parseAirbyte(t, out.buf.String())
		checkAirbyteStates(t, o, nil, srv.Now())
		require.NotEmpty(t, o.errors)
		last := o.errors[len(o.errors)-1]
		require.Equal(t, "transient_error", last.FailureType)
		require.Contains(t, last.Message, "interrupted")
		for name, st := range o.statuses {
			end := st[len(st)-1]
			require.Contains(t, []string{"COMPLETE", "INCOMPLETE"}, end, "stream %s ends %v", name, st)
		}
		require.NotContains(t, out.buf.String(), keyPrefix)
	})
	t.Run("interrupted-singer", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &cancelOnWrite{marker: `"type":"STATE"`, cancel: cancel}
		var stderr bytes.Buffer
		code := source.Run(ctx, []string{"--config", cfg, "--catalog", singerCat},
			source.Env{Stdout: out, Stderr: &stderr, Now: srv.Now, ReadFile: os.ReadFile})
		require.Equal(t, source.ExitInterrupted, code)
		o := parseSinger(t, out.buf.String())
		checkSingerStates(t, o, nil, srv.Now())
		require.Contains(t, stderr.String(), "interrupted")
		require.NotContains(t, out.buf.String()+stderr.String(), keyPrefix)
	})
	t.Run("streams-fail", func(t *testing.T) {
		// A key without most scopes: the streams it cannot read fail with a config error, the others complete.
		r, o := airbyteRead(t, srv.Now(), partial, incCat, "")
		require.Equal(t, 1, r.code)
		require.NotEmpty(t, o.errors)
		require.True(t, strings.Contains(o.errors[len(o.errors)-1].Message, "streams did not sync"))
	})

	// Close reports an error when its shutdown deadline passes (connections the transport dialed but never used
	// keep the server waiting); it has closed every connection by then, which is all that matters here.
	_ = srv.Close()
	goleak.VerifyNone(t, before)
}
