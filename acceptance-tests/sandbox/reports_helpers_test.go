package sandbox

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
)

// post sends an authenticated POST of a JSON:API body; numbers decode as json.Number so tests can
// tell integers from floats and compare floats exactly.
func post(t testing.TB, s *Server, pathAndQuery, body string, hdr ...string) response {
	t.Helper()
	r := send(t, s, http.MethodPost, pathAndQuery, strings.NewReader(body), append([]string{"Content-Type", "application/vnd.api+json"}, hdr...)...)
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	_ = dec.Decode(&r.doc)
	return r
}

// reportBody is a JSON:API request document of a type with attributes.
func reportBody(t testing.TB, typ string, attrs map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"data": map[string]any{"type": typ, "attributes": attrs}})
	require.NoError(t, err)
	return string(b)
}

// postOK posts a report and returns data.attributes of the 200 answer.
func postOK(t testing.TB, s *Server, path, typ string, attrs map[string]any) map[string]any {
	t.Helper()
	r := post(t, s, path, reportBody(t, typ, attrs))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	data, _ := r.doc["data"].(map[string]any)
	a, _ := data["attributes"].(map[string]any)
	require.NotNil(t, a, string(r.body))
	return a
}

// results returns the results entries of report attributes (or the data rows of an aggregate).
func results(a map[string]any, member string) []map[string]any {
	list, _ := a[member].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		out = append(out, e.(map[string]any))
	}
	return out
}

func errorPointer(r response) string {
	src, _ := r.firstError()["source"].(map[string]any)
	p, _ := src["pointer"].(string)
	return p
}

// stableSpec reads Klaviyo's OpenAPI document beside the project.
func stableSpec(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(stableJSON)
	require.NoError(t, err, "the reference spec must be beside the project")
	return b
}

// clientErrorSchema compiles the 4XX response schema of the spec (components.responses.ClientError).
func clientErrorSchema(t testing.TB) *gojsonschema.Schema {
	t.Helper()
	var doc struct {
		Components struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(stableSpec(t), &doc))
	sc := doc.Components.Responses["ClientError"].Content["application/vnd.api+json"].Schema
	require.NotNil(t, sc)
	s, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(convertSchema(sc)))
	require.NoError(t, err)
	return s
}

// servedEvent is an event as GET /api/events?include=attributions serves it, reduced to what a
// report counts; the attribution fields come from the included attribution resource.
type servedEvent struct {
	id, metric, profile string
	at                  time.Time
	cents               int64 // event_properties.$value in cents
	campaignMessage     string
	flow, flowMessage   string
}

// servedEvents pages GET /api/events over HTTP with include=attributions.
func servedEvents(t testing.TB, s *Server, filter string) []servedEvent {
	t.Helper()
	next := "/api/events?page[size]=1000&include=attributions"
	if filter != "" {
		next += "&filter=" + url.QueryEscape(filter)
	}
	var out []servedEvent
	eachPage(t, s, next, func(r response) {
		credits := map[string]map[string]string{} // attribution id -> relationship -> id
		inc, _ := r.doc["included"].([]any)
		for _, e := range inc {
			m := e.(map[string]any)
			rels := map[string]string{}
			for name, rel := range m["relationships"].(map[string]any) {
				if d, ok := rel.(map[string]any)["data"].(map[string]any); ok {
					rels[name] = d["id"].(string)
				}
			}
			credits[m["id"].(string)] = rels
		}
		for _, ev := range r.data() {
			a := ev["attributes"].(map[string]any)
			rel := ev["relationships"].(map[string]any)
			at, err := time.Parse(time.RFC3339, a["datetime"].(string))
			require.NoError(t, err)
			se := servedEvent{id: ev["id"].(string), at: at,
				metric:  rel["metric"].(map[string]any)["data"].(map[string]any)["id"].(string),
				profile: rel["profile"].(map[string]any)["data"].(map[string]any)["id"].(string)}
			if v, ok := a["event_properties"].(map[string]any)["$value"].(float64); ok {
				se.cents = int64(math.Round(v * 100))
			}
			if refs, _ := rel["attributions"].(map[string]any)["data"].([]any); len(refs) > 0 {
				c := credits[refs[0].(map[string]any)["id"].(string)]
				se.campaignMessage, se.flow, se.flowMessage = c["campaign-message"], c["flow"], c["flow-message"]
			}
			out = append(out, se)
		}
	})
	return out
}

// metricIDs maps metric names to ids through GET /api/metrics.
func metricIDs(t testing.TB, s *Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range collectAll(t, s, "/api/metrics") {
		out[m["attributes"].(map[string]any)["name"].(string)] = m["id"].(string)
	}
	return out
}

// expectedCounts are a message's (or a dimension's) numbers as a test computes them from events.
type expectedCounts struct {
	delivered, opens, clicks, bounced, unsubs, spam, conversions, cents int64
	opened, clicked, unsubscribed, converted                            map[string]bool
}

func newExpected() *expectedCounts {
	return &expectedCounts{opened: map[string]bool{}, clicked: map[string]bool{}, unsubscribed: map[string]bool{}, converted: map[string]bool{}}
}

// add counts one attributed event the documented way: by its metric's name.
func (e *expectedCounts) add(ev servedEvent, metricName, conversionMetric string) {
	switch metricName {
	case "Received Email":
		e.delivered++
	case "Opened Email":
		e.opens++
		e.opened[ev.profile] = true
	case "Clicked Email":
		e.clicks++
		e.clicked[ev.profile] = true
	case "Bounced Email":
		e.bounced++
	case "Unsubscribed":
		e.unsubs++
		e.unsubscribed[ev.profile] = true
	case "Marked Email as Spam":
		e.spam++
	}
	if ev.metric == conversionMetric {
		e.conversions++
		e.converted[ev.profile] = true
		e.cents += ev.cents
	}
}

// statistics renders the expected values of the statistics the agreement tests request.
func (e *expectedCounts) statistics() map[string]any {
	recipients := e.delivered + e.bounced
	rate := func(part, whole int64) float64 {
		if whole == 0 {
			return 0
		}
		return math.Min(1, float64(part)/float64(whole))
	}
	value := float64(e.cents) / 100
	aov, rpr := 0.0, 0.0
	if e.conversions > 0 {
		aov = value / float64(e.conversions)
	}
	if recipients > 0 {
		rpr = value / float64(recipients)
	}
	u := func(m map[string]bool) int64 { return int64(len(m)) }
	return map[string]any{
		"recipients": recipients, "delivered": e.delivered, "bounced": e.bounced, "opens": e.opens, "clicks": e.clicks,
		"unsubscribes": e.unsubs, "spam_complaints": e.spam, "conversions": e.conversions, "conversion_value": value,
		"opens_unique": u(e.opened), "clicks_unique": u(e.clicked), "unsubscribe_uniques": u(e.unsubscribed), "conversion_uniques": u(e.converted),
		"open_rate": rate(u(e.opened), e.delivered), "click_rate": rate(u(e.clicked), e.delivered), "bounce_rate": rate(e.bounced, recipients),
		"delivery_rate": rate(e.delivered, recipients), "click_to_open_rate": rate(u(e.clicked), u(e.opened)),
		"conversion_rate": rate(u(e.converted), e.delivered), "unsubscribe_rate": rate(u(e.unsubscribed), e.delivered),
		"average_order_value": aov, "revenue_per_recipient": rpr,
	}
}

// agreementStats are the statistics the agreement tests request and compare.
func agreementStats() []string {
	var out []string
	for k := range newExpected().statistics() {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sameNumber tells whether a decoded JSON number is exactly the expected int64 or float64 (the
// sandbox writes floats with the shortest representation that reads back to the same value);
// counts must be written as integers.
func sameNumber(t testing.TB, want, got any) bool {
	t.Helper()
	n, ok := got.(json.Number)
	require.True(t, ok, "%v is not a number", got)
	f, err := n.Float64()
	require.NoError(t, err)
	switch w := want.(type) {
	case int64:
		return !strings.ContainsAny(n.String(), ".eE") && f == float64(w)
	case float64:
		return f == w
	}
	return false
}
