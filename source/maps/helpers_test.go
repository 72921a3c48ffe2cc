package maps

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fixedClock is the clock of every test plan, so that now() is reproducible.
func fixedClock() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC) }

// connectorStreams is the plan input of every test: the connector's real stream table and schemas.
func connectorStreams(t testing.TB) []Stream {
	t.Helper()
	streams, err := CatalogStreams()
	require.NoError(t, err)
	return streams
}

// planFor parses a config document and plans it against the connector's streams.
func planFor(t testing.TB, config string) *Plan {
	t.Helper()
	c, err := Parse([]byte(config), Options{Now: fixedClock})
	require.NoError(t, err)
	p, err := c.Plan(connectorStreams(t))
	require.NoError(t, err)
	return p
}

// planErr returns the error of parsing or planning a config.
func planErr(t testing.TB, config string) error {
	t.Helper()
	c, err := Parse([]byte(config), Options{Now: fixedClock})
	if err != nil {
		return err
	}
	_, err = c.Plan(connectorStreams(t))
	return err
}

// emitted is one record as Map handed it out.
type emitted struct {
	Stream string
	Data   map[string]any
	Raw    string
}

// mapRecord maps one record and decodes what comes out, checking that every output is one valid JSON object.
func mapRecord(t testing.TB, p *Plan, stream, record string) []emitted {
	t.Helper()
	var out []emitted
	err := p.Map(stream, []byte(record), func(name string, data []byte) error {
		var m map[string]any
		require.True(t, json.Valid(data), "output is not valid JSON: %s", data)
		require.NoError(t, json.Unmarshal(data, &m))
		out = append(out, emitted{Stream: name, Data: m, Raw: string(data)})
		return nil
	})
	require.NoError(t, err)
	return out
}

// schemaOf returns an output's schema, decoded.
func schemaOf(t testing.TB, p *Plan, name string) map[string]any {
	t.Helper()
	o, ok := p.Lookup(name)
	require.True(t, ok, "no output %s", name)
	var s map[string]any
	require.NoError(t, json.Unmarshal(o.Schema, &s))
	return s
}

// propsOf returns an output schema's properties.
func propsOf(t testing.TB, p *Plan, name string) map[string]any {
	t.Helper()
	props, _ := schemaOf(t, p, name)["properties"].(map[string]any)
	return props
}

// outputNames lists a plan's outputs by name.
func outputNames(p *Plan) []string {
	var names []string
	for _, o := range p.Outputs() {
		names = append(names, o.Name)
	}
	return names
}

const profileRecord = `{"id":"01P","email":"Jane@Example.com","first_name":"Jane","phone_number":null,` +
	`"location":{"city":"Boston","country":"US","latitude":42.36,"ip":null},` +
	`"properties":{"plan":"gold","visits":3},"created":"2024-01-02T03:04:05+00:00","updated":"2024-02-03T04:05:06+00:00",` +
	`"subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED","can_receive_email_marketing":true,"list_suppressions":[]}}}}`
