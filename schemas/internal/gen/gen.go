package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// node is a decoded JSON object of the OpenAPI document or of a schema being built.
type node = map[string]any

// maxDepth bounds $ref chains and nesting, so a cyclic component is an error instead of a hang.
const maxDepth = 32

// maxDescription is the longest spec description kept; longer ones are prose for humans reading Klaviyo's docs,
// and they would bloat every catalog message.
const maxDescription = 120

// generator turns OpenAPI components into record schemas.
type generator struct {
	components node // components.schemas of stable.json
}

// Generate returns the schema file of every stream, keyed by file name. It is a pure function of the OpenAPI
// document and the stream table, which is what lets a test prove the committed files are current.
func Generate(spec []byte, streams []catalog.Stream) (map[string][]byte, error) {
	var doc struct {
		Components struct {
			Schemas node `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("decode OpenAPI document: %w", err)
	}
	if len(doc.Components.Schemas) == 0 {
		return nil, errors.New("OpenAPI document has no components.schemas")
	}
	g := generator{components: doc.Components.Schemas}
	out := make(map[string][]byte, len(streams))
	for _, s := range streams {
		props, err := g.streamProperties(s)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", s.Name, err)
		}
		b, err := render(props)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", s.Name, err)
		}
		if _, dup := out[s.SchemaFile()]; dup {
			return nil, fmt.Errorf("stream %s: schema file %s is claimed twice", s.Name, s.SchemaFile())
		}
		out[s.SchemaFile()] = b
	}
	return out, nil
}

// render wraps the record properties in the draft-07 envelope every stream shares.
func render(props node) ([]byte, error) {
	schema := node{
		"$schema":              "http://json-schema.org/draft-07/schema#",
		"type":                 "object",
		"additionalProperties": true,
		"properties":           props,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(schema); err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	// One type list per line keeps the files short enough to read and to review in a diff.
	return stringList.ReplaceAllFunc(buf.Bytes(), func(m []byte) []byte {
		return space.ReplaceAll(m, nil)
	}), nil
}

// stringList matches an indented JSON array of strings; space matches the layout whitespace inside one.
var (
	stringList = regexp.MustCompile(`\[\s+"[^"]*"(?:,\s+"[^"]*")*\s+\]`)
	space      = regexp.MustCompile(`\s+`)
)

// streamProperties builds the properties of the flat record the engine writes for s (DESIGN.md rule 2).
func (g generator) streamProperties(s catalog.Stream) (node, error) {
	var props node
	var err error
	switch s.Shape {
	case catalog.Flat:
		if s.Kind == catalog.PerParentLinks {
			props = node{s.ParentKey: str(), s.LinkKey: str()}
		} else {
			props, err = g.flatProperties(s)
		}
	case catalog.Membership:
		props, err = g.membershipProperties(s)
	case catalog.Audiences:
		props = node{
			"campaign_id": str(),
			"audience_id": withDesc(str(), "The id of a list or segment."),
			"inclusion":   withDesc(str(), "included or excluded."),
		}
	case catalog.TrackingParams:
		props, err = g.trackingParamProperties()
	case catalog.SendTimes:
		props, err = g.sendTimeProperties()
	case catalog.Suppressions, catalog.ListSuppressions:
		props, err = g.suppressionProperties(s)
	default:
		return nil, fmt.Errorf("shape %q has no schema rule; add one to the generator", s.Shape)
	}
	if err != nil {
		return nil, err
	}
	// Keys and cursors are always present in a record, and destinations refuse null keys.
	required := slices.Clone(s.PrimaryKey)
	if s.Cursor != nil {
		required = append(required, s.Cursor.Field)
	}
	for _, f := range required {
		p, ok := props[f].(node)
		if !ok {
			return nil, fmt.Errorf("key or cursor field %q is not a record field", f)
		}
		p["type"] = nonNull(p["type"])
	}
	return props, nil
}

// flatProperties lists id, every attribute of the component, the to-one relationship ids, the parent's id and the
// few extras the engine adds (an event's metric name, a profile's consent and predictive analytics).
func (g generator) flatProperties(s catalog.Stream) (node, error) {
	comp, err := g.resource(s.Component)
	if err != nil {
		return nil, err
	}
	attrs, err := g.objectProperties(comp, "attributes")
	if err != nil {
		return nil, fmt.Errorf("component %s: %w", s.Component, err)
	}
	props := node{"id": str()}
	for name, a := range attrs {
		sub, ok := a.(node)
		if !ok {
			return nil, fmt.Errorf("component %s: attribute %s is not a schema object", s.Component, name)
		}
		if isTrue(sub["writeOnly"]) {
			continue
		}
		if props[name], err = g.convert(sub, 0); err != nil {
			return nil, fmt.Errorf("component %s: attribute %s: %w", s.Component, name, err)
		}
	}
	rels, err := g.objectProperties(comp, "relationships")
	if err != nil {
		return nil, fmt.Errorf("component %s: %w", s.Component, err)
	}
	for name, r := range rels {
		one, err := g.toOne(r)
		if err != nil {
			return nil, fmt.Errorf("component %s: relationship %s: %w", s.Component, name, err)
		}
		if one {
			props[strings.ReplaceAll(name, "-", "_")+"_id"] = nullStr()
		}
	}
	if s.Parent != "" {
		props[s.ParentKey] = str()
	}
	if slices.Contains(s.Include, "metric") {
		props["metric_name"] = withDesc(nullStr(), "The name of the event's metric.")
	}
	if s.ResourceType == "profile" {
		// Requested with additional-fields[profile]; the component leaves them out because they are optional.
		for name, comp := range map[string]string{"subscriptions": "Subscriptions", "predictive_analytics": "PredictiveAnalytics"} {
			if _, ok := props[name]; ok {
				continue
			}
			if props[name], err = g.convert(node{"$ref": "#/components/schemas/" + comp, "nullable": true}, 0); err != nil {
				return nil, fmt.Errorf("component %s: %w", comp, err)
			}
		}
	}
	return props, nil
}

// membershipProperties is {<parent>_id, profile_id, joined_group_at} with joined_group_at typed by the spec.
func (g generator) membershipProperties(s catalog.Stream) (node, error) {
	comp, err := g.resource(s.Component)
	if err != nil {
		return nil, err
	}
	attrs, err := g.objectProperties(comp, "attributes")
	if err != nil {
		return nil, fmt.Errorf("component %s: %w", s.Component, err)
	}
	joined, ok := attrs["joined_group_at"].(node)
	if !ok {
		return nil, fmt.Errorf("component %s has no joined_group_at attribute", s.Component)
	}
	j, err := g.convert(joined, 0)
	if err != nil {
		return nil, fmt.Errorf("component %s: joined_group_at: %w", s.Component, err)
	}
	return node{s.ParentKey: str(), "profile_id": str(), "joined_group_at": j}, nil
}

// trackingParamProperties is campaign_id plus the union of the fields of both tracking parameter kinds.
func (g generator) trackingParamProperties() (node, error) {
	props := node{"campaign_id": str()}
	for _, name := range []string{"DynamicTrackingParam", "StaticTrackingParam"} {
		comp, err := g.resource(name)
		if err != nil {
			return nil, err
		}
		fields, _ := comp["properties"].(node)
		for f, sub := range fields {
			sn, ok := sub.(node)
			if !ok {
				return nil, fmt.Errorf("component %s: field %s is not a schema object", name, f)
			}
			if props[f], err = g.convert(sn, 0); err != nil {
				return nil, fmt.Errorf("component %s: field %s: %w", name, f, err)
			}
		}
	}
	return props, nil
}

// sendTimeProperties is the campaign and message ids plus the fields of one SendTime.
func (g generator) sendTimeProperties() (node, error) {
	comp, err := g.resource("SendTime")
	if err != nil {
		return nil, err
	}
	props := node{"campaign_id": str(), "campaign_message_id": str()}
	fields, _ := comp["properties"].(node)
	for f, sub := range fields {
		sn, ok := sub.(node)
		if !ok {
			return nil, fmt.Errorf("component SendTime: field %s is not a schema object", f)
		}
		if props[f], err = g.convert(sn, 0); err != nil {
			return nil, fmt.Errorf("component SendTime: field %s: %w", f, err)
		}
	}
	return props, nil
}

// suppressionProperties is profile_id and email plus the fields of one global or per-list suppression, found at
// subscriptions.email.marketing.suppression[] or .list_suppressions[].
func (g generator) suppressionProperties(s catalog.Stream) (node, error) {
	comp, err := g.resource(s.Component)
	if err != nil {
		return nil, err
	}
	attrs, err := g.objectProperties(comp, "attributes")
	if err != nil {
		return nil, fmt.Errorf("component %s: %w", s.Component, err)
	}
	email, ok := attrs["email"].(node)
	if !ok {
		return nil, fmt.Errorf("component %s has no email attribute", s.Component)
	}
	props := node{"profile_id": str()}
	if props["email"], err = g.convert(email, 0); err != nil {
		return nil, fmt.Errorf("component %s: email: %w", s.Component, err)
	}
	leaf := "suppression"
	if s.Shape == catalog.ListSuppressions {
		leaf = "list_suppressions"
	}
	cur, err := g.resource("Subscriptions")
	if err != nil {
		return nil, err
	}
	for _, step := range []string{"email", "marketing", leaf} {
		fields, _ := cur["properties"].(node)
		next, ok := fields[step].(node)
		if !ok {
			return nil, fmt.Errorf("Subscriptions has no %s on the way to %s", step, leaf)
		}
		if cur, _, err = g.resolve(next); err != nil {
			return nil, err
		}
	}
	items, ok := cur["items"].(node)
	if !ok {
		return nil, fmt.Errorf("Subscriptions email.marketing.%s is not an array of objects", leaf)
	}
	if items, _, err = g.resolve(items); err != nil {
		return nil, err
	}
	fields, _ := items["properties"].(node)
	for f, sub := range fields {
		sn, ok := sub.(node)
		if !ok {
			return nil, fmt.Errorf("suppression field %s is not a schema object", f)
		}
		if props[f], err = g.convert(sn, 0); err != nil {
			return nil, fmt.Errorf("suppression field %s: %w", f, err)
		}
	}
	return props, nil
}

// component returns a named component of components.schemas.
func (g generator) component(name string) (node, error) {
	c, ok := g.components[name].(node)
	if !ok {
		return nil, fmt.Errorf("component %q is not in the OpenAPI document", name)
	}
	return c, nil
}

// resource returns a named resource component with any top-level $ref followed.
func (g generator) resource(name string) (node, error) {
	c, err := g.component(name)
	if err != nil {
		return nil, err
	}
	r, _, err := g.resolve(c)
	if err != nil {
		return nil, fmt.Errorf("component %s: %w", name, err)
	}
	return r, nil
}

// objectProperties returns the properties of the resource's attributes or relationships object (none when the
// resource has no such member).
func (g generator) objectProperties(resource node, member string) (node, error) {
	top, _ := resource["properties"].(node)
	m, ok := top[member].(node)
	if !ok {
		return nil, nil
	}
	obj, _, err := g.resolve(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", member, err)
	}
	props, _ := obj["properties"].(node)
	return props, nil
}

// toOne reports whether a relationship entry's data is a single resource identifier rather than an array.
func (g generator) toOne(rel any) (bool, error) {
	rn, ok := rel.(node)
	if !ok {
		return false, errors.New("not a schema object")
	}
	r, _, err := g.resolve(rn)
	if err != nil {
		return false, err
	}
	props, _ := r["properties"].(node)
	data, ok := props["data"].(node)
	if !ok {
		return false, nil
	}
	d, _, err := g.resolve(data)
	if err != nil {
		return false, err
	}
	return d["type"] == "object", nil
}

// resolve follows $ref to the schema it names. A nullable flag anywhere on the way makes the result nullable:
// Klaviyo writes `{"$ref": ..., "nullable": true}` to mean a nullable reference.
func (g generator) resolve(s node) (node, bool, error) {
	nullable := isTrue(s["nullable"])
	for i := 0; ; i++ {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s, nullable, nil
		}
		if i >= maxDepth {
			return nil, false, fmt.Errorf("$ref chain through %s is too long (cyclic?)", ref)
		}
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			return nil, false, fmt.Errorf("$ref %q does not name a component", ref)
		}
		next, err := g.component(name)
		if err != nil {
			return nil, false, err
		}
		s = next
		nullable = nullable || isTrue(s["nullable"])
	}
}

// convert turns one OpenAPI schema into the record schema of that value: types with nullability, date-time
// formats, nested properties and array items kept; enums, examples, defaults and $refs dropped; oneOf/anyOf/allOf
// of objects collapsed to a nullable object, because destinations cannot map unions to columns.
func (g generator) convert(s node, depth int) (node, error) {
	if depth > maxDepth {
		return nil, errors.New("schema nests too deeply (cyclic?)")
	}
	desc, _ := s["description"].(string)
	r, nullable, err := g.resolve(s)
	if err != nil {
		return nil, err
	}
	if desc == "" {
		desc, _ = r["description"].(string)
	}
	out := node{}
	if d := shortDescription(desc); d != "" {
		out["description"] = d
	}
	if members, ok := union(r); ok {
		types, err := g.scalarTypes(members)
		if err != nil {
			return nil, err
		}
		if types == nil {
			out["type"] = []string{"object", "null"}
			return out, nil
		}
		if nullable {
			types = append(types, "null")
		}
		out["type"] = types
		return out, nil
	}
	t, _ := r["type"].(string)
	switch t {
	case "object":
		fields, _ := r["properties"].(node)
		if len(fields) == 0 {
			out["type"] = []string{"object", "null"}
			return out, nil
		}
		out["type"] = typeOf(t, nullable)
		props := node{}
		for name, sub := range fields {
			sn, ok := sub.(node)
			if !ok {
				return nil, fmt.Errorf("property %s is not a schema object", name)
			}
			if isTrue(sn["writeOnly"]) {
				continue
			}
			if props[name], err = g.convert(sn, depth+1); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		out["properties"] = props
	case "array":
		out["type"] = typeOf(t, nullable)
		if items, ok := r["items"].(node); ok {
			if out["items"], err = g.convert(items, depth+1); err != nil {
				return nil, fmt.Errorf("items: %w", err)
			}
		}
	case "string", "integer", "number", "boolean":
		out["type"] = typeOf(t, nullable)
		if t == "string" && r["format"] == "date-time" {
			out["format"] = "date-time"
		}
	case "":
		// An untyped schema accepts any JSON value; saying nothing about the type says exactly that.
	default:
		return nil, fmt.Errorf("unknown type %q", t)
	}
	return out, nil
}

// union returns the members of a oneOf, anyOf or allOf.
func union(s node) ([]any, bool) {
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if m, ok := s[k].([]any); ok {
			return m, true
		}
	}
	return nil, false
}

// scalarTypes returns the distinct types of union members when all of them are scalars (a latitude is a string
// or a number), and nil when any member is an object, an array or untyped.
func (g generator) scalarTypes(members []any) ([]string, error) {
	var types []string
	for _, m := range members {
		mn, ok := m.(node)
		if !ok {
			return nil, errors.New("union member is not a schema object")
		}
		r, _, err := g.resolve(mn)
		if err != nil {
			return nil, err
		}
		t, _ := r["type"].(string)
		switch t {
		case "string", "integer", "number", "boolean":
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		default:
			return nil, nil
		}
	}
	return types, nil
}

// shortDescription keeps a spec description only when it is one short line.
func shortDescription(d string) string {
	d = strings.TrimSpace(d)
	if len(d) > maxDescription || strings.ContainsAny(d, "\n<[`") {
		return ""
	}
	return d
}

func typeOf(t string, nullable bool) any {
	if nullable {
		return []string{t, "null"}
	}
	return t
}

// nonNull removes "null" from a type; a single remaining type is written as a plain string.
func nonNull(t any) any {
	ts, ok := t.([]string)
	if !ok {
		return t
	}
	ts = slices.DeleteFunc(slices.Clone(ts), func(s string) bool { return s == "null" })
	if len(ts) == 1 {
		return ts[0]
	}
	return ts
}

func str() node     { return node{"type": "string"} }
func nullStr() node { return node{"type": []string{"string", "null"}} }

func withDesc(n node, d string) node {
	n["description"] = d
	return n
}

func isTrue(v any) bool {
	b, ok := v.(bool)
	return ok && b
}
