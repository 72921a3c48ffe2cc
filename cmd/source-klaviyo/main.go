// Command source-klaviyo is the Klaviyo source connector: an Airbyte source (spec, check, discover, read) and a
// Singer tap (--discover, --config, --catalog, --state, --about) in one static binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/source-klaviyo/source-klaviyo/source"
)

func main() {
	tuneGC(os.Getenv)
	// SIGTERM and SIGINT cancel the sync; the engine then writes its buffered records and the state that covers
	// them before the process exits.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := source.Run(ctx, os.Args[1:], source.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
