package catalog

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares v, as indented JSON with each stream's schema kept on one line (the schemas have their own
// files and tests), with testdata/<name>; -update rewrites the file instead.
func golden(t *testing.T, name string, v any, schemas map[string]json.RawMessage) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	for stream, schema := range schemas {
		got = bytes.Replace(got, []byte(`"@schema:`+stream+`@"`), schema, 1)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./catalog -run Golden -update to create it")
	assert.Equal(t, string(want), string(got), "%s differs; review the change and run with -update", name)
}

func TestAirbyteCatalogGolden(t *testing.T) {
	streams, err := AirbyteStreams()
	require.NoError(t, err)
	schemas := map[string]json.RawMessage{}
	for i, s := range streams {
		schemas[s.Name] = s.JSONSchema
		streams[i].JSONSchema = json.RawMessage(`"@schema:` + s.Name + `@"`)
	}
	golden(t, "airbyte_catalog.golden.json", map[string]any{"streams": streams}, schemas)
}

func TestSingerCatalogGolden(t *testing.T) {
	doc, err := SingerCatalog()
	require.NoError(t, err)
	schemas := map[string]json.RawMessage{}
	for i, s := range doc.Streams {
		schemas[s.TapStreamID] = s.Schema
		doc.Streams[i].Schema = json.RawMessage(`"@schema:` + s.TapStreamID + `@"`)
	}
	golden(t, "singer_catalog.golden.json", doc, schemas)
}

func TestAirbyteStreams(t *testing.T) {
	streams, err := AirbyteStreams()
	require.NoError(t, err)
	require.Len(t, streams, len(Streams()))
	byName := map[string]AirbyteStream{}
	for _, s := range streams {
		byName[s.Name] = s
		assert.NotContains(t, string(s.JSONSchema), "\n", "%s: the schema must fit on one message line", s.Name)
		assert.True(t, json.Valid(s.JSONSchema), s.Name)
	}

	events := byName["events"]
	assert.Equal(t, []string{SyncFullRefresh, SyncIncremental}, events.SupportedSyncModes)
	assert.True(t, events.SourceDefinedCursor)
	assert.True(t, events.IsResumable)
	assert.Equal(t, []string{"datetime"}, events.DefaultCursorField)
	assert.Equal(t, [][]string{{"id"}}, events.SourceDefinedPrimaryKey)

	tags := byName["campaign_tags"]
	assert.Equal(t, []string{SyncFullRefresh}, tags.SupportedSyncModes)
	assert.False(t, tags.SourceDefinedCursor)
	assert.False(t, tags.IsResumable)
	assert.Nil(t, tags.DefaultCursorField)
	assert.Equal(t, [][]string{{"tag_id"}, {"campaign_id"}}, tags.SourceDefinedPrimaryKey)

	b, err := json.Marshal(tags)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "default_cursor_field", "an absent cursor is left out, not sent as null")
}

func TestSingerCatalogMetadata(t *testing.T) {
	doc, err := SingerCatalog()
	require.NoError(t, err)
	require.Len(t, doc.Streams, len(Streams()))
	entries := map[string]SingerStream{}
	for _, e := range doc.Streams {
		entries[e.TapStreamID] = e
		assert.Equal(t, e.TapStreamID, e.Stream)
		require.NotEmpty(t, e.Metadata)
		assert.Equal(t, []string{}, e.Metadata[0].Breadcrumb, "%s: root metadata first", e.TapStreamID)
	}

	ev := entries["events"]
	assert.Equal(t, ReplicationIncremental, ev.ReplicationMethod)
	assert.Equal(t, "datetime", ev.ReplicationKey)
	assert.Equal(t, []string{"id"}, ev.KeyProperties)
	root := ev.Metadata[0].Metadata
	assert.Equal(t, "available", root["inclusion"])
	assert.Equal(t, true, root["selected-by-default"])
	assert.Equal(t, []string{"id"}, root["table-key-properties"])
	assert.Equal(t, []string{"datetime"}, root["valid-replication-keys"])
	assert.NotContains(t, root, "forced-replication-method")
	inclusion := map[string]any{}
	for _, m := range ev.Metadata[1:] {
		require.Len(t, m.Breadcrumb, 2)
		assert.Equal(t, "properties", m.Breadcrumb[0])
		assert.Equal(t, true, m.Metadata["selected-by-default"])
		inclusion[m.Breadcrumb[1]] = m.Metadata["inclusion"]
	}
	assert.Equal(t, "automatic", inclusion["id"])
	assert.Equal(t, "automatic", inclusion["datetime"])
	assert.Equal(t, "available", inclusion["event_properties"])
	assert.Equal(t, "available", inclusion["metric_name"])

	acc := entries["accounts"]
	assert.Equal(t, ReplicationFullTable, acc.ReplicationMethod)
	assert.Empty(t, acc.ReplicationKey)
	assert.Equal(t, ReplicationFullTable, acc.Metadata[0].Metadata["forced-replication-method"])
	assert.NotContains(t, acc.Metadata[0].Metadata, "valid-replication-keys")
}
