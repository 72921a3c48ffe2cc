package source_test

import (
	"net"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source"
)

// The commands other than read, at the Run seam. Their exact output is locked by TestReleaseCommands; these
// tests say what in it matters, so a failure there explains itself.

func TestSpec(t *testing.T) {
	r := invoke(t, releaseOptions().Now, "spec")
	require.Equal(t, 0, r.code)
	m := oneMessage(t, r.stdout)
	require.Equal(t, "SPEC", m.Type)
	spec := m.Spec
	require.Equal(t, source.DocumentationURL, spec.DocumentationURL)
	require.True(t, spec.SupportsIncremental)
	// The connection specification is the connector's JSON Schema of its config.
	var config struct {
		Required    []string                   `json:"required"`
		Description string                     `json:"description"`
		Properties  map[string]json.RawMessage `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(spec.ConnectionSpecification, &config))
	require.Equal(t, []string{"api_key"}, config.Required)
	require.Contains(t, config.Description, source.Version)
	require.Contains(t, string(config.Properties["api_key"]), `"airbyte_secret":true`)
}

func TestDiscover(t *testing.T) {
	srv := shared(t)
	cfg := writeFile(t, t.TempDir(), "config.json", configFor(srv, nil))
	r := invoke(t, srv.Now(), "discover", "--config", cfg)
	require.Equal(t, 0, r.code)
	m := oneMessage(t, r.stdout)
	require.Equal(t, "CATALOG", m.Type)
	cat := m.Catalog
	require.Len(t, cat.Streams, len(catalog.Streams())+len(defaultReports), "the table's streams, then the default report streams")
	for i, name := range defaultReports {
		got := cat.Streams[len(catalog.Streams())+i]
		require.Equal(t, name, got.Name)
		modes := []string{"full_refresh", "incremental"}
		if name == "campaign_values_reports" {
			modes = modes[:1] // keyed by message, with no cursor field: a full refresh of a few requests
		}
		require.Equal(t, modes, got.SupportedSyncModes, name)
	}
	for i, s := range catalog.Streams() {
		got := cat.Streams[i]
		require.Equal(t, s.Name, got.Name, "streams are in table order")
		require.NotNil(t, got.SourceDefinedCursor, "%s says whether its cursor is the source's", s.Name)
		require.Equal(t, s.Incremental(), *got.SourceDefinedCursor, s.Name)
		if s.Incremental() {
			require.Equal(t, []string{"full_refresh", "incremental"}, got.SupportedSyncModes, s.Name)
			require.Equal(t, []string{s.Cursor.Field}, got.DefaultCursorField, s.Name)
		} else {
			require.Equal(t, []string{"full_refresh"}, got.SupportedSyncModes, s.Name)
		}
	}
}

func TestSingerDiscover(t *testing.T) {
	srv := shared(t)
	cfg := writeFile(t, t.TempDir(), "config.json", configFor(srv, nil))
	r := invoke(t, srv.Now(), "--config", cfg, "--discover")
	require.Equal(t, 0, r.code, r.stderr)
	doc, err := protocol.ParseSingerCatalog([]byte(r.stdout))
	require.NoError(t, err)
	require.Len(t, doc.Streams, len(catalog.Streams())+len(defaultReports), "the table's streams, then the default report streams")
	for i, name := range defaultReports {
		got := doc.Streams[len(catalog.Streams())+i]
		require.Equal(t, name, got.TapStreamID)
		if name != "campaign_values_reports" {
			require.Equal(t, "INCREMENTAL", got.ReplicationMethod, name)
		}
	}
	for i, s := range catalog.Streams() {
		got := doc.Streams[i]
		require.Equal(t, s.Name, got.TapStreamID)
		require.Equal(t, s.PrimaryKey, got.KeyProperties)
		if s.Incremental() {
			require.Equal(t, "INCREMENTAL", got.ReplicationMethod, s.Name)
			require.Equal(t, s.Cursor.Field, got.ReplicationKey, s.Name)
		} else {
			require.Equal(t, "FULL_TABLE", got.ReplicationMethod, s.Name)
		}
	}
}

func TestAboutAndVersion(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		r := invoke(t, releaseOptions().Now, "--about")
		require.Equal(t, 0, r.code)
		var about struct {
			Name         string   `json:"name"`
			Version      string   `json:"version"`
			Capabilities []string `json:"capabilities"`
			Settings     struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"settings"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &about))
		require.Equal(t, "tap-klaviyo", about.Name)
		require.Equal(t, source.Version, about.Version)
		require.ElementsMatch(t, []string{"about", "catalog", "discover", "state", "stream-maps", "schema-flattening", "activate-version"}, about.Capabilities)
		require.Equal(t, true, about.Settings.Properties["api_key"]["secret"], "Meltano hides settings marked secret")
		require.Equal(t, true, about.Settings.Properties["api_key"]["writeOnly"])
		require.Nil(t, about.Settings.Properties["start_date"]["secret"])
	})
	t.Run("markdown", func(t *testing.T) {
		r := invoke(t, releaseOptions().Now, "--about", "--format=markdown")
		require.Equal(t, 0, r.code)
		require.True(t, strings.HasPrefix(r.stdout, "# tap-klaviyo\n"))
		require.Contains(t, r.stdout, "Version: "+source.Version)
		require.Contains(t, r.stdout, "| api_key | true |")
		require.Contains(t, r.stdout, "| max_concurrency | false | 128 |")
	})
	for _, flag := range []string{"--version", "-v"} {
		t.Run(flag, func(t *testing.T) {
			r := invoke(t, releaseOptions().Now, flag)
			require.Equal(t, 0, r.code)
			require.Equal(t, source.Version+"\n", r.stdout)
		})
	}
}

// TestCheck covers every answer check gives. A config the user must fix is a FAILED status with exit 0, as the
// Airbyte CDK does; only the connector's own failures exit non-zero.
func TestCheck(t *testing.T) {
	srv := shared(t)
	dir := t.TempDir()
	// A port nothing listens on: the connection is refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	for _, c := range []struct {
		name   string
		config any // content of the config file; nil means the file does not exist
		status string
		want   []string
	}{
		{name: "good key", config: configFor(srv, nil), status: "SUCCEEDED",
			want: []string{"the API key can read all 52 streams"}},
		{name: "partial scopes", config: configFor(srv, map[string]any{"api_key": partialKey}), status: "SUCCEEDED",
			want: []string{"can read 12 streams but not 40", "flow_series_reports (needs flows:read)", "segments (needs segments:read)", "segment_tags (needs segments:read, tags:read)", "Add those scopes"}},
		{name: "no read scope", config: configFor(srv, map[string]any{"api_key": noReadKey}), status: "FAILED",
			want: []string{"can read none of the Klaviyo streams"}},
		{name: "unknown key", config: configFor(srv, map[string]any{"api_key": unknownKey}), status: "FAILED",
			want: []string{"Klaviyo refused the API key (401)", "check api_key"}},
		{name: "unreachable", config: map[string]any{"api_key": testKey, "base_url": closedURL, "rate_limit_scale": 1000}, status: "FAILED",
			want: []string{"Could not reach Klaviyo at " + closedURL, "Check base_url"}},
		{name: "missing api_key", config: map[string]any{"base_url": srv.URL()}, status: "FAILED",
			want: []string{"api_key is required"}},
		{name: "config file missing", status: "FAILED",
			want: []string{"cannot be read (no such file or directory)", "check the path given to --config"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := dir + "/absent.json"
			if c.config != nil {
				path = writeFile(t, dir, strings.ReplaceAll(c.name, " ", "-")+".json", c.config)
			}
			r := invoke(t, srv.Now(), "check", "--config", path)
			require.Equal(t, 0, r.code, r.stdout)
			m := oneMessage(t, r.stdout)
			require.Equal(t, "CONNECTION_STATUS", m.Type)
			require.Equal(t, c.status, m.ConnectionStatus.Status, m.ConnectionStatus.Message)
			for _, w := range c.want {
				require.Contains(t, m.ConnectionStatus.Message, w)
			}
		})
	}
}
