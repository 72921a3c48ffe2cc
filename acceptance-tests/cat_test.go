package acceptance_test

// This file runs acceptance-test-config.yml, the file Airbyte's connector-acceptance-test (CAT) reads, against the
// in-process sandbox. CAT itself needs Docker and a real Klaviyo key; this runner performs the same checks with
// the binary built in TestMain, so every CI run proves the declared expectations and the files they point to.
// `go test ./acceptance-tests/ -run TestCAT -update` regenerates the data files from the sandbox.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

const (
	catConfigFile = "acceptance-test-config.yml"
	// catSampleConfig stands in for secrets/config.json, which only exists where CAT runs against real Klaviyo.
	catSampleConfig = "integration_tests/sample_config.json"
	// catSeed and catNow (below) fix the sandbox's account so expected_records.jsonl and abnormal_state.json are
	// reproducible. Changing either means regenerating both with -update.
	catSeed = 20240301
	// catFutureCursor is the "abnormally large" cursor of abnormal_state.json: no record can be at or after it.
	catFutureCursor = "2999-01-01T00:00:00Z"
	// Expected records keep every record of a stream with at most catSmallStream records, and the first
	// catBigStreamSample (by primary key) of larger ones: CAT only requires the expected records to be present.
	catSmallStream     = 10
	catBigStreamSample = 5
)

// catNow is the sandbox clock. It lies far enough in the past that every future-dated event (at most 400 days
// after it) is already behind the wall clock, which bounds each sync: reads return the same records whatever
// the day the test runs.
func catNow() time.Time { return time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC) }

func catSandboxOptions() sandbox.Options { return sandbox.Options{Seed: catSeed, Now: catNow()} }

// catFile mirrors the parts of acceptance-test-config.yml this runner implements. It is decoded with unknown keys
// rejected, so a CAT option added to the file without support here fails the test instead of being ignored.
type catFile struct {
	ConnectorImage      string `yaml:"connector_image"`
	TestStrictnessLevel string `yaml:"test_strictness_level"`
	AcceptanceTests     struct {
		Spec        *catSuite[catSpecTest]        `yaml:"spec"`
		Connection  *catSuite[catConnectionTest]  `yaml:"connection"`
		Discovery   *catSuite[catDiscoveryTest]   `yaml:"discovery"`
		BasicRead   *catSuite[catBasicReadTest]   `yaml:"basic_read"`
		FullRefresh *catSuite[catFullRefreshTest] `yaml:"full_refresh"`
		Incremental *catSuite[catIncrementalTest] `yaml:"incremental"`
	} `yaml:"acceptance_tests"`
}

// catSuite is one suite: its tests, or the reason it is skipped.
type catSuite[T any] struct {
	BypassReason string `yaml:"bypass_reason"`
	Tests        []T    `yaml:"tests"`
}

// The test types below mirror CAT's inputs. TimeoutSeconds is accepted wherever CAT accepts it but not enforced:
// a busy CI machine makes wall-clock thresholds flaky, and runBin already bounds every run.

// catSpecTest: the SPEC equals spec_path, and config_path (when set) is valid against it.
type catSpecTest struct {
	SpecPath       string `yaml:"spec_path"`
	ConfigPath     string `yaml:"config_path"`
	TimeoutSeconds int    `yaml:"timeout_seconds"`
}

// catConnectionTest: check with config_path ends as status says (succeed, failed or exception).
type catConnectionTest struct {
	ConfigPath     string `yaml:"config_path"`
	Status         string `yaml:"status"`
	TimeoutSeconds int    `yaml:"timeout_seconds"`
}

// catDiscoveryTest: discover works and its streams are well formed.
type catDiscoveryTest struct {
	ConfigPath     string `yaml:"config_path"`
	TimeoutSeconds int    `yaml:"timeout_seconds"`
}

// catBasicReadTest: a full read of the discovered catalog, validated as the flags say.
type catBasicReadTest struct {
	ConfigPath             string            `yaml:"config_path"`
	ConfiguredCatalogPath  string            `yaml:"configured_catalog_path"`
	ExpectRecords          *catExpectRecords `yaml:"expect_records"`
	EmptyStreams           []catEmptyStream  `yaml:"empty_streams"`
	ValidateSchema         *bool             `yaml:"validate_schema"`
	FailOnExtraColumns     *bool             `yaml:"fail_on_extra_columns"`
	ValidateStateMessages  *bool             `yaml:"validate_state_messages"`
	ValidateStreamStatuses *bool             `yaml:"validate_stream_statuses"`
	TimeoutSeconds         int               `yaml:"timeout_seconds"`
}

// catExpectRecords: the records of path must be in the output (CAT's defaults: any order, equal data, other
// records allowed).
type catExpectRecords struct {
	Path         string `yaml:"path"`
	BypassReason string `yaml:"bypass_reason"`
	ExactOrder   bool   `yaml:"exact_order"`
	ExtraFields  bool   `yaml:"extra_fields"`
	ExtraRecords *bool  `yaml:"extra_records"`
}

// catEmptyStream is a stream allowed (here: required) to have no records.
type catEmptyStream struct {
	Name         string `yaml:"name"`
	BypassReason string `yaml:"bypass_reason"`
}

// catFullRefreshTest: two full refreshes of configured_catalog_path give the same records.
type catFullRefreshTest struct {
	ConfigPath            string `yaml:"config_path"`
	ConfiguredCatalogPath string `yaml:"configured_catalog_path"`
	TimeoutSeconds        int    `yaml:"timeout_seconds"`
}

// catIncrementalTest: the future state reads nothing, and a read from a previous read's state never goes
// behind it.
type catIncrementalTest struct {
	ConfigPath            string `yaml:"config_path"`
	ConfiguredCatalogPath string `yaml:"configured_catalog_path"`
	FutureState           *struct {
		FutureStatePath string `yaml:"future_state_path"`
		BypassReason    string `yaml:"bypass_reason"`
	} `yaml:"future_state"`
	TimeoutSeconds int `yaml:"timeout_seconds"`
}

// boolOr reads an optional CAT flag with its default.
func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func readCATFile(t *testing.T) catFile {
	t.Helper()
	b, err := os.ReadFile(catConfigFile)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f catFile
	require.NoError(t, dec.Decode(&f), "parse %s (an option this runner does not implement is an error)", catConfigFile)
	return f
}

// suiteInfo is what the strictness check needs of a suite, whatever its test type.
type suiteInfo struct {
	name    string
	present bool
	tests   int
	bypass  string
}

func infoOf[T any](name string, s *catSuite[T]) suiteInfo {
	if s == nil {
		return suiteInfo{name: name}
	}
	return suiteInfo{name: name, present: true, tests: len(s.Tests), bypass: s.BypassReason}
}

// requireHighStrictness checks what CAT's test_strictness_level: high demands of the file itself, and that the
// image it tests is the one metadata.yaml publishes.
func requireHighStrictness(t *testing.T, f catFile) {
	t.Helper()
	md, _ := readMetadata(t)
	require.Equal(t, md.Data.DockerRepository+":dev", f.ConnectorImage, "connector_image must be the dev tag of metadata.yaml's dockerRepository")
	require.Equal(t, "high", f.TestStrictnessLevel)
	a := f.AcceptanceTests
	for _, s := range []suiteInfo{
		infoOf("spec", a.Spec), infoOf("connection", a.Connection), infoOf("discovery", a.Discovery),
		infoOf("basic_read", a.BasicRead), infoOf("full_refresh", a.FullRefresh), infoOf("incremental", a.Incremental),
	} {
		require.True(t, s.present, "high strictness: suite %s must be declared", s.name)
		require.True(t, s.tests > 0 || s.bypass != "", "high strictness: suite %s needs tests or a bypass_reason", s.name)
	}
	if a.BasicRead != nil {
		for i, tc := range a.BasicRead.Tests {
			require.Empty(t, tc.ConfiguredCatalogPath, "high strictness: basic_read test %d must read the discovered catalog, not configured_catalog_path", i)
			require.NotNil(t, tc.ExpectRecords, "high strictness: basic_read test %d needs expect_records", i)
			require.True(t, tc.ExpectRecords.Path != "" || tc.ExpectRecords.BypassReason != "", "high strictness: basic_read test %d: expect_records needs a path or a bypass_reason", i)
			for _, e := range tc.EmptyStreams {
				require.NotEmpty(t, e.BypassReason, "high strictness: empty stream %s needs a bypass_reason", e.Name)
			}
		}
	}
	if a.Incremental != nil {
		for i, tc := range a.Incremental.Tests {
			require.NotNil(t, tc.FutureState, "high strictness: incremental test %d needs future_state", i)
			require.True(t, tc.FutureState.FutureStatePath != "" || tc.FutureState.BypassReason != "", "high strictness: incremental test %d: future_state needs a path or a bypass_reason", i)
		}
	}
}

// TestCAT performs, for every suite acceptance-test-config.yml declares, the checks CAT performs, against a
// sandbox whose data is fixed by catSeed and catNow.
func TestCAT(t *testing.T) {
	f := readCATFile(t)
	requireHighStrictness(t, f)
	r := catRunner{srv: startSandbox(t, catSandboxOptions())}
	a := f.AcceptanceTests
	if s := a.Spec; s != nil {
		for i, tc := range s.Tests {
			t.Run(fmt.Sprintf("spec/%d", i), func(t *testing.T) { r.spec(t, tc) })
		}
	}
	if s := a.Connection; s != nil {
		for i, tc := range s.Tests {
			t.Run(fmt.Sprintf("connection/%d_%s", i, tc.Status), func(t *testing.T) { r.connection(t, tc) })
		}
	}
	if s := a.Discovery; s != nil {
		for i, tc := range s.Tests {
			t.Run(fmt.Sprintf("discovery/%d", i), func(t *testing.T) { r.discovery(t, tc) })
		}
	}
	if s := a.BasicRead; s != nil {
		for i, tc := range s.Tests {
			t.Run(fmt.Sprintf("basic_read/%d", i), func(t *testing.T) { r.basicRead(t, tc) })
		}
	}
	if s := a.FullRefresh; s != nil {
		for i, tc := range s.Tests {
			t.Run(fmt.Sprintf("full_refresh/%d", i), func(t *testing.T) { r.fullRefresh(t, tc) })
		}
	}
	if s := a.Incremental; s != nil {
		for i, tc := range s.Tests {
			t.Run(fmt.Sprintf("incremental/%d", i), func(t *testing.T) { r.incremental(t, tc) })
		}
	}
}

// catRunner holds the sandbox every suite reads. Suites never move its clock, so they may share it.
type catRunner struct {
	srv *sandbox.Server
}

// config turns a config_path of the file into a config for the sandbox. secrets/ paths (real keys, absent here)
// become sample_config.json with the sandbox's key; every config gets the sandbox's base_url, so nothing a test
// does leaves the machine, while the other fields (an invalid key, say) stay as written.
func (r catRunner) config(t *testing.T, path string) string {
	t.Helper()
	secret := strings.HasPrefix(filepath.ToSlash(path), "secrets/")
	file := path
	if secret {
		file = catSampleConfig
	}
	var m map[string]any
	readJSONFile(t, file, &m)
	delete(m, "base_url")
	if secret {
		delete(m, "api_key")
		// The sandbox has no rate limits; at 10x Klaviyo's tiers the report streams' 2 requests a minute would
		// make each read of the catalog last a minute.
		m["rate_limit_scale"] = 200
	}
	return configFor(t, r.srv, m)
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err, "missing file; run go test ./acceptance-tests -run TestCAT -update")
	require.NoError(t, json.Unmarshal(b, v), "parse %s", path)
}

// writeIndented writes v as indented JSON with a final newline, the form every generated file is kept in.
func writeIndented(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
}

func (r catRunner) spec(t *testing.T, tc catSpecTest) {
	res := runBin(t, "spec")
	require.Equal(t, 0, res.code, "%s", res.stderr)
	o := parseAirbyte(t, res.stdout)
	require.Len(t, o, 1, "spec prints exactly one message")
	spec := o[0].Spec
	require.NotNil(t, spec, "spec prints a SPEC")
	got := spec.Raw
	if *update {
		var v any
		require.NoError(t, json.Unmarshal(got, &v))
		writeIndented(t, tc.SpecPath, v)
	}
	want, err := os.ReadFile(tc.SpecPath)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got), "SPEC differs from %s; if intended, run with -update", tc.SpecPath)

	var root specNode
	require.NoError(t, json.Unmarshal(spec.ConnectionSpecification, &root))
	require.Equal(t, true, root.AdditionalProperties, "connectionSpecification must allow additional properties")
	requireSpecHygiene(t, "", root)

	if tc.ConfigPath == "" {
		return
	}
	// CAT's test_config_match_spec: the config the other suites use is valid against the connection specification.
	cfg, err := os.ReadFile(r.config(t, tc.ConfigPath))
	require.NoError(t, err)
	res2, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(spec.ConnectionSpecification), gojsonschema.NewBytesLoader(cfg))
	require.NoError(t, err)
	require.True(t, res2.Valid(), "%s does not match the connection specification: %v", tc.ConfigPath, res2.Errors())
}

// specNode is the part of a connection specification property CAT's spec hygiene tests look at.
type specNode struct {
	Type                 any                 `json:"type"`
	Format               string              `json:"format"`
	Pattern              string              `json:"pattern"`
	AirbyteSecret        bool                `json:"airbyte_secret"`
	Order                *int                `json:"order"`
	Items                *specNode           `json:"items"`
	Properties           map[string]specNode `json:"properties"`
	AdditionalProperties any                 `json:"additionalProperties"`
}

// secretWords are the name parts that make CAT's test_secret_is_properly_marked expect airbyte_secret.
func secretWords() []string {
	return []string{"api_key", "apikey", "password", "secret", "token", "private_key", "access_key"}
}

// requireSpecHygiene applies CAT's structural spec tests to every property: fields that look secret are marked
// airbyte_secret (the platform masks only those), sibling orders are unique (test_duplicate_order), arrays say
// what they hold (test_array_type), and date-time fields carry a pattern the UI can validate (test_date_pattern).
func requireSpecHygiene(t *testing.T, path string, n specNode) {
	t.Helper()
	orders := map[int]string{}
	for name, p := range n.Properties {
		at := strings.TrimPrefix(path+"."+name, ".")
		lower := strings.ToLower(name)
		for _, w := range secretWords() {
			if strings.Contains(lower, w) {
				assert.True(t, p.AirbyteSecret, "spec property %s looks secret but is not airbyte_secret", at)
			}
		}
		if p.Order != nil {
			prev, dup := orders[*p.Order]
			assert.False(t, dup, "spec properties %s and %s share order %d", prev, at, *p.Order)
			orders[*p.Order] = at
		}
		types := schemaNode{Type: p.Type}.types()
		if contains(types, "array") {
			assert.NotNil(t, p.Items, "spec property %s is an array without items", at)
		}
		if p.Format == "date-time" || p.Format == "date" {
			assert.NotEmpty(t, p.Pattern, "spec property %s is a %s without a pattern", at, p.Format)
		}
		requireSpecHygiene(t, at, p)
	}
}

func (r catRunner) connection(t *testing.T, tc catConnectionTest) {
	res := runBin(t, "check", "--config", r.config(t, tc.ConfigPath))
	o := parseAirbyte(t, res.stdout)
	switch tc.Status {
	case "succeed", "failed":
		want := map[string]string{"succeed": "SUCCEEDED", "failed": "FAILED"}[tc.Status]
		require.Equal(t, 0, res.code, "check reports a status, it does not crash: %s", res.stdout)
		require.Len(t, o, 1, "check prints exactly one CONNECTION_STATUS")
		cs := o[0].ConnectionStatus
		require.NotNil(t, cs)
		require.Equal(t, want, cs.Status, cs.Message)
	case "exception":
		require.NotEqual(t, 0, res.code)
		require.NotEmpty(t, o.Errors(), "a failing check must say why in a TRACE error")
	default:
		require.Failf(t, "unknown connection status", "%q (want succeed, failed or exception)", tc.Status)
	}
}

// discover runs discover and returns the catalog's streams.
func discover(t *testing.T, cfg string) []protocol.CatalogStream {
	t.Helper()
	res := runBin(t, "discover", "--config", cfg)
	require.Equal(t, 0, res.code, "discover failed: %s", res.stdout)
	o := parseAirbyte(t, res.stdout)
	require.Len(t, o, 1, "discover prints exactly one CATALOG")
	require.NotNil(t, o[0].Catalog)
	return o[0].Catalog.Streams
}

// schemaNode is the part of a JSON Schema the key and cursor checks walk.
type schemaNode struct {
	Type                 any                   `json:"type"`
	Properties           map[string]schemaNode `json:"properties"`
	AdditionalProperties any                   `json:"additionalProperties"`
}

// lookup follows a field path (["a","b"] is a.b) through nested properties.
func (n schemaNode) lookup(path []string) (schemaNode, bool) {
	cur := n
	for _, p := range path {
		next, ok := cur.Properties[p]
		if !ok {
			return schemaNode{}, false
		}
		cur = next
	}
	return cur, true
}

// types lists a node's JSON types ("type" is a string or a list).
func (n schemaNode) types() []string {
	switch v := n.Type.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (r catRunner) discovery(t *testing.T, tc catDiscoveryTest) {
	streams := discover(t, r.config(t, tc.ConfigPath))
	require.NotEmpty(t, streams)
	seen := map[string]bool{}
	for _, s := range streams {
		require.NotEmpty(t, s.Name)
		require.False(t, seen[s.Name], "stream %s is listed twice", s.Name)
		seen[s.Name] = true

		_, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(s.JSONSchema))
		require.NoError(t, err, "stream %s: json_schema does not compile", s.Name)
		var root schemaNode
		require.NoError(t, json.Unmarshal(s.JSONSchema, &root))
		// CAT's test_additional_properties_is_true: a closed schema breaks when the API adds a field.
		if root.AdditionalProperties != nil {
			assert.Equal(t, true, root.AdditionalProperties, "stream %s: additionalProperties must be true", s.Name)
		}

		require.NotEmpty(t, s.SupportedSyncModes, "stream %s has no sync modes", s.Name)
		for _, m := range s.SupportedSyncModes {
			require.Contains(t, []string{"full_refresh", "incremental"}, m, "stream %s", s.Name)
		}

		// Every stream has a primary key (the file declares no streams_without_primary_key), each part of it is in
		// the schema, and none is an object or an array (validate_primary_keys_data_type).
		require.NotEmpty(t, s.SourceDefinedPrimaryKey, "stream %s has no primary key", s.Name)
		for _, path := range s.SourceDefinedPrimaryKey {
			node, ok := root.lookup(path)
			require.True(t, ok, "stream %s: primary key %v is not in its schema", s.Name, path)
			for _, typ := range node.types() {
				require.NotContains(t, []string{"object", "array"}, typ, "stream %s: primary key %v has type %s", s.Name, path, typ)
			}
		}

		// test_defined_cursors_exist_in_schema.
		if contains(s.SupportedSyncModes, "incremental") {
			require.True(t, s.SourceDefinedCursor != nil && *s.SourceDefinedCursor, "stream %s is incremental without a source-defined cursor", s.Name)
			require.NotEmpty(t, s.DefaultCursorField, "stream %s is incremental without a default cursor", s.Name)
		}
		if len(s.DefaultCursorField) > 0 {
			_, ok := root.lookup(s.DefaultCursorField)
			require.True(t, ok, "stream %s: cursor %v is not in its schema", s.Name, s.DefaultCursorField)
		}
	}
}

// configuredStream is one entry of a ConfiguredAirbyteCatalog.
type configuredStream struct {
	Stream              json.RawMessage `json:"stream"`
	SyncMode            string          `json:"sync_mode"`
	DestinationSyncMode string          `json:"destination_sync_mode"`
	name                string
}

// loadConfiguredCatalog reads a configured_catalog_path. With -update it first rewrites the file from discover
// (every stream, incremental where supported); otherwise it checks each stream still equals what discover says,
// so a schema change cannot leave the file describing streams that no longer exist in that form.
func (r catRunner) loadConfiguredCatalog(t *testing.T, cfg, path string) []configuredStream {
	t.Helper()
	streams := discover(t, cfg)
	if *update {
		var out []map[string]any
		for _, s := range streams {
			mode := "full_refresh"
			if contains(s.SupportedSyncModes, "incremental") {
				mode = "incremental"
			}
			out = append(out, map[string]any{"stream": s.Raw, "sync_mode": mode, "destination_sync_mode": "append"})
		}
		writeIndented(t, path, map[string]any{"streams": out})
	}
	var cat struct {
		Streams []configuredStream `json:"streams"`
	}
	readJSONFile(t, path, &cat)
	require.NotEmpty(t, cat.Streams, "%s lists no streams", path)
	byName := map[string]int{}
	for i, s := range streams {
		byName[s.Name] = i
	}
	for i := range cat.Streams {
		cs := &cat.Streams[i]
		var head struct {
			Name string `json:"name"`
		}
		require.NoError(t, json.Unmarshal(cs.Stream, &head))
		cs.name = head.Name
		j, ok := byName[cs.name]
		require.True(t, ok, "%s: stream %s is not discovered", path, cs.name)
		require.JSONEq(t, string(streams[j].Raw), string(cs.Stream), "%s: stream %s differs from discover; run with -update", path, cs.name)
		require.Contains(t, streams[j].SupportedSyncModes, cs.SyncMode, "%s: stream %s", path, cs.name)
	}
	require.Len(t, cat.Streams, len(streams), "%s should list every discovered stream", path)
	return cat.Streams
}

// writeCatalog writes the streams whose mode passes keep, in that mode, as a --catalog file.
func writeCatalog(t *testing.T, streams []configuredStream, mode func(configuredStream) (string, bool)) (string, []string) {
	t.Helper()
	var out []map[string]any
	var names []string
	for _, s := range streams {
		m, ok := mode(s)
		if !ok {
			continue
		}
		out = append(out, map[string]any{"stream": s.Stream, "sync_mode": m, "destination_sync_mode": s.DestinationSyncMode})
		names = append(names, s.name)
	}
	return writeJSON(t, "catalog.json", map[string]any{"streams": out}), names
}

// readOK runs a read and requires a clean exit with no error traces.
func readOK(t *testing.T, args ...string) protocol.Messages {
	t.Helper()
	res := runBin(t, append([]string{"read"}, args...)...)
	require.Equal(t, 0, res.code, "read failed:\n%s", tail(res.stdout))
	o := parseAirbyte(t, res.stdout)
	require.Empty(t, o.Errors())
	return o
}

func (r catRunner) basicRead(t *testing.T, tc catBasicReadTest) {
	cfg := r.config(t, tc.ConfigPath)
	// Strictness high: the discovered catalog, every stream, full refresh.
	catPath := configuredCatalog(t, cfg, false)
	var cat struct {
		Streams []configuredStream `json:"streams"`
	}
	readJSONFile(t, catPath, &cat)
	var configured []string
	for _, s := range cat.Streams {
		var head struct {
			Name string `json:"name"`
		}
		require.NoError(t, json.Unmarshal(s.Stream, &head))
		configured = append(configured, head.Name)
	}
	o := readOK(t, "--config", cfg, "--catalog", catPath)

	for stream := range o.RecordsByStream() {
		require.Contains(t, configured, stream, "records for a stream that was not configured")
	}
	if boolOr(tc.ValidateSchema, true) {
		requireRecordsValid(t, o)
	}
	if boolOr(tc.FailOnExtraColumns, true) {
		for stream, recs := range o.RecordsByStream() {
			props := schemaProps(t, stream)
			for _, rec := range recs {
				for k := range rec.Data {
					require.True(t, props[k], "stream %s: column %s is not in the schema", stream, k)
				}
			}
		}
	}
	if boolOr(tc.ValidateStateMessages, true) {
		requireStateCounts(t, o)
		for _, s := range configured {
			require.NotEmpty(t, o.StatesOf(s), "stream %s emitted no state", s)
		}
	}
	if boolOr(tc.ValidateStreamStatuses, false) {
		requireStatuses(t, o, configured, "COMPLETE")
	}

	// Every stream has records, except the declared empty ones, which really are empty (a stale entry would
	// hide a stream that broke).
	empty := map[string]bool{}
	for _, e := range tc.EmptyStreams {
		require.Contains(t, configured, e.Name, "empty_streams names an unknown stream")
		empty[e.Name] = true
	}
	for _, s := range configured {
		if empty[s] {
			require.Zero(t, len(o.Records(s)), "stream %s is declared empty but has records", s)
		} else {
			require.NotEmpty(t, o.Records(s), "stream %s has no records; add it to empty_streams with a bypass_reason, or give the sandbox data for it", s)
		}
	}

	if er := tc.ExpectRecords; er != nil && er.Path != "" {
		if *update {
			writeExpectedRecords(t, er.Path, o)
		}
		requireExpectedRecords(t, er, readExpectedRecords(t, er.Path), o, configured)
	}
}

// expectedRecord is one line of expected_records.jsonl.
type expectedRecord struct {
	Stream    string          `json:"stream"`
	Data      json.RawMessage `json:"data"`
	EmittedAt int64           `json:"emitted_at"`
}

func readExpectedRecords(t *testing.T, path string) []expectedRecord {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err, "missing file; run go test ./acceptance-tests -run TestCAT -update")
	defer f.Close()
	var out []expectedRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec expectedRecord
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&rec), "%s line %d", path, n)
		require.NotEmpty(t, rec.Stream, "%s line %d has no stream", path, n)
		require.NotEmpty(t, rec.Data, "%s line %d has no data", path, n)
		out = append(out, rec)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out, "%s is empty", path)
	return out
}

// canonical renders JSON with sorted keys and numbers as written, so equal data compares as equal strings.
func canonical(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// writeExpectedRecords keeps, per stream in catalog order, every record of a small stream and the first few by
// primary key of a big one. emitted_at is the sandbox clock, not the read's time, so regenerating an unchanged
// account rewrites the same bytes (CAT ignores emitted_at when it compares).
func writeExpectedRecords(t *testing.T, path string, o protocol.Messages) {
	t.Helper()
	var buf bytes.Buffer
	for _, s := range catalog.Streams() {
		recs := o.Records(s.Name)
		type keyed struct {
			pk   string
			data string
		}
		ks := make([]keyed, 0, len(recs))
		for _, rec := range recs {
			ks = append(ks, keyed{pkOf(s, rec.Data), canonical(t, rec.RawData)})
		}
		sort.Slice(ks, func(i, j int) bool {
			if ks[i].pk != ks[j].pk {
				return ks[i].pk < ks[j].pk
			}
			return ks[i].data < ks[j].data
		})
		if len(ks) > catSmallStream {
			ks = ks[:catBigStreamSample]
		}
		for _, k := range ks {
			line, err := json.Marshal(expectedRecord{Stream: s.Name, Data: json.RawMessage(k.data), EmittedAt: catNow().UnixMilli()})
			require.NoError(t, err)
			buf.Write(line)
			buf.WriteByte('\n')
		}
	}
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// requireExpectedRecords applies CAT's expect_records semantics: every expected record is in the output of its
// stream (data equal, or a subset of the fields with extra_fields), in the same relative order with exact_order,
// and with extra_records: false nothing else is.
func requireExpectedRecords(t *testing.T, er *catExpectRecords, want []expectedRecord, o protocol.Messages, configured []string) {
	t.Helper()
	byStream := map[string][]expectedRecord{}
	var order []string
	for _, w := range want {
		require.Contains(t, configured, w.Stream, "expected records name a stream that is not in the catalog")
		if _, ok := byStream[w.Stream]; !ok {
			order = append(order, w.Stream)
		}
		byStream[w.Stream] = append(byStream[w.Stream], w)
	}
	for _, stream := range order {
		exp := byStream[stream]
		got := o.Records(stream)
		gotData := make([]map[string]any, len(got))
		gotCanon := make([]string, len(got))
		for i, rec := range got {
			gotCanon[i] = canonical(t, rec.RawData)
			require.NoError(t, json.Unmarshal([]byte(gotCanon[i]), &gotData[i]))
		}
		used := make([]bool, len(got))
		last := -1
		for _, w := range exp {
			wc := canonical(t, w.Data)
			var wm map[string]any
			require.NoError(t, json.Unmarshal([]byte(wc), &wm))
			match := -1
			for i := range got {
				if used[i] {
					continue
				}
				if wc == gotCanon[i] || (er.ExtraFields && subsetOf(t, wm, gotData[i])) {
					match = i
					break
				}
			}
			require.GreaterOrEqual(t, match, 0, "stream %s: expected record not in the output (of %d records): %.600s", stream, len(got), wc)
			used[match] = true
			if er.ExactOrder {
				require.Greater(t, match, last, "stream %s: expected record out of order: %.300s", stream, wc)
				last = match
			}
		}
		if !boolOr(er.ExtraRecords, true) {
			require.Len(t, got, len(exp), "stream %s: extra_records is false but the output has more records", stream)
		}
	}
}

// subsetOf says whether every field of want has an equal value in got.
func subsetOf(t *testing.T, want, got map[string]any) bool {
	for k, wv := range want {
		gv, ok := got[k]
		if !ok {
			return false
		}
		wj, err := json.Marshal(wv)
		require.NoError(t, err)
		gj, err := json.Marshal(gv)
		require.NoError(t, err)
		if !bytes.Equal(wj, gj) {
			return false
		}
	}
	return true
}

func (r catRunner) fullRefresh(t *testing.T, tc catFullRefreshTest) {
	cfg := r.config(t, tc.ConfigPath)
	streams := r.loadConfiguredCatalog(t, cfg, tc.ConfiguredCatalogPath)
	// As CAT does, every stream of the configured catalog is read in full refresh.
	cat, names := writeCatalog(t, streams, func(configuredStream) (string, bool) { return "full_refresh", true })
	first := readOK(t, "--config", cfg, "--catalog", cat)
	second := readOK(t, "--config", cfg, "--catalog", cat)
	total := 0
	for _, s := range names {
		a := canonicalAll(t, first.Records(s))
		b := canonicalAll(t, second.Records(s))
		require.Equal(t, a, b, "stream %s: two full refreshes of an unchanged account differ", s)
		total += len(a)
	}
	require.Positive(t, total)
}

// canonicalAll renders records canonically and sorts them, for comparing record sets.
func canonicalAll(t *testing.T, recs []protocol.Record) []string {
	out := make([]string, len(recs))
	for i, rec := range recs {
		out[i] = canonical(t, rec.RawData)
	}
	sort.Strings(out)
	return out
}

func (r catRunner) incremental(t *testing.T, tc catIncrementalTest) {
	cfg := r.config(t, tc.ConfigPath)
	streams := r.loadConfiguredCatalog(t, cfg, tc.ConfiguredCatalogPath)
	// As CAT does, only the streams configured as incremental take part.
	cat, names := writeCatalog(t, streams, func(s configuredStream) (string, bool) { return s.SyncMode, s.SyncMode == "incremental" })
	require.NotEmpty(t, names, "no stream of %s is incremental", tc.ConfiguredCatalogPath)

	if fs := tc.FutureState; fs != nil && fs.FutureStatePath != "" {
		t.Run("future_state", func(t *testing.T) { r.futureState(t, cfg, cat, names, fs.FutureStatePath) })
	}
	t.Run("two_sequential_reads", func(t *testing.T) {
		first := readOK(t, "--config", cfg, "--catalog", cat)
		requireStatuses(t, first, names, "COMPLETE")
		second := readOK(t, "--config", cfg, "--catalog", cat, "--state", stateFile(t, first))
		requireStatuses(t, second, names, "COMPLETE")
		requireRecordsValid(t, second)
		total1, total2 := 0, 0
		for _, name := range names {
			total1 += len(first.Records(name))
			total2 += len(second.Records(name))
			s, ok := catalog.Lookup(name)
			if !ok {
				// A report stream: its cursor is final_to, the last final day read, which never moves back.
				requireReportCursorForward(t, name, first.LastStreamState(name), second.LastStreamState(name))
				continue
			}
			prev := first.LastStreamState(name)
			require.NotNil(t, prev, "stream %s emitted no state", name)
			for _, row := range second.Rows(name) {
				parent, _ := row[s.ParentKey].(string)
				if from, ok := stateCursor(t, s, prev, parent); ok {
					require.False(t, cursorOf(t, s, row).Before(from), "stream %s: the second read went behind the state %s: %v", name, prev, row)
				}
			}
			// The second read's state never goes behind the first's.
			next := second.LastStreamState(name)
			require.NotNil(t, next, "stream %s emitted no state on the second read", name)
			for _, parent := range stateParents(t, s, prev) {
				from, _ := stateCursor(t, s, prev, parent)
				to, ok := stateCursor(t, s, next, parent)
				require.True(t, ok, "stream %s: the second state %s lost the cursor of %q", name, next, parent)
				require.False(t, to.Before(from), "stream %s: state moved back from %s to %s", name, prev, next)
			}
		}
		// Not a CAT check, but the proof the states were used at all: the account did not change in between.
		t.Logf("first read %d records, second read %d", total1, total2)
		require.Less(t, total2, total1, "the second read should bring fewer records than the first")
	})
}

// futureState reads with the abnormal (far-future) state: no stream may return a record, and each still ends
// cleanly with a state. With -update the file is first rebuilt from the sandbox's parent ids.
func (r catRunner) futureState(t *testing.T, cfg, cat string, names []string, path string) {
	if *update {
		writeIndented(t, path, r.abnormalState(t, names))
	}
	var states []struct {
		Type   string `json:"type"`
		Stream struct {
			Descriptor struct {
				Name string `json:"name"`
			} `json:"stream_descriptor"`
			State json.RawMessage `json:"stream_state"`
		} `json:"stream"`
	}
	readJSONFile(t, path, &states)
	covered := map[string]bool{}
	for _, st := range states {
		require.Equal(t, "STREAM", st.Type, "%s holds per-stream states only", path)
		covered[st.Stream.Descriptor.Name] = true
	}
	for _, n := range names {
		require.True(t, covered[n], "%s has no state for incremental stream %s (strictness high wants every one)", path, n)
	}
	o := readOK(t, "--config", cfg, "--catalog", cat, "--state", path)
	for _, n := range names {
		require.Zero(t, len(o.Records(n)), "stream %s read records despite a future state", n)
		require.NotEmpty(t, o.StatesOf(n), "stream %s emitted no state", n)
	}
	requireStatuses(t, o, names, "COMPLETE")
}

// abnormalState is a state far in the future for every incremental stream; per-parent streams need one cursor per
// parent (a parent without one is read from the start), so it lists the sandbox's parent ids at catSeed.
func (r catRunner) abnormalState(t *testing.T, names []string) []map[string]any {
	var out []map[string]any
	for _, name := range names {
		s, ok := catalog.Lookup(name)
		if !ok {
			// A report stream: final_to is its cursor, one per metric for metric aggregates of every metric.
			var final any = catFutureCursor
			if name == "metric_aggregates" {
				perMetric := map[string]any{}
				for _, id := range parentIDs(t, r.srv, "metrics") {
					perMetric[id] = catFutureCursor
				}
				final = perMetric
			}
			out = append(out, map[string]any{"type": "STREAM", "stream": map[string]any{
				"stream_descriptor": map[string]any{"name": name}, "stream_state": map[string]any{"state_version": 1, "final_to": final}}})
			continue
		}
		st := map[string]any{s.Cursor.Field: catFutureCursor}
		if s.Kind == catalog.PerParent {
			parents := map[string]any{}
			for _, id := range parentIDs(t, r.srv, s.Parent) {
				parents[id] = map[string]any{s.Cursor.Field: catFutureCursor}
			}
			st = map[string]any{"parents": parents}
		}
		out = append(out, map[string]any{"type": "STREAM", "stream": map[string]any{
			"stream_descriptor": map[string]any{"name": name}, "stream_state": st}})
	}
	return out
}

// requireReportCursorForward checks a report stream's final_to (a date-time, or one per metric) did not move back
// from one read's last state to the next's.
func requireReportCursorForward(t *testing.T, name string, prev, next json.RawMessage) {
	t.Helper()
	require.NotNil(t, prev, "stream %s emitted no state", name)
	require.NotNil(t, next, "stream %s emitted no state on the second read", name)
	cursors := func(raw json.RawMessage) map[string]time.Time {
		var st struct {
			FinalTo json.RawMessage `json:"final_to"`
		}
		require.NoError(t, json.Unmarshal(raw, &st), "state %s", raw)
		out := map[string]time.Time{}
		var one string
		if json.Unmarshal(st.FinalTo, &one) == nil {
			ts, err := time.Parse(time.RFC3339, one)
			require.NoError(t, err, "state %s", raw)
			out[""] = ts
			return out
		}
		var many map[string]string
		if len(st.FinalTo) > 0 {
			require.NoError(t, json.Unmarshal(st.FinalTo, &many), "state %s", raw)
		}
		for k, v := range many {
			ts, err := time.Parse(time.RFC3339, v)
			require.NoError(t, err, "state %s", raw)
			out[k] = ts
		}
		return out
	}
	before, after := cursors(prev), cursors(next)
	for part, from := range before {
		to, ok := after[part]
		require.True(t, ok, "stream %s: the second state %s lost the cursor of %q", name, next, part)
		require.False(t, to.Before(from), "stream %s: final_to moved back from %s to %s", name, prev, next)
	}
}

// stateCursor reads the cursor a stream state holds, for one parent of a per-parent stream. Only the cursor field
// is read: the state may carry other keys (ids already written at the cursor) that this check does not need.
func stateCursor(t *testing.T, s catalog.Stream, state json.RawMessage, parent string) (time.Time, bool) {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(state, &m), "state %s", state)
	if s.Kind == catalog.PerParent {
		var parents map[string]map[string]json.RawMessage
		if raw, ok := m["parents"]; ok {
			require.NoError(t, json.Unmarshal(raw, &parents), "state %s", state)
		}
		m = parents[parent]
	}
	raw, ok := m[s.Cursor.Field]
	if !ok {
		return time.Time{}, false
	}
	var v string
	require.NoError(t, json.Unmarshal(raw, &v), "state %s", state)
	ts, err := time.Parse(time.RFC3339, v)
	require.NoError(t, err, "state %s", state)
	return ts, true
}

// stateParents lists the parents a per-parent state holds, or [""] for a collection state with a cursor.
func stateParents(t *testing.T, s catalog.Stream, state json.RawMessage) []string {
	t.Helper()
	if s.Kind != catalog.PerParent {
		if _, ok := stateCursor(t, s, state, ""); ok {
			return []string{""}
		}
		return nil
	}
	var m struct {
		Parents map[string]json.RawMessage `json:"parents"`
	}
	require.NoError(t, json.Unmarshal(state, &m), "state %s", state)
	out := make([]string, 0, len(m.Parents))
	for id := range m.Parents {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
