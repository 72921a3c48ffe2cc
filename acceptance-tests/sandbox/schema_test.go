package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xeipuuv/gojsonschema"
)

const stableJSON = "../../../shared/klaviyo/stable.json"

// openAPISchemas converts the spec's component schemas to draft-07 for gojsonschema: nullable
// becomes a union with null, $ref moves to #/definitions, a $ref with siblings goes under allOf
// (draft-07 ignores siblings of $ref), and oneOf becomes anyOf because the spec uses oneOf for
// shapes that overlap (three identical send_options variants would otherwise never validate).
type openAPISchemas struct {
	defs map[string]any
}

func loadOpenAPI(t testing.TB) *openAPISchemas {
	t.Helper()
	b, err := os.ReadFile(stableJSON)
	require.NoError(t, err, "the reference spec must be beside the project")
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	defs := map[string]any{}
	for k, v := range doc.Components.Schemas {
		defs[k] = convertSchema(v)
	}
	return &openAPISchemas{defs: defs}
}

func convertSchema(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = convertSchema(x[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			switch k {
			case "example", "examples", "discriminator":
				continue
			case "properties":
				props := map[string]any{}
				for pk, pv := range val.(map[string]any) {
					props[pk] = convertSchema(pv)
				}
				out[k] = props
				continue
			case "enum", "required":
				out[k] = val
				continue
			}
			out[k] = convertSchema(val)
		}
		if ref, ok := out["$ref"].(string); ok {
			out["$ref"] = strings.Replace(ref, "#/components/schemas/", "#/definitions/", 1)
		}
		if o, ok := out["oneOf"]; ok {
			delete(out, "oneOf")
			if a, ok := out["anyOf"]; ok {
				out["allOf"] = append(asList(out["allOf"]), map[string]any{"anyOf": a})
			}
			out["anyOf"] = o
		}
		nullable := out["nullable"] == true
		delete(out, "nullable")
		if ref, ok := out["$ref"]; ok && len(out) > 1 {
			delete(out, "$ref")
			out["allOf"] = append(asList(out["allOf"]), map[string]any{"$ref": ref})
		}
		if nullable {
			return map[string]any{"anyOf": []any{out, map[string]any{"type": "null"}}}
		}
		return out
	}
	return v
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// schemaFor compiles one component with only the definitions it reaches.
func (o *openAPISchemas) schemaFor(t testing.TB, name string) *gojsonschema.Schema {
	t.Helper()
	used := map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				if k == "$ref" {
					n := strings.TrimPrefix(e.(string), "#/definitions/")
					if _, ok := used[n]; !ok {
						used[n] = o.defs[n]
						walk(o.defs[n])
					}
					continue
				}
				walk(e)
			}
		}
	}
	walk(map[string]any{"$ref": "#/definitions/" + name})
	root := map[string]any{"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#/definitions/" + name, "definitions": used}
	s, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(root))
	require.NoError(t, err, name)
	return s
}

// schemaCases is one request per served endpoint, with the options that widen the response.
func schemaCases(t testing.TB, s *Server) []string {
	first := func(path string, q string) string {
		v, err := url.ParseQuery(q)
		require.NoError(t, err)
		res, err := s.Resources(path, v)
		require.NoError(t, err, path)
		require.NotEmpty(t, res, path)
		var r struct{ ID string }
		require.NoError(t, json.Unmarshal(res[0], &r))
		return url.PathEscape(r.ID)
	}
	email := "filter=" + url.QueryEscape("equals(messages.channel,'email')")
	campaign := first("/api/campaigns", email)
	flow := first("/api/flows", "")
	coupon := first("/api/coupons", "")
	tag := first("/api/tags", "")
	form := first("/api/forms", "")
	list := first("/api/lists", "")
	segment := first("/api/segments", "")
	sentCampaign := first("/api/campaigns", "filter="+url.QueryEscape("equals(messages.channel,'sms'),equals(status,'Sent')"))
	flowActions := first("/api/flows/"+flow+"/flow-actions", "")
	return []string{
		"/api/accounts",
		"/api/accounts/" + first("/api/accounts", ""),
		"/api/profiles?page[size]=100&include=push-tokens&additional-fields[profile]=subscriptions,predictive_analytics",
		"/api/profiles/" + first("/api/profiles", "") + "?additional-fields[profile]=subscriptions,predictive_analytics&include=lists,segments,push-tokens",
		"/api/events?page[size]=1000&include=metric,profile,attributions",
		"/api/events/" + first("/api/events", "") + "?include=metric,profile",
		"/api/metrics?include=flow-triggers",
		"/api/metrics/" + first("/api/metrics", ""),
		"/api/lists?include=tags,flow-triggers",
		"/api/lists/" + list + "?additional-fields[list]=profile_count&include=tags",
		"/api/lists/" + list + "/profiles?page[size]=100&additional-fields[profile]=subscriptions,predictive_analytics",
		"/api/lists/" + list + "/relationships/profiles?page[size]=100",
		"/api/segments?include=tags",
		"/api/segments/" + segment + "?additional-fields[segment]=profile_count",
		"/api/segments/" + segment + "/profiles?page[size]=100&additional-fields[profile]=subscriptions,predictive_analytics",
		"/api/segments/" + segment + "/relationships/profiles",
		"/api/flows?include=flow-actions,tags",
		"/api/flows/" + flow + "?include=flow-actions,tags&additional-fields[flow]=definition",
		"/api/flows/" + flow + "/flow-actions",
		"/api/flow-actions/" + flowActions,
		"/api/flow-actions/" + flowActions + "/flow-messages",
		"/api/campaigns?" + email + "&include=campaign-messages,tags",
		"/api/campaigns?filter=" + url.QueryEscape("equals(messages.channel,'sms')"),
		"/api/campaigns?filter=" + url.QueryEscape("equals(messages.channel,'mobile_push')"),
		"/api/campaigns/" + campaign + "?include=campaign-messages,tags",
		"/api/campaigns/" + campaign + "/campaign-messages?include=campaign,image,template",
		"/api/campaign-messages/" + first("/api/campaigns/"+campaign+"/campaign-messages", ""),
		"/api/campaign-recipient-estimations/" + campaign,
		"/api/campaign-send-jobs/" + sentCampaign,
		"/api/templates?additional-fields[template]=definition",
		"/api/templates/" + first("/api/templates", ""),
		"/api/tags?include=tag-group",
		"/api/tags/" + tag,
		"/api/tag-groups",
		"/api/tag-groups/" + first("/api/tag-groups", ""),
		"/api/tags/" + tag + "/relationships/campaigns",
		"/api/tags/" + tag + "/relationships/flows",
		"/api/tags/" + tag + "/relationships/lists",
		"/api/tags/" + tag + "/relationships/segments",
		"/api/coupons",
		"/api/coupons/" + coupon,
		"/api/coupon-codes?include=coupon&filter=" + url.QueryEscape("equals(coupon.id,\""+coupon+"\")"),
		"/api/coupon-codes/" + first("/api/coupons/"+coupon+"/coupon-codes", ""),
		"/api/coupons/" + coupon + "/coupon-codes",
		"/api/catalog-items?include=variants",
		"/api/catalog-items/" + first("/api/catalog-items", ""),
		"/api/catalog-variants",
		"/api/catalog-variants/" + first("/api/catalog-variants", ""),
		"/api/catalog-categories",
		"/api/catalog-categories/" + first("/api/catalog-categories", ""),
		"/api/images",
		"/api/images/" + first("/api/images", ""),
		"/api/forms",
		"/api/forms/" + form,
		"/api/forms/" + form + "/form-versions",
		"/api/form-versions/" + first("/api/forms/"+form+"/form-versions", ""),
		"/api/reviews?include=events",
		"/api/reviews/" + first("/api/reviews", ""),
		"/api/webhooks?include=webhook-topics",
		"/api/webhooks/" + first("/api/webhooks", ""),
		"/api/webhook-topics",
		"/api/push-tokens?include=profile",
		"/api/push-tokens/" + first("/api/push-tokens", ""),
		"/api/webhook-topics/" + first("/api/webhook-topics", ""),
		"/api/template-universal-content",
		"/api/template-universal-content/" + first("/api/template-universal-content", ""),
		"/api/tracking-settings",
		"/api/tracking-settings/" + first("/api/tracking-settings", ""),
		"/api/web-feeds",
		"/api/web-feeds/" + first("/api/web-feeds", ""),
		"/api/custom-metrics",
		"/api/custom-metrics/" + first("/api/custom-metrics", ""),
		"/api/mapped-metrics",
		"/api/mapped-metrics/" + first("/api/mapped-metrics", ""),
		"/api/flow-messages/" + first("/api/flow-actions/"+flowActions+"/flow-messages", ""),
	}
}

// TestResponsesMatchSpecSchemas validates a response of every served endpoint against its 200
// response schema in Klaviyo's OpenAPI document.
func TestResponsesMatchSpecSchemas(t *testing.T) {
	s := startSmall(t, nil)
	o := loadOpenAPI(t)
	compiled := map[string]*gojsonschema.Schema{}
	served := map[string]bool{}
	for _, pq := range schemaCases(t, s) {
		path := strings.SplitN(pq, "?", 2)[0]
		ep, _, ok := s.spec.match(path)
		require.True(t, ok, path)
		served[ep.Path] = true
		t.Run(pq, func(t *testing.T) {
			r := get(t, s, pq)
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			assert.Equal(t, "application/vnd.api+json", r.header.Get("Content-Type"))
			sc, ok := compiled[ep.Response]
			if !ok {
				sc = o.schemaFor(t, ep.Response)
				compiled[ep.Response] = sc
			}
			res, err := sc.Validate(gojsonschema.NewBytesLoader(r.body))
			require.NoError(t, err)
			var msgs []string
			for _, e := range res.Errors() {
				msgs = append(msgs, e.String())
			}
			sort.Strings(msgs)
			if len(msgs) > 15 {
				msgs = append(msgs[:15], fmt.Sprintf("... and %d more", len(msgs)-15))
			}
			assert.True(t, res.Valid(), "%s against %s:\n%s", pq, ep.Response, strings.Join(msgs, "\n"))
		})
	}
	for p := range s.routes {
		assert.True(t, served[p], "route %s has no schema case", p)
	}
	// The conversion must still reject what the spec forbids.
	body := get(t, s, "/api/events?page[size]=1").body
	bad := strings.Replace(string(body), `"type":"event"`, `"type":"evnt"`, 1)
	res, err := compiled["GetEventResponseCollectionCompoundDocument"].Validate(gojsonschema.NewStringLoader(bad))
	require.NoError(t, err)
	assert.False(t, res.Valid(), "a wrong resource type must fail validation")
	bad = strings.Replace(string(body), `"timestamp":`, `"timestamp":"x`, 1)
	bad = strings.Replace(bad, `,"uuid"`, `","uuid"`, 1)
	res, err = compiled["GetEventResponseCollectionCompoundDocument"].Validate(gojsonschema.NewStringLoader(bad))
	require.NoError(t, err)
	assert.False(t, res.Valid(), "a string timestamp must fail validation")
}
