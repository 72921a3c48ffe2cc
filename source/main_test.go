package source_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain is the only one of the package's test binary (internal and external tests share it). It fails the
// binary if any goroutine outlives the tests: a sync that returns while its workers, pagers or parent listings
// still run would otherwise go unnoticed, since Run returning says nothing about what it left behind.
//
// Nothing is ignored. The HTTP transport each Run builds keeps idle keep-alive connections, whose read and write
// loops are goroutines, but every sandbox is closed by then, which closes those connections, and goleak retries
// for a while so the loops have time to see it. A check that passes only because it ignores them would also pass
// a Run that leaked a transport per stream.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines outlived the tests of package source:\n%v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
