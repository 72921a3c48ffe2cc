package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The defaults apply without GOMEMLIMIT, GOGC alone keeps the user's percent, and GOMEMLIMIT leaves both alone.
// Not parallel: the settings are the process's.
func TestTuneGC(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	tuneGC(env(nil))
	assert.Equal(t, gcPercent, debug.SetGCPercent(100))
	assert.Equal(t, int64(memoryLimit), debug.SetMemoryLimit(math.MaxInt64))

	tuneGC(env(map[string]string{"GOGC": "150"}))
	assert.Equal(t, 100, debug.SetGCPercent(100), "the runtime reads GOGC itself; tuneGC leaves the percent")
	assert.Equal(t, int64(memoryLimit), debug.SetMemoryLimit(math.MaxInt64))

	tuneGC(env(map[string]string{"GOMEMLIMIT": "1GiB"}))
	assert.Equal(t, 100, debug.SetGCPercent(100))
	assert.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(math.MaxInt64))
}
