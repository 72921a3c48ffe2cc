package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options configures a sandbox. The zero value is a small, fast, fault-free account with one
// all-scopes key named "sandbox-key" and Klaviyo's published rate limits switched off.
type Options struct {
	Seed       int64
	Now        time.Time           // sandbox clock start; zero = wall clock minus 30 days, truncated to the day (UTC)
	Scale      Scale               // record counts; zero fields take small defaults
	RateLimits RateLimits          // off, Klaviyo's published tiers, or the tiers × Factor
	Latency    Latency             // uniform delay added to every API request
	Faults     Faults              // per-request fault probabilities
	APIKeys    map[string][]string // key -> scopes; nil scopes = every read scope; empty map = "sandbox-key"
	// ReportPageSize is how many results a page of the paginated reports (campaign and flow
	// reports) holds before links.next; 0 means 500. Tests lower it to exercise page_cursor.
	ReportPageSize int
	// LateEvents makes every Advance also create events dated before the clock it started from,
	// as Klaviyo's asynchronous ingestion does, so a connector's lookback can be proven. Off by
	// default: the clock then never adds history before its previous value.
	LateEvents LateEvents
	// Removals is how many existing list memberships, and as many segment memberships, every
	// Advance removes. No endpoint lists what left, so a connector that must notice removals
	// needs an account where members leave. 0 (the default) means members never leave.
	Removals int
	// EventSkew grows the event density toward the clock start and adds a burst week, as in a growing store's
	// account (skew.go), so equal-time windows meet very unequal volumes. Off by default.
	EventSkew EventSkew
	// TLS serves HTTPS with a certificate made at start (tls.go). Off by default: plain HTTP.
	TLS TLS
}

// LateEvents configures the events an Advance creates in the past. Klaviyo accepts any past
// `time` and creates events asynchronously (delayed webhooks, batch imports), so an event can
// become readable well after its datetime; a connector whose datetime cursor already passed that
// moment misses it unless it re-reads a lookback window.
type LateEvents struct {
	// PerAdvance is how many late events each Advance creates; 0 switches the feature off.
	PerAdvance int
	// Window bounds how late they are: each is dated in [from-Window, from), from being the
	// clock value the Advance started from. Whole seconds; 0 means 45 minutes.
	Window time.Duration
}

// DefaultLateWindow is the Window of LateEvents left at zero.
const DefaultLateWindow = 45 * time.Minute

// normalize validates the options and fills the window, so the world can trust them.
func (l LateEvents) normalize() (LateEvents, error) {
	if l.PerAdvance < 0 || l.Window < 0 {
		return LateEvents{}, fmt.Errorf("sandbox: late events %d per Advance within %s: want non-negative values", l.PerAdvance, l.Window)
	}
	if l.PerAdvance == 0 {
		return LateEvents{}, nil
	}
	if l.Window == 0 {
		l.Window = DefaultLateWindow
	}
	if l.Window = l.Window.Truncate(time.Second); l.Window < time.Second {
		return LateEvents{}, fmt.Errorf("sandbox: late events window %s: want at least one second", l.Window)
	}
	return l, nil
}

// ParseLateEvents reads "N" or "N:WINDOW" (e.g. "5:45m"): N late events per Advance, dated up to
// WINDOW (default 45m) before the clock the Advance started from. Empty, "0" or "off" means none.
func ParseLateEvents(s string) (LateEvents, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "off" || s == "none" {
		return LateEvents{}, nil
	}
	n, win, hasWin := strings.Cut(s, ":")
	var l LateEvents
	var err error
	if l.PerAdvance, err = strconv.Atoi(n); err != nil || l.PerAdvance < 0 {
		return LateEvents{}, fmt.Errorf("late events %q: want N or N:WINDOW with N a non-negative integer", s)
	}
	if hasWin {
		if l.Window, err = time.ParseDuration(win); err != nil || l.Window < time.Second {
			return LateEvents{}, fmt.Errorf("late events %q: want a window of at least 1s, such as 45m", s)
		}
	}
	return l.normalize()
}

// Scale sets how many records of each kind exist when the clock starts. Zero fields take the
// defaults in DefaultScale, small enough that reading everything takes about a second.
type Scale struct {
	Profiles, Events, Metrics, Lists, Segments, Flows, Campaigns, Templates, Tags, TagGroups, Coupons,
	CouponCodes, CatalogItems, CatalogVariants, CatalogCategories, Images, Forms, Reviews, Webhooks int
	PushTokens, UniversalContent, WebFeeds, CustomMetrics int
}

// DefaultScale is the record count used for every Scale field left at zero.
func DefaultScale() Scale {
	return Scale{
		Profiles: 200, Events: 2000, Metrics: 12, Lists: 15, Segments: 8, Flows: 10, Campaigns: 30,
		Templates: 12, Tags: 12, TagGroups: 4, Coupons: 6, CouponCodes: 60, CatalogItems: 40,
		CatalogVariants: 80, CatalogCategories: 8, Images: 25, Forms: 6, Reviews: 40, Webhooks: 4,
		PushTokens: 30, UniversalContent: 6, WebFeeds: 3, CustomMetrics: 3,
	}
}

func (s Scale) withDefaults() Scale {
	d := DefaultScale()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&s.Profiles, d.Profiles)
	fill(&s.Events, d.Events)
	fill(&s.Metrics, d.Metrics)
	fill(&s.Lists, d.Lists)
	fill(&s.Segments, d.Segments)
	fill(&s.Flows, d.Flows)
	fill(&s.Campaigns, d.Campaigns)
	fill(&s.Templates, d.Templates)
	fill(&s.Tags, d.Tags)
	fill(&s.TagGroups, d.TagGroups)
	fill(&s.Coupons, d.Coupons)
	fill(&s.CouponCodes, d.CouponCodes)
	fill(&s.CatalogItems, d.CatalogItems)
	fill(&s.CatalogVariants, d.CatalogVariants)
	fill(&s.CatalogCategories, d.CatalogCategories)
	fill(&s.Images, d.Images)
	fill(&s.Forms, d.Forms)
	fill(&s.Reviews, d.Reviews)
	fill(&s.Webhooks, d.Webhooks)
	fill(&s.PushTokens, d.PushTokens)
	fill(&s.UniversalContent, d.UniversalContent)
	fill(&s.WebFeeds, d.WebFeeds)
	fill(&s.CustomMetrics, d.CustomMetrics)
	return s
}

// RateMode selects how rate limits are enforced.
type RateMode int

const (
	// RateOff serves every request without a rate limit (RateLimit-* headers still describe the tier).
	RateOff RateMode = iota
	// RateKlaviyo enforces each endpoint's published burst and steady limits, scaled by Factor.
	RateKlaviyo
)

// RateLimits chooses between no limits and Klaviyo's tiers; Factor (0 means 1) multiplies the
// tiers so benchmarks can run against a faster or slower account.
type RateLimits struct {
	Mode   RateMode
	Factor float64
}

// Latency adds a uniformly distributed delay in [Min, Max] before each API response.
type Latency struct {
	Min, Max time.Duration
}

// Faults are per-request probabilities (0..1) of misbehaving, drawn from a generator seeded by
// Options.Seed so that a run is reproducible.
type Faults struct {
	Err500      float64 // 500 with Klaviyo's error body
	Err503      float64 // 503 with Klaviyo's error body
	Reset       float64 // close the connection without answering
	Truncate    float64 // send half the body, then close
	Malformed   float64 // 200 with a body that is not JSON
	Slow        float64 // wait 2-5 s before answering
	Spurious429 float64 // 429 although the budget is not exhausted
	// RetryAfter is the Retry-After (seconds) of spurious 429s; 0 means 1. A large value (86400)
	// imitates a daily quota.
	RetryAfter int
	// Only, when set, restricts faults to request paths starting with it (e.g. "/api/events").
	Only string
}

func (f Faults) any() bool {
	return f.Err500+f.Err503+f.Reset+f.Truncate+f.Malformed+f.Slow+f.Spurious429 > 0
}

// ParseFaults reads "5xx=0.05,503=0.01,reset=0.02,truncate=0.01,malformed=0.01,slow=0.01,429=0.02"
// plus the options "retry_after=<seconds>" and "only=<path prefix>". An empty string means no faults.
func ParseFaults(s string) (Faults, error) {
	var f Faults
	s = strings.TrimSpace(s)
	if s == "" || s == "none" || s == "off" {
		return f, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Faults{}, fmt.Errorf("faults: %q is not name=value", part)
		}
		switch k {
		case "retry_after":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Faults{}, fmt.Errorf("faults: retry_after %q is not a non-negative integer", v)
			}
			f.RetryAfter = n
			continue
		case "only":
			f.Only = v
			continue
		}
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 1 {
			return Faults{}, fmt.Errorf("faults: %s=%q is not a probability between 0 and 1", k, v)
		}
		switch k {
		case "5xx", "500":
			f.Err500 = p
		case "503":
			f.Err503 = p
		case "reset":
			f.Reset = p
		case "truncate":
			f.Truncate = p
		case "malformed":
			f.Malformed = p
		case "slow":
			f.Slow = p
		case "429":
			f.Spurious429 = p
		default:
			return Faults{}, fmt.Errorf("faults: unknown fault %q (want 5xx, 503, reset, truncate, malformed, slow, 429, retry_after, only)", k)
		}
	}
	if f.Err500+f.Err503+f.Reset+f.Truncate+f.Malformed+f.Slow+f.Spurious429 > 1 {
		return Faults{}, fmt.Errorf("faults: probabilities add up to more than 1")
	}
	return f, nil
}

// ParseLatency reads "50ms" (fixed) or "20ms-80ms" (uniform range); empty means none.
func ParseLatency(s string) (Latency, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Latency{}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	min, err := time.ParseDuration(lo)
	if err != nil {
		return Latency{}, fmt.Errorf("latency %q: %w", s, err)
	}
	max := min
	if isRange {
		if max, err = time.ParseDuration(hi); err != nil {
			return Latency{}, fmt.Errorf("latency %q: %w", s, err)
		}
	}
	if min < 0 || max < min {
		return Latency{}, fmt.Errorf("latency %q: want MIN-MAX with 0 <= MIN <= MAX", s)
	}
	return Latency{Min: min, Max: max}, nil
}

// ParseRateLimits reads "klaviyo" (published tiers), "off", or a positive factor such as "0.1"
// or "10" applied to the published tiers.
func ParseRateLimits(s string) (RateLimits, error) {
	switch strings.TrimSpace(s) {
	case "", "off", "none":
		return RateLimits{Mode: RateOff}, nil
	case "klaviyo", "on":
		return RateLimits{Mode: RateKlaviyo, Factor: 1}, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f <= 0 {
		return RateLimits{}, fmt.Errorf("rate limits %q: want klaviyo, off or a positive factor", s)
	}
	return RateLimits{Mode: RateKlaviyo, Factor: f}, nil
}
