package source

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// requestBuilder makes one stream's requests for one sync. What depends only on the config and the selection (the
// variants, the optional fields and the budget they imply, the sparse fieldset) is decided once, when it is built.
type requestBuilder struct {
	s catalog.Stream
	// variants are the filters the stream is read once each with (see catalog.Stream.Variants).
	variants []string
	// additional is the additional-fields[type] list: the table's, then the optional fields the config asks for.
	additional []string
	// sparse is the fields[type] list, nil for every attribute.
	sparse []string
	// userFilter is the config's filter on the stream (profiles_filter), checked, ANDed with every request's own.
	userFilter string
	// endpoint keys the rate budget, and budget is that budget: the endpoint's, or the stricter one an optional
	// field brings (predictive analytics), shared only by the requests that ask for that field.
	endpoint string
	budget   klaviyo.Budget
}

func newRequestBuilder(cfg Config, s catalog.Stream, sparse []string) requestBuilder {
	b := requestBuilder{s: s, variants: variantsFor(cfg, s), sparse: sparse, userFilter: cfg.userFilters[s.Name]}
	b.additional = slices.Clone(s.AdditionalFields)
	for _, f := range s.OptionalFields {
		if cfg.Flag(f.Option) {
			b.additional = append(b.additional, f.Field)
		}
	}
	b.endpoint, b.budget = b.budgetFor(b.additional)
	return b
}

// budgetFor returns the endpoint key and budget of a request asking for the given additional fields: the
// strictest optional field's, or the stream's own.
func (b requestBuilder) budgetFor(additional []string) (string, klaviyo.Budget) {
	endpoint, rate := b.s.Path, b.s.Rate
	for _, f := range b.s.OptionalFields {
		if f.Rate != nil && slices.Contains(additional, f.Field) && f.Rate.PerMinute < rate.PerMinute {
			endpoint, rate = b.s.Path+"#"+f.Field, *f.Rate
		}
	}
	return endpoint, klaviyo.Budget{Burst: rate.Burst, PerMinute: rate.PerMinute}
}

// variantsFor are the filters a stream is read once each with: the values of its option variants when the config
// names any (one query per metric for event_metric_ids, since Klaviyo's metric_id filter takes a single value),
// else the table's variants, else one unfiltered read.
func variantsFor(cfg Config, s catalog.Stream) []string {
	if ov := s.OptionVariants; ov != nil {
		if values := cfg.List(ov.Option); len(values) > 0 {
			out := make([]string, 0, len(values))
			for _, v := range values {
				out = append(out, strings.ReplaceAll(ov.Filter, "{value}", quoteFilter(v)))
			}
			return out
		}
	}
	if len(s.Variants) == 0 {
		return []string{""}
	}
	return s.Variants
}

// quoteFilter writes a string literal for Klaviyo's filter syntax: double quotes, inner quotes and backslashes
// escaped with a backslash.
func quoteFilter(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// build returns the first request of one read: the stream's query for a parent (or none), a variant, and a
// window of the cursor (nil for no cursor bounds).
func (b requestBuilder) build(parentID, variant string, w *window) klaviyo.Request {
	s := b.s
	q := url.Values{}
	if s.PageSize > 0 {
		q.Set("page[size]", strconv.Itoa(s.PageSize))
	}
	var filters []string
	if s.Filter != "" {
		filters = append(filters, strings.ReplaceAll(s.Filter, "{id}", parentID))
	}
	if b.userFilter != "" {
		filters = append(filters, b.userFilter)
	}
	if variant != "" {
		filters = append(filters, variant)
	}
	if w != nil && s.Cursor != nil {
		filters = append(filters, windowFilters(*s.Cursor, w.lo, w.hi)...)
		if s.Cursor.Sort != "" {
			q.Set("sort", s.Cursor.Sort)
		}
	}
	if len(filters) > 0 {
		q.Set("filter", strings.Join(filters, ","))
	}
	if len(s.Include) > 0 {
		q.Set("include", strings.Join(s.Include, ","))
		if slices.Contains(s.Include, "metric") {
			q.Set("fields[metric]", "name")
		}
	}
	if len(b.sparse) > 0 {
		q.Set("fields["+s.ResourceType+"]", strings.Join(b.sparse, ","))
	}
	if len(b.additional) > 0 {
		q.Set("additional-fields["+s.ResourceType+"]", strings.Join(b.additional, ","))
	}
	return klaviyo.Request{Endpoint: b.endpoint, Budget: b.budget, Scopes: s.Scopes,
		Path: strings.ReplaceAll(s.Path, "{id}", url.PathEscape(parentID)), Query: q}
}

// probe is the request that finds where a window's data starts: its first records in cursor order, a page of at
// most probePage. A page rather than one record, because when the whole span fits in it (a stream with a few
// campaigns, an incremental read of a quiet day) the probe is the read.
func (b requestBuilder) probe(variant string, w *window) klaviyo.Request {
	req := b.build("", variant, w)
	if b.s.PageSize > 0 {
		req.Query.Set("page[size]", strconv.Itoa(min(b.s.PageSize, probePage)))
	}
	return req
}

// probePage bounds the probe's page: the page sizes of most endpoints, a tenth of an events page (whose probe is
// discarded when the data goes on, so it should not cost a whole megabyte).
const probePage = 100

// withoutFallible answers Klaviyo's habit of failing some optional fields (predictive analytics) with 5xx after
// every retry: it returns the same request, at the same page, without those fields, so the records still arrive
// (the fields null) and the sync goes on. It reports false when err is not such a failure or the request asks
// for no fallible field.
func (b requestBuilder) withoutFallible(req klaviyo.Request, err error) (klaviyo.Request, []string, bool) {
	var ke *klaviyo.Error
	if !errors.As(err, &ke) || ke.Kind != klaviyo.KindTransient {
		return req, nil, false
	}
	// A links.next carries the page's query (the cursor included) in its URL; the path is the request's own, so
	// a base_url with a path prefix is not applied twice.
	q := req.Query
	if req.URL != "" {
		u, perr := url.Parse(req.URL)
		if perr != nil {
			return req, nil, false
		}
		q = u.Query()
	}
	param := "additional-fields[" + b.s.ResourceType + "]"
	var keep, dropped []string
	for _, f := range strings.Split(q.Get(param), ",") {
		if f == "" {
			continue
		}
		if b.fallible(f) {
			dropped = append(dropped, f)
		} else {
			keep = append(keep, f)
		}
	}
	if len(dropped) == 0 {
		return req, nil, false
	}
	q = cloneValues(q)
	if len(keep) == 0 {
		q.Del(param)
	} else {
		q.Set(param, strings.Join(keep, ","))
	}
	out := req
	out.URL, out.Query = "", q
	out.Endpoint, out.Budget = b.budgetFor(keep)
	return out, dropped, true
}

func (b requestBuilder) fallible(field string) bool {
	for _, f := range b.s.OptionalFields {
		if f.Field == field {
			return f.Fallible
		}
	}
	return false
}

// windowFilters expresses [lo, hi) with the operators the endpoint has. Klaviyo timestamps are whole seconds, so
// greater-than(lo - 1s) equals greater-or-equal(lo), and less-or-equal(hi - 1s) equals less-than(hi).
func windowFilters(c catalog.Cursor, lo, hi time.Time) []string {
	field := c.Field
	if c.FilterField != "" {
		field = c.FilterField
	}
	var out []string
	if !lo.IsZero() {
		switch c.Lower {
		case "greater-than":
			out = append(out, fmt.Sprintf("greater-than(%s,%s)", field, lo.Add(-time.Second).UTC().Format(cursorFormat)))
		default:
			out = append(out, fmt.Sprintf("greater-or-equal(%s,%s)", field, lo.UTC().Format(cursorFormat)))
		}
	}
	if !hi.IsZero() && c.Upper != "" {
		switch c.Upper {
		case "less-or-equal":
			out = append(out, fmt.Sprintf("less-or-equal(%s,%s)", field, hi.Add(-time.Second).UTC().Format(cursorFormat)))
		default:
			out = append(out, fmt.Sprintf("less-than(%s,%s)", field, hi.UTC().Format(cursorFormat)))
		}
	}
	return out
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}
