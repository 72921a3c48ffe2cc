package main

import "runtime/debug"

// Collector defaults, used unless the environment sets GOMEMLIMIT (then GOGC and GOMEMLIMIT are the user's, read
// by the runtime as usual).
//
// A sync's live heap is a few MB (the pages being read, the state), so with the runtime's default GOGC of 100 it
// collected every 3-4 MB allocated: 25 collections for the 15,000 profiles of the benchmark's rate-profiles. A
// percent of 400 lets the heap grow to five times the live data, and the limit keeps that growth, and any live
// heap, within issue 12's memory goal (peak RSS under 64 MiB; binary, runtime and stacks take about 13 MiB beyond
// the heap). Measured with `go run ./acceptance-tests/bench` (docs/benchmarks.md), runtime defaults -> these:
// rate-profiles 13.2-16.2 -> 11.5 CPU s per million records (peak RSS 22 -> 35 MiB); cpu 4.1-4.5 -> 3.6 (37 -> 47
// MiB); rate-core-tls over HTTPS 6.7-7.7 -> 6.0 CPU s per million (40-42 -> 47 MiB). A limit of 48 MiB saved a
// little more CPU for 55.5 MiB there, too close to the goal.
const (
	memoryLimit = 40 << 20
	gcPercent   = 400
)

// tuneGC applies the collector defaults unless getenv("GOMEMLIMIT") is set. GOGC alone keeps the user's percent
// under the default limit.
func tuneGC(getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(memoryLimit)
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
