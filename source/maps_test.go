package source_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// streamMapsConfig hashes profiles' email, derives a second table holding only the key and the clear email,
// drops the metrics stream, and flattens nested objects one level deep.
var streamMapsConfig = map[string]any{
	"stream_maps": map[string]any{
		"profiles":     map[string]any{"email": "md5(email)", "phone_number": nil},
		"profiles_pii": map[string]any{"__source__": "profiles", "email": "email", "__else__": nil},
		"metrics":      nil,
	},
	"flattening_enabled":   true,
	"flattening_max_depth": 1,
}

// Stream maps and flattening, end to end in both dialects: discover shows the mapped streams, a sync writes the
// mapped records, and the states of a mapped stream resume it.
func TestStreamMapsInBothDialects(t *testing.T) {
	srv := shared(t)
	now := srv.Now()
	dir := t.TempDir()
	plain := writeFile(t, dir, "plain.json", configFor(srv, nil))
	cfg := writeFile(t, dir, "config.json", configFor(srv, streamMapsConfig))

	// The reference: the same profiles with no maps.
	_, ref := airbyteRead(t, now, plain, airbyteCatalog(t, dir, plain, false, "profiles"), "")
	clear := map[string]map[string]any{}
	for _, raw := range ref.rows("profiles") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(raw, &rec))
		clear[rec["id"].(string)] = rec
	}
	require.NotEmpty(t, clear)

	// keep is what __else__: null keeps besides the key and the listed email: in an incremental sync, the cursor
	// its state is read from.
	check := func(t *testing.T, o *syncOutput, keep ...string) {
		t.Helper()
		require.Empty(t, o.records["metrics"], "metrics is mapped to null")
		hashed, flattened := 0, 0
		defer func() {
			require.Positive(t, hashed, "some emails were hashed")
			require.Positive(t, flattened, "some locations were flattened")
		}()
		require.Len(t, o.rows("profiles"), len(clear))
		for _, raw := range o.rows("profiles") {
			var rec map[string]any
			require.NoError(t, json.Unmarshal(raw, &rec))
			orig := clear[rec["id"].(string)]
			if email, ok := orig["email"].(string); ok {
				sum := md5.Sum([]byte(email))
				require.Equal(t, hex.EncodeToString(sum[:]), rec["email"], "email is hashed")
				hashed++
			} else {
				require.Nil(t, rec["email"], "md5 of a null email is null")
			}
			require.NotContains(t, rec, "phone_number", "phone_number is removed")
			require.NotContains(t, rec, "location", "location is flattened")
			if loc, ok := orig["location"].(map[string]any); ok {
				for k := range loc {
					require.Contains(t, rec, "location__"+k, "location.%s becomes location__%s", k, k)
				}
				flattened++
			}
		}
		require.Len(t, o.rows("profiles_pii"), len(clear))
		for _, raw := range o.rows("profiles_pii") {
			var rec map[string]any
			require.NoError(t, json.Unmarshal(raw, &rec))
			require.ElementsMatch(t, append([]string{"id", "email"}, keep...), keysOf(rec), "__else__: null keeps the key and the listed properties")
			require.Equal(t, clear[rec["id"].(string)]["email"], rec["email"])
		}
	}

	t.Run("airbyte", func(t *testing.T) {
		r := invoke(t, now, "discover", "--config", cfg)
		require.Equal(t, 0, r.code, r.stdout)
		require.Contains(t, r.stdout, `"name":"profiles_pii"`)
		require.NotContains(t, r.stdout, `"name":"metrics"`)
		require.Contains(t, r.stdout, `"location__city"`, "discover shows the flattened schema")
		cat := airbyteCatalog(t, dir, cfg, true, "profiles", "profiles_pii")
		res, o := airbyteRead(t, now, cfg, cat, "")
		requireCompleted(t, res, o, []string{"profiles", "profiles_pii"})
		check(t, o, "updated")
		final := checkAirbyteStates(t, o, nil, now)
		require.Equal(t, string(final["profiles"]), string(final["profiles_pii"]), "each output carries its source's state")

		// A resume from those states reads nothing new.
		state := writeFile(t, dir, "state.json", airbyteStateFile(final))
		_, again := airbyteRead(t, now, cfg, cat, state)
		require.LessOrEqual(t, len(again.rows("profiles")), 2, "a resume re-reads at most the records at the cursor's exact moment")
	})

	t.Run("singer", func(t *testing.T) {
		r := invoke(t, now, "--config", cfg, "--discover")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `"tap_stream_id": "profiles_pii"`)
		res, o := singerSync(t, now, cfg, singerCatalog(t, dir, cfg, "profiles", "profiles_pii"), "")
		require.Equal(t, 0, res.code, res.stderr)
		check(t, o, "updated")
		require.Contains(t, o.schemas, "profiles_pii")
		require.NotContains(t, o.schemas, "metrics")
	})

	t.Run("a bad map is a config error", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.json", configFor(srv, map[string]any{
			"stream_maps": map[string]any{"profiles": map[string]any{"email": "md5(email"}}}))
		r := invoke(t, now, "discover", "--config", bad)
		require.Equal(t, 1, r.code)
		e := oneMessage(t, r.stdout).Trace.Error
		require.Equal(t, "config_error", e.FailureType)
		require.Contains(t, e.Message, "stream_maps.profiles.email")
		r = invoke(t, now, "check", "--config", bad)
		require.Equal(t, 0, r.code)
		require.Contains(t, r.stdout, `"status":"FAILED"`)
		r = invoke(t, now, "--config", bad, "--discover")
		require.Equal(t, 1, r.code)
		require.True(t, strings.Contains(r.stderr, "stream_maps.profiles.email") && strings.Contains(r.stderr, "config_error"), r.stderr)
	})
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
