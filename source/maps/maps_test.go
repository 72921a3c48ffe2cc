package maps

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func md5Hex(s string) string    { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestNoSettingsIsPassthrough: without settings every stream is an output as it is, and records are the same bytes.
func TestNoSettingsIsPassthrough(t *testing.T) {
	for _, config := range []string{`{}`, `{"api_key":"pk_x","stream_maps":{}}`, `{"stream_maps":null,"flattening_enabled":false}`, `{"stream_maps":""}`} {
		c, err := Parse([]byte(config), Options{})
		require.NoError(t, err, config)
		assert.False(t, c.Active(), config)
		p, err := c.Plan(connectorStreams(t))
		require.NoError(t, err)
		assert.True(t, p.Passthrough())
		assert.Len(t, p.Outputs(), len(connectorStreams(t)))
		rec := []byte(profileRecord)
		require.NoError(t, p.Map("profiles", rec, func(name string, data []byte) error {
			assert.Equal(t, "profiles", name)
			assert.Same(t, &rec[0], &data[0], "an unmapped record must be passed on as the same bytes")
			return nil
		}))
	}
}

// TestRecordMaps covers the documented property-level and stream-level operations on one profile record.
func TestRecordMaps(t *testing.T) {
	email := "Jane@Example.com"
	tests := []struct {
		name   string
		config string
		want   map[string]map[string]any // output stream -> properties that must have these values
		absent map[string][]string       // output stream -> properties that must be missing
		none   bool                      // no record comes out
	}{
		{name: "hash a property in place with md5",
			config: `{"stream_maps":{"profiles":{"email":"md5(email)"}}}`,
			want:   map[string]map[string]any{"profiles": {"email": md5Hex(email), "id": "01P", "first_name": "Jane"}}},
		{name: "sha256 into a new property, seeded from stream_map_config",
			config: `{"stream_maps":{"profiles":{"email_hash":"sha256(config['hash_seed'] + email)","email":null}},"stream_map_config":{"hash_seed":"01AWZ"}}`,
			want:   map[string]map[string]any{"profiles": {"email_hash": sha256Hex("01AWZ" + email)}},
			absent: map[string][]string{"profiles": {"email"}}},
		{name: "config read with a dot",
			config: `{"stream_maps":{"profiles":{"tenant":"config.tenant"}},"stream_map_config":{"tenant":"acme"}}`,
			want:   map[string]map[string]any{"profiles": {"tenant": "acme"}}},
		{name: "record, _ and self name the same values",
			config: `{"stream_maps":{"profiles":{"a":"record['first_name']","b":"_['first_name']","c":"_.first_name","first_name":"upper(self)"}}}`,
			want:   map[string]map[string]any{"profiles": {"a": "Jane", "b": "Jane", "c": "Jane", "first_name": "JANE"}}},
		{name: "email domain as in the SDK's example, in expr's syntax",
			config: `{"stream_maps":{"profiles":{"email_domain":"split(email, '@')[-1]"}}}`,
			want:   map[string]map[string]any{"profiles": {"email_domain": "Example.com"}}},
		{name: "a string literal for multi-tenant columns",
			config: `{"stream_maps":{"profiles":{"client":"\"client-123\""}}}`,
			want:   map[string]map[string]any{"profiles": {"client": "client-123"}}},
		{name: "alias a property by copy and delete",
			config: `{"stream_maps":{"profiles":{"given_name":"first_name","first_name":"__NULL__"}}}`,
			want:   map[string]map[string]any{"profiles": {"given_name": "Jane"}},
			absent: map[string][]string{"profiles": {"first_name"}}},
		{name: "nested values are reachable",
			config: `{"stream_maps":{"profiles":{"city":"location.city","plan":"properties['plan']","visits":"int(properties.visits) + 1"}}}`,
			want:   map[string]map[string]any{"profiles": {"city": "Boston", "plan": "gold", "visits": float64(4)}}},
		{name: "a null property reads as nil",
			config: `{"stream_maps":{"profiles":{"has_phone":"phone_number != nil","phone_hash":"md5(phone_number)"}}}`,
			want:   map[string]map[string]any{"profiles": {"has_phone": false, "phone_hash": nil}}},
		{name: "__else__ null keeps the listed properties, the key and the replication key",
			config: `{"stream_maps":{"profiles":{"email":"email","__else__":null}}}`,
			want:   map[string]map[string]any{"profiles": {"email": email, "id": "01P", "updated": "2024-02-03T04:05:06+00:00"}},
			absent: map[string][]string{"profiles": {"first_name", "location", "properties", "created"}}},
		{name: "filter keeps matching records",
			config: `{"stream_maps":{"profiles":{"__filter__":"email endsWith '@Example.com'"}}}`,
			want:   map[string]map[string]any{"profiles": {"email": email}}},
		{name: "filter drops the others",
			config: `{"stream_maps":{"profiles":{"__filter__":"bool(phone_number)"}}}`,
			none:   true},
		{name: "filter on the record, with not and and",
			config: `{"stream_maps":{"profiles":{"__filter__":"not (record.first_name == 'Bob') and len(email) > 3"}}}`,
			want:   map[string]map[string]any{"profiles": {"id": "01P"}}},
		{name: "alias renames the stream",
			config: `{"stream_maps":{"profiles":{"__alias__":"customers_v2"}}}`,
			want:   map[string]map[string]any{"customers_v2": {"email": email}}},
		{name: "alias as an expression over __stream_name__",
			config: `{"stream_maps":{"profiles":{"__alias__":"__stream_name__ + '_v2'"}}}`,
			want:   map[string]map[string]any{"profiles_v2": {"email": email}}},
		{name: "__stream_name__ in a property",
			config: `{"stream_maps":{"profiles":{"origin":"__stream_name__"}}}`,
			want:   map[string]map[string]any{"profiles": {"origin": "profiles"}}},
		{name: "a removed stream emits nothing",
			config: `{"stream_maps":{"profiles":null}}`,
			none:   true},
		{name: "__else__ null at the top drops undeclared streams",
			config: `{"stream_maps":{"events":{},"__else__":null}}`,
			none:   true},
		{name: "__source__ duplicates a stream into two tables",
			config: `{"stream_maps":{"profiles":{"email":null,"first_name":null},"profiles_pii":{"__source__":"profiles","email":"email","first_name":"first_name","__else__":"__NULL__"}}}`,
			want: map[string]map[string]any{
				"profiles":     {"id": "01P", "created": "2024-01-02T03:04:05+00:00"},
				"profiles_pii": {"id": "01P", "email": email, "first_name": "Jane", "updated": "2024-02-03T04:05:06+00:00"}},
			absent: map[string][]string{"profiles": {"email", "first_name"}, "profiles_pii": {"created", "location"}}},
		{name: "a glob applies to every stream",
			config: `{"stream_maps":{"*":{"synced_by":"'tap-klaviyo-go'"}}}`,
			want:   map[string]map[string]any{"profiles": {"synced_by": "tap-klaviyo-go"}}},
		{name: "a stream's own entry wins over a glob",
			config: `{"stream_maps":{"*":{"x":"1"},"profiles":{"y":"2"}}}`,
			want:   map[string]map[string]any{"profiles": {"y": float64(2)}},
			absent: map[string][]string{"profiles": {"x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planFor(t, tt.config)
			out := mapRecord(t, p, "profiles", profileRecord)
			if tt.none {
				assert.Empty(t, out)
				return
			}
			got := map[string]map[string]any{}
			for _, e := range out {
				got[e.Stream] = e.Data
			}
			assert.Len(t, got, len(tt.want))
			for stream, props := range tt.want {
				require.Contains(t, got, stream)
				for k, v := range props {
					assert.Equal(t, v, got[stream][k], "%s.%s", stream, k)
				}
				for _, k := range tt.absent[stream] {
					assert.NotContains(t, got[stream], k, "%s.%s", stream, k)
				}
			}
		})
	}
}

// TestMappedRecordKeepsOrder: untouched members keep their place and bytes, a replaced one stays where it was,
// new ones come last in key order.
func TestMappedRecordKeepsOrder(t *testing.T) {
	p := planFor(t, `{"stream_maps":{"profiles":{"z_new":"1","a_new":"'x'","email":"md5(email)","first_name":null}}}`)
	out := mapRecord(t, p, "profiles", `{"id":"01P","email":"a@b.c","first_name":"J","location":{"city" : "B"}}`)
	require.Len(t, out, 1)
	assert.Equal(t, `{"id":"01P","email":"`+md5Hex("a@b.c")+`","location":{"city" : "B"},"a_new":"x","z_new":1}`, out[0].Raw)
}

// TestSchemaMapping checks the mapped schemas: removed and added properties with inferred types, keys, aliases and
// derived streams, against the real profiles schema.
func TestSchemaMapping(t *testing.T) {
	p := planFor(t, `{"stream_maps":{
		"profiles":{"email":null,"email_md5":"md5(email)","email_sha":"sha256(email)","n":"int(properties.visits)",
			"f":"float('1.5')","b":"bool(email)","s":"str(1)","when":"fromisoformat(created)","same":"first_name",
			"first_name":"upper(first_name)","anything":"properties['plan']","t":"len(email) > 3 ? 'long' : 'short'",
			"__key_properties__":["email_md5"]},
		"profiles_pii":{"__source__":"profiles","email":"email","__else__":null},
		"events":{"__alias__":"activity"},
		"metrics":null}}`)
	names := outputNames(p)
	assert.Contains(t, names, "profiles")
	assert.Contains(t, names, "profiles_pii")
	assert.Contains(t, names, "activity")
	assert.NotContains(t, names, "events")
	assert.NotContains(t, names, "metrics")

	props := propsOf(t, p, "profiles")
	assert.NotContains(t, props, "email")
	typ := func(name string) any { return props[name].(map[string]any)["type"] }
	str := []any{"string", "null"}
	assert.Equal(t, str, typ("email_md5"))
	assert.Equal(t, str, typ("email_sha"))
	assert.Equal(t, str, typ("s"))
	assert.Equal(t, str, typ("t"), "the checker knows a conditional of two strings is a string")
	assert.Equal(t, []any{"integer", "null"}, typ("n"))
	assert.Equal(t, []any{"number", "null"}, typ("f"))
	assert.Equal(t, []any{"boolean", "null"}, typ("b"))
	assert.Equal(t, "date-time", props["when"].(map[string]any)["format"])
	assert.Equal(t, str, typ("first_name"), "upper() returns text")
	assert.Equal(t, propsOf(t, p, "activity")["datetime"], propsOf(t, p, "activity")["datetime"])
	assert.Equal(t, map[string]any{}, props["anything"], "an expression of unknown type may hold any JSON value")
	src := schemaOf(t, planFor(t, `{}`), "profiles")["properties"].(map[string]any)
	assert.Equal(t, src["first_name"], props["same"], "a bare property reference keeps its schema")
	assert.Equal(t, src["location"], props["location"], "untouched properties keep their schema")

	prof, _ := p.Lookup("profiles")
	assert.Equal(t, []string{"email_md5"}, prof.KeyProperties)
	assert.Equal(t, "updated", prof.ReplicationKey)
	pii, _ := p.Lookup("profiles_pii")
	assert.Equal(t, "profiles", pii.Source)
	assert.Equal(t, []string{"id"}, pii.KeyProperties)
	assert.ElementsMatch(t, []string{"id", "email", "updated"}, keysOf(propsOf(t, p, "profiles_pii")))
	act, _ := p.Lookup("activity")
	assert.Equal(t, "events", act.Source)
	orig, _ := planFor(t, `{}`).Lookup("events")
	assert.Equal(t, orig.Schema, act.Schema, "an alias keeps the schema's bytes")
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestKeyPropertiesNull: a null __key_properties__ syncs the stream without a key, as the SDK documents.
func TestKeyPropertiesNull(t *testing.T) {
	for _, v := range []string{"null", "[]"} {
		p := planFor(t, `{"stream_maps":{"profiles":{"__key_properties__":`+v+`}}}`)
		o, _ := p.Lookup("profiles")
		assert.Empty(t, o.KeyProperties, v)
		rec := mapRecord(t, p, "profiles", profileRecord)
		assert.JSONEq(t, profileRecord, rec[0].Raw, "a key change alone leaves records as they are")
	}
}

// TestNowIsThePinnedClock: now() and utcnow() read the clock given in Options, in UTC.
func TestNowIsThePinnedClock(t *testing.T) {
	p := planFor(t, `{"stream_maps":{"profiles":{"loaded_at":"now()","loaded_day":"strftime(utcnow(), '%Y-%m-%d')"}}}`)
	out := mapRecord(t, p, "profiles", profileRecord)
	assert.Equal(t, "2024-05-06T07:08:09+00:00", out[0].Data["loaded_at"])
	assert.Equal(t, "2024-05-06", out[0].Data["loaded_day"])
}

// TestUnknownStreamPassesThrough: a stream the plan was not given (a bug upstream) is not silently dropped.
func TestUnknownStreamPassesThrough(t *testing.T) {
	p := planFor(t, `{"stream_maps":{"profiles":{"email":null}}}`)
	out := mapRecord(t, p, "not_a_stream", `{"a":1}`)
	require.Len(t, out, 1)
	assert.Equal(t, "not_a_stream", out[0].Stream)
}

// TestRuntimeErrorIsOneSentenceWithoutValues: an expression failing on a record names the setting and the stream,
// never the record's values, which are personal data.
func TestRuntimeErrorIsOneSentenceWithoutValues(t *testing.T) {
	p := planFor(t, `{"stream_maps":{"profiles":{"n":"int(email)","m":"email + 1"}}}`)
	err := p.Map("profiles", []byte(profileRecord), func(string, []byte) error { return nil })
	require.Error(t, err)
	var me *Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "stream_maps.profiles.m", me.Path)
	assert.NotContains(t, err.Error(), "Jane")
	assert.NotContains(t, err.Error(), "\n")

	p = planFor(t, `{"stream_maps":{"profiles":{"n":"int(email)"}}}`)
	err = p.Map("profiles", []byte(profileRecord), func(string, []byte) error { return nil })
	require.ErrorAs(t, err, &me)
	assert.Contains(t, err.Error(), "int() needs text that is a whole number")
	assert.NotContains(t, err.Error(), "Jane")
}
