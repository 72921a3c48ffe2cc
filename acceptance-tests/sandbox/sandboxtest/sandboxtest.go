// Package sandboxtest starts the sandbox for a test and stops it when the test ends.
package sandboxtest

import (
	"testing"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// Start runs a sandbox with opts on a free loopback port, fails the test if it cannot start, and closes it when
// the test (and its subtests) end.
func Start(tb testing.TB, opts sandbox.Options) *sandbox.Server {
	tb.Helper()
	srv, err := sandbox.Start(opts)
	if err != nil {
		tb.Fatalf("starting the sandbox: %v", err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv
}
