package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

// The Reporting API (POST /api/{campaign,flow,form,segment}-{values,series}-reports) and metric
// aggregates (POST /api/metric-aggregates): the sandbox's only POST endpoints. They read nothing
// the GET endpoints do not serve: every number is computed, per request, from the same functions
// that render events, memberships and forms (see attribution.go), over the world snapshot of the
// request, so reports always agree with GET /api/events and the membership endpoints.

// maxReportBody bounds a request body; real report bodies are a few hundred bytes.
const maxReportBody = 1 << 20

// defaultReportPageSize is how many results a page of a paginated report holds when
// Options.ReportPageSize is zero. Klaviyo declares page_cursor for campaign and flow reports but
// not a page size; the sandbox's choice is documented in its README.
const defaultReportPageSize = 500

// handleReport answers one POST query request and returns the status it sent.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request, rep *specgen.Report) int {
	key, aerr := s.checkCaller(r, http.MethodPost)
	if aerr == nil {
		aerr = s.checkScopes(key, rep.Scopes)
	}
	if aerr != nil {
		return s.writeError(w, aerr)
	}
	fault, status, done := s.admit(w, r, s.takeReport(key, rep))
	if done {
		return status
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxReportBody+1))
	if err != nil || len(raw) > maxReportBody {
		return s.writeError(w, &apiError{Status: 400, Code: "parse_error", Title: "Malformed request.", Detail: "The request body could not be read or is larger than 1 MB."})
	}
	doc := s.getBuf()
	defer s.putBuf(doc)
	if aerr := s.reportDocument(doc, r, rep, raw); aerr != nil {
		return s.writeError(w, aerr)
	}
	return writeOK(w, doc.Bytes(), fault)
}

// dailyQuota counts requests per key and endpoint in days of the sandbox clock, so a test moves
// into the next day with Advance instead of waiting one.
type dailyQuota struct {
	mu   sync.Mutex
	used map[string]*dayCount
}

type dayCount struct{ day, n int64 }

func newDailyQuota() *dailyQuota { return &dailyQuota{used: map[string]*dayCount{}} }

// take admits a request when the day's quota is not spent and inner (the per-second and
// per-minute windows) admits it too; only admitted requests spend quota. A spent quota answers
// a Retry-After reaching the next UTC midnight of the sandbox clock.
func (q *dailyQuota) take(bucket string, limit int, now int64, inner func() rateResult) rateResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	today := floorDiv(now, day)
	c := q.used[bucket]
	if c == nil || c.day != today {
		c = &dayCount{day: today}
		q.used[bucket] = c
	}
	if c.n >= int64(limit) {
		return rateResult{retryAfter: int((today+1)*day - now)}
	}
	rl := inner()
	if rl.ok {
		c.n++
	}
	return rl
}

// takeReport applies a report endpoint's burst and steady windows and, with Klaviyo's limits on,
// its daily quota (scaled like the other tiers).
func (s *Server) takeReport(key string, rep *specgen.Report) rateResult {
	bucket := key + " " + rep.Path
	inner := func() rateResult { return s.limits.take(bucket, s.opts.RateLimits, rep.Burst, rep.Steady) }
	if rep.Daily == 0 || s.opts.RateLimits.Mode != RateKlaviyo {
		return inner()
	}
	return s.quota.take(bucket, scaled(rep.Daily, s.opts.RateLimits.Factor), s.world.Load().now, inner)
}

func invalidAt(pointer, format string, a ...any) *apiError {
	return &apiError{Status: 400, Code: "invalid", Title: "Invalid input.", Detail: fmt.Sprintf(format, a...), Pointer: pointer}
}

// reportReq is one validated report request: the world snapshot it reads and its attributes.
type reportReq struct {
	c     *rctx
	rep   *specgen.Report
	attrs map[string]any
	now   time.Time // the sandbox clock in the report's timezone
}

// reportResult is what a report computes before paging and rendering.
type reportResult struct {
	rows      []any       // results (Reporting API) or data rows (metric aggregates)
	dateTimes []any       // date_times of series reports, dates of metric aggregates
	rels      [][2]string // relationship name and the grouping holding its ids
}

// reportDocument validates the body and writes the 200 document into buf.
func (s *Server) reportDocument(buf *bytes.Buffer, r *http.Request, rep *specgen.Report, raw []byte) *apiError {
	attrs, aerr := reportAttributes(raw, rep)
	if aerr != nil {
		return aerr
	}
	q := r.URL.Query()
	for name := range q {
		typ, ok := strings.CutPrefix(name, "fields[")
		if !ok {
			continue
		}
		allowed, known := rep.Fields[strings.TrimSuffix(typ, "]")]
		if !known {
			return badParam(name, "'%s' is not a valid parameter for this endpoint.", name)
		}
		for _, f := range splitList(q.Get(name)) {
			if !contains(allowed, f) {
				return badParam(name, "'%s' is not a valid field for the resource '%s'.", f, rep.Type)
			}
		}
	}
	// Campaign and flow reports take page_cursor in the query; metric aggregates in
	// attributes.page_cursor, and also from the query of their links.next.
	if q.Has("page_cursor") && !rep.PageCursor && rep.Measurements == nil {
		return badParam("page_cursor", "'page_cursor' is not a valid parameter for this endpoint.")
	}
	cursor := q.Get("page_cursor")
	if pc, ok := attrs["page_cursor"].(string); ok && pc != "" && rep.Measurements != nil {
		cursor = pc
	}
	w := s.world.Load()
	rq := &reportReq{c: newRctx(w, &query{}, nil), rep: rep, attrs: attrs, now: time.Unix(w.now, 0).In(s.companyTZ)}
	var res *reportResult
	switch rep.OperationID {
	case "query_campaign_values":
		res, aerr = rq.campaignValues()
	case "query_flow_values", "query_flow_series":
		res, aerr = rq.flowReport()
	case "query_form_values", "query_form_series":
		res, aerr = rq.formReport()
	case "query_segment_values", "query_segment_series":
		res, aerr = rq.segmentReport()
	case "query_metric_aggregates":
		res, aerr = rq.metricAggregates()
	default:
		return notFound(fmt.Sprintf("%s is not implemented by the sandbox.", rep.Path))
	}
	if aerr != nil {
		return aerr
	}
	selfURL := s.url + r.URL.Path
	if r.URL.RawQuery != "" {
		selfURL += "?" + r.URL.RawQuery
	}
	links := map[string]any{"self": selfURL}
	if rep.PageCursor || rep.Measurements != nil {
		size := s.opts.ReportPageSize
		if size <= 0 {
			size = defaultReportPageSize
		}
		if rep.Measurements != nil {
			size = pageSizeOf(attrs, rep)
		}
		next, err := pageRows(res, attrs, cursor, size)
		if err != nil {
			return err
		}
		if next != "" {
			nq := r.URL.Query()
			nq.Set("page_cursor", next)
			links["next"] = s.url + r.URL.Path + "?" + nq.Encode()
		}
	}
	return writeReportDoc(buf, rep, res, q.Get("fields["+rep.Type+"]"), links, attrs)
}

// reportAttributes checks the JSON:API envelope and the required attributes.
func reportAttributes(raw []byte, rep *specgen.Report) (map[string]any, *apiError) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, &apiError{Status: 400, Code: "parse_error", Title: "Malformed request.", Detail: "JSON parse error - " + err.Error()}
	}
	if dec.More() {
		return nil, &apiError{Status: 400, Code: "parse_error", Title: "Malformed request.", Detail: "JSON parse error - trailing data after the document."}
	}
	top, _ := doc.(map[string]any)
	data, _ := top["data"].(map[string]any)
	if data == nil {
		return nil, invalidAt("/data", "Received document does not contain primary data.")
	}
	typ, isString := data["type"].(string)
	switch {
	case data["type"] == nil:
		return nil, invalidAt("/data/type", "This field is required.")
	case !isString || typ != rep.Type:
		return nil, invalidAt("/data/type", "The resource object's type (%s) is not the type of this endpoint (%s).", sanitize(fmt.Sprint(data["type"])), rep.Type)
	}
	attrs, _ := data["attributes"].(map[string]any)
	if attrs == nil {
		return nil, invalidAt("/data/attributes", "This field is required.")
	}
	for _, name := range rep.Required {
		if attrs[name] == nil {
			return nil, invalidAt("/data/attributes/"+name, "This field is required.")
		}
	}
	return attrs, nil
}

// stringList reads an attribute that must be a list of strings, each one of allowed; a missing or
// null attribute gives def. Duplicates are dropped, the first occurrence keeping its place.
func stringList(attrs map[string]any, name string, allowed, def []string) ([]string, *apiError) {
	ptr := "/data/attributes/" + name
	v, ok := attrs[name]
	if !ok || v == nil {
		return def, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, invalidAt(ptr, "Expected a list of items but got type \"%T\".", v)
	}
	var out []string
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, invalidAt(ptr, "Expected a list of strings.")
		}
		if !contains(allowed, s) {
			return nil, invalidAt(ptr, "\"%s\" is not a valid choice for %s.", sanitize(s), name)
		}
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// metricOf resolves an attribute holding a metric id.
func (q *reportReq) metricOf(name string) (int64, *apiError) {
	id, _ := q.attrs[name].(string)
	if i, ok := q.c.w.metricIndex(id); ok {
		return i, nil
	}
	return 0, invalidAt("/data/attributes/"+name, "Metric with id '%s' does not exist.", sanitize(id))
}

// reportCursor is the opaque page_cursor: the offset of the next result and a digest of the
// request it belongs to, so a cursor is refused with another body.
type reportCursor struct {
	Offset int    `json:"o"`
	Digest uint64 `json:"h"`
}

// bodyDigest hashes the attributes without page_cursor, canonically (sorted keys).
func bodyDigest(attrs map[string]any) uint64 {
	clean := make(map[string]any, len(attrs))
	for k, v := range attrs {
		if k != "page_cursor" {
			clean[k] = v
		}
	}
	b, _ := json.Marshal(clean) // maps marshal with sorted keys
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// pageRows cuts res.rows to the page the cursor names and returns the next page's cursor.
func pageRows(res *reportResult, attrs map[string]any, cursor string, size int) (string, *apiError) {
	digest := bodyDigest(attrs)
	off := 0
	if cursor != "" {
		var c reportCursor
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || json.Unmarshal(b, &c) != nil || c.Digest != digest || c.Offset < 0 || c.Offset > len(res.rows) {
			return "", badParam("page_cursor", "Invalid page cursor.")
		}
		off = c.Offset
	}
	end := off + size
	if end >= len(res.rows) {
		res.rows = res.rows[off:]
		return "", nil
	}
	res.rows = res.rows[off:end]
	b, _ := json.Marshal(reportCursor{Offset: end, Digest: digest})
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeReportDoc renders the 200 document: a Reporting API report object (type, attributes,
// relationships) or a metric aggregate (type, id, attributes, links), with the top-level links.
func writeReportDoc(buf *bytes.Buffer, rep *specgen.Report, res *reportResult, fields string, links map[string]any, attrs map[string]any) *apiError {
	a := map[string]any{}
	data := map[string]any{"type": rep.Type, "attributes": a}
	if rep.Measurements != nil {
		a["data"] = orEmptyList(res.rows)
		a["dates"] = orEmptyList(res.dateTimes)
		data["id"] = fmt.Sprintf("%016x", bodyDigest(attrs))
		data["links"] = map[string]any{"self": links["self"]}
	} else {
		a["results"] = orEmptyList(res.rows)
		if rep.Intervals != nil {
			a["date_times"] = orEmptyList(res.dateTimes)
		}
		if len(res.rels) > 0 {
			data["relationships"] = relsOf(res.rows, res.rels)
		}
	}
	if fields != "" {
		keep := splitList(fields)
		for k := range a {
			if !contains(keep, k) {
				delete(a, k)
			}
		}
	}
	if err := writeValue(buf, map[string]any{"data": data, "links": links}); err != nil {
		return internal(err)
	}
	return nil
}

func orEmptyList(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// ratio is a rate statistic: part/whole in [0, 1], 0 when whole is 0. Klaviyo returns rates as
// fractions in [0, 1]; the sandbox's events are drawn independently, so a raw ratio (more opens
// than deliveries) can exceed 1 and is capped.
func ratio(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	if part >= whole {
		return 1
	}
	return float64(part) / float64(whole)
}

// refList renders resource identifiers of one type.
func refList(typ string, ids []string) map[string]any {
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, map[string]any{"type": typ, "id": id})
	}
	return map[string]any{"data": out}
}
