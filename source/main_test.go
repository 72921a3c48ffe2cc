package source_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// TestMain is the only one of the package's test binary (internal and external tests share it). It closes the
// shared sandbox, then fails the binary if any goroutine outlives the tests: a sync that returns while its workers, pagers or parent listings
// still run would otherwise go unnoticed, since Run returning says nothing about what it left behind.
//
// Nothing is ignored. The HTTP transport each Run builds keeps idle keep-alive connections, whose read and write
// loops are goroutines, but every sandbox is closed by then, which closes those connections, and goleak retries
// for a while so the loops have time to see it. A check that passes only because it ignores them would also pass
// a Run that leaked a transport per stream.
func TestMain(m *testing.M) {
	code := m.Run()
	closeShared()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines outlived the tests of package source:\n%v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	sharedOnce sync.Once
	sharedSrv  *sandbox.Server
	sharedErr  error
)

// shared returns a sandbox at the release's moment (releaseOptions) for the tests that never move its clock. It
// also accepts partialKey and noReadKey. Starting one per test would cost more than the tests: closing a sandbox
// after a concurrent sync waits out its 2 s shutdown deadline for the connections the transport dialed but
// never used.
func shared(tb testing.TB) *sandbox.Server {
	tb.Helper()
	sharedOnce.Do(func() {
		opts := releaseOptions()
		opts.APIKeys = map[string][]string{
			testKey:    nil,
			partialKey: {"accounts:read", "profiles:read", "events:read", "metrics:read", "lists:read"},
			noReadKey:  {},
		}
		sharedSrv, sharedErr = sandbox.Start(opts)
	})
	if sharedErr != nil {
		tb.Fatalf("starting the shared sandbox: %v", sharedErr)
	}
	return sharedSrv
}

func closeShared() {
	if sharedSrv != nil {
		_ = sharedSrv.Close()
	}
}
