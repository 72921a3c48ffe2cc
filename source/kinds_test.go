package source_test

import (
	"slices"
	"sort"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
)

// kindCase is one stream standing for a kind and shape of the stream table, and what its rows look like.
type kindCase struct {
	stream string
	kind   catalog.Kind
	shape  catalog.Shape
	// keys, when set, are exactly the fields of every row (the shapes that build rows themselves).
	keys []string
}

// kindCases cover every Kind and every Shape of the stream table, plus the collection variants the engine reads
// differently (no upper bound, no cursor, variants per channel) and a grandchild (flow messages per flow action).
var kindCases = []kindCase{
	{stream: "events", kind: catalog.Collection, shape: catalog.Flat},
	{stream: "profiles", kind: catalog.Collection, shape: catalog.Flat},
	{stream: "lists", kind: catalog.Collection, shape: catalog.Flat},
	{stream: "campaigns", kind: catalog.Collection, shape: catalog.Flat},
	{stream: "metrics", kind: catalog.Collection, shape: catalog.Flat},
	{stream: "accounts", kind: catalog.Collection, shape: catalog.Flat},
	{stream: "list_memberships", kind: catalog.PerParent, shape: catalog.Membership, keys: []string{"joined_group_at", "list_id", "profile_id"}},
	{stream: "segment_memberships", kind: catalog.PerParent, shape: catalog.Membership, keys: []string{"joined_group_at", "profile_id", "segment_id"}},
	{stream: "flow_messages", kind: catalog.PerParent, shape: catalog.Flat},
	{stream: "coupon_codes", kind: catalog.PerParent, shape: catalog.Flat},
	{stream: "campaign_messages", kind: catalog.PerParent, shape: catalog.Flat},
	{stream: "campaign_send_times", kind: catalog.PerParent, shape: catalog.SendTimes, keys: []string{"campaign_id", "campaign_message_id", "datetime", "is_local"}},
	{stream: "campaign_send_jobs", kind: catalog.PerParentObject, shape: catalog.Flat},
	{stream: "campaign_recipient_estimations", kind: catalog.PerParentObject, shape: catalog.Flat},
	{stream: "campaign_tags", kind: catalog.PerParentLinks, shape: catalog.Flat, keys: []string{"campaign_id", "tag_id"}},
	{stream: "segment_tags", kind: catalog.PerParentLinks, shape: catalog.Flat, keys: []string{"segment_id", "tag_id"}},
	{stream: "campaign_audiences", kind: catalog.Collection, shape: catalog.Audiences, keys: []string{"audience_id", "campaign_id", "inclusion"}},
	{stream: "campaign_tracking_params", kind: catalog.Collection, shape: catalog.TrackingParams},
	{stream: "global_exclusions", kind: catalog.Collection, shape: catalog.Suppressions, keys: []string{"email", "profile_id", "reason", "timestamp"}},
	{stream: "list_exclusions", kind: catalog.Collection, shape: catalog.ListSuppressions, keys: []string{"email", "list_id", "profile_id", "reason", "timestamp"}},
}

// The cases stay complete as the table grows: a new kind or shape needs a case here.
func TestKindCasesCoverEveryKindAndShape(t *testing.T) {
	kinds, shapes := map[catalog.Kind]bool{}, map[catalog.Shape]bool{}
	for _, c := range kindCases {
		s, ok := catalog.Lookup(c.stream)
		require.True(t, ok, c.stream)
		require.Equal(t, c.kind, s.Kind, "%s: kind", c.stream)
		require.Equal(t, c.shape, s.Shape, "%s: shape", c.stream)
		kinds[s.Kind], shapes[s.Shape] = true, true
	}
	for _, s := range catalog.Streams() {
		require.True(t, kinds[s.Kind], "no case reads a stream of kind %d (%s)", s.Kind, s.Name)
		require.True(t, shapes[s.Shape], "no case reads a stream of shape %q (%s)", s.Shape, s.Name)
	}
}

// TestStreamKindsAndShapes reads each case's stream alone, in both dialects and both modes, on a sandbox at the
// release's moment. A stream read alone must write exactly what it wrote in the release's sync of every stream
// (the goldens): neither the parent cache nor the other streams may change a row. Every row must match the
// stream's JSON Schema, carry its primary key, and for the shapes that build rows have exactly their fields.
func TestStreamKindsAndShapes(t *testing.T) {
	srv := shared(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.json", configFor(srv, nil))
	now := srv.Now()
	for _, c := range kindCases {
		s, _ := catalog.Lookup(c.stream)
		validate := schemaValidator(t, c.stream)
		rows := func(t *testing.T, o *syncOutput) []json.RawMessage {
			var out []json.RawMessage
			for _, d := range o.rows(c.stream) {
				requireRow(t, s, c, validate, d)
				out = append(out, d)
			}
			return out
		}
		t.Run(c.stream+"/airbyte-full-refresh", func(t *testing.T) {
			r, o := airbyteRead(t, now, cfg, airbyteCatalog(t, dir, cfg, false, c.stream), "")
			requireCompleted(t, r, o, []string{c.stream})
			final := checkAirbyteStates(t, o, nil, now)
			rows(t, o)
			requireSameLines(t, runFullRefresh, c.stream, o.sortedRecords(c.stream))
			require.JSONEq(t, `{}`, string(final[c.stream]), "a full refresh ends on the empty state")
		})
		t.Run(c.stream+"/airbyte-incremental", func(t *testing.T) {
			r, o := airbyteRead(t, now, cfg, airbyteCatalog(t, dir, cfg, true, c.stream), "")
			requireCompleted(t, r, o, []string{c.stream})
			final := checkAirbyteStates(t, o, nil, now)
			rows(t, o)
			requireSameLines(t, runIncremental, c.stream, o.sortedRecords(c.stream))
			require.Equal(t, string(goldenFinal(t, runIncremental, c.stream)), string(final[c.stream]))
		})
		t.Run(c.stream+"/singer-incremental", func(t *testing.T) {
			r, o := singerSync(t, now, cfg, singerCatalog(t, dir, cfg, c.stream), "")
			require.Equal(t, 0, r.code, r.stderr)
			final, _ := checkSingerStates(t, o, nil, now)
			requireSingerSchema(t, s, o, s.Incremental())
			rows(t, o)
			requireSameLines(t, runSinger, c.stream, o.sortedRecords(c.stream))
			require.Equal(t, string(goldenFinal(t, runSinger, c.stream)), string(final[c.stream]))
		})
		t.Run(c.stream+"/singer-full-table", func(t *testing.T) {
			r, o := singerSync(t, now, cfg, singerCatalogAs(t, dir, cfg, "FULL_TABLE", c.stream), "")
			require.Equal(t, 0, r.code, r.stderr)
			final, _ := checkSingerStates(t, o, nil, now)
			requireSingerSchema(t, s, o, false)
			// The Singer envelope differs; the rows are the Airbyte full refresh's.
			require.Equal(t, sortedStrings(goldenData(t, runFullRefresh, c.stream)), sortedStrings(rows(t, o)))
			require.JSONEq(t, `{}`, string(final[c.stream]))
		})
	}
}

// requireRow checks one row against the stream's schema, primary key and, for shapes that build rows, key set.
func requireRow(t *testing.T, s catalog.Stream, c kindCase, validate *gojsonschema.Schema, d json.RawMessage) {
	t.Helper()
	res, err := validate.Validate(gojsonschema.NewBytesLoader(d))
	require.NoError(t, err)
	require.True(t, res.Valid(), "%s row does not match its schema: %v\n%s", s.Name, res.Errors(), d)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(d, &m))
	for _, k := range s.PrimaryKey {
		v, ok := m[k]
		require.True(t, ok && string(v) != "null", "%s row lacks primary key field %s: %s", s.Name, k, d)
	}
	if s.ParentKey != "" {
		require.Contains(t, m, s.ParentKey, "%s row lacks its parent's id: %s", s.Name, d)
	}
	if c.keys != nil {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		require.Equal(t, c.keys, keys, "%s row fields", s.Name)
	}
}

// requireSingerSchema checks the SCHEMA message a Singer target gets for the stream: the stream's schema file,
// its primary key, and its cursor as bookmark property when it is read incrementally.
func requireSingerSchema(t *testing.T, s catalog.Stream, o *syncOutput, incremental bool) {
	t.Helper()
	m, ok := o.schemas[s.Name]
	require.True(t, ok, "no SCHEMA for %s", s.Name)
	want, err := schemas.Get(s.Name)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(m.Schema), "the SCHEMA of %s is its schema file", s.Name)
	require.Equal(t, s.PrimaryKey, m.KeyProperties)
	if incremental {
		require.Equal(t, []string{s.Cursor.Field}, m.BookmarkProperties)
	} else {
		require.Empty(t, m.BookmarkProperties)
	}
}

// requireSameLines compares a stream's sorted lines with the golden of run, byte for byte.
func requireSameLines(t *testing.T, run, stream string, got []string) {
	t.Helper()
	b, err := readGolden(run, stream)
	require.NoError(t, err)
	want := splitLines(b)
	if !slices.Equal(want, got) {
		i := 0
		for i < len(want) && i < len(got) && want[i] == got[i] {
			i++
		}
		at := func(ls []string) string {
			if i < len(ls) {
				return ls[i]
			}
			return "<end>"
		}
		t.Fatalf("stream %s read alone differs from the release's %s golden: %d lines, golden %d; first difference at line %d:\n got: %.1000s\nwant: %.1000s", stream, run, len(got), len(want), i+1, at(got), at(want))
	}
}

func sortedStrings(ds []json.RawMessage) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, string(d))
	}
	sort.Strings(out)
	return out
}

// schemaValidator compiles a stream's JSON Schema.
func schemaValidator(t *testing.T, stream string) *gojsonschema.Schema {
	t.Helper()
	s, err := schemas.Compile(stream)
	require.NoError(t, err)
	return s
}
