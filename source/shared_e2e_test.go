package source_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// TestStreamsOfTheSameResponsesReadThemOnce selects the campaign streams that are shapes of the same responses
// (messages and send times of every campaign's campaign-messages, audiences and tracking parameters of the
// campaigns list) and requires each endpoint read once, with every stream's records equal to a sync of that stream
// alone, each stream complete and ending on its state.
func TestStreamsOfTheSameResponsesReadThemOnce(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Hour)
	shared := []string{"campaign_messages", "campaign_send_times", "campaign_audiences", "campaign_tracking_params"}
	dir := t.TempDir()
	sync := func(names ...string) (*syncOutput, sandbox.Stats) {
		srv := startSandbox(t, sandbox.Options{Seed: 11, Now: now})
		cfg := writeFile(t, dir, "config.json", configFor(srv, nil))
		r, o := airbyteRead(t, now, cfg, airbyteCatalog(t, dir, cfg, false, names...), "")
		require.Equal(t, 0, r.code, r.stderr)
		requireCompleted(t, r, o, names)
		return o, srv.Stats()
	}
	together, stats := sync(shared...)
	for _, name := range shared {
		alone, aloneStats := sync(name)
		require.NotEmpty(t, alone.records[name], "the sandbox has %s", name)
		assert.Equal(t, alone.sortedRecords(name), together.sortedRecords(name), "%s reads the same records in a share", name)
		for path, byStatus := range aloneStats.ByPath {
			if path == "/api/campaigns" || path == "/api/campaigns/{id}/campaign-messages" {
				assert.Equal(t, byStatus, stats.ByPath[path], "%s alone asks %s as often as the shared sync does", name, path)
			}
		}
		states := 0
		for _, st := range together.states {
			if st.stream == name {
				states++
			}
		}
		assert.Equal(t, 1, states, "%s ends on its own state", name)
	}
}
