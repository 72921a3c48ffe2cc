package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// scenario is one benchmark run: an account the sandbox serves, the streams the connector reads, and what its
// speed is compared with.
type scenario struct {
	name  string
	kind  string // "rate", "small" or "cpu", for -scenario
	about string
	// sandboxArgs are the sandbox's flags besides --api-key and --seed.
	sandboxArgs []string
	// streams is the configured catalog; nil selects every stream but those in skip.
	streams []string
	skip    []string
	// factor is the sandbox's rate-limit factor and the connector's rate_limit_scale; 0 means no limits (the
	// connector then runs at rate_limit_scale 1000 so its own budgets never bind either).
	factor float64
	// ceilingStream names the stream whose records/s is compared with its endpoint's steady ceiling; empty means
	// the scenario is compared with the budget floor of the requests it made (see result.ratio).
	ceilingStream string
	// smallStream, in a small-sync scenario, names the stream whose wall time is compared with the time the burst
	// and steady limits and the latency allow (see burstFloor); such a scenario has no steady-ceiling ratio.
	smallStream string
	// latency is the sandbox's latency, which burstFloor counts once.
	latency time.Duration
	// config holds connector settings added to the scenario's config (a stream map, for cpu-maps).
	config map[string]any
	// tls has the sandbox serve HTTPS and the connector trust its certificate through SSL_CERT_FILE.
	tls bool
	// midRunGoal, when set, is the share of the ceiling stream's budget the sync must keep over the middle half
	// of the run; rssGoal reports peak RSS against the 64 MiB goal.
	midRunGoal float64
	rssGoal    bool
	// recent, when set, has the sandbox's clock start at the wall clock when the scenario runs and the connector
	// read only the last recent of it (start_date): an incremental sync's span (startingAt). startDate is that
	// bound once set.
	recent    time.Duration
	startDate time.Time
	// study, when set, runs the scenario instead of a single sync (quiet.go, pair.go: two syncs each) and returns
	// its report section and every sync's result.
	study func(ctx context.Context, b bins, sc scenario, o options, dir string) (string, []result, error)
}

// pageAndBudget returns a stream's page size and steady requests per minute from the stream table, so the
// ceiling follows the connector's own declaration of each endpoint's tier.
func pageAndBudget(name string) (page, perMinute int) {
	page, rate := pageAndRate(name)
	return page, rate.PerMinute
}

// pageAndRate returns a stream's page size and its endpoint's published budget from the stream table.
func pageAndRate(name string) (int, catalog.Rate) {
	s, ok := catalog.Lookup(name)
	if !ok {
		// The stream table is part of this module; a missing name is a bug in this program, not bad input.
		return 1, catalog.Rate{Burst: 1, PerMinute: 1}
	}
	return max(s.PageSize, 1), s.Rate
}

// scaled is a budget multiplied by the factor the way the sandbox does it: rounded to whole requests, at least one.
func scaled(n int, f float64) int {
	v := int(float64(n)*f + 0.5)
	if v < 1 {
		v = 1
	}
	return v
}

// ceilingPerSecond is the best records/s a stream's endpoint allows at factor f: full pages at the steady limit.
func ceilingPerSecond(stream string, f float64) float64 {
	page, perMinute := pageAndBudget(stream)
	return float64(scaled(perMinute, f)*page) / 60
}

// sizedFor is how many records fill minutes of a stream's steady budget at factor f.
func sizedFor(stream string, f, minutes float64) int {
	return int(math.Round(ceilingPerSecond(stream, f) * 60 * minutes))
}

func fmtFactor(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func rateEvents(o options) scenario {
	n := o.rateEvents
	if n <= 0 {
		n = sizedFor("events", o.factor, o.rateMinutes)
	}
	return scenario{
		name: "rate-events", kind: "rate", factor: o.factor, ceilingStream: "events", streams: []string{"events"},
		about:       fmt.Sprintf("events alone, %d events, tiers x %s, %s latency", n, fmtFactor(o.factor), o.latency),
		sandboxArgs: []string{"--events", strconv.Itoa(n), "--rate-limits", fmtFactor(o.factor), "--latency", o.latency},
	}
}

// rateSkewed is rate-events on a growing account (issue 12): most events in the last months and a burst week
// eight times as dense (the sandbox's --event-skew, -event-skew here). Windows of equal time then hold very
// unequal volumes; once the others are done, the densest drains alone, one page per round trip, below the
// budget. The goals: >= 90% of the ceiling over the whole run, >= 95% mid-run.
//
// It is sized for five minutes of the budget (-skew-minutes), not rate-events' two: the send log spends each
// minute's allowance as early as it can, so a two-minute sync ends a few seconds into its third minute whether or
// not its second minute was spent late, and there the unchanged engine met both goals (95% and 100%) while about
// 50 of its 126 seconds went to the drain. Five minutes leave the drain a whole minute and more to show in.
func rateSkewed(o options) scenario {
	if o.rateEvents <= 0 {
		o.rateMinutes = o.skewMinutes
	}
	sc := rateEvents(o)
	sc.name, sc.midRunGoal = "rate-skewed", 0.95
	sc.about = strings.Replace(sc.about, "events alone", "events alone, skewed history (--event-skew "+o.eventSkew+")", 1)
	sc.sandboxArgs = append(sc.sandboxArgs, "--event-skew", o.eventSkew)
	return sc
}

// coreStreams are the streams of a typical sync's core: the two large ones, lists and segments with their
// memberships (the other large reads: a profile is on several lists), and the two exclusion streams, which read
// /api/profiles again with subscriptions. Everything else in the catalog is small.
func coreStreams() []string {
	return []string{"profiles", "events", "lists", "list_memberships", "segments", "segment_memberships",
		"global_exclusions", "list_exclusions"}
}

// rateCoreTLS reads the core streams at once over HTTPS (issue 12's memory goal: < 64 MiB for a whole-catalog
// sync of any size, over HTTPS). It runs at Klaviyo's published tiers rather than the factor: the membership
// reads (about 5 list and 2 segment memberships a profile, 100 a page, on L-tier endpoints) would take half an hour
// at a tenth of the tiers and about 4 minutes at the real ones, and memory depends on the pages in flight, not
// on the pace.
func rateCoreTLS(o options) scenario {
	args := []string{"--profiles", strconv.Itoa(o.coreProfiles), "--events", strconv.Itoa(o.coreEvents),
		"--rate-limits", "klaviyo", "--latency", o.latency}
	over := map[string]string{"h2": "HTTPS (HTTP/2)", "http1": "HTTPS (HTTP/1.1 only)", "off": "plain HTTP (-tls off)"}[o.tlsMode]
	if o.tlsMode == "http1" {
		args = append(args, "--tls-http1")
	}
	return scenario{
		name: "rate-core-tls", kind: "rate", factor: 1, streams: coreStreams(), tls: o.tlsMode != "off", rssGoal: true,
		about: fmt.Sprintf("the core streams %v at once over %s, %d profiles, %d events, Klaviyo's published tiers, %s latency",
			coreStreams(), over, o.coreProfiles, o.coreEvents, o.latency),
		sandboxArgs: args,
	}
}

func rateProfiles(o options) scenario {
	n := o.rateProfs
	if n <= 0 {
		n = sizedFor("profiles", o.factor, o.rateMinutes)
	}
	return scenario{
		name: "rate-profiles", kind: "rate", factor: o.factor, ceilingStream: "profiles", streams: []string{"profiles"},
		about:       fmt.Sprintf("profiles alone (with subscriptions), %d profiles, tiers x %s, %s latency", n, fmtFactor(o.factor), o.latency),
		sandboxArgs: []string{"--profiles", strconv.Itoa(n), "--rate-limits", fmtFactor(o.factor), "--latency", o.latency},
	}
}

// rateCatalog syncs every stream. Its sizes keep each endpoint's share of the run near the target time: events get
// half the events budget's minutes; profiles are fewer because every profile also brings about five list
// memberships and two segment memberships, read per list at the L tier; the parents of the S- and M-tier fan-outs
// (flows, campaigns, tags, forms) are few, since each costs a request or more at 6-15 requests a minute when scaled.
//
// The fan-outs cost the same number of requests whatever the size, so -quick cannot shrink them; it runs this
// scenario at ten times the factor instead (sizes derived from that factor too), to finish in seconds.
func rateCatalog(o options) scenario {
	if o.quick {
		o.factor = math.Min(1000, 10*o.factor)
	}
	events := o.rateEvents / 2
	if events <= 0 {
		events = sizedFor("events", o.factor, o.rateMinutes/2)
	}
	profiles := o.rateProfs / 6
	if profiles <= 0 {
		profiles = sizedFor("profiles", o.factor, o.rateMinutes/6)
	}
	about := fmt.Sprintf("every stream, %d events, %d profiles, few flows/campaigns/tags/forms, tiers x %s, %s latency",
		events, profiles, fmtFactor(o.factor), o.latency)
	skip := o.skip
	if !o.pairReports {
		// As in catalog-vs-events (reportStreams): scaled, the Reporting API's daily quota and 2 a minute would set
		// the whole run's length and say nothing of how the other streams share the client.
		skip = append(slices.Clone(skip), reportStreams()...)
	}
	if len(skip) > 0 {
		about += fmt.Sprintf(", without %v", skip)
	}
	return scenario{
		name: "rate-catalog", kind: "rate", factor: o.factor, skip: skip, about: about,
		sandboxArgs: []string{"--events", strconv.Itoa(events), "--profiles", strconv.Itoa(profiles),
			"--flows", "2", "--campaigns", "8", "--tags", "3", "--forms", "3",
			"--rate-limits", fmtFactor(o.factor), "--latency", o.latency},
	}
}

// rateBoth reads events and profiles together, as a first sync does, each on its own endpoint's budget. With
// inflight set, the latency is divided by the factor: at a tenth of the rate, ten times the latency keeps as many
// requests in flight as Klaviyo's real tiers do at the given latency (Little's law: in flight = rate × latency), so
// the run shows whether windows and max_concurrency can fill the real budget, not only a scaled-down one.
func rateBoth(o options, inflight bool) scenario {
	events, profiles := o.rateEvents, o.rateProfs
	if events <= 0 {
		events = sizedFor("events", o.factor, o.rateMinutes)
	}
	if profiles <= 0 {
		profiles = sizedFor("profiles", o.factor, o.rateMinutes)
	}
	name, latency := "rate-both", o.latency
	if inflight {
		d, err := time.ParseDuration(o.latency)
		if err == nil {
			latency = time.Duration(float64(d) / o.factor).String()
		}
		name = "rate-both-inflight"
	}
	return scenario{
		name: name, kind: "rate", factor: o.factor, streams: []string{"events", "profiles"},
		about: fmt.Sprintf("events and profiles together, %d events, %d profiles, tiers x %s, %s latency",
			events, profiles, fmtFactor(o.factor), latency),
		sandboxArgs: []string{"--events", strconv.Itoa(events), "--profiles", strconv.Itoa(profiles),
			"--rate-limits", fmtFactor(o.factor), "--latency", latency},
	}
}

// small syncs one stream of an account that fits in one minute's allowance of its endpoint at Klaviyo's published
// limits (issue 12): 30,000 profiles are 300 pages of the L tier's 750 a minute, 200,000 events 200 pages of the
// XL tier's 3,500. Most syncs are small incremental ones, so this is the speed users see every hour; the steady
// ceiling says nothing about a sync this short, so it is compared with burstFloor instead. The sizes stay whole
// under -quick: the runs take seconds, and a twentieth would fit in one burst, which is no test of spending them.
// Each run is also set beside its machine floor (machinefloor.go), which burstFloor leaves out: what a minimal client
// measures reading the same pages on the same machine, the sandbox's CPU included.
func small(o options, stream string, records int) scenario {
	arg := map[string]string{"profiles": "--profiles", "events": "--events"}[stream]
	latency, err := time.ParseDuration(o.latency)
	if err != nil {
		latency = 0 // the sandbox rejects the same string before anything is measured
	}
	about := fmt.Sprintf("%s alone, %d %s, Klaviyo's published tiers, %s latency", stream, records, stream, o.latency)
	if stream == "profiles" {
		about = fmt.Sprintf("profiles alone (with subscriptions), %d profiles, Klaviyo's published tiers, %s latency", records, o.latency)
	}
	return scenario{
		name: "small-" + stream, kind: "small", factor: 1, smallStream: stream, latency: latency,
		streams: []string{stream}, about: about,
		sandboxArgs: []string{arg, strconv.Itoa(records), "--rate-limits", "klaviyo", "--latency", o.latency},
	}
}

// busyHoursEvents is an account with exactly one event every 45 ms over the sandbox's year of event history: 80,000
// an hour, up to its clock. The sandbox spreads its base events over the year with a whole-millisecond step, so only
// a count that divides the year makes the last hours as dense as the rest (700,800,000 base events); 350,575 more
// are its future-dated ones (one in 2,000 of the total).
const busyHoursEvents = 701_150_575

// busyHoursSpan is the span small-busy-hours reads: 200,000 events at 80,000 an hour, as many as small-events.
const busyHoursSpan = 150 * time.Minute

// smallBusyHours is small-events' 200 pages as an incremental sync finds them on a busy store: all in the last 2.5
// hours. A span that short is planned as one window, with no probe (planner.splitWindows), so its speed is how fast
// that window splits as it runs; small-events plans 128 windows from a probe instead. The account is 700 million
// events, which the sandbox computes rather than stores.
func smallBusyHours(o options) scenario {
	sc := small(o, "events", 0)
	sc.name = "small-busy-hours"
	sc.recent = busyHoursSpan
	sc.sandboxArgs = []string{"--events", strconv.Itoa(busyHoursEvents), "--rate-limits", "klaviyo", "--latency", o.latency}
	sc.about = fmt.Sprintf("events alone, the last %s of an account with 80,000 events an hour (start_date; one window, no probe), "+
		"Klaviyo's published tiers, %s latency", busyHoursSpan, o.latency)
	return sc
}

// startingAt fixes a scenario with a recent span to the wall clock now: the sandbox's clock starts at now, and the
// connector's start_date is recent before it. Both are read when the scenario starts, so that the sync's span (its
// start_date to the wall clock at its start) is the one intended whatever ran before it.
func (sc scenario) startingAt(now time.Time) scenario {
	if sc.recent <= 0 {
		return sc
	}
	now = now.UTC().Truncate(time.Second)
	sc.startDate = now.Add(-sc.recent)
	sc.sandboxArgs = append(slices.Clone(sc.sandboxArgs), "--now", now.Format(time.RFC3339))
	config := map[string]any{"start_date": sc.startDate.Format(time.RFC3339)}
	for k, v := range sc.config {
		config[k] = v
	}
	sc.config = config
	return sc
}

// burstFloor is the shortest time Klaviyo's two limits and the latency allow for n requests to one endpoint, as a
// client that knew every page in advance would spend them: a burst at once, another a second later and so on
// until the minute's allowance is spent, then the same again each minute; the last answer comes one latency after
// the last request. With k the last request's index (n-1), it is ⌊k/perMinute⌋ minutes + ⌊(k mod perMinute)/burst⌋
// seconds + latency; 300 profile pages at 75/s are 3 s + 300 ms. Pagination is left out (a page's cursor comes with
// the page before it), and so are the client's own margins, as the "limits allow about 4 s and 1 s" does.
func burstFloor(n, burst, perMinute int, latency time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	burst, perMinute = max(burst, 1), max(perMinute, 1)
	k := n - 1
	return time.Duration(k/perMinute)*time.Minute + time.Duration(k%perMinute/burst)*time.Second + latency
}

func cpuBound(o options) scenario {
	return scenario{
		name: "cpu", kind: "cpu", streams: []string{"events", "profiles"},
		about: fmt.Sprintf("events and profiles, %d events, %d profiles, no rate limits, no latency, rate_limit_scale 1000",
			o.events, o.profiles),
		sandboxArgs: []string{"--events", strconv.Itoa(o.events), "--profiles", strconv.Itoa(o.profiles), "--rate-limits", "off"},
	}
}

// cpuMaps is the CPU-bound scenario with a hashing stream map on both streams (the profile's email and phone
// under md5 and sha256, the event's profile id under sha256), to show what mapping costs next to cpu.
func cpuMaps(o options) scenario {
	sc := cpuBound(o)
	sc.name = "cpu-maps"
	sc.about += "; stream_maps: profiles email md5, phone_number sha256; events profile_id sha256"
	sc.config = map[string]any{"stream_maps": map[string]any{
		"profiles": map[string]any{"email": "md5(email)", "phone_number": "sha256(phone_number)"},
		"events":   map[string]any{"profile_id": "sha256(profile_id)"},
	}}
	return sc
}

// endpointBudgets maps each endpoint template the catalog reads to its steady requests per minute. Streams that
// share an endpoint (profiles, global_exclusions, list_exclusions) share its budget, as at Klaviyo.
func endpointBudgets() map[string]int {
	out := map[string]int{}
	for _, s := range catalog.Streams() {
		if _, ok := out[s.Path]; !ok {
			out[s.Path] = s.Rate.PerMinute
		}
	}
	return out
}
