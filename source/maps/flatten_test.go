package maps

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFlatteningDepths flattens the real profiles schema and a profile record at depths 1, 2 and 3: location spreads
// at depth 1; subscriptions spreads one level further per depth; properties, free-form in the schema, stays one
// text column at every depth, as do arrays.
func TestFlatteningDepths(t *testing.T) {
	text := []any{"string", "null"}
	tests := []struct {
		depth   int
		columns map[string]any // column -> its schema type
		values  map[string]any // column -> its value in the mapped record
		absent  []string
	}{
		{depth: 1,
			columns: map[string]any{"id": "string", "location__city": text, "location__latitude": []any{"string", "number", "null"},
				"properties": text, "subscriptions__email": text, "subscriptions__sms": text,
				"predictive_analytics__ranked_channel_affinity": text},
			values: map[string]any{"location__city": "Boston", "location__latitude": 42.36, "location__ip": nil,
				"properties":           `{"plan":"gold","visits":3}`,
				"subscriptions__email": `{"marketing":{"consent":"SUBSCRIBED","can_receive_email_marketing":true,"list_suppressions":[]}}`},
			absent: []string{"location", "subscriptions", "subscriptions__email__marketing"}},
		{depth: 2,
			columns: map[string]any{"location__city": text, "properties": text, "subscriptions__email__marketing": text,
				"subscriptions__sms__transactional": text},
			values: map[string]any{"subscriptions__email__marketing": `{"consent":"SUBSCRIBED","can_receive_email_marketing":true,"list_suppressions":[]}`},
			absent: []string{"subscriptions__email"}},
		{depth: 3,
			columns: map[string]any{"properties": text, "subscriptions__email__marketing__consent": text,
				"subscriptions__email__marketing__can_receive_email_marketing": []any{"boolean", "null"},
				"subscriptions__email__marketing__list_suppressions":           text},
			values: map[string]any{"subscriptions__email__marketing__consent": "SUBSCRIBED",
				"subscriptions__email__marketing__can_receive_email_marketing": true,
				"subscriptions__email__marketing__list_suppressions":           "[]"},
			absent: []string{"subscriptions__email__marketing"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("depth ", tt.depth), func(t *testing.T) {
			p := planFor(t, fmt.Sprintf(`{"flattening_enabled":true,"flattening_max_depth":%d}`, tt.depth))
			props := propsOf(t, p, "profiles")
			for col, typ := range tt.columns {
				require.Contains(t, props, col)
				assert.Equal(t, typ, props[col].(map[string]any)["type"], col)
			}
			for _, v := range props {
				assert.NotContains(t, []any{"object", "array"}, v.(map[string]any)["type"], "no column is an object or array")
			}
			out := mapRecord(t, p, "profiles", profileRecord)
			require.Len(t, out, 1)
			rec := out[0].Data
			for col, v := range tt.values {
				assert.Equal(t, v, rec[col], col)
			}
			for _, col := range tt.absent {
				assert.NotContains(t, rec, col)
				assert.NotContains(t, props, col)
			}
			for col := range rec {
				assert.Contains(t, props, col, "every record column is in the schema")
			}
			o, _ := p.Lookup("profiles")
			assert.Equal(t, []string{"id"}, o.KeyProperties)
			assert.Equal(t, "updated", o.ReplicationKey)
		})
	}
}

// TestFlatteningAfterMaps: maps run first, on the nested record, then the result is flattened (the SDK's order).
func TestFlatteningAfterMaps(t *testing.T) {
	p := planFor(t, `{"stream_maps":{"profiles":{"city_upper":"upper(location.city)","email":null,"location":"location"}},
		"flattening_enabled":true,"flattening_max_depth":1}`)
	out := mapRecord(t, p, "profiles", profileRecord)
	assert.Equal(t, "BOSTON", out[0].Data["city_upper"])
	assert.Equal(t, "Boston", out[0].Data["location__city"], "a property set to itself keeps its schema, so it still spreads")
	assert.NotContains(t, out[0].Data, "email")
}

// TestFlatteningNullObject: a null object writes none of its columns (they read as null); a value of the wrong
// kind is kept under the object's own name rather than lost.
func TestFlatteningNullObject(t *testing.T) {
	p := planFor(t, `{"flattening_enabled":true,"flattening_max_depth":2}`)
	out := mapRecord(t, p, "profiles", `{"id":"1","location":null,"subscriptions":{"email":null},"properties":null,"updated":"x"}`)
	assert.Equal(t, `{"id":"1","properties":null,"updated":"x"}`, out[0].Raw)
}

// TestFlatteningEveryStream: every connector schema flattens, and the output keeps its keys and cursor.
func TestFlatteningEveryStream(t *testing.T) {
	p := planFor(t, `{"flattening_enabled":true,"flattening_max_depth":10}`)
	for _, s := range connectorStreams(t) {
		o, ok := p.Lookup(s.Name)
		require.True(t, ok, s.Name)
		props := propsOf(t, p, s.Name)
		for _, k := range o.KeyProperties {
			assert.Contains(t, props, k, s.Name)
		}
		if o.ReplicationKey != "" {
			assert.Contains(t, props, o.ReplicationKey, s.Name)
		}
	}
}
