package maps

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secretValue sits in the configs below wherever a user could paste a secret; no error may repeat it.
const secretValue = "pk_live_s3cr3t"

// TestConfigErrors: every bad setting is refused before the first request with one sentence that starts with the
// setting's key path and says what to do, without quoting any config value.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, config, path, says string
	}{
		{"not an object", `[1]`, "config", "is not a JSON object"},
		{"stream_maps not an object", `{"stream_maps":[1]}`, "stream_maps", "must be a JSON object"},
		{"stream_maps a string that is not JSON", `{"stream_maps":"{` + secretValue + `"}`, "stream_maps", "must be a JSON object"},
		{"stream_map_config not an object", `{"stream_map_config":"` + secretValue + `"}`, "stream_map_config", "must be a JSON object"},
		{"syntax error", `{"stream_maps":{"profiles":{"email_hash":"md5(email"}}}`, "stream_maps.profiles.email_hash", "does not compile (unexpected token at line 1, column"},
		{"secret in a literal of a bad expression", `{"stream_maps":{"profiles":{"h":"md5('` + secretValue + `' + )"}}}`, "stream_maps.profiles.h", "does not compile"},
		{"secret as an unknown name", `{"stream_maps":{"profiles":{"h":"md5(` + secretValue + ` + email)"}}}`, "stream_maps.profiles.h", "does not compile (unknown name at line 1, column 5)"},
		{"unknown function", `{"stream_maps":{"profiles":{"h":"sha1(email)"}}}`, "stream_maps.profiles.h", "does not compile (unknown name"},
		{"unknown config key", `{"stream_maps":{"profiles":{"h":"md5(config.seeed + email)"}},"stream_map_config":{"seed":"` + secretValue + `"}}`, "stream_maps.profiles.h", "does not compile"},
		{"empty expression", `{"stream_maps":{"profiles":{"h":" "}}}`, "stream_maps.profiles.h", "is an empty expression"},
		{"expression not a string", `{"stream_maps":{"profiles":{"h":12}}}`, "stream_maps.profiles.h", "must be a string"},
		{"bad filter", `{"stream_maps":{"profiles":{"__filter__":"email =="}}}`, "stream_maps.profiles.__filter__", "does not compile"},
		{"filter not a string", `{"stream_maps":{"profiles":{"__filter__":true}}}`, "stream_maps.profiles.__filter__", "must be a string"},
		{"unknown stream", `{"stream_maps":{"profilez":{"email":null}}}`, "stream_maps.profilez", "names no stream of this connector"},
		{"unknown source", `{"stream_maps":{"pii":{"__source__":"` + secretValue + `"}}}`, "stream_maps.pii.__source__", "names no stream of this connector"},
		{"source with a wildcard", `{"stream_maps":{"pii":{"__source__":"prof*"}}}`, "stream_maps.pii.__source__", "must name one stream"},
		{"derived stream named by a pattern", `{"stream_maps":{"p*":{"__source__":"profiles"}}}`, "stream_maps.p*", "give the derived stream a plain name"},
		{"pattern matching nothing", `{"stream_maps":{"zz*":{"a":"1"}}}`, "stream_maps.zz*", "matches no stream"},
		{"two patterns on one stream", `{"stream_maps":{"p*":{"a":"1"},"*s":{"b":"2"}}}`, "stream_maps.p*", "both match stream"},
		{"bad pattern", `{"stream_maps":{"[p":{"a":"1"}}}`, "stream_maps.[p", "not a valid stream name pattern"},
		{"alias clash between two maps", `{"stream_maps":{"profiles":{"__alias__":"x"},"events":{"__alias__":"x"}}}`, "stream_maps.events", "gives stream events the name of the output of stream_maps.profiles"},
		{"alias clash with a kept stream", `{"stream_maps":{"profiles":{"__alias__":"metrics"}}}`, "stream_maps.profiles", "gives stream profiles the name of the output of stream metrics"},
		{"derived stream clashes with a stream", `{"stream_maps":{"events":{"__source__":"profiles"}}}`, "stream_maps.events", "gives stream profiles the name of the output of stream events"},
		{"empty alias", `{"stream_maps":{"profiles":{"__alias__":""}}}`, "stream_maps.profiles.__alias__", "is empty"},
		{"alias not a string", `{"stream_maps":{"profiles":{"__alias__":["a"]}}}`, "stream_maps.profiles.__alias__", "must be a string"},
		{"unknown operation", `{"stream_maps":{"profiles":{"__filtr__":"true"}}}`, "stream_maps.profiles.__filtr__", "is not a stream map operation"},
		{"else with a value", `{"stream_maps":{"profiles":{"__else__":"` + secretValue + `"}}}`, "stream_maps.profiles.__else__", "only null"},
		{"top else with a value", `{"stream_maps":{"__else__":{}}}`, "stream_maps.__else__", "only null"},
		{"stream map not an object", `{"stream_maps":{"profiles":"` + secretValue + `"}}`, "stream_maps.profiles", "must be an object"},
		{"key properties not a list", `{"stream_maps":{"profiles":{"__key_properties__":"id"}}}`, "stream_maps.profiles.__key_properties__", "must be a list"},
		{"key property missing", `{"stream_maps":{"profiles":{"__key_properties__":["` + secretValue + `"]}}}`, "stream_maps.profiles.__key_properties__", "names a property stream profiles does not have"},
		{"key property removed", `{"stream_maps":{"profiles":{"id":null}}}`, "stream_maps.profiles.id", "removes a key property"},
		{"replication key removed", `{"stream_maps":{"profiles":{"updated":null}}}`, "stream_maps.profiles.updated", "removes the stream's replication key"},
		{"flattening without depth", `{"flattening_enabled":true}`, "flattening_max_depth", "is required when flattening_enabled is true"},
		{"flattening depth zero", `{"flattening_enabled":true,"flattening_max_depth":0}`, "flattening_max_depth", "from 1 to 100"},
		{"flattening depth not a number", `{"flattening_enabled":true,"flattening_max_depth":"` + secretValue + `"}`, "flattening_max_depth", "must be a whole number"},
		{"flattening enabled not a boolean", `{"flattening_enabled":"` + secretValue + `"}`, "flattening_enabled", "must be true or false"},
		{"flattening clash", `{"stream_maps":{"profiles":{"location__city":"'x'"}},"flattening_enabled":true,"flattening_max_depth":1}`, "flattening_max_depth", "gives two properties the name location__city"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := planErr(t, tt.config)
			require.Error(t, err)
			var me *Error
			require.ErrorAs(t, err, &me, "settings errors are *Error, which the connector reports as config_error")
			assert.Equal(t, tt.path, me.Path)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, tt.path+": "), msg)
			assert.Contains(t, msg, tt.says)
			assert.NotContains(t, msg, secretValue)
			assert.NotContains(t, msg, "\n")
			assert.Equal(t, 1, strings.Count(msg, ". ")+1, "one sentence: %s", msg)
		})
	}
}

// TestNullSpellings: JSON null and the SDK's "__NULL__" mean the same, for streams and properties.
func TestNullSpellings(t *testing.T) {
	for _, null := range []string{`null`, `"__NULL__"`} {
		p := planFor(t, `{"stream_maps":{"metrics":`+null+`,"profiles":{"email":`+null+`}}}`)
		assert.NotContains(t, outputNames(p), "metrics")
		assert.NotContains(t, propsOf(t, p, "profiles"), "email")
	}
}

// TestSettingsAsStrings: the Airbyte form (JSON text in a string field) means the same as the object form, and
// Meltano's string-typed environment values for the flattening settings are read too.
func TestSettingsAsStrings(t *testing.T) {
	p := planFor(t, `{"stream_maps":"{\"profiles\":{\"h\":\"md5(config.seed + email)\"}}","stream_map_config":"{\"seed\":\"s\"}",
		"flattening_enabled":"true","flattening_max_depth":"1"}`)
	out := mapRecord(t, p, "profiles", profileRecord)
	assert.Equal(t, md5Hex("sJane@Example.com"), out[0].Data["h"])
	assert.Equal(t, "Boston", out[0].Data["location__city"])
}

// TestDocExamples: the examples of docs/stream-maps.md plan and map without error.
func TestDocExamples(t *testing.T) {
	for _, config := range []string{
		`{"api_key":"pk_x","stream_maps":{"profiles":{"email":"md5(config.hash_seed + email)","email_domain":"split(email, '@')[-1]",
			"phone_number":"sha256(phone_number)","image":null,"loaded_at":"now()","e2":"replace(email, '@', ' at ')"}},
			"stream_map_config":{"hash_seed":"01AWZh7A6DzGm6iJZZ2T"}}`,
		`{"stream_maps":{"profiles":{"email":"md5(config['hash_seed'] + email)","image":"__NULL__"},
			"events":{"__filter__":"metric_name == 'Placed Order'"},
			"profile_consent":{"__source__":"profiles","email_consent":"subscriptions?.email?.marketing?.consent","__else__":"__NULL__"},
			"metrics":"__NULL__"},"stream_map_config":{"hash_seed":"01AWZh7A6DzGm6iJZZ2T"},"flattening_enabled":true,"flattening_max_depth":1}`,
		`{"stream_maps":{"*":{"__alias__":"'klaviyo_' + __stream_name__"}}}`,
	} {
		p := planFor(t, config)
		out := mapRecord(t, p, "profiles", profileRecord)
		require.NotEmpty(t, out)
	}
	p := planFor(t, `{"stream_maps":{"*":{"__alias__":"'klaviyo_' + __stream_name__"}}}`)
	assert.Contains(t, outputNames(p), "klaviyo_profiles")
	p = planFor(t, `{"stream_maps":{"profile_consent":{"__source__":"profiles","email_consent":"subscriptions?.email?.marketing?.consent","__else__":null}}}`)
	out := mapRecord(t, p, "profiles", profileRecord)
	assert.Equal(t, "SUBSCRIBED", out[1].Data["email_consent"])
}
