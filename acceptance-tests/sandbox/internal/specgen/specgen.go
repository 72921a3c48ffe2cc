// Package specgen derives the sandbox's per-endpoint request rules from Klaviyo's OpenAPI document,
// so the sandbox validates requests exactly as the published contract says without reading the
// (3 MB) document at run time.
package specgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Endpoint is everything the sandbox needs to know about one GET operation.
type Endpoint struct {
	Path             string                 `json:"path"`
	OperationID      string                 `json:"operation_id"`
	Scopes           []string               `json:"scopes"`
	Burst            int                    `json:"burst"`
	Steady           int                    `json:"steady"`
	Page             *Page                  `json:"page,omitempty"`
	FilterRequired   bool                   `json:"filter_required,omitempty"`
	Filters          map[string]FilterField `json:"filters,omitempty"`
	Sort             []string               `json:"sort,omitempty"`
	Include          []string               `json:"include,omitempty"`
	AdditionalFields map[string][]string    `json:"additional_fields,omitempty"`
	Fields           map[string][]string    `json:"fields,omitempty"`
	Response         string                 `json:"response"`
}

// Page holds the page[size] bounds of a paginated endpoint.
type Page struct {
	Default int `json:"default"`
	Min     int `json:"min"`
	Max     int `json:"max"`
}

// FilterField lists the operators a filter field accepts, by the shape of their value.
type FilterField struct {
	Single []string `json:"single,omitempty"` // operator(field,value)
	List   []string `json:"list,omitempty"`   // operator(field,[v1,v2])
	None   []string `json:"none,omitempty"`   // operator(field)
	Type   string   `json:"type,omitempty"`   // string, number, integer, boolean, date-time
	Enum   []string `json:"enum,omitempty"`
}

type spec struct {
	Paths map[string]map[string]operation `json:"paths"`
}

type operation struct {
	OperationID string             `json:"operationId"`
	Parameters  []parameter        `json:"parameters"`
	RateLimit   map[string]string  `json:"x-klaviyo-ratelimit"`
	Scopes      []string           `json:"x-klaviyo-scopes"`
	Filters     map[string]xFilter `json:"x-klaviyo-filters"`
	Responses   map[string]struct {
		Content map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

type parameter struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
	Schema   struct {
		Type    string          `json:"type"`
		Enum    []string        `json:"enum"`
		Default json.RawMessage `json:"default"`
		Minimum *int            `json:"minimum"`
		Maximum *int            `json:"maximum"`
		Items   struct {
			Enum []string `json:"enum"`
		} `json:"items"`
	} `json:"schema"`
}

type xFilter struct {
	Operators map[string][]string `json:"operators"`
	Value     struct {
		Type   string   `json:"type"`
		Format string   `json:"format"`
		Enum   []string `json:"enum"`
	} `json:"value"`
}

var ratePattern = regexp.MustCompile(`^(\d+)/([smd])$`)

// Build reads an OpenAPI document and returns the endpoint table as indented JSON, sorted by path,
// covering every GET under /api/.
func Build(openapi []byte) ([]byte, error) {
	var s spec
	if err := json.Unmarshal(openapi, &s); err != nil {
		return nil, fmt.Errorf("specgen: decode openapi: %w", err)
	}
	var out []Endpoint
	for path, item := range s.Paths {
		op, ok := item["get"]
		if !ok || !strings.HasPrefix(path, "/api/") {
			continue
		}
		ep, err := endpoint(path, op)
		if err != nil {
			return nil, fmt.Errorf("specgen: %s: %w", path, err)
		}
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return encodeTable(out)
}

// encodeTable renders a table as the indented JSON committed beside the sandbox.
func encodeTable(table any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(table); err != nil {
		return nil, fmt.Errorf("specgen: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// limits reads an operation's burst (per second) and steady (per minute) rate limits.
func limits(op operation) (burst, steady int, err error) {
	if burst, err = rate(op.RateLimit["burst"], "s"); err != nil {
		return 0, 0, err
	}
	steady, err = rate(op.RateLimit["steady"], "m")
	return burst, steady, err
}

// responseComponent names the schema component of an operation's 200 response.
func responseComponent(op operation) string {
	name := ""
	if r, ok := op.Responses["200"]; ok {
		for _, c := range r.Content {
			name = c.Schema.Ref[strings.LastIndex(c.Schema.Ref, "/")+1:]
		}
	}
	return name
}

func endpoint(path string, op operation) (Endpoint, error) {
	ep := Endpoint{Path: path, OperationID: op.OperationID, Scopes: op.Scopes}
	var err error
	if ep.Burst, ep.Steady, err = limits(op); err != nil {
		return ep, err
	}
	for _, p := range op.Parameters {
		if p.In != "query" {
			continue
		}
		switch {
		case p.Name == "page[size]":
			pg := &Page{Min: 1}
			if p.Schema.Minimum != nil {
				pg.Min = *p.Schema.Minimum
			}
			if p.Schema.Maximum != nil {
				pg.Max = *p.Schema.Maximum
			}
			if len(p.Schema.Default) > 0 {
				d, err := strconv.Atoi(string(p.Schema.Default))
				if err != nil {
					return ep, fmt.Errorf("page[size] default: %w", err)
				}
				pg.Default = d
			}
			ep.Page = pg
		case p.Name == "filter":
			ep.FilterRequired = p.Required
		case p.Name == "sort":
			ep.Sort = p.Schema.Enum
		case p.Name == "include":
			ep.Include = p.Schema.Items.Enum
		case strings.HasPrefix(p.Name, "additional-fields["):
			if ep.AdditionalFields == nil {
				ep.AdditionalFields = map[string][]string{}
			}
			ep.AdditionalFields[bracket(p.Name)] = p.Schema.Items.Enum
		case strings.HasPrefix(p.Name, "fields["):
			if ep.Fields == nil {
				ep.Fields = map[string][]string{}
			}
			ep.Fields[bracket(p.Name)] = p.Schema.Items.Enum
		}
	}
	if len(op.Filters) > 0 {
		ep.Filters = map[string]FilterField{}
		for name, f := range op.Filters {
			ff := FilterField{
				Single: f.Operators["single"], List: f.Operators["list"], None: f.Operators["none"],
				Type: f.Value.Type, Enum: f.Value.Enum,
			}
			if f.Value.Format == "date-time" {
				ff.Type = "date-time"
			}
			ep.Filters[name] = ff
		}
	}
	ep.Response = responseComponent(op)
	return ep, nil
}

func bracket(name string) string {
	i := strings.IndexByte(name, '[')
	return strings.TrimSuffix(name[i+1:], "]")
}

func rate(v, unit string) (int, error) {
	if v == "" {
		return 0, nil
	}
	m := ratePattern.FindStringSubmatch(v)
	if m == nil || m[2] != unit {
		return 0, fmt.Errorf("unexpected rate limit %q (want N/%s)", v, unit)
	}
	return strconv.Atoi(m[1])
}
