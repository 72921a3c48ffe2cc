package main

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkWindows asserts the windows' contract: consecutive, each at most a page and not empty, and every value in
// exactly one of them, counted right.
func checkWindows(t *testing.T, values []int64, page int, ws []window) {
	t.Helper()
	if len(values) == 0 {
		assert.Empty(t, ws)
		return
	}
	require.NotEmpty(t, ws)
	assert.Equal(t, values[0], ws[0].lo, "the first window starts at the first record")
	assert.Equal(t, values[len(values)-1]+1, ws[len(ws)-1].hi, "the last window ends just after the last record")
	total := 0
	for i, w := range ws {
		assert.Less(t, w.lo, w.hi, "window %d", i)
		assert.LessOrEqual(t, w.n, page, "window %d holds more than a page", i)
		assert.Positive(t, w.n, "window %d is empty", i)
		if i > 0 {
			assert.Equal(t, ws[i-1].hi, w.lo, "window %d does not start where %d ends", i, i-1)
		}
		in := 0
		for _, v := range values {
			if v >= w.lo && v < w.hi {
				in++
			}
		}
		assert.Equal(t, w.n, in, "window %d's count", i)
		total += w.n
	}
	assert.Equal(t, len(values), total, "every record in exactly one window")
}

func TestPageWindows(t *testing.T) {
	t.Parallel()
	// Distinct seconds: full pages, the last one partial.
	values := []int64{10, 11, 12, 13, 14, 15, 16}
	ws, err := pageWindows(values, 3)
	require.NoError(t, err)
	assert.Equal(t, []window{{10, 13, 3}, {13, 16, 3}, {16, 17, 1}}, ws)
	checkWindows(t, values, 3, ws)

	// A second shared across a page's end goes whole to the next window, which then starts at it.
	values = []int64{1, 2, 3, 3, 4}
	ws, err = pageWindows(values, 3)
	require.NoError(t, err)
	assert.Equal(t, []window{{1, 3, 2}, {3, 5, 3}}, ws)
	checkWindows(t, values, 3, ws)

	// Exactly a page: one window.
	ws, err = pageWindows([]int64{5, 5, 7}, 3)
	require.NoError(t, err)
	assert.Equal(t, []window{{5, 8, 3}}, ws)

	ws, err = pageWindows(nil, 100)
	require.NoError(t, err)
	assert.Empty(t, ws)

	_, err = pageWindows([]int64{1, 4, 4, 4}, 2)
	require.ErrorContains(t, err, "more than 2 records have the cursor 1970-01-01T00:00:04Z")
	_, err = pageWindows([]int64{2, 1}, 2)
	require.ErrorContains(t, err, "not sorted")
	_, err = pageWindows([]int64{1}, 0)
	require.Error(t, err)
}

// Random accounts, with seconds shared by up to four records: the contract holds, and without a tie at a page's
// end there are as few windows as pages.
func TestPageWindowsRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	split, distinctRuns := 0, 0
	for trial := range 200 {
		page := 1 + rng.IntN(12)
		if trial%2 == 0 {
			page += 4 // a second of up to four records always fits
		}
		var values []int64
		v := int64(1_700_000_000)
		for range rng.IntN(300) {
			v += int64(rng.IntN(3)) // 0: the same second again
			values = append(values, v)
		}
		ws, err := pageWindows(values, page)
		if err != nil {
			require.ErrorContains(t, err, "more than")
			continue
		}
		checkWindows(t, values, page, ws)
		split++
		pages := (len(values) + page - 1) / page
		assert.GreaterOrEqual(t, len(ws), pages)
		distinct := len(slices.Compact(slices.Clone(values))) == len(values)
		if distinct {
			distinctRuns++
			assert.Equal(t, pages, len(ws), "trial %d: distinct seconds need no more windows than pages", trial)
		}
	}
	assert.Greater(t, split, 100, "most accounts can be split")
	assert.Positive(t, distinctRuns, "some accounts have distinct seconds")
}

func TestWindowFilter(t *testing.T) {
	t.Parallel()
	at := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return tm.Unix()
	}
	w := window{lo: at("2026-06-09T15:57:18Z"), hi: at("2026-06-22T00:50:24Z"), n: 1000}
	// Events: the operators the connector uses on datetime.
	f, err := windowFilter("datetime", "greater-or-equal", "less-than", w)
	require.NoError(t, err)
	assert.Equal(t, "greater-or-equal(datetime,2026-06-09T15:57:18Z),less-than(datetime,2026-06-22T00:50:24Z)", f)
	// Profiles: updated has greater-than and less-than only; greater-than the second before is greater-or-equal.
	f, err = windowFilter("updated", "greater-than", "less-than", w)
	require.NoError(t, err)
	assert.Equal(t, "greater-than(updated,2026-06-09T15:57:17Z),less-than(updated,2026-06-22T00:50:24Z)", f)
	f, err = windowFilter("timestamp", "greater-or-equal", "less-or-equal", w)
	require.NoError(t, err)
	assert.Equal(t, "greater-or-equal(timestamp,2026-06-09T15:57:18Z),less-or-equal(timestamp,2026-06-22T00:50:23Z)", f)
	_, err = windowFilter("updated", "equals", "less-than", w)
	require.Error(t, err)
	_, err = windowFilter("updated", "greater-than", "", w)
	require.Error(t, err)
}

// The client's schedule is the one burstFloor counts: its last request plus the latency is the floor, and no
// second or minute gets more than its limit.
func TestSendAtIsBurstFloorsSchedule(t *testing.T) {
	t.Parallel()
	const latency = 300 * time.Millisecond
	for _, c := range []struct{ n, burst, perMinute int }{{300, 75, 750}, {200, 350, 3500}, {76, 75, 750}, {1501, 75, 750}, {16, 1, 15}, {3851, 350, 3500}} {
		assert.Equal(t, burstFloor(c.n, c.burst, c.perMinute, latency), sendAt(c.n-1, c.burst, c.perMinute)+latency, "%+v", c)
		perSecond, perMinute := map[time.Duration]int{}, map[time.Duration]int{}
		for k := range c.n {
			at := sendAt(k, c.burst, c.perMinute)
			perSecond[at.Truncate(time.Second)]++
			perMinute[at.Truncate(time.Minute)]++
			if k > 0 {
				assert.GreaterOrEqual(t, at, sendAt(k-1, c.burst, c.perMinute), "the schedule goes forward")
			}
		}
		for s, n := range perSecond {
			assert.LessOrEqual(t, n, c.burst, "%+v: second %s", c, s)
		}
		for m, n := range perMinute {
			assert.LessOrEqual(t, n, c.perMinute, "%+v: minute %s", c, m)
		}
	}
}

// The first request goes just after a window of the sandbox's clock opens: the next second, or the next minute
// when the requests need more than one minute's allowance.
func TestFirstSend(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 20, 24, 37, 400_000_000, time.UTC)
	assert.Equal(t, time.Date(2026, 11, 29, 20, 24, 38, int(sendMargin), time.UTC), firstSend(now, 300, 750))
	assert.Equal(t, time.Date(2026, 11, 29, 20, 25, 0, int(sendMargin), time.UTC), firstSend(now, 751, 750))
}

// The client repeats the connector's query to the stream's endpoint, filter and paging aside: the windows and the
// probe share it.
func TestCommonQuery(t *testing.T) {
	t.Parallel()
	uris := []string{
		"/api/events?fields[metric]=name&filter=less-than%28datetime%2C2026-11-29T20%3A20%3A46Z%29&include=metric&page[size]=100&sort=datetime",
		"/api/events?fields[metric]=name&filter=greater-or-equal%28datetime%2C2026-11-17T11%3A27%3A39Z%29&include=metric&page[size]=1000&sort=datetime",
		"/api/events?fields[metric]=name&include=metric&page[cursor]=abc&page[size]=1000&sort=datetime",
		"/api/metrics?fields[metric]=name",
		"/api/metrics?fields[metric]=name",
		"/api/metrics?fields[metric]=name",
	}
	q, err := commonQuery(uris, "/api/events")
	require.NoError(t, err)
	assert.Equal(t, "fields[metric]=name&include=metric&sort=datetime", mustUnescape(t, q.Encode()))
	_, err = commonQuery(uris, "/api/profiles")
	require.ErrorContains(t, err, "no request to /api/profiles")
}

func mustUnescape(t *testing.T, s string) string {
	t.Helper()
	out, err := url.QueryUnescape(s)
	require.NoError(t, err)
	return out
}

// The cursors come sorted, only those before the sync's start.
func TestCursorValues(t *testing.T) {
	t.Parallel()
	ndjson := `{"type":"event","id":"b","attributes":{"datetime":"2026-01-02T00:00:01+00:00"},"relationships":{"profile":{"data":{"type":"profile","id":"p"}}}}
{"type":"event","id":"a","attributes":{"datetime":"2026-01-01T00:00:00+00:00"}}
{"type":"event","id":"c","attributes":{"datetime":"2027-01-01T00:00:00+00:00"}}
`
	cutoff := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	values, err := cursorValues(strings.NewReader(ndjson), "datetime", cutoff)
	require.NoError(t, err)
	assert.Equal(t, []int64{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2026, 1, 2, 0, 0, 1, 0, time.UTC).Unix()}, values)
	_, err = cursorValues(strings.NewReader(`{"attributes":{"updated":null}}`), "updated", cutoff)
	require.ErrorContains(t, err, "resource 1")
	_, err = cursorValues(strings.NewReader(`{"attributes":`), "updated", cutoff)
	require.Error(t, err)
}

func TestParseProcStatCPU(t *testing.T) {
	t.Parallel()
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	d, err := parseProcStatCPU("4242 (klaviyo (sand) box) S 1 4242 4242 0 -1 4194560 900 0 0 0 73 12 0 0 20 0 8 0 100\n")
	require.NoError(t, err)
	assert.Equal(t, 850*time.Millisecond, d)
	_, err = parseProcStatCPU("4242 (x) S 1 2")
	require.Error(t, err)
}

// The small table sets the sync beside its machine floor, and the notes say what that floor is.
func TestSmallTableWithMachineFloor(t *testing.T) {
	t.Parallel()
	sc := small(defaults(), "events", 200_000)
	r := result{sc: sc, records: 199_900, byStream: map[string]int64{"events": 199_900}, wall: 2850 * time.Millisecond,
		machine: &machineFloor{wall: 820 * time.Millisecond, walls: []time.Duration{1160 * time.Millisecond, 820 * time.Millisecond}, requests: 200, records: 199_900, bytes: 223e6, burst: 350,
			sandboxCPU: 860 * time.Millisecond, clientCPU: 150 * time.Millisecond, load: "1.02", query: "include=metric&sort=datetime"}}
	r.stats.ByPath = map[string]map[string]int{"/api/events": {"200": 211}}
	table := smallTable([]result{r})
	assert.Contains(t, table, "| wall s | floor s | wall / floor | machine floor s | wall / machine floor | 429s |")
	assert.Contains(t, table, "| small-events | 199900 | 200 | 211 | 2.85 | 0.30 | 9.50× | 0.82 | 3.48× | 0 |")
	note := machineFloorNote(r)
	assert.Contains(t, note, "Machine floor: 0.82 s (wall / machine floor 3.48×): the fastest any client could read these pages on this machine")
	assert.Contains(t, note, "200 requests, all at once, 223 MB")
	assert.Contains(t, note, "the fastest of 2 runs (1.16, 0.82 s)")
	assert.Contains(t, note, "sandbox 0.86 s, client 0.15 s")

	// 429s are shown beside the figure, which is then no floor.
	r.machine.throttled = 3
	assert.Contains(t, smallTable([]result{r}), "| 0.82 (3 429s) | 3.48× |")
	assert.Contains(t, machineFloorNote(r), "3 429s, so it is NOT a floor")

	// Not measured: the table says n/a and the notes say why; without a machine floor, no note.
	r.machine = &machineFloor{err: "the connector's sync did not finish cleanly"}
	assert.Contains(t, smallTable([]result{r}), "| 9.50× | n/a | n/a | 0 |")
	assert.Equal(t, "  Machine floor: not measured: the connector's sync did not finish cleanly.\n", machineFloorNote(r))
	r.machine = nil
	assert.Contains(t, smallTable([]result{r}), "| 9.50× | n/a | n/a | 0 |")
	assert.Empty(t, machineFloorNote(r))
}
