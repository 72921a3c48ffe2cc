package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pinClock freezes the rate limiter's wall clock in the middle of a minute so windows are exact.
func pinClock(s *Server) *time.Time {
	now := time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)
	var mu sync.Mutex
	s.limits.setClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	return &now
}

func TestRateLimitBurstAndSteady(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.RateLimits = RateLimits{Mode: RateKlaviyo, Factor: 1} })
	pinClock(s)
	// accounts: XS tier, 1/s burst.
	r := get(t, s, "/api/accounts")
	require.Equal(t, 200, r.status)
	assert.Equal(t, "15", r.header.Get("RateLimit-Limit"))
	assert.Equal(t, "14", r.header.Get("RateLimit-Remaining"))
	assert.Equal(t, "30", r.header.Get("RateLimit-Reset"))
	r = get(t, s, "/api/accounts")
	require.Equal(t, 429, r.status)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Empty(t, r.header.Get("RateLimit-Limit"), "429s carry Retry-After, not RateLimit-*")
	assert.Equal(t, "throttled", r.firstError()["code"])
	// Another endpoint has its own budget.
	assert.Equal(t, 200, get(t, s, "/api/metrics").status)

	// Steady: 15 per minute on accounts, one second apart to stay under the burst.
	s2 := startSmall(t, func(o *Options) { o.RateLimits = RateLimits{Mode: RateKlaviyo, Factor: 1} })
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	cur := base
	s2.limits.setClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return cur })
	for i := 0; i < 15; i++ {
		mu.Lock()
		cur = base.Add(time.Duration(i) * time.Second)
		mu.Unlock()
		require.Equal(t, 200, get(t, s2, "/api/accounts").status, i)
	}
	mu.Lock()
	cur = base.Add(20 * time.Second)
	mu.Unlock()
	r = get(t, s2, "/api/accounts")
	require.Equal(t, 429, r.status)
	assert.Equal(t, "40", r.header.Get("Retry-After"), "wait for the minute window to end")
	mu.Lock()
	cur = base.Add(60 * time.Second)
	mu.Unlock()
	assert.Equal(t, 200, get(t, s2, "/api/accounts").status, "a new minute opens a new window")
}

func TestRateLimitFactorAndKeys(t *testing.T) {
	s := startSmall(t, func(o *Options) {
		o.RateLimits = RateLimits{Mode: RateKlaviyo, Factor: 0.01} // events: 350/s -> 4/s, 3500/m -> 35/m
		o.APIKeys = map[string][]string{"k1": nil, "k2": nil}
	})
	pinClock(s)
	for i := 0; i < 4; i++ {
		assert.Equal(t, 200, get(t, s, "/api/events?page[size]=1", "Authorization", "Klaviyo-API-Key k1").status)
	}
	assert.Equal(t, 429, get(t, s, "/api/events?page[size]=1", "Authorization", "Klaviyo-API-Key k1").status)
	assert.Equal(t, 200, get(t, s, "/api/events?page[size]=1", "Authorization", "Klaviyo-API-Key k2").status, "budgets are per key")
}

func TestPredictiveAnalyticsUsesTheMediumTier(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.RateLimits = RateLimits{Mode: RateKlaviyo, Factor: 1} })
	pinClock(s)
	pa := "/api/profiles?page[size]=1&additional-fields[profile]=predictive_analytics"
	for i := 0; i < 10; i++ {
		r := get(t, s, pa)
		require.Equal(t, 200, r.status, i)
		assert.Equal(t, "150", r.header.Get("RateLimit-Limit"))
	}
	assert.Equal(t, 429, get(t, s, pa).status, "M tier: 10/s")
	r := get(t, s, "/api/profiles?page[size]=1")
	require.Equal(t, 200, r.status, "plain profile reads keep the L tier")
	assert.Equal(t, "750", r.header.Get("RateLimit-Limit"))
}

func TestIncludeGroupsAndProfileCountUseTheXSTier(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.RateLimits = RateLimits{Mode: RateKlaviyo, Factor: 1} })
	pinClock(s)
	p := get(t, s, "/api/profiles?page[size]=1").data()[0]["id"].(string)
	r := get(t, s, "/api/profiles/"+p+"?include=lists")
	require.Equal(t, 200, r.status)
	assert.Equal(t, "15", r.header.Get("RateLimit-Limit"))
	assert.Equal(t, 429, get(t, s, "/api/profiles/"+p+"?include=segments").status, "XS tier: 1/s")
	l := get(t, s, "/api/lists?page[size]=1").data()[0]["id"].(string)
	assert.Equal(t, 200, get(t, s, "/api/lists/"+l+"?additional-fields[list]=profile_count").status)
	assert.Equal(t, 429, get(t, s, "/api/lists/"+l+"?additional-fields[list]=profile_count").status)
	assert.Equal(t, 200, get(t, s, "/api/lists/"+l).status, "without profile_count the L tier applies")
}

func TestRateLimitsOff(t *testing.T) {
	s := startSmall(t, nil)
	pinClock(s)
	for i := 0; i < 5; i++ {
		assert.Equal(t, 200, get(t, s, "/api/accounts").status)
	}
}

func faultServer(t *testing.T, f Faults) *Server {
	return startSmall(t, func(o *Options) { o.Faults = f })
}

func TestFaults(t *testing.T) {
	t.Run("500", func(t *testing.T) {
		r := get(t, faultServer(t, Faults{Err500: 1}), "/api/lists")
		assert.Equal(t, 500, r.status)
		assert.NotNil(t, r.firstError())
	})
	t.Run("503", func(t *testing.T) {
		assert.Equal(t, 503, get(t, faultServer(t, Faults{Err503: 1}), "/api/lists").status)
	})
	t.Run("429", func(t *testing.T) {
		r := get(t, faultServer(t, Faults{Spurious429: 1}), "/api/lists")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
	})
	t.Run("429 daily quota", func(t *testing.T) {
		f, err := ParseFaults("429=1,retry_after=86400")
		require.NoError(t, err)
		r := get(t, faultServer(t, f), "/api/lists")
		assert.Equal(t, 429, r.status)
		assert.Equal(t, "86400", r.header.Get("Retry-After"))
	})
	t.Run("malformed", func(t *testing.T) {
		r := get(t, faultServer(t, Faults{Malformed: 1}), "/api/lists")
		assert.Equal(t, 200, r.status)
		assert.False(t, json.Valid(r.body))
	})
	t.Run("reset", func(t *testing.T) {
		s := faultServer(t, Faults{Reset: 1})
		_, err := rawGet(s, "/api/lists")
		assert.Error(t, err)
	})
	t.Run("truncate", func(t *testing.T) {
		s := faultServer(t, Faults{Truncate: 1})
		body, err := rawGet(s, "/api/lists")
		require.Error(t, err)
		assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), err)
		assert.NotEmpty(t, body)
	})
	t.Run("only", func(t *testing.T) {
		s := faultServer(t, Faults{Err500: 1, Only: "/api/events"})
		assert.Equal(t, 200, get(t, s, "/api/lists").status)
		assert.Equal(t, 500, get(t, s, "/api/events").status)
		st := s.Stats()
		assert.Equal(t, 1, st.ByPath["/api/events"]["500"])
		assert.Equal(t, 1, st.ByPath["/api/lists"]["200"])
	})
	t.Run("slow", func(t *testing.T) {
		s := faultServer(t, Faults{Slow: 1})
		start := time.Now()
		assert.Equal(t, 200, get(t, s, "/api/accounts").status)
		assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "slow answers wait at least 2 s")
	})
	t.Run("mix is seeded", func(t *testing.T) {
		f, err := ParseFaults("5xx=0.2,503=0.2,429=0.2")
		require.NoError(t, err)
		statuses := func() []int {
			s := faultServer(t, f)
			var out []int
			for i := 0; i < 40; i++ {
				out = append(out, get(t, s, "/api/lists").status)
			}
			return out
		}
		a, b := statuses(), statuses()
		assert.Equal(t, a, b)
		assert.Contains(t, a, 200)
		assert.Contains(t, a, 500)
		assert.Contains(t, a, 503)
		assert.Contains(t, a, 429)
	})
}

// rawGet reads a response with the standard client and returns what arrived and the read error.
func rawGet(s *Server, path string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Klaviyo-API-Key "+DefaultAPIKey)
	req.Header.Set("revision", LatestRevision)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func TestLatency(t *testing.T) {
	s := startSmall(t, func(o *Options) { o.Latency = Latency{Min: 30 * time.Millisecond, Max: 30 * time.Millisecond} })
	start := time.Now()
	assert.Equal(t, 200, get(t, s, "/api/accounts").status)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
}

func TestParseOptions(t *testing.T) {
	f, err := ParseFaults("5xx=0.05,503=0.01,reset=0.02,truncate=0.01,malformed=0.01,slow=0.01,429=0.02,retry_after=7,only=/api/events")
	require.NoError(t, err)
	assert.Equal(t, Faults{Err500: 0.05, Err503: 0.01, Reset: 0.02, Truncate: 0.01, Malformed: 0.01, Slow: 0.01, Spurious429: 0.02, RetryAfter: 7, Only: "/api/events"}, f)
	for _, bad := range []string{"5xx", "5xx=2", "boom=0.1", "retry_after=-1", "5xx=0.6,503=0.6"} {
		_, err := ParseFaults(bad)
		assert.Error(t, err, bad)
	}
	l, err := ParseLatency("20ms-80ms")
	require.NoError(t, err)
	assert.Equal(t, Latency{Min: 20 * time.Millisecond, Max: 80 * time.Millisecond}, l)
	l, err = ParseLatency("50ms")
	require.NoError(t, err)
	assert.Equal(t, Latency{Min: 50 * time.Millisecond, Max: 50 * time.Millisecond}, l)
	for _, bad := range []string{"fast", "80ms-20ms", "-5ms"} {
		_, err := ParseLatency(bad)
		assert.Error(t, err, bad)
	}
	r, err := ParseRateLimits("klaviyo")
	require.NoError(t, err)
	assert.Equal(t, RateLimits{Mode: RateKlaviyo, Factor: 1}, r)
	r, err = ParseRateLimits("off")
	require.NoError(t, err)
	assert.Equal(t, RateOff, r.Mode)
	r, err = ParseRateLimits("0.5")
	require.NoError(t, err)
	assert.Equal(t, RateLimits{Mode: RateKlaviyo, Factor: 0.5}, r)
	for _, bad := range []string{"fast", "0", "-1"} {
		_, err := ParseRateLimits(bad)
		assert.Error(t, err, bad)
	}
}

// TestTruncatedResponseLength checks the truncation promises a longer body than it sends.
func TestTruncatedResponseLength(t *testing.T) {
	s := faultServer(t, Faults{Truncate: 1})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /api/lists HTTP/1.1\r\nHost: x\r\nAuthorization: Klaviyo-API-Key " + DefaultAPIKey + "\r\nrevision: " + LatestRevision + "\r\n\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	n, _ := strconv.Atoi(resp.Header.Get("Content-Length"))
	body, _ := io.ReadAll(resp.Body)
	assert.Less(t, len(body), n)
}
