package klaviyo

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/secret"
)

// Revision is the Klaviyo API revision every request asks for; the schemas and stream table follow it.
const Revision = "2026-07-15"

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// BaseURL is Klaviyo's origin without /api, e.g. https://a.klaviyo.com; a path prefix is kept (proxies, tests).
	BaseURL string
	// APIKey is the private API key. It is sent only in the Authorization header and masked everywhere else.
	APIKey string
	// HTTPClient sends the requests; nil means a client with a keep-alive pool sized for MaxConcurrency that
	// refuses redirects to other hosts.
	HTTPClient *http.Client
	// Timeout bounds one attempt, response body included (default 60 s).
	Timeout time.Duration
	// MaxAttempts bounds the attempts per page, the first included (default 8).
	MaxAttempts int
	// MaxRetryAfter is the longest Retry-After the client waits out; a longer one (a daily quota) fails at once
	// with a KindRateLimited error carrying RetryAt (default 10 min).
	MaxRetryAfter time.Duration
	// RateScale multiplies every budget (default 1). The sandbox runs scaled tiers so a rate-bound test takes
	// minutes; the client must scale the same way to use exactly that budget.
	RateScale float64
	// MaxConcurrency caps requests in flight across all endpoints (default 128, the SPEC's default).
	MaxConcurrency int
	// PagesInMemory caps the response bodies being read, decoded or consumed at once (default 2: decoding is CPU
	// work, so more than the cores could use only adds memory; the benchmark's 2.5 million records peak at about
	// 52 MiB with 2 and 65 MiB with 4). A request takes
	// a place only when its headers have arrived, so many requests can wait on the network (filling the rate
	// budget through latency) while memory holds only a few pages: an events page is about 1 MB raw and more
	// decoded.
	PagesInMemory int
	// UserAgent is sent as User-Agent (default "source-klaviyo").
	UserAgent string
	// Log receives retries and slow-downs ("WARN") and recoveries ("INFO"), Airbyte's level names. Messages never
	// contain the key.
	Log func(level, msg string)
	// Observe, when set, is told of every HTTP attempt as it ends: the endpoint, the status (0 when no response
	// came) and how long it took, so a caller can report request metrics without the client knowing how.
	Observe func(endpoint string, status int, took time.Duration, ok bool)
	// Sleep waits for d or until ctx is done (default: a timer). It serves backoffs, Retry-After and budget
	// waits alike, so tests can inject one that returns at once; a Sleep that returns early turns budget waits
	// into polling of the real clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for backoff jitter (default math/rand/v2).
	Rand func() float64
}

// Request is one GET of a Klaviyo endpoint; a PostRequest wraps one for a POST query.
type Request struct {
	// Endpoint is the path template, e.g. /api/lists/{id}/profiles. It keys the rate budget shared by every
	// caller of the endpoint and names the endpoint in errors.
	Endpoint string
	// Budget is the endpoint's published rate limit. The first request of an endpoint fixes it.
	Budget Budget
	// Scopes are the API key scopes the endpoint needs, named in the error when Klaviyo answers 403.
	Scopes []string
	// Path is the concrete path, e.g. /api/lists/Y6nRLr/profiles, appended to BaseURL.
	Path string
	// Query is encoded Klaviyo-style: sorted keys, brackets kept (page[size]=100), values percent-encoded.
	Query url.Values
	// URL, when set (a links.next), is used instead of Path and Query. It must be on BaseURL's scheme and host:
	// the API key is never sent anywhere else.
	URL string

	// body, when set, makes the request a POST of this JSON:API document (PostRequest); every page of it,
	// links.next included, is POSTed with the same body.
	body []byte
	// sent, when set, is called once per HTTP attempt, so a caller can count what a daily quota counts.
	sent func()

	// Rank, when set, says how much the request's read still has to fetch (records, say): when more ranked
	// requests wait for an endpoint's burst than it has places, those with the most left go first (see
	// endpoint.outranked). It is called while the request waits, so it must be cheap and safe to call from
	// another goroutine.
	Rank func() float64
}

// Client reads Klaviyo's API: auth and revision headers, JSON:API pages, per-endpoint rate budgets and retries.
// It is safe for concurrent use; all callers share its budgets and its concurrency cap.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
	sem  chan struct{}
	// pages holds a place per response body being read, decoded or consumed (Config.PagesInMemory).
	pages chan struct{}
	mask  secret.Masker
	// now is the clock for budgets and Retry-After; tests replace it together with Config.Sleep.
	now func() time.Time

	mu        sync.Mutex
	endpoints map[string]*endpoint

	// bufs keeps response body buffers, with the page decoder's scratch, between pages: at most PagesInMemory
	// bodies are read at once, so it holds that many. A sync.Pool lost them at every other GC, and regrowing a 1 MB
	// buffer from nothing (each doubling zeroed and copied) was about 4% of the CPU-bound benchmark's profile.
	bufs chan *pageBuffer

	stats counters
}

// New checks cfg, applies defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	cfg.APIKey = strings.TrimSpace(cfg.APIKey)
	if cfg.APIKey == "" {
		return nil, errors.New("klaviyo: api_key is empty: set it to a private API key from Klaviyo")
	}
	if strings.IndexFunc(cfg.APIKey, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		// The key itself is not quoted: the message may end up in a log.
		return nil, errors.New("klaviyo: api_key contains spaces or control characters: paste the key alone")
	}
	base, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" ||
		base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, fmt.Errorf("klaviyo: base_url %q is not an http(s) origin such as https://a.klaviyo.com",
			secret.New(cfg.APIKey).Text(cfg.BaseURL))
	}
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 10 * time.Minute
	}
	if cfg.RateScale <= 0 {
		cfg.RateScale = 1
	}
	if cfg.PagesInMemory <= 0 {
		cfg.PagesInMemory = 2
	}
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = 128
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "source-klaviyo"
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient(cfg.MaxConcurrency)
	}
	return &Client{
		cfg:       cfg,
		base:      base,
		http:      hc,
		sem:       make(chan struct{}, cfg.MaxConcurrency),
		pages:     make(chan struct{}, cfg.PagesInMemory),
		mask:      secret.New(cfg.APIKey),
		now:       time.Now,
		endpoints: make(map[string]*endpoint),
		bufs:      make(chan *pageBuffer, cfg.PagesInMemory),
	}, nil
}

// defaultHTTPClient keeps enough idle connections per host for every concurrent request to reuse one, and
// returns redirects to another host as responses (then failures) instead of following them.
//
// It speaks HTTP/1.1 only, although Klaviyo (a.klaviyo.com) offers HTTP/2, because of how memory is bounded here:
// many requests wait on the network to fill the rate budget, and a request whose headers have come waits for one
// of PagesInMemory places before its body is read. Over HTTP/1.1 an unread body waits in the socket (the kernel's
// buffer, then the server); over HTTP/2 the transport reads it into the process, up to its 4 MB stream window, for
// every waiting request. Measured with the benchmark's rate-core-tls (the eight core streams over HTTPS, 50,000
// profiles, 300,000 events): peak RSS 76 MiB over HTTP/2, 44 MiB over HTTP/1.1, for no more CPU (7.4 and 7.1 CPU s
// per million records). Bounding HTTP/2's windows instead (4 MB a connection, 1 MB a stream) deadlocked the same
// run: the waiting bodies filled the connection's window, so the body being read could get no more data, and its
// place was never released. HTTP/1.1 costs a TLS handshake per connection, once, as the pool keeps them.
//
// TLSClientConfig is set afresh: a clone of http.DefaultTransport can carry its ALPN list (h2 first) and then
// negotiate HTTP/2 on a transport that only speaks HTTP/1.1 (golang/go#39302).
func defaultHTTPClient(maxConcurrency int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(maxConcurrency, 32)
	t.MaxIdleConns = max(2*maxConcurrency, 100)
	t.IdleConnTimeout = 90 * time.Second
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || !strings.EqualFold(req.URL.Host, via[0].URL.Host) || req.URL.Scheme != via[0].URL.Scheme {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// sleep waits for d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Get fetches one page (or single resource): it waits for the endpoint's budget, sends the request, and retries
// what is worth retrying. Failures are *Error values; a done ctx gives its own error (errors.Is context.Canceled).
func (c *Client) Get(ctx context.Context, req Request) (*Document, error) {
	doc, release, err := c.get(ctx, req)
	release()
	return doc, err
}

// get is Get that keeps the page's place in memory until release is called (always non-nil), so Pages can hold
// it while its consumer writes the page.
func (c *Client) get(ctx context.Context, req Request) (*Document, func(), error) {
	doc, release, err := c.getHeld(ctx, req)
	if release == nil {
		release = func() {}
	}
	return doc, release, err
}

func (c *Client) getHeld(ctx context.Context, req Request) (*Document, func(), error) {
	if req.Endpoint == "" {
		return nil, nil, errors.New("klaviyo: Request.Endpoint is empty: it keys the rate budget")
	}
	if req.Budget.Burst <= 0 || req.Budget.PerMinute <= 0 {
		return nil, nil, fmt.Errorf("klaviyo: request for %s has no rate budget", req.Endpoint)
	}
	target, err := c.target(req)
	if err != nil {
		return nil, nil, err
	}
	ep := c.endpoint(req)
	for attempt := 1; ; attempt++ {
		taken, err := c.acquire(ctx, ep, req)
		if err != nil {
			return nil, nil, err
		}
		sentAt := c.now()
		if req.sent != nil {
			req.sent()
		}
		doc, release, out := c.attempt(ctx, req, target, func() { ep.left(taken, c.now()) })
		<-c.sem
		if c.cfg.Observe != nil {
			status := http.StatusOK
			if out != nil {
				status = out.responseStatus()
			}
			c.cfg.Observe(req.Endpoint, status, c.now().Sub(sentAt), out == nil)
		}
		if out == nil {
			c.stats.pages.Add(1)
			c.stats.records.Add(int64(len(doc.Data)))
			if up, r := ep.succeeded(c.now()); up {
				c.logf("INFO", "Klaviyo %s: raising the request rate to %.1f/min after a quiet spell", req.Endpoint, float64(r)*60)
			}
			return doc, release, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, c.stopped(req, err)
		}
		if out.final != nil {
			return nil, nil, out.final
		}
		wait, err := c.afterFailure(req, ep, out, attempt, sentAt)
		if err != nil {
			return nil, nil, err
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return nil, nil, c.stopped(req, err)
		}
	}
}

// afterFailure decides what follows a retryable failed attempt: the wait before the next attempt, or the error
// that ends the request (a Retry-After beyond MaxRetryAfter, or MaxAttempts reached). A 429 also slows the
// endpoint down and, with a Retry-After, closes it for every caller until then.
func (c *Client) afterFailure(req Request, ep *endpoint, out *outcome, attempt int, sentAt time.Time) (time.Duration, error) {
	now := c.now()
	throttled := out.status == http.StatusTooManyRequests
	if throttled {
		c.stats.throttled.Add(1)
	}
	wait := backoff(attempt, c.cfg.Rand())
	if out.hasRetryAfter {
		if out.retryAfter > c.cfg.MaxRetryAfter {
			retryAt := now.Add(out.retryAfter)
			if throttled {
				ep.throttled(now, sentAt, retryAt)
			}
			return 0, &Error{Kind: KindRateLimited, Status: out.status, Endpoint: req.Endpoint, Scopes: req.Scopes,
				RetryAt: retryAt, Detail: fmt.Sprintf("Klaviyo asked to wait %s, longer than the %s the connector waits",
					out.retryAfter.Round(time.Second), c.cfg.MaxRetryAfter)}
		}
		wait = max(wait, out.retryAfter)
	}
	if throttled {
		var until time.Time
		if out.hasRetryAfter {
			until = now.Add(out.retryAfter)
		}
		if down, r := ep.throttled(now, sentAt, until); down {
			c.stats.slowDowns.Add(1)
			c.logf("WARN", "Klaviyo %s: rate limited (429), slowing to %.1f requests/min", req.Endpoint, float64(r)*60)
		}
	}
	if attempt >= c.cfg.MaxAttempts {
		return 0, &Error{Kind: KindTransient, Status: out.status, Endpoint: req.Endpoint, Scopes: req.Scopes,
			Detail: fmt.Sprintf("%d attempts, the last: %s", attempt, out.describe()), Err: out.err}
	}
	c.stats.retry(out.reason)
	c.logf("WARN", "Klaviyo %s: attempt %d of %d failed (%s), retrying in %s",
		req.Endpoint, attempt, c.cfg.MaxAttempts, out.describe(), wait.Round(time.Millisecond))
	return wait, nil
}

// Pages follows links.next from req until a page has none, yielding each page. It stops after yielding an error,
// or when the consumer stops. A links.next that repeats the URL just read is an error rather than an endless loop.
func (c *Client) Pages(ctx context.Context, req Request) iter.Seq2[*Document, error] {
	return func(yield func(*Document, error) bool) {
		for {
			doc, release, err := c.get(ctx, req)
			if err != nil {
				release()
				yield(nil, err)
				return
			}
			more := yield(doc, nil)
			release()
			if !more || doc.Next == "" {
				return
			}
			if doc.Next == req.URL {
				yield(nil, &Error{Kind: KindBadRequest, Endpoint: req.Endpoint, Scopes: req.Scopes,
					Detail: "links.next repeats the page just read"})
				return
			}
			req.URL, req.Query = doc.Next, nil
		}
	}
}

// stopped wraps the caller's context error so errors.Is(err, context.Canceled) holds.
func (c *Client) stopped(req Request, err error) error {
	return fmt.Errorf("klaviyo: %s %s stopped: %w", req.method(), req.Endpoint, err)
}

// target builds the URL of a request. A links.next must stay on the configured scheme and host; a relative one
// is resolved against BaseURL.
func (c *Client) target(req Request) (string, error) {
	if req.URL != "" {
		u, err := url.Parse(req.URL)
		if err != nil {
			return "", &Error{Kind: KindBadRequest, Endpoint: req.Endpoint, Scopes: req.Scopes,
				Detail: "links.next is not a URL", Err: c.mask.Err(err)}
		}
		if u.Scheme == "" && u.Host == "" {
			u.Scheme, u.Host = c.base.Scheme, c.base.Host
		}
		if u.Scheme != c.base.Scheme || !strings.EqualFold(u.Host, c.base.Host) {
			return "", &Error{Kind: KindBadRequest, Endpoint: req.Endpoint, Scopes: req.Scopes,
				Detail: fmt.Sprintf("links.next points at %s://%s, not at base_url's %s://%s; the API key is only sent to base_url",
					u.Scheme, c.mask.Text(u.Host), c.base.Scheme, c.base.Host)}
		}
		u.User = nil
		return u.String(), nil
	}
	p := req.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	u := *c.base
	u.Path = c.base.Path + p
	u.RawQuery = encodeQuery(req.Query)
	return u.String(), nil
}

// encodeQuery encodes parameters the way Klaviyo writes them: sorted keys with literal brackets (page[size]) and
// values percent-encoded, spaces as %20 (a "+" in a filter value would otherwise be ambiguous).
func encodeQuery(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	brackets := strings.NewReplacer("%5B", "[", "%5D", "]")
	var b strings.Builder
	for _, k := range keys {
		ek := brackets.Replace(url.QueryEscape(k))
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(ek)
			b.WriteByte('=')
			b.WriteString(strings.ReplaceAll(url.QueryEscape(val), "+", "%20"))
		}
	}
	return b.String()
}

// endpoint returns the shared rate state of req.Endpoint, creating it on first use with req.Budget. A later
// request that declares another budget keeps the first (one endpoint has one budget at Klaviyo) and is logged once,
// since it points at a mistake in the stream table.
func (c *Client) endpoint(req Request) *endpoint {
	c.mu.Lock()
	ep, ok := c.endpoints[req.Endpoint]
	if !ok {
		ep = newEndpoint(req.Budget, c.cfg.RateScale, c.now())
		c.endpoints[req.Endpoint] = ep
	}
	mismatch := ep.budget != req.Budget && !ep.mismatchLogged
	if mismatch {
		ep.mismatchLogged = true
	}
	first := ep.budget
	c.mu.Unlock()
	if mismatch {
		c.logf("WARN", "Klaviyo %s: a request declares budget %d/s %d/min, the endpoint keeps its first %d/s %d/min",
			req.Endpoint, req.Budget.Burst, req.Budget.PerMinute, first.Burst, first.PerMinute)
	}
	return ep
}

// acquire waits until the endpoint is open (no Retry-After pending), has a token, and a concurrency slot is free,
// then takes the token and the slot together, and returns the moment the send log holds for the request. Taking
// the token only once the slot is held means the request leaves when its token is taken, so waiting for a slot can
// never bunch requests beyond the budget. The caller releases the slot.
func (c *Client) acquire(ctx context.Context, ep *endpoint, req Request) (time.Time, error) {
	start := c.now()
	defer func() { c.stats.waitNanos.Add(int64(c.now().Sub(start))) }()
	var w *waiter
	pause := rankPause
	if req.Rank != nil {
		w = ep.enter(req.Rank())
		defer ep.leave(w)
	}
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, c.stopped(req, err)
		}
		now := c.now()
		if gate := ep.gate(); now.Before(gate) {
			d := gate.Sub(now)
			if d > c.cfg.MaxRetryAfter {
				return time.Time{}, &Error{Kind: KindRateLimited, Status: http.StatusTooManyRequests, Endpoint: req.Endpoint,
					Scopes: req.Scopes, RetryAt: gate, Detail: "an earlier request was told to wait until then"}
			}
			if err := c.cfg.Sleep(ctx, d); err != nil {
				return time.Time{}, c.stopped(req, err)
			}
			continue
		}
		if d := ep.tokenDelay(now); d > 0 {
			if err := c.cfg.Sleep(ctx, d); err != nil {
				return time.Time{}, c.stopped(req, err)
			}
			pause = rankPause
			continue
		}
		if w != nil && ep.outranked(w, req.Rank(), now) {
			// The requests ranked above this one are taking the places open now; once they have, the wait is
			// for the next burst (tokenDelay).
			if err := c.cfg.Sleep(ctx, pause); err != nil {
				return time.Time{}, c.stopped(req, err)
			}
			pause = min(2*pause, maxRankPause)
			continue
		}
		pause = rankPause
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return time.Time{}, c.stopped(req, ctx.Err())
		}
		if at := c.now(); ep.take(at) {
			return at, nil
		}
		<-c.sem
	}
}

// outcome is a failed attempt: either final (not worth retrying) or retryable for reason.
type outcome struct {
	final         *Error
	status        int
	reason        reason
	err           error
	detail        string
	retryAfter    time.Duration
	hasRetryAfter bool
}

// responseStatus is the HTTP status the attempt got, 0 when no response arrived.
func (o *outcome) responseStatus() int {
	if o.final != nil {
		return o.final.Status
	}
	return o.status
}

func (o *outcome) describe() string {
	var s string
	switch {
	case o.status != 0:
		s = fmt.Sprintf("status %d", o.status)
	default:
		s = o.reason.String()
	}
	switch {
	case o.detail != "":
		s += ": " + o.detail
	case o.err != nil:
		s += ": " + o.err.Error()
	}
	return s
}

// maxErrorBody bounds how much of an error response is read for its detail.
const maxErrorBody = 64 << 10

// attempt sends the request once and decodes or classifies the answer. A nil outcome means success. wrote is
// called once the request is written to its connection: Klaviyo counts it when it arrives, so the rate log keeps
// that moment rather than when the request began waiting for a connection.
func (c *Client) attempt(ctx context.Context, req Request, target string, wrote func()) (*Document, func(), *outcome) {
	// The timeout covers sending and receiving, but not the wait for a place in memory between headers and body:
	// a slow destination must not turn into timeouts and retries. So it is a timer that can be paused.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(c.cfg.Timeout, func() { timedOut.Store(true); cancel() })
	defer timer.Stop()
	reasonOf := func(err error) reason {
		if timedOut.Load() {
			return reasonTimeout
		}
		return transportReason(err)
	}
	var payload io.Reader
	if req.body != nil {
		payload = bytes.NewReader(req.body)
	}
	tctx := httptrace.WithClientTrace(actx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote() }})
	hreq, err := http.NewRequestWithContext(tctx, req.method(), target, payload)
	if err != nil {
		return nil, nil, &outcome{final: &Error{Kind: KindBadRequest, Endpoint: req.Endpoint, Scopes: req.Scopes,
			Detail: "the request URL is invalid", Err: c.mask.Err(err)}}
	}
	hreq.Header.Set("Authorization", "Klaviyo-API-Key "+c.cfg.APIKey)
	hreq.Header.Set("revision", Revision)
	hreq.Header.Set("Accept", "application/vnd.api+json")
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)
	if req.body != nil {
		hreq.Header.Set("Content-Type", "application/vnd.api+json")
	}
	c.stats.requests.Add(1)
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, nil, &outcome{reason: reasonOf(err), err: c.mask.Err(err)}
	}
	body := &countingReader{r: resp.Body, n: &c.stats.bytes}
	defer func() {
		// Drain a little so the connection goes back to the pool; a huge remainder is cheaper to drop.
		_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
		_ = resp.Body.Close()
	}()

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if !timer.Stop() {
			return nil, nil, &outcome{reason: reasonTimeout, err: errors.New("the response headers came after the timeout")}
		}
		select {
		case c.pages <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, &outcome{reason: reasonNetwork, err: ctx.Err()}
		}
		var once sync.Once
		release := func() { once.Do(func() { <-c.pages }) }
		timer.Reset(c.cfg.Timeout)
		pb := c.buffer()
		defer c.recycle(pb)
		buf := &pb.body
		if n := resp.ContentLength; n > 0 && n <= maxBody {
			// The whole body at once, plus the room ReadFrom wants to see the end: no doubling on the way.
			buf.Grow(int(n) + bytes.MinRead)
		}
		if err := readBody(body, buf); err != nil {
			release()
			// The connection broke or stalled mid-body: the server's answer was fine, the transport was not.
			return nil, nil, &outcome{reason: reasonOf(err), err: c.mask.Err(err)}
		}
		var doc *Document
		if req.body != nil {
			doc, err = decodeReport(buf.Bytes())
		} else {
			doc, err = decodeBytes(buf.Bytes(), &pb.scratch)
		}
		if err != nil {
			release()
			return nil, nil, &outcome{reason: reasonBody, err: c.mask.Err(err)}
		}
		return doc, release, nil
	}

	raw, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	detail, authProblem := errorDetail(raw, c.mask)
	status := resp.StatusCode
	final := func(k Kind) *outcome {
		return &outcome{final: &Error{Kind: k, Status: status, Endpoint: req.Endpoint, Scopes: req.Scopes, Detail: detail}}
	}
	switch {
	case status == http.StatusUnauthorized, status == http.StatusBadRequest && authProblem:
		return nil, nil, final(KindAuth)
	case status == http.StatusForbidden:
		return nil, nil, final(KindScope)
	case status == http.StatusNotFound:
		return nil, nil, final(KindNotFound)
	case status == http.StatusTooManyRequests, status >= 500 && status != http.StatusNotImplemented:
		o := &outcome{status: status, reason: reasonServer, detail: detail}
		if status == http.StatusTooManyRequests {
			o.reason = reasonRateLimited
		}
		o.retryAfter, o.hasRetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.now())
		return nil, nil, o
	default:
		return nil, nil, final(KindBadRequest)
	}
}

// pageBuffer is what reading and decoding one page needs and the next page can use again: the body's bytes and
// the page decoder's scratch.
type pageBuffer struct {
	body    bytes.Buffer
	scratch scanScratch
}

// buffer returns a kept page buffer, or a new one.
func (c *Client) buffer() *pageBuffer {
	select {
	case b := <-c.bufs:
		return b
	default:
		return new(pageBuffer)
	}
}

// recycle keeps pb for the next page unless its body is unusually large or enough are kept already; scratch grown
// by an unusually large page is dropped, the body kept.
func (c *Client) recycle(pb *pageBuffer) {
	if pb.body.Cap() > maxPooled {
		return
	}
	pb.body.Reset()
	if pb.scratch.large() {
		pb.scratch = scanScratch{}
	}
	pb.scratch.reset()
	select {
	case c.bufs <- pb:
	default:
	}
}

// logf sends a masked message to Config.Log.
func (c *Client) logf(level, format string, args ...any) {
	if c.cfg.Log == nil {
		return
	}
	c.cfg.Log(level, c.mask.Text(fmt.Sprintf(format, args...)))
}
