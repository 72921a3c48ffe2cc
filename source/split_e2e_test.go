package source_test

import (
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// TestSkewedEventsSplitAndAreWrittenOnce syncs an account whose events crowd into a burst week and the last days,
// with many workers (windows split) and with one (none can split), and requires the same events, each once, and
// a state that resumes to nothing new.
func TestSkewedEventsSplitAndAreWrittenOnce(t *testing.T) {
	now := time.Now().UTC().Truncate(24 * time.Hour)
	srv := startSandbox(t, sandbox.Options{Seed: 7, Now: now, Scale: sandbox.Scale{Events: 20_000, Profiles: 300},
		EventSkew: sandbox.EventSkew{Growth: 100, Burst: 50, BurstAgo: 7 * 24 * time.Hour}, Latency: sandbox.Latency{Min: time.Millisecond, Max: 3 * time.Millisecond}})
	dir := t.TempDir()
	ids := func(concurrency int, incremental bool) (map[string]int, *syncOutput, result) {
		cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"max_concurrency": concurrency, "progress_interval_seconds": 3600}))
		cat := airbyteCatalog(t, dir, cfg, incremental, "events")
		r, o := airbyteRead(t, now, cfg, cat, "")
		require.Equal(t, 0, r.code, r.stderr)
		seen := map[string]int{}
		for _, row := range o.rows("events") {
			var ev struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(row, &ev))
			seen[ev.ID]++
		}
		return seen, o, r
	}
	for _, incremental := range []bool{true, false} {
		one, _, _ := ids(1, incremental)
		many, o, _ := ids(8, incremental)
		splitLog := ""
		for _, l := range o.logs {
			if strings.Contains(l, "events: split") {
				splitLog = l
			}
		}
		require.NotEmpty(t, splitLog, "%v\n"+
			"the skewed account makes idle workers split windows (incremental %v)", o.logs, incremental)
		for id, n := range many {
			if n != 1 {
				t.Fatalf("event %s was written %d times (incremental %v; %s)", id, n, incremental, splitLog)
			}
		}
		assert.Equal(t, len(one), len(many), "split windows read the same events as one worker does (incremental %v)", incremental)
		for id := range one {
			if many[id] == 0 {
				t.Fatalf("split windows lost event %s (incremental %v)", id, incremental)
			}
		}
		if incremental {
			states := checkAirbyteStates(t, o, nil, now)
			st := writeFile(t, dir, "state.json", []any{map[string]any{"type": "STREAM", "stream": map[string]any{
				"stream_descriptor": map[string]any{"name": "events"}, "stream_state": states["events"]}}})
			cfg := writeFile(t, dir, "config.json", configFor(srv, map[string]any{"max_concurrency": 16}))
			r, again := airbyteRead(t, now, cfg, airbyteCatalog(t, dir, cfg, true, "events"), st)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Empty(t, again.rows("events"), "the final state after split windows resumes to nothing new")
		}
	}
}
