package sandbox

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

// apiError is a Klaviyo error response: HTTP status plus one errors[] item.
type apiError struct {
	Status    int
	Code      string
	Title     string
	Detail    string
	Parameter string
	Pointer   string
	Allow     string // the Allow header of a 405
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail) }

func badParam(param, format string, a ...any) *apiError {
	return &apiError{Status: 400, Code: "invalid", Title: "Invalid input.", Detail: fmt.Sprintf(format, a...), Parameter: param}
}

func notFound(detail string) *apiError {
	return &apiError{Status: 404, Code: "not_found", Title: "Not found.", Detail: detail}
}

// query is a validated request: everything the engine needs, nothing it must re-check.
type query struct {
	ep         *specgen.Endpoint
	ids        []string
	filter     []pred
	sortField  string
	desc       bool
	include    []string
	additional map[string]map[string]bool
	fields     map[string][]string
	pageSize   int
	cursor     *cursor
	raw        url.Values
	path       string
}

// cursor is the opaque page[cursor]: the sort key and index of the last (or first, for prev)
// record of the page it was issued with, so pages stay stable while records are added.
type cursor struct {
	Dir  string `json:"d"`
	Key  any    `json:"k"`
	Idx  int64  `json:"i"`
	Sort string `json:"s"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("cursor is not base64: %w", err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("cursor is not a sandbox cursor: %w", err)
	}
	if c.Dir != "n" && c.Dir != "p" {
		return nil, errors.New("cursor has no direction")
	}
	return &c, nil
}

func (q *query) wantsAdditional(typ, field string) bool { return q.additional[typ][field] }

func (q *query) includes(name string) bool { return contains(q.include, name) }

// parseQuery validates the query string against the endpoint's rules from the OpenAPI document.
func parseQuery(ep *specgen.Endpoint, ids []string, path string, v url.Values) (*query, *apiError) {
	q := &query{ep: ep, ids: ids, raw: v, path: path}
	for name, vals := range v {
		val := ""
		if len(vals) > 0 {
			val = vals[len(vals)-1]
		}
		switch {
		case name == "filter":
			if len(ep.Filters) == 0 {
				return nil, badParam("filter", "'filter' is not a valid parameter for this endpoint.")
			}
			preds, err := parseFilter(val, ep.Filters)
			if err != nil {
				return nil, badParam("filter", "Invalid filter provided: %s.", err.Error())
			}
			q.filter = preds
		case name == "sort":
			if !contains(ep.Sort, val) {
				return nil, badParam("sort", "'%s' is not a valid sort for this resource.", val)
			}
			q.sortField = strings.TrimPrefix(val, "-")
			q.desc = strings.HasPrefix(val, "-")
		case name == "include":
			for _, inc := range splitList(val) {
				if !contains(ep.Include, inc) {
					return nil, badParam("include", "'%s' is not an allowed include parameter for this resource.", inc)
				}
				q.include = append(q.include, inc)
			}
		case strings.HasPrefix(name, "additional-fields[") && strings.HasSuffix(name, "]"):
			typ := name[len("additional-fields[") : len(name)-1]
			allowed, ok := ep.AdditionalFields[typ]
			if !ok {
				return nil, badParam(name, "'%s' is not a valid parameter for this endpoint.", name)
			}
			if q.additional == nil {
				q.additional = map[string]map[string]bool{}
			}
			set := map[string]bool{}
			for _, f := range splitList(val) {
				if !contains(allowed, f) {
					return nil, badParam(name, "'%s' is not a valid field for %s.", f, name)
				}
				set[f] = true
			}
			q.additional[typ] = set
		case strings.HasPrefix(name, "fields[") && strings.HasSuffix(name, "]"):
			typ := name[len("fields[") : len(name)-1]
			allowed, ok := ep.Fields[typ]
			if !ok {
				return nil, badParam(name, "'%s' is not a valid parameter for this endpoint.", name)
			}
			list := splitList(val)
			for _, f := range list {
				if !contains(allowed, f) {
					return nil, badParam(name, "'%s' is not a valid field for the resource '%s'.", f, typ)
				}
			}
			if q.fields == nil {
				q.fields = map[string][]string{}
			}
			q.fields[typ] = list
		case name == "page[size]":
			if ep.Page == nil {
				return nil, badParam("page[size]", "'page[size]' is not a valid parameter for this endpoint.")
			}
			n, err := strconv.Atoi(val)
			if err != nil {
				return nil, badParam("page[size]", "'%s' is not a valid integer.", val)
			}
			if n < ep.Page.Min || n > ep.Page.Max {
				return nil, badParam("page[size]", "Page size must be an integer between %d and %d.", ep.Page.Min, ep.Page.Max)
			}
			q.pageSize = n
		case name == "page[cursor]":
			c, err := decodeCursor(pageCursorValue(val))
			if err != nil {
				return nil, badParam("page[cursor]", "Invalid page cursor.")
			}
			q.cursor = c
		case strings.HasPrefix(name, "page["):
			return nil, badParam(name, "'%s' is not a valid parameter for this endpoint.", name)
		}
	}
	if ep.FilterRequired && len(q.filter) == 0 {
		return nil, badParam("filter", "A filter is required for this endpoint.")
	}
	if q.pageSize == 0 && ep.Page != nil {
		q.pageSize = ep.Page.Default
	}
	if q.cursor != nil && q.cursor.Sort != q.sortKeyName() {
		return nil, badParam("page[cursor]", "The page cursor does not match the requested sort.")
	}
	return q, nil
}

// pageCursorValue accepts a bare cursor or, as Klaviyo's SDKs do, a whole next link.
func pageCursorValue(v string) string {
	if !strings.Contains(v, "?") {
		return v
	}
	u, err := url.Parse(v)
	if err != nil {
		return v
	}
	return u.Query().Get("page[cursor]")
}

func (q *query) sortKeyName() string {
	if q.desc {
		return "-" + q.sortField
	}
	return q.sortField
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// predsOn returns the filter terms on one of the given fields.
func (q *query) predsOn(fields ...string) []pred {
	var out []pred
	for _, p := range q.filter {
		if contains(fields, p.field) {
			out = append(out, p)
		}
	}
	return out
}

// equalsValue returns the value of equals(field, value) if the filter has one.
func (q *query) equalsValue(field string) (fval, bool) {
	for _, p := range q.filter {
		if p.field == field && p.op == "equals" && !p.noVal {
			return p.val, true
		}
	}
	return fval{}, false
}
