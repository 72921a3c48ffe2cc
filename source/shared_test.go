package source

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

func selectionOf(t *testing.T, name string, incremental bool, fields ...string) catalog.Selection {
	t.Helper()
	s, ok := catalog.Lookup(name)
	require.True(t, ok, name)
	return catalog.Selection{Stream: s, Incremental: incremental, Fields: fields}
}

func TestPlanSharesGroupsTheStreamsOfTheSameResponses(t *testing.T) {
	cfg := withDefaultsForTest(t)
	sels := []catalog.Selection{
		selectionOf(t, "campaigns", true),
		selectionOf(t, "campaign_audiences", false),
		selectionOf(t, "campaign_messages", false),
		selectionOf(t, "campaign_tracking_params", false),
		selectionOf(t, "campaign_send_times", false),
		selectionOf(t, "events", true),
	}
	sh := planShares(cfg, sels)

	lists := sh["campaign_audiences"]
	require.NotNil(t, lists)
	assert.Equal(t, "campaign_audiences", lists.leader, "the first selected stream reads")
	assert.Same(t, lists, sh["campaign_tracking_params"])
	assert.ElementsMatch(t, []string{"audiences", "tracking_options"}, lists.sparse, "the leader asks for what every member keeps")
	assert.True(t, lists.lists, "the campaigns list is also the parents of campaign_messages")
	assert.Same(t, lists, sh.listing(cfg, sels[0].Stream), "listing campaigns waits for the shared read")

	msgs := sh["campaign_messages"]
	require.NotNil(t, msgs)
	assert.Equal(t, "campaign_messages", msgs.leader)
	assert.Same(t, msgs, sh["campaign_send_times"])
	assert.Nil(t, msgs.sparse, "send times keep the whole message, so the share asks for every attribute")
	assert.False(t, msgs.lists)

	assert.NotContains(t, sh, "campaigns", "an incremental read depends on its own state and reads alone")
	assert.NotContains(t, sh, "events")
	f, m := sh.follower("campaign_send_times")
	assert.Same(t, msgs, f)
	assert.Equal(t, "campaign_send_times", m.name)
	f, _ = sh.follower("campaign_messages")
	assert.Nil(t, f, "a leader follows no one")
}

func TestPlanSharesLeavesAStreamAloneWhenNothingElseReadsItsResponses(t *testing.T) {
	cfg := withDefaultsForTest(t)
	sh := planShares(cfg, []catalog.Selection{selectionOf(t, "campaign_messages", false), selectionOf(t, "lists", false)})
	assert.Empty(t, sh)
	assert.Nil(t, sh.listing(cfg, selectionOf(t, "campaigns", false).Stream))
}

// withDefaultsForTest is a config with every default of the SPEC.
func withDefaultsForTest(t *testing.T) Config {
	t.Helper()
	cfg, err := ParseConfig("config.json", []byte(`{"api_key": "pk_test_shares"}`))
	require.NoError(t, err)
	return cfg
}
