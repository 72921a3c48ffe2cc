package klaviyo

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decodeString(s string) (*Document, error) { return decodeDocument(strings.NewReader(s)) }

func TestDecodeCollectionWithIncluded(t *testing.T) {
	t.Parallel()
	doc, err := decodeString(`{
	  "data": [
	    {"type": "event", "id": "e1", "attributes": {"datetime": "2024-01-02T03:04:05+00:00", "event_properties": {"$value": 5}},
	     "relationships": {
	       "profile": {"data": {"type": "profile", "id": "p1"}, "links": {"self": "x", "related": "y"}},
	       "metric": {"data": {"type": "metric", "id": "m1"}},
	       "attributions": {"data": [{"type": "attribution", "id": "a1"}, {"type": "attribution", "id": "a2"}]},
	       "nothing": {"data": null}
	     },
	     "links": {"self": "https://a.klaviyo.com/api/events/e1/"}},
	    {"type": "event", "id": "e2", "attributes": {}}
	  ],
	  "included": [{"type": "metric", "id": "m1", "attributes": {"name": "Placed Order"}}],
	  "links": {"self": "s", "next": "https://a.klaviyo.com/api/events/?page%5Bcursor%5D=abc", "prev": null},
	  "meta": {"agent_hints": {"next_steps": ["x"]}}
	}`)
	require.NoError(t, err)
	require.Len(t, doc.Data, 2)
	e := doc.Data[0]
	assert.Equal(t, "event", e.Type)
	assert.Equal(t, "e1", e.ID)
	assert.JSONEq(t, `{"datetime": "2024-01-02T03:04:05+00:00", "event_properties": {"$value": 5}}`, string(e.Attributes))

	id, ok := e.Relationships["profile"].ToOneID()
	assert.True(t, ok)
	assert.Equal(t, "p1", id)
	id, ok = e.Relationships["metric"].ToOneID()
	assert.True(t, ok)
	assert.Equal(t, "m1", id)
	_, ok = e.Relationships["nothing"].ToOneID()
	assert.False(t, ok, "null to-one")
	_, ok = e.Relationships["absent"].ToOneID()
	assert.False(t, ok, "absent relationship")
	_, ok = e.Relationships["attributions"].ToOneID()
	assert.False(t, ok, "an array is not to-one")
	assert.Equal(t, []string{"a1", "a2"}, e.Relationships["attributions"].ToManyIDs())
	assert.Nil(t, e.Relationships["profile"].ToManyIDs(), "an object is not to-many")
	assert.Nil(t, e.Relationships["nothing"].ToManyIDs())

	require.Len(t, doc.Included, 1)
	assert.Equal(t, "Placed Order", string(mustField(t, doc.Included[0].Attributes, "name")))
	assert.Equal(t, "https://a.klaviyo.com/api/events/?page%5Bcursor%5D=abc", doc.Next)
}

func mustField(t *testing.T, raw json.RawMessage, name string) string {
	t.Helper()
	var m map[string]string
	require.NoError(t, json.Unmarshal(raw, &m))
	return m[name]
}

func TestDecodeShapes(t *testing.T) {
	t.Parallel()
	t.Run("single resource becomes one element", func(t *testing.T) {
		doc, err := decodeString(`{"data": {"type": "list", "id": "L1", "attributes": {"name": "VIP"}}, "links": {"self": "s"}}`)
		require.NoError(t, err)
		require.Len(t, doc.Data, 1)
		assert.Equal(t, "L1", doc.Data[0].ID)
		assert.Empty(t, doc.Next)
	})
	t.Run("null data is an empty page", func(t *testing.T) {
		doc, err := decodeString(`{"data": null}`)
		require.NoError(t, err)
		assert.Empty(t, doc.Data)
	})
	t.Run("empty collection, null next", func(t *testing.T) {
		doc, err := decodeString(`{"data": [], "links": {"self": "s", "next": null}}`)
		require.NoError(t, err)
		assert.Empty(t, doc.Data)
		assert.Empty(t, doc.Next)
	})
	t.Run("relationship document has no attributes", func(t *testing.T) {
		doc, err := decodeString(`{"data": [{"type": "profile", "id": "p1"}, {"type": "profile", "id": "p2", "attributes": null}]}`)
		require.NoError(t, err)
		require.Len(t, doc.Data, 2)
		assert.Nil(t, doc.Data[0].Attributes)
		assert.Nil(t, doc.Data[1].Attributes)
	})
}

func TestDecodeRejectsBrokenDocuments(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"empty":                  ``,
		"truncated":              `{"data": [{"type": "event", "id": "e1", "attributes": {"a": 1`,
		"not json":               `<html>Bad Gateway</html>`,
		"trailing garbage":       `{"data": []} xyz`,
		"second document":        `{"data": []}{"data": []}`,
		"no data member":         `{"errors": []}`,
		"data is a string":       `{"data": "nope"}`,
		"resource without id":    `{"data": [{"type": "event", "attributes": {}}]}`,
		"resource without type":  `{"data": [{"id": "x", "attributes": {}}]}`,
		"attributes not object":  `{"data": [{"type": "event", "id": "e1", "attributes": [1, 2]}]}`,
		"included without id":    `{"data": [], "included": [{"type": "metric"}]}`,
		"next is a number":       `{"data": [], "links": {"next": 5}}`,
		"id is a number":         `{"data": [{"type": "event", "id": 5}]}`,
		"relationships an array": `{"data": [{"type": "event", "id": "e1", "relationships": []}]}`,
		"lenient attributes":     `{"data": [{"type": "event", "id": "e1", "attributes": {"a" 1}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := decodeString(body)
			assert.Error(t, err)
			assert.Nil(t, doc)
		})
	}
}

// eventsPage builds a page of n events shaped like Klaviyo's GET /api/events?include=metric answer.
func eventsPage(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		id := fmt.Sprintf("4vRpBT%07d", i)
		fmt.Fprintf(&b, `{"type":"event","id":"%s","attributes":{"timestamp":1668204880,`+
			`"event_properties":{"$value":%d.5,"$event_id":"%s","Items":["Shoes","Hat"],"ItemCount":2,"Brands":["Acme"],`+
			`"Discount Codes":[],"$extra":{"Line Items":[{"ProductID":"%d","Quantity":1,"ItemPrice":9.99}]}},`+
			`"datetime":"2022-11-11T22:14:40+00:00","uuid":"a7a2b180-6212-11ed-8001-%012d"},`+
			`"relationships":{"profile":{"data":{"type":"profile","id":"01GDDKASAP8TKDDA2GRZDSVP4H"},`+
			`"links":{"self":"https://a.klaviyo.com/api/events/%s/relationships/profile/","related":"https://a.klaviyo.com/api/events/%s/profile/"}},`+
			`"metric":{"data":{"type":"metric","id":"UxxK4u"},`+
			`"links":{"self":"https://a.klaviyo.com/api/events/%s/relationships/metric/","related":"https://a.klaviyo.com/api/events/%s/metric/"}},`+
			`"attributions":{"data":[],"links":{"self":"https://a.klaviyo.com/api/events/%s/relationships/attributions/"}}},`+
			`"links":{"self":"https://a.klaviyo.com/api/events/%s/"}}`,
			id, i, id, i, i, id, id, id, id, id, id)
	}
	b.WriteString(`],"included":[{"type":"metric","id":"UxxK4u","attributes":{"name":"Placed Order","created":"2022-01-01T00:00:00+00:00",` +
		`"updated":"2022-01-01T00:00:00+00:00","integration":{"object":"integration","id":"0eMvjm","key":"shopify","name":"Shopify","category":"eCommerce"}},` +
		`"links":{"self":"https://a.klaviyo.com/api/metrics/UxxK4u/"}}],`)
	b.WriteString(`"links":{"self":"https://a.klaviyo.com/api/events/","next":"https://a.klaviyo.com/api/events/?page%5Bcursor%5D=bmV4dDo6aWQ6OjQ","prev":null}}`)
	return b.Bytes()
}

func TestEventsPageFixtureDecodes(t *testing.T) {
	t.Parallel()
	doc, err := decodeDocument(bytes.NewReader(eventsPage(50)))
	require.NoError(t, err)
	require.Len(t, doc.Data, 50)
	id, ok := doc.Data[49].Relationships["metric"].ToOneID()
	require.True(t, ok)
	assert.Equal(t, "UxxK4u", id)
	assert.NotEmpty(t, doc.Next)
}

// BenchmarkDecodeEventsPage decodes a 1,000-event page from a stream, as Get does, and resolves each event's
// profile and metric ids, as the engine does when it flattens a record.
func BenchmarkDecodeEventsPage(b *testing.B) {
	page := eventsPage(1000)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	records := 0
	var buf bytes.Buffer    // the client reuses body buffers from a pool,
	var scratch scanScratch // and the decoder's scratch with each
	for b.Loop() {
		if err := readBody(bytes.NewReader(page), &buf); err != nil {
			b.Fatal(err)
		}
		doc, err := decodeBytes(buf.Bytes(), &scratch)
		if err != nil {
			b.Fatal(err)
		}
		for i := range doc.Data {
			r := &doc.Data[i]
			if _, ok := r.Relationships["profile"].ToOneID(); !ok {
				b.Fatal("no profile id")
			}
			if _, ok := r.Relationships["metric"].ToOneID(); !ok {
				b.Fatal("no metric id")
			}
		}
		records += len(doc.Data)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecodeEventsStream is the baseline readBody is measured against: the same page through goccy/go-json's
// stream decoder, which is what decoding "as the bytes arrive" would cost.
func BenchmarkDecodeEventsStream(b *testing.B) {
	page := eventsPage(1000)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		var w wireCollection
		if err := json.NewDecoder(bytes.NewReader(page)).Decode(&w); err != nil {
			b.Fatal(err)
		}
		records += len(w.Data)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

func TestToOneIDFastPathAgreesWithDecoder(t *testing.T) {
	t.Parallel()
	for _, d := range []string{
		`{"type":"metric","id":"UxxK4u"}`,
		` { "id" : "a" , "type" : "b" } `,
		`{"type":"metric","id":""}`,
		`{"type":"metric"}`,
		`{}`,
		`{"ID":"upper"}`,
		`{"id":"first","id":"second"}`,
		`{"id":"esc\"aped"}`,
		`{"id":5}`,
		`{"id":"x","meta":{"a":1}}`,
		`{"id":"x"`,
		`{"id":"x"}}`,
	} {
		t.Run(d, func(t *testing.T) {
			var l linkage
			wantOK := json.Unmarshal([]byte(d), &l) == nil && l.ID != ""
			id, ok := Relationship{Data: json.RawMessage(d)}.ToOneID()
			assert.Equal(t, wantOK, ok)
			if wantOK {
				assert.Equal(t, l.ID, id)
			}
		})
	}
}
