// Package sandbox is a local fake of Klaviyo's REST API (revision 2026-07-15) that tests,
// benchmarks and demos run the connector against: deterministic data computed from a seed,
// a movable clock, Klaviyo's validation, rate limits and errors, and injectable faults.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

// LatestRevision is the API revision the sandbox implements; earlier dated revisions are accepted.
const LatestRevision = "2026-07-15"

// firstRevision is the oldest revision Klaviyo published for the /api endpoints.
const firstRevision = "2022-10-17"

// DefaultAPIKey is the key that Options with no APIKeys accepts.
const DefaultAPIKey = "sandbox-key"

var revisionPattern = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$`)

// Server is a running sandbox.
type Server struct {
	opts   Options
	spec   *specTable
	routes map[string]handler
	keys   map[string]map[string]bool
	ln     net.Listener
	srv    *http.Server
	url    string
	world  atomic.Pointer[world]
	advMu  sync.Mutex
	limits *limiter
	// reports are the POST query endpoints by path; quota their daily budgets; companyTZ the
	// account's timezone, in which reports read and cut timeframes.
	reports   map[string]*specgen.Report
	quota     *dailyQuota
	companyTZ *time.Location
	faults    *faultPicker
	stats     *stats
	// errorSeq numbers error ids; bufs recycles response buffers (a 1000-event page is ~1 MB)
	// in a small free list that, unlike sync.Pool, survives garbage collections.
	errorSeq atomic.Int64
	bufs     chan *bytes.Buffer
	// certPEM is the certificate served over HTTPS (Options.TLS), nil over plain HTTP.
	certPEM []byte
	// done is closed by Close so injected latencies end at once.
	done      chan struct{}
	closeOnce sync.Once
}

// Start runs a sandbox on a random loopback port.
func Start(opts Options) (*Server, error) { return StartAddr("127.0.0.1:0", opts) }

// StartAddr runs a sandbox on addr (host:port).
func StartAddr(addr string, opts Options) (*Server, error) {
	spec, err := loadSpec()
	if err != nil {
		return nil, err
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour)
	}
	opts.Now = opts.Now.UTC().Truncate(time.Second)
	opts.Scale = opts.Scale.withDefaults()
	if opts.RateLimits.Factor <= 0 {
		opts.RateLimits.Factor = 1
	}
	if opts.LateEvents, err = opts.LateEvents.normalize(); err != nil {
		return nil, err
	}
	if opts.EventSkew, err = opts.EventSkew.normalize(); err != nil {
		return nil, err
	}
	if opts.Removals < 0 {
		return nil, fmt.Errorf("sandbox: %d removals per Advance: want a non-negative number", opts.Removals)
	}
	keys, err := buildKeys(opts.APIKeys, spec)
	if err != nil {
		return nil, err
	}
	reports, err := loadReports()
	if err != nil {
		return nil, err
	}
	tz, err := time.LoadLocation(accountTimezone)
	if err != nil {
		return nil, fmt.Errorf("sandbox: account timezone: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: listen on %s: %w", addr, err)
	}
	scheme := "http://"
	if opts.TLS.On {
		scheme = "https://"
	}
	s := &Server{opts: opts, spec: spec, keys: keys, ln: ln, url: scheme + ln.Addr().String(),
		limits: newLimiter(), faults: newFaultPicker(opts.Seed, opts.Faults), stats: newStats(), done: make(chan struct{}),
		bufs: make(chan *bytes.Buffer, 8), reports: reports, quota: newDailyQuota(), companyTZ: tz}
	s.routes = s.buildRoutes()
	s.world.Store(newWorld(opts, s.url))
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if opts.TLS.On {
		if s.certPEM, err = serveTLS(s.srv, ln, opts.TLS); err != nil {
			_ = ln.Close()
			return nil, err
		}
		return s, nil
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func buildKeys(in map[string][]string, spec *specTable) (map[string]map[string]bool, error) {
	all := map[string]bool{}
	for _, ep := range spec.byPath {
		for _, sc := range ep.Scopes {
			all[sc] = true
		}
	}
	if len(in) == 0 {
		in = map[string][]string{DefaultAPIKey: nil}
	}
	out := map[string]map[string]bool{}
	for k, scopes := range in {
		if k == "" {
			return nil, errors.New("sandbox: an API key must not be empty")
		}
		set := map[string]bool{}
		if scopes == nil {
			for sc := range all {
				set[sc] = true
			}
		}
		for _, sc := range scopes {
			set[sc] = true
		}
		out[k] = set
	}
	return out, nil
}

// URL is the base URL; the connector appends /api/....
func (s *Server) URL() string { return s.url }

// Close stops the server, cutting short injected delays so it never waits on a slow fault.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("sandbox: shutdown: %w", err)
	}
	return nil
}

// Now is the sandbox clock.
func (s *Server) Now() time.Time { return time.Unix(s.world.Load().now, 0).UTC() }

// Advance moves the clock by d (whole seconds): records are created inside the interval and some
// existing ones are updated inside it.
func (s *Server) Advance(d time.Duration) {
	s.advMu.Lock()
	defer s.advMu.Unlock()
	s.world.Store(s.world.Load().advance(d))
}

// AdvanceQuiet moves the clock by d (whole seconds) with nothing created, updated or removed in the interval, as
// in an account where nothing happened: what an incremental sync of an unchanged account costs (issue 12) can only
// be counted on an account that stays unchanged while the clock moves. Late events and removals, when configured,
// stay as they were too; a later Advance creates records from the new clock on.
func (s *Server) AdvanceQuiet(d time.Duration) {
	s.advMu.Lock()
	defer s.advMu.Unlock()
	s.world.Store(s.world.Load().idle(d))
}

// Resources returns every resource object the API would return for a GET of path with q, all
// pages joined, skipping auth, rate limits and faults. Included resources are not part of it.
func (s *Server) Resources(path string, q url.Values) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := s.walk(path, q, func(r *record, qq *query, idsOnly bool) error {
		var buf bytes.Buffer
		if err := s.encodeRecord(&buf, r, qq, idsOnly); err != nil {
			return err
		}
		out = append(out, json.RawMessage(buf.Bytes()))
		return nil
	})
	return out, err
}

// Count returns how many resources Resources would return, without rendering them (counting a
// window of ten million events takes well under a second).
func (s *Server) Count(path string, q url.Values) (int, error) {
	n := 0
	err := s.walkPositions(path, q, func(src source, qq *query) { n = countSource(src) }, func() { n = 1 })
	return n, err
}

// walkPositions resolves path?q to its listing (list) or confirms its single resource exists (one).
func (s *Server) walkPositions(path string, q url.Values, list func(source, *query), one func()) error {
	h, c, qq, err := s.resolve(path, q)
	if err != nil {
		return err
	}
	if h.one != nil {
		if _, aerr := h.one(c); aerr != nil {
			return fmt.Errorf("sandbox: %w", aerr)
		}
		one()
		return nil
	}
	src, aerr := h.list(c)
	if aerr != nil {
		return fmt.Errorf("sandbox: %w", aerr)
	}
	list(src, qq)
	return nil
}

// resolve finds the handler of a concrete API path and parses its query (paging aside), as a request would.
func (s *Server) resolve(path string, q url.Values) (handler, *rctx, *query, error) {
	ep, ids, ok := s.spec.match(path)
	if !ok {
		return handler{}, nil, nil, fmt.Errorf("sandbox: %s is not a Klaviyo GET endpoint", path)
	}
	h, ok := s.routes[ep.Path]
	if !ok {
		return handler{}, nil, nil, fmt.Errorf("sandbox: %s is not served by the sandbox", ep.Path)
	}
	qq, aerr := parseQuery(ep, ids, path, withoutPaging(q))
	if aerr != nil {
		return handler{}, nil, nil, fmt.Errorf("sandbox: %w", aerr)
	}
	return h, newRctx(s.world.Load(), qq, ids), qq, nil
}

func withoutPaging(q url.Values) url.Values {
	qv := url.Values{}
	for k, v := range q {
		if k != "page[cursor]" && k != "page[size]" {
			qv[k] = v
		}
	}
	return qv
}

// walk calls fn for every record a full read of path?q returns, in order; idsOnly is set for
// relationship endpoints, whose data are bare identifiers.
func (s *Server) walk(path string, q url.Values, fn func(r *record, q *query, idsOnly bool) error) error {
	h, c, qq, err := s.resolve(path, q)
	if err != nil {
		return err
	}
	if h.one != nil {
		r, aerr := h.one(c)
		if aerr != nil {
			return fmt.Errorf("sandbox: %w", aerr)
		}
		return fn(r, qq, false)
	}
	src, aerr := h.list(c)
	if aerr != nil {
		return fmt.Errorf("sandbox: %w", aerr)
	}
	src.each(qq.desc, nil, func(p position) bool {
		if r := src.render(p); r != nil {
			err = fn(r, qq, h.ids)
		}
		return err == nil
	})
	return err
}

// ServeHTTP routes admin requests under /_sandbox/ and Klaviyo requests under /api/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		s.serveAdmin(w, r)
		return
	}
	s.serveAPI(w, r)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if rep, ok := s.reports[reportPath(r.URL.Path)]; ok {
		s.stats.record(rep.Path, s.handleReport(w, r, rep), r.Method, r.URL.RequestURI(), arrived)
		return
	}
	ep, ids, ok := s.spec.match(r.URL.Path)
	label := "(unknown path)" // unmatched paths share one label so stats stay bounded
	if ok {
		label = ep.Path
	}
	status := s.handleAPI(w, r, ep, ids, ok)
	s.stats.record(label, status, r.Method, r.URL.RequestURI(), arrived)
}

// handleAPI answers one API request and returns the status it sent (0 for a dropped connection).
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request, ep *specgen.Endpoint, ids []string, matched bool) int {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return s.writeError(w, notFound("The requested URL was not found."))
	}
	// The sandbox's resources are read-only, as the connector is.
	key, aerr := s.checkCaller(r, http.MethodGet)
	if aerr != nil {
		return s.writeError(w, aerr)
	}
	if !matched {
		return s.writeError(w, notFound("The requested URL was not found."))
	}
	h, ok := s.routes[ep.Path]
	if !ok {
		return s.writeError(w, notFound(fmt.Sprintf("%s is not implemented by the sandbox.", ep.Path)))
	}
	if aerr := s.checkScopes(key, ep.Scopes); aerr != nil {
		return s.writeError(w, aerr)
	}
	burst, steady, bucket := paramTier(ep, r.URL.Query())
	rl := s.limits.take(key+" "+bucket, s.opts.RateLimits, burst, steady)
	fault, status, done := s.admit(w, r, rl)
	if done {
		return status
	}
	qq, aerr := parseQuery(ep, ids, r.URL.Path, r.URL.Query())
	if aerr != nil {
		return s.writeError(w, aerr)
	}
	doc := s.getBuf()
	defer s.putBuf(doc)
	if aerr := s.document(doc, r, h, qq, ids); aerr != nil {
		return s.writeError(w, aerr)
	}
	return writeOK(w, doc.Bytes(), fault)
}

// admit answers a throttled request with 429, or sets the rate-limit headers and plays the
// request-level faults (spurious 429, latency, 500, 503, reset). done tells that status was sent;
// otherwise fault is what remains to be done to the body (truncate, malformed).
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rl rateResult) (fault faultKind, status int, done bool) {
	if !rl.ok {
		return faultNone, s.write429(w, rl.retryAfter, "Request was throttled. Expected available in "+itoa(int64(rl.retryAfter))+" seconds."), true
	}
	hd := w.Header()
	hd.Set("RateLimit-Limit", itoa(int64(rl.limit)))
	hd.Set("RateLimit-Remaining", itoa(int64(rl.remaining)))
	hd.Set("RateLimit-Reset", itoa(int64(rl.reset)))
	fault = s.faults.pick(r.URL.Path)
	if fault == faultSpurious429 {
		for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
			hd.Del(h)
		}
		ra := s.opts.Faults.RetryAfter
		if ra <= 0 {
			ra = 1
		}
		return fault, s.write429(w, ra, "Request was throttled. Expected available in "+itoa(int64(ra))+" seconds."), true
	}
	s.sleepLatency(r.Context(), fault == faultSlow)
	switch fault {
	case fault500:
		return fault, s.writeError(w, &apiError{Status: 500, Code: "error", Title: "A server error occurred.", Detail: "A server error occurred."}), true
	case fault503:
		return fault, s.writeError(w, &apiError{Status: 503, Code: "service_unavailable", Title: "Service unavailable.", Detail: "The service is temporarily unavailable. Please try again later."}), true
	case faultReset:
		dropConnection(w)
		return fault, 0, true
	}
	return fault, 0, false
}

// writeOK sends a 200 JSON:API body, damaged as the truncate and malformed faults ask.
func writeOK(w http.ResponseWriter, body []byte, fault faultKind) int {
	hd := w.Header()
	hd.Set("Content-Type", "application/vnd.api+json")
	switch fault {
	case faultTruncate:
		truncateBody(w, body)
		return 0
	case faultMalformed:
		body = append(body[:len(body)/2:len(body)/2], []byte(`,"data":[{"type":`)...)
	}
	hd.Set("Content-Length", itoa(int64(len(body))))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// paramTier applies the stricter limits that the spec's descriptions attach to query parameters:
// predictive analytics costs the M tier; a profile's lists or segments and a list's or segment's
// profile_count cost the XS tier. Each gets its own budget, as Klaviyo counts them separately.
func paramTier(ep *specgen.Endpoint, q url.Values) (burst, steady int, bucket string) {
	has := func(param, value string) bool { return contains(splitList(q.Get(param)), value) }
	switch {
	case ep.Path == "/api/profiles/{id}" && (has("include", "lists") || has("include", "segments")):
		return 1, 15, ep.Path + "#include-groups"
	case has("additional-fields[list]", "profile_count") || has("additional-fields[segment]", "profile_count"):
		return 1, 15, ep.Path + "#profile_count"
	case has("additional-fields[profile]", "predictive_analytics"):
		return 10, 150, ep.Path + "#predictive_analytics"
	}
	return ep.Burst, ep.Steady, ep.Path
}

func (s *Server) getBuf() *bytes.Buffer {
	select {
	case b := <-s.bufs:
		b.Reset()
		return b
	default:
		return new(bytes.Buffer)
	}
}

func (s *Server) putBuf(b *bytes.Buffer) {
	if b.Cap() > 16<<20 {
		return // let an outsized buffer go
	}
	select {
	case s.bufs <- b:
	default:
	}
}

// checkCaller checks what every API request is checked for first, in Klaviyo's order: the
// method (answering 405 with Allow), the API key, the revision header. It returns the key.
func (s *Server) checkCaller(r *http.Request, method string) (string, *apiError) {
	if r.Method != method {
		return "", &apiError{Status: 405, Code: "method_not_allowed", Title: "Method not allowed.", Allow: method,
			Detail: fmt.Sprintf("Method %q not allowed.", sanitize(r.Method))}
	}
	key, aerr := s.authenticate(r)
	if aerr != nil {
		return "", aerr
	}
	return key, checkRevision(r.Header.Get("revision"))
}

// checkScopes answers 403 naming the scopes the key lacks.
func (s *Server) checkScopes(key string, need []string) *apiError {
	if missing := missingScopes(need, s.keys[key]); len(missing) > 0 {
		return &apiError{Status: 403, Code: "permission_denied", Title: "You do not have permission to perform this action.",
			Detail: fmt.Sprintf("This API key is missing required scopes: %s.", strings.Join(missing, ", "))}
	}
	return nil
}

func missingScopes(need []string, have map[string]bool) []string {
	var out []string
	for _, sc := range need {
		if !have[sc] {
			out = append(out, sc)
		}
	}
	return out
}

func (s *Server) authenticate(r *http.Request) (string, *apiError) {
	h := r.Header.Get("Authorization")
	const prefix = "Klaviyo-API-Key "
	if h == "" {
		return "", &apiError{Status: 401, Code: "not_authenticated", Title: "Authentication credentials were not provided.", Detail: "Missing or invalid authorization scheme. Please use Klaviyo-API-Key."}
	}
	if !strings.HasPrefix(h, prefix) {
		return "", &apiError{Status: 401, Code: "not_authenticated", Title: "Authentication credentials were not provided.", Detail: "Missing or invalid authorization scheme. Please use Klaviyo-API-Key."}
	}
	key := strings.TrimSpace(h[len(prefix):])
	if _, ok := s.keys[key]; !ok {
		return "", &apiError{Status: 401, Code: "authentication_failed", Title: "Incorrect authentication credentials.", Detail: "Incorrect authentication credentials."}
	}
	return key, nil
}

func checkRevision(rev string) *apiError {
	if rev == "" {
		return &apiError{Status: 400, Code: "invalid", Title: "Invalid input.", Detail: "The 'revision' header is required.", Parameter: "revision"}
	}
	m := revisionPattern.FindStringSubmatch(rev)
	if m == nil {
		return &apiError{Status: 400, Code: "invalid", Title: "Invalid input.", Detail: fmt.Sprintf("'%s' is not a valid revision. Use the format YYYY-MM-DD.", sanitize(rev)), Parameter: "revision"}
	}
	if _, err := time.Parse("2006-01-02", m[1]); err != nil || m[1] < firstRevision || m[1] > LatestRevision {
		return &apiError{Status: 400, Code: "invalid", Title: "Invalid input.", Detail: fmt.Sprintf("'%s' is not a valid revision.", sanitize(rev)), Parameter: "revision"}
	}
	return nil
}

// sanitize keeps echoed header values short and printable.
func sanitize(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) int {
	item := map[string]any{"id": fmt.Sprintf("a1b2c3d4-0000-4000-8000-%012d", s.errorSeq.Add(1)), "status": e.Status, "code": e.Code,
		"title": e.Title, "detail": e.Detail, "meta": map[string]any{}}
	if e.Parameter != "" {
		item["source"] = map[string]any{"parameter": e.Parameter}
	} else if e.Pointer != "" {
		item["source"] = map[string]any{"pointer": e.Pointer}
	}
	b, _ := json.Marshal(map[string]any{"errors": []any{item}})
	if e.Allow != "" {
		w.Header().Set("Allow", e.Allow)
	}
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
	return e.Status
}

func (s *Server) write429(w http.ResponseWriter, retryAfter int, detail string) int {
	s.stats.throttled.Add(1)
	w.Header().Set("Retry-After", itoa(int64(retryAfter)))
	return s.writeError(w, &apiError{Status: 429, Code: "throttled", Title: "Request was throttled.", Detail: detail})
}

func (s *Server) sleepLatency(ctx context.Context, slow bool) {
	d := s.faults.latency(s.opts.Latency)
	if slow {
		d += s.faults.slowDelay()
	}
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
}

func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// truncateBody announces the full length, sends half, and closes the connection.
func truncateBody(w http.ResponseWriter, body []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	_, _ = buf.Write(body[:len(body)/2])
	_ = buf.Flush()
}

// document builds the JSON:API body of a successful request into buf.
func (s *Server) document(buf *bytes.Buffer, r *http.Request, h handler, q *query, ids []string) *apiError {
	c := newRctx(s.world.Load(), q, ids)
	selfURL := s.url + r.URL.Path
	if r.URL.RawQuery != "" {
		selfURL += "?" + r.URL.RawQuery
	}
	if h.one != nil {
		rec, aerr := h.one(c)
		if aerr != nil {
			return aerr
		}
		buf.WriteString(`{"data":`)
		if err := s.encodeRecord(buf, rec, q, false); err != nil {
			return internal(err)
		}
		if err := s.writeIncluded(buf, c, []*record{rec}); err != nil {
			return internal(err)
		}
		buf.WriteString(`,"links":{"self":`)
		writeString(buf, selfURL)
		buf.WriteString(`}}`)
		return nil
	}
	src, aerr := h.list(c)
	if aerr != nil {
		return aerr
	}
	size := q.pageSize
	if size == 0 {
		size = h.fixedPage
	}
	var page pageResult
	if size == 0 {
		if q.cursor != nil {
			return badParam("page[cursor]", "This endpoint is not paginated.")
		}
		src.each(q.desc, nil, func(p position) bool {
			if rec := src.render(p); rec != nil {
				page.recs = append(page.recs, rec)
			}
			return true
		})
	} else {
		page = paginate(src, q, size)
	}
	buf.WriteString(`{"data":[`)
	for i, rec := range page.recs {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := s.encodeRecord(buf, rec, q, h.ids); err != nil {
			return internal(err)
		}
	}
	buf.WriteByte(']')
	if !h.ids {
		if err := s.writeIncluded(buf, c, page.recs); err != nil {
			return internal(err)
		}
	}
	buf.WriteString(`,"links":{"self":`)
	writeString(buf, selfURL)
	if page.next != nil {
		buf.WriteString(`,"next":`)
		writeString(buf, s.pageLink(r, page.next))
	}
	if page.prev != nil {
		buf.WriteString(`,"prev":`)
		writeString(buf, s.pageLink(r, page.prev))
	}
	buf.WriteString(`}}`)
	return nil
}

func internal(err error) *apiError {
	return &apiError{Status: 500, Code: "error", Title: "A server error occurred.", Detail: err.Error()}
}

// pageLink keeps the request's query and replaces page[cursor]; url.Values encodes the brackets
// as page%5Bcursor%5D, as Klaviyo's links do.
func (s *Server) pageLink(r *http.Request, c *cursor) string {
	v := r.URL.Query()
	v.Set("page[cursor]", c.encode())
	return s.url + r.URL.Path + "?" + v.Encode()
}

func (s *Server) encodeRecord(buf *bytes.Buffer, rec *record, q *query, idsOnly bool) error {
	if idsOnly {
		buf.WriteString(`{"type":`)
		writeString(buf, rec.Type)
		buf.WriteString(`,"id":`)
		writeString(buf, rec.ID)
		buf.WriteByte('}')
		return nil
	}
	fields, has := q.fields[rec.Type]
	if err := rec.encode(buf, s.url, fields, has); err != nil {
		return fmt.Errorf("encode %s %s: %w", rec.Type, rec.ID, err)
	}
	return nil
}

// writeIncluded appends `included` with each related resource named by include= once.
func (s *Server) writeIncluded(buf *bytes.Buffer, c *rctx, recs []*record) error {
	if len(c.q.include) == 0 {
		return nil
	}
	seen := map[string]bool{}
	buf.WriteString(`,"included":[`)
	n := 0
	for _, rec := range recs {
		for _, rel := range rec.Rels {
			if !c.q.includes(rel.Name) {
				continue
			}
			for _, rf := range rel.Refs {
				k := rf.Type + "\x00" + rf.ID
				if seen[k] {
					continue
				}
				seen[k] = true
				inc := c.find(rf.Type, rf.ID)
				if inc == nil {
					continue
				}
				if n > 0 {
					buf.WriteByte(',')
				}
				n++
				if err := s.encodeRecord(buf, inc, c.q, false); err != nil {
					return err
				}
			}
		}
	}
	buf.WriteByte(']')
	return nil
}
