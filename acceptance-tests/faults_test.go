package acceptance_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// This file proves that faults from the server never change what a sync returns: with the sandbox answering a
// seeded share of requests with 500s, 503s, resets, truncated or malformed bodies, slow answers and spurious 429s,
// every stream's records equal a clean sync's. CI runs a few seeds; SOAK_SEEDS raises the count (see
// docs/robustness.md).

// soakCount reads a positive count from the environment, or returns def.
func soakCount(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q is not a number", name, v)
	require.Positive(t, n, "%s must be positive", name)
	return n
}

// soakStreamNames is a mix of every kind of stream: sorted and unsorted windows, variants, per-parent fan-outs (two
// levels deep), links and full-refresh collections.
func soakStreamNames() []string {
	return []string{
		"events", "profiles", "metrics", "lists", "list_memberships", "campaigns", "flows", "flow_actions",
		"templates", "tags", "campaign_tags", "coupons", "coupon_codes", "campaign_send_jobs",
	}
}

func soakStreams(t *testing.T) []catalog.Stream {
	t.Helper()
	var out []catalog.Stream
	for _, n := range soakStreamNames() {
		s, ok := catalog.Lookup(n)
		require.True(t, ok, "stream %s", n)
		out = append(out, s)
	}
	return out
}

// faultMix draws a random mix of every fault kind from seed. The total stays at or below 20%, so a page fails
// all 8 attempts with a probability below 3e-6; slow answers are rare because each one costs seconds.
func faultMix(seed int64) sandbox.Faults {
	r := rand.New(rand.NewPCG(uint64(seed), 0xfa017))
	return sandbox.Faults{
		Err500:      r.Float64() * 0.04,
		Err503:      r.Float64() * 0.04,
		Reset:       r.Float64() * 0.03,
		Truncate:    r.Float64() * 0.03,
		Malformed:   r.Float64() * 0.03,
		Slow:        r.Float64() * 0.002,
		Spurious429: r.Float64() * 0.025,
	}
}

// faultConfig is the connector config of the fault tests: a 3 s request timeout turns most "slow" answers (2-5 s)
// into timeouts, so both the slow path and the timeout path are exercised.
func faultConfig(t *testing.T, srv *sandbox.Server) string {
	return configFor(t, srv, map[string]any{"request_timeout_seconds": 3})
}

// TestFaultsSyncEqualsCleanSync runs, per seed, the same incremental sync against a clean sandbox and against one
// injecting a random mix of faults; the records of every stream must be the same rows with the same values, with
// no duplicate inside the faulted run, and the faulted run must exit 0 with every stream COMPLETE.
func TestFaultsSyncEqualsCleanSync(t *testing.T) {
	t.Parallel() // mostly waits (backoffs, latency): it overlaps the other waiting tests
	seeds := soakCount(t, "SOAK_SEEDS", 3)
	streams := soakStreams(t)
	totalRecords, totalRetried := 0, 0
	for i := 0; i < seeds; i++ {
		seed := int64(1000 + i)
		t.Run("seed="+strconv.FormatInt(seed, 10), func(t *testing.T) {
			// Both sandboxes start their clocks at the same moment so they hold the same data.
			now := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(24 * time.Hour)
			clean := startSandbox(t, sandbox.Options{Seed: seed, Now: now})
			faults := faultMix(seed)
			faulty := startSandbox(t, sandbox.Options{Seed: seed, Now: now, Faults: faults})

			cleanCfg := configFor(t, clean, nil)
			cat := configuredCatalog(t, cleanCfg, true, soakStreamNames()...)
			want := runBin(t, "read", "--config", cleanCfg, "--catalog", cat)
			require.Equal(t, 0, want.code, "the clean sync failed:\n%s", tail(want.stdout))
			wo := parseAirbyte(t, want.stdout)

			got := runBin(t, "read", "--config", faultConfig(t, faulty), "--catalog", cat)
			st := faulty.Stats()
			t.Logf("faults %+v; sandbox answered %d requests: %v", faults, st.Requests, st.ByStatus)
			require.Equal(t, 0, got.code, "the faulted sync failed:\n%s", tail(got.stdout))
			o := parseAirbyte(t, got.stdout)
			require.Empty(t, o.Errors())
			requireStatuses(t, o, soakStreamNames(), "COMPLETE")
			requireStateCounts(t, o)
			for _, s := range streams {
				require.NotEmpty(t, wo.Rows(s.Name), "the clean sync read no %s: the comparison would prove nothing", s.Name)
				requireNoDuplicates(t, s, o.Rows(s.Name))
				requireSameRows(t, s, wo.Rows(s.Name), o.Rows(s.Name))
				totalRecords += len(o.Rows(s.Name))
			}
			// Malformed bodies are sent with status 200, so this counts only the faults that changed the status.
			faulted := st.Requests - st.ByStatus["200"] - st.ByStatus["404"]
			require.Positive(t, faulted, "the sandbox injected no fault: the seed proves nothing")
			totalRetried += faulted
		})
	}
	t.Logf("SOAK faults: %d seeds, %d records compared with a clean sync, %d non-200 answers survived", seeds, totalRecords, totalRetried)
}

// TestFaultsDailyQuotaEndsOnlyThatStream: Klaviyo answering every events request with a 429 and a day-long
// Retry-After (a daily quota) must end the events stream INCOMPLETE with a transient error that says when to retry,
// leave its state where it was, and let the other streams complete; the exit code says the sync was not whole.
func TestFaultsDailyQuotaEndsOnlyThatStream(t *testing.T) {
	t.Parallel() // mostly waits (backoffs, latency): it overlaps the other waiting tests
	faults, err := sandbox.ParseFaults("429=1,retry_after=86400,only=/api/events")
	require.NoError(t, err)
	srv := startSandbox(t, sandbox.Options{Seed: 21, Faults: faults})
	cfg := configFor(t, srv, nil)
	names := []string{"events", "metrics", "lists", "profiles"}
	cat := configuredCatalog(t, cfg, true, names...)
	const prev = `{"datetime":"2020-01-02T03:04:05Z"}`
	state := writeJSON(t, "state.json", `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"events"},"stream_state":`+prev+`}}]`)

	before := time.Now()
	r := runBin(t, "read", "--config", cfg, "--catalog", cat, "--state", state)
	require.Equal(t, 1, r.code, "%s", tail(r.stdout))
	o := parseAirbyte(t, r.stdout)

	requireStatuses(t, o, []string{"metrics", "lists", "profiles"}, "COMPLETE")
	st := o.StreamStatuses("events")
	require.NotEmpty(t, st)
	require.Equal(t, "STARTED", st[0])
	require.Equal(t, "INCOMPLETE", st[len(st)-1], "events statuses %v", st)
	require.Empty(t, o.Rows("events"))
	// The platform keeps a stream's last state when the stream writes none; any state written must be the old one.
	for _, s := range o.StatesOf("events") {
		require.JSONEq(t, prev, string(s.StreamState), "the events state moved although nothing was read")
	}
	t.Logf("events wrote %d states (the previous one is kept either way)", len(o.StatesOf("events")))

	// The events error is a transient one that names the moment to retry: now plus the day Klaviyo asked for.
	var found bool
	for _, e := range o.Errors() {
		if e.Stream != "events" {
			continue
		}
		found = true
		require.Equal(t, "transient_error", e.FailureType)
		retryAt := retryTimeIn(t, e.Message)
		require.False(t, retryAt.Before(before.Add(86400*time.Second).Truncate(time.Second)), "retry time %s is before the quota resets", retryAt)
		require.Contains(t, e.Message, "retry")
	}
	require.True(t, found, "no error trace names the events stream")

	// The INCOMPLETE status carries the quota reset so the platform can show when the stream resumes.
	reset := quotaResetOf(t, o, "events")
	require.False(t, reset.Before(before.Add(86400*time.Second).Truncate(time.Second)), "quota_reset %s", reset)

	last := o[len(o)-1]
	require.NotNil(t, last.Trace)
	require.NotNil(t, last.Trace.Error, "the last message is the sync's error")
	require.Equal(t, "transient_error", last.Trace.Error.FailureType)
	require.Contains(t, last.Trace.Error.Message, "events")
}

// retryTimeIn finds the RFC 3339 time in an error message.
func retryTimeIn(t *testing.T, msg string) time.Time {
	t.Helper()
	for _, w := range strings.Fields(msg) {
		w = strings.TrimRight(w, ":,.;)")
		if ts, err := time.Parse(time.RFC3339, w); err == nil {
			return ts
		}
	}
	require.Failf(t, "the error does not say when to retry", "%s", msg)
	return time.Time{}
}

// quotaResetOf returns the RATE_LIMITED quota reset of the stream's INCOMPLETE status.
func quotaResetOf(t *testing.T, o protocol.Messages, stream string) time.Time {
	t.Helper()
	for _, tr := range o.Traces() {
		ss := tr.StreamStatus
		if ss == nil || ss.Stream != stream || ss.Status != "INCOMPLETE" {
			continue
		}
		require.NotEmpty(t, ss.Reasons, "INCOMPLETE status of %s has no RATE_LIMITED reason", stream)
		require.Equal(t, "RATE_LIMITED", ss.Reasons[0].Type)
		require.Positive(t, ss.Reasons[0].QuotaReset, "the RATE_LIMITED reason of %s has no rate_limited.quota_reset", stream)
		return time.UnixMilli(ss.Reasons[0].QuotaReset)
	}
	require.Failf(t, "no INCOMPLETE status", "stream %s", stream)
	return time.Time{}
}
