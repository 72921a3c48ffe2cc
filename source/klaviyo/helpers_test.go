package klaviyo

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testKey is recognisable so tests can search every output for it.
const testKey = "pk_SECRETSECRET0123456789abcdef0123"

// basePath puts the fake Klaviyo under a non-root path, so a client that drops BaseURL's path (or builds absolute
// paths) hits the outer 404 instead of passing by luck.
const basePath = "/proxy/klaviyo"

// shortWindow and longWindow are the windows a send log counts in at the starting margin (sendLog.windows).
const (
	shortWindow = time.Second + jitterMargin
	longWindow  = time.Minute + jitterMargin
)

// roomy is a budget the tests never wait on unless they mean to.
func roomy() Budget { return Budget{Burst: 1000, PerMinute: 60000} }

// fakeClock is the client's clock and Sleep: sleeping records the duration and moves time forward at once.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// hook, when set, runs at the start of every Sleep (outside the lock), before time moves.
	hook func(d time.Duration)
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
	return ctx.Err()
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// logSink collects Config.Log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) Log(level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+": "+msg)
}

func (l *logSink) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

type fixture struct {
	c     *Client
	mux   *http.ServeMux
	srv   *httptest.Server
	clock *fakeClock
	logs  *logSink
}

// origin is the fake server's scheme and host, for links.next.
func (f *fixture) origin() string { return f.srv.URL }

// setup starts a fake Klaviyo under basePath and a client on it with a fake clock and fixed jitter (0.5, so each
// backoff is 75% of its ceiling: 375 ms, 750 ms, 1.5 s ...).
func setup(t *testing.T, tweak ...func(*Config)) *fixture {
	t.Helper()
	mux := http.NewServeMux()
	outer := http.NewServeMux()
	outer.Handle(basePath+"/", http.StripPrefix(basePath, mux))
	srv := httptest.NewServer(outer)
	t.Cleanup(srv.Close)
	clock := newFakeClock()
	logs := &logSink{}
	cfg := Config{
		BaseURL: srv.URL + basePath,
		APIKey:  testKey,
		Sleep:   clock.Sleep,
		Rand:    func() float64 { return 0.5 },
		Log:     logs.Log,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	c.now = clock.Now
	return &fixture{c: c, mux: mux, srv: srv, clock: clock, logs: logs}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, body)
}

// page renders a collection page of profiles with the given ids and links.next ("" for none).
func page(next string, ids ...string) string {
	items := make([]string, len(ids))
	for i, id := range ids {
		items[i] = fmt.Sprintf(`{"type":"profile","id":%q,"attributes":{"email":"%s@example.com"},"links":{"self":"x"}}`, id, id)
	}
	nextJSON := "null"
	if next != "" {
		nextJSON = fmt.Sprintf("%q", next)
	}
	return fmt.Sprintf(`{"data":[%s],"links":{"self":"s","next":%s}}`, strings.Join(items, ","), nextJSON)
}

func ids(docs ...*Document) []string {
	var out []string
	for _, d := range docs {
		for _, r := range d.Data {
			out = append(out, r.ID)
		}
	}
	return out
}

func profilesRequest() Request {
	return Request{Endpoint: "/api/profiles", Budget: roomy(), Scopes: []string{"profiles:read"}, Path: "/api/profiles"}
}

// Klaviyo's published tiers, as budgets for the client's tests (the connector's own table is catalog.TierXS...).

// TierXS is Klaviyo's XS rate tier: 1 request a second, 15 a minute.
func TierXS() Budget { return Budget{Burst: 1, PerMinute: 15} }

// TierS is Klaviyo's S rate tier: 3 requests a second, 60 a minute.
func TierS() Budget { return Budget{Burst: 3, PerMinute: 60} }

// TierM is Klaviyo's M rate tier: 10 requests a second, 150 a minute.
func TierM() Budget { return Budget{Burst: 10, PerMinute: 150} }

// TierL is Klaviyo's L rate tier: 75 requests a second, 750 a minute.
func TierL() Budget { return Budget{Burst: 75, PerMinute: 750} }

// TierXL is Klaviyo's XL rate tier: 350 requests a second, 3,500 a minute.
func TierXL() Budget { return Budget{Burst: 350, PerMinute: 3500} }
