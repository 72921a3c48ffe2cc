package main

// The machine floor. burstFloor is what Klaviyo's limits and the latency allow, and nothing else: on a small
// machine the sandbox's own CPU (building some 200 MB of JSON for small-events) and whatever reads the bodies share
// the same cores, and no connector can be faster than that. Rather than argue how much that costs, the benchmark
// measures it: after the connector's sync, a minimal client (plain net/http, no connector code) reads the same
// records from a fresh sandbox with the same flags, knowing every page's boundaries in advance, one request a page,
// as fast as the limits allow, each body read whole and discarded. Its wall time is the machine floor.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// machineFloor is what the minimal client measured for one small scenario: the fastest of its runs (-floor-runs),
// since a floor is the best the machine allows and the machine is shared.
type machineFloor struct {
	// wall runs from the first request sent to the last body read, in the fastest run; walls are every run's.
	wall     time.Duration
	walls    []time.Duration
	requests int
	records  int64
	bytes    int64
	// throttled counts the 429s the client got in all its runs; the schedule allows none, so any means the figure
	// is no floor.
	throttled int
	// sandboxCPU and clientCPU are the sandbox's and this process's user+sys CPU over the fastest run's wall: what
	// the machine spent.
	sandboxCPU, clientCPU time.Duration
	// burst is how many requests the client sent in each second (all of them when they fit in one burst).
	burst int
	// query is the connector's query that the client repeated, filter and paging aside.
	query string
	load  string
	// err says why there is no figure; empty when there is one.
	err string
}

// runs are every run's wall time in seconds, "3.41, 3.40, 3.41", for the report and the progress line.
func (m *machineFloor) runs() string {
	walls := make([]string, len(m.walls))
	for i, w := range m.walls {
		walls[i] = fmt.Sprintf("%.2f", w.Seconds())
	}
	return strings.Join(walls, ", ")
}

// ok is whether the machine floor was measured.
func (m *machineFloor) ok() bool { return m != nil && m.err == "" }

// cursorLayout is how a filter writes a date-time: Klaviyo's cursors are whole seconds in UTC.
const cursorLayout = "2006-01-02T15:04:05Z"

// window is the records whose cursor lies in [lo, hi), in Unix seconds, and how many there are.
type window struct {
	lo, hi int64
	n      int
}

// pageWindows splits sorted cursor values (Unix seconds) into consecutive windows of at most page records each, as
// few as a time filter allows: each window takes a page's worth and ends at the second of the first record that does
// not fit, one short when that second also holds records that would fit (a filter cannot split a second). Together
// they hold every record exactly once. A second with more records than a page is an error: no time filter can make
// one request of it.
func pageWindows(values []int64, page int) ([]window, error) {
	if page < 1 {
		return nil, fmt.Errorf("page size %d: want at least 1", page)
	}
	if !slices.IsSorted(values) {
		return nil, errors.New("cursor values are not sorted")
	}
	var out []window
	for i := 0; i < len(values); {
		j := i + page
		if j >= len(values) {
			out = append(out, window{lo: values[i], hi: values[len(values)-1] + 1, n: len(values) - i})
			break
		}
		hi := values[j]
		k := j
		for k > i && values[k-1] == hi {
			k--
		}
		if k == i {
			return nil, fmt.Errorf("more than %d records have the cursor %s: a time filter cannot split them into pages",
				page, time.Unix(hi, 0).UTC().Format(cursorLayout))
		}
		out = append(out, window{lo: values[i], hi: hi, n: k - i})
		i = k
	}
	return out, nil
}

// windowFilter is the filter of w with the endpoint's operators (the stream table's Cursor.Lower and Upper): with
// whole seconds, greater-than(lo - 1s) is greater-or-equal(lo) and less-or-equal(hi - 1s) is less-than(hi).
func windowFilter(field, lower, upper string, w window) (string, error) {
	lo, hi := w.lo, w.hi
	switch lower {
	case "greater-or-equal":
	case "greater-than":
		lo--
	default:
		return "", fmt.Errorf("lower-bound operator %q: want greater-or-equal or greater-than", lower)
	}
	switch upper {
	case "less-than":
	case "less-or-equal":
		hi--
	default:
		return "", fmt.Errorf("upper-bound operator %q: want less-than or less-or-equal", upper)
	}
	at := func(s int64) string { return time.Unix(s, 0).UTC().Format(cursorLayout) }
	return fmt.Sprintf("%s(%s,%s),%s(%s,%s)", lower, field, at(lo), upper, field, at(hi)), nil
}

// sendAt is when request k goes, from the start of the first window: a burst each second until the minute's
// allowance is spent, then the same each minute. The last request's sendAt plus the latency is burstFloor.
func sendAt(k, burst, perMinute int) time.Duration {
	burst, perMinute = max(burst, 1), max(perMinute, 1)
	return time.Duration(k/perMinute)*time.Minute + time.Duration(k%perMinute/burst)*time.Second
}

// sendMargin is how long after a window opens its burst goes, so that no request arrives before it: the sandbox
// counts fixed windows of its Unix wall clock, which this process shares.
const sendMargin = 5 * time.Millisecond

// firstSend is when the first request goes: just after the next second of the clock, or the next minute when the
// requests need more than one minute's allowance, so sendAt's minutes are the sandbox's (its windows then have
// nothing but the client's requests in them, the sandbox being fresh).
func firstSend(now time.Time, n, perMinute int) time.Time {
	unit := time.Second
	if n > perMinute {
		unit = time.Minute
	}
	return now.Truncate(unit).Add(unit + sendMargin)
}

// commonQuery is the query the connector sent most often to path, filter and paging aside (its probe and its windows
// differ only in those), so the minimal client asks for the same bodies: the same fields, includes and sort.
func commonQuery(uris []string, path string) (url.Values, error) {
	counts := map[string]int{}
	for _, uri := range uris {
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("the connector's request %q: %w", uri, err)
		}
		if u.Path != path {
			continue
		}
		q := u.Query()
		for _, k := range []string{"filter", "page[cursor]", "page[size]"} {
			q.Del(k)
		}
		counts[q.Encode()]++
	}
	best, most := "", 0
	for k, n := range counts {
		if n > most || n == most && k < best {
			best, most = k, n
		}
	}
	if most == 0 {
		return nil, fmt.Errorf("the connector answered no request to %s", path)
	}
	return url.ParseQuery(best)
}

// cursorValues reads NDJSON resources (the sandbox's /_sandbox/resources) and returns the Unix seconds of each one's
// attribute field that are before the cutoff, sorted: the records a sync that started at cutoff reads.
func cursorValues(r io.Reader, field string, before time.Time) ([]int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var out []int64
	for line := 1; sc.Scan(); line++ {
		var res struct {
			Attributes map[string]json.RawMessage `json:"attributes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("resource %d: %w", line, err)
		}
		var s string
		if err := json.Unmarshal(res.Attributes[field], &s); err != nil {
			return nil, fmt.Errorf("resource %d: attribute %s: %w", line, field, err)
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("resource %d: attribute %s: %w", line, field, err)
		}
		if t.Before(before) {
			out = append(out, t.Unix())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading resources: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// floorPlan is what the minimal client asks: one filter per page on the stream's endpoint, with the connector's
// query besides.
type floorPlan struct {
	path  string
	query url.Values
	// filters and counts are each window's filter and the records it holds.
	filters []string
	counts  []int
	page    int
	burst   int
	// perMinute is the endpoint's steady limit, for sendAt.
	perMinute int
	// sandboxCPU is what planning cost the connector's sandbox, which the sync's figure leaves out.
	sandboxCPU time.Duration
}

// planMachineFloor plans the minimal client's reads of a small scenario from the connector's sandbox, which must
// still run: the query the connector sent (its request log), and windows of a page each over the records the sync
// read, those with a cursor before it started (a sync's cursor never passes its start). The reads go to a fresh
// sandbox, as cold as this one was for the connector, so the resources listed here warm nothing they measure.
//
// plan is a named result so that the deferred CPU reading reaches the caller on every return.
func planMachineFloor(ctx context.Context, sb *sandboxProc, sc scenario, r result) (plan floorPlan, err error) {
	s, ok := catalog.Lookup(sc.smallStream)
	switch {
	case !ok || s.Cursor == nil || s.Cursor.Upper == "":
		return plan, fmt.Errorf("stream %s has no time windows to split into pages", sc.smallStream)
	case sc.tls:
		return plan, errors.New("the minimal client reads plain HTTP only")
	case r.failed():
		return plan, errors.New("the connector's sync did not finish cleanly")
	}
	cpuBefore, cpuErr := procCPU(sb.cmd.Process.Pid)
	defer func() {
		if cpuAfter, err := procCPU(sb.cmd.Process.Pid); err == nil && cpuErr == nil {
			plan.sandboxCPU = cpuAfter - cpuBefore
		}
	}()
	plan.path = s.Path
	var rate catalog.Rate
	plan.page, rate = pageAndRate(sc.smallStream)
	plan.burst, plan.perMinute = scaled(rate.Burst, sc.factor), scaled(rate.PerMinute, sc.factor)

	reqs, err := sb.requestsSince(ctx, 0)
	if err != nil {
		return plan, fmt.Errorf("reading the connector's requests: %w", err)
	}
	var uris []string
	for _, req := range reqs {
		if req.Path == s.Path && req.Status == http.StatusOK {
			uris = append(uris, req.URI)
		}
	}
	if plan.query, err = commonQuery(uris, s.Path); err != nil {
		return plan, err
	}

	filterField := s.Cursor.Field
	if s.Cursor.FilterField != "" {
		filterField = s.Cursor.FilterField
	}
	var values []int64
	list := url.Values{"path": {s.Path}, "fields[" + s.ResourceType + "]": {s.Cursor.Field}}
	if !sc.startDate.IsZero() {
		// Only the span the sync read: small-busy-hours' account holds 700 million events.
		list.Set("filter", fmt.Sprintf("%s(%s,%s)", s.Cursor.Lower, filterField, sc.startDate.Format(time.RFC3339)))
	}
	err = sb.admin(ctx, http.MethodGet, "/_sandbox/resources", list, func(body io.Reader) error {
		var cerr error
		values, cerr = cursorValues(body, s.Cursor.Field, r.started.Truncate(time.Second))
		return cerr
	})
	if err != nil {
		return plan, fmt.Errorf("reading the records' cursors: %w", err)
	}
	windows, err := pageWindows(values, plan.page)
	if err != nil {
		return plan, err
	}
	for _, w := range windows {
		f, err := windowFilter(filterField, s.Cursor.Lower, s.Cursor.Upper, w)
		if err != nil {
			return plan, err
		}
		plan.filters, plan.counts = append(plan.filters, f), append(plan.counts, w.n)
	}
	return plan, nil
}

// measureMachineFloor runs the minimal client on plan against a fresh sandbox of sc and returns what it measured;
// a failure is in the returned err field, since the connector's figures (r) stand without it.
func measureMachineFloor(ctx context.Context, b bins, sc scenario, o options, dir string, r result, plan floorPlan) machineFloor {
	mf, err := machineFloorRun(ctx, b, sc, o, dir, r, plan)
	if err != nil {
		mf.err = err.Error()
	}
	return mf
}

func machineFloorRun(ctx context.Context, b bins, sc scenario, o options, dir string, r result, plan floorPlan) (machineFloor, error) {
	mf := machineFloor{query: plan.query.Encode(), burst: plan.burst, requests: len(plan.filters)}
	if q, err := url.QueryUnescape(mf.query); err == nil {
		mf.query = q
	}
	for _, n := range plan.counts {
		mf.records += int64(n)
	}
	if want := r.byStream[sc.smallStream]; mf.records != want {
		return mf, fmt.Errorf("its windows hold %d records, the connector read %d: not the same data", mf.records, want)
	}
	var fastest floorRead
	for run := range max(o.floorRuns, 1) {
		fr, err := floorOnce(ctx, b, sc, o, filepath.Join(dir, fmt.Sprintf("machine-floor-%d", run+1)), plan, run == 0)
		if err != nil {
			return mf, fmt.Errorf("run %d: %w", run+1, err)
		}
		mf.walls = append(mf.walls, fr.wall)
		mf.throttled += fr.throttled
		if run == 0 || fr.wall < fastest.wall {
			fastest = fr
		}
	}
	mf.wall, mf.bytes, mf.sandboxCPU, mf.clientCPU, mf.load = fastest.wall, fastest.bytes, fastest.sandboxCPU, fastest.clientCPU, fastest.load
	return mf, nil
}

// floorOnce reads plan's pages once from a fresh sandbox with sc's flags (the same data, empty rate windows, and as
// cold as the connector's was), its log in dir; with verify, it then checks the windows against that sandbox.
func floorOnce(ctx context.Context, b bins, sc scenario, o options, dir string, plan floorPlan, verify bool) (floorRead, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return floorRead{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	sb, err := startSandbox(ctx, b.sandbox, sandboxFlags(sc, o), dir, "")
	if err != nil {
		return floorRead{}, fmt.Errorf("starting its sandbox: %w", err)
	}
	defer sb.stop()
	urls := make([]string, len(plan.filters))
	for i, f := range plan.filters {
		q := url.Values{}
		for k, v := range plan.query {
			q[k] = slices.Clone(v)
		}
		q.Set("filter", f)
		q.Set("page[size]", strconv.Itoa(plan.page))
		urls[i] = sb.url + plan.path + "?" + q.Encode()
	}
	fr, err := readPages(ctx, sb, urls, plan.burst, plan.perMinute)
	if err != nil || !verify {
		return fr, err
	}
	// Afterwards, untimed: each window's filter holds the records counted for it, at most a page, in the sandbox that
	// was read, so each request read a window whole. The data depend on the flags alone, so once is enough.
	for i, f := range plan.filters {
		var got struct {
			Count int `json:"count"`
		}
		err := sb.admin(ctx, http.MethodGet, "/_sandbox/count", url.Values{"path": {plan.path}, "filter": {f}}, func(body io.Reader) error {
			return json.NewDecoder(body).Decode(&got)
		})
		if err != nil {
			return fr, fmt.Errorf("counting window %d: %w", i, err)
		}
		if got.Count != plan.counts[i] || got.Count > plan.page {
			return fr, fmt.Errorf("window %d (%s) holds %d records, %d expected, at most %d", i, f, got.Count, plan.counts[i], plan.page)
		}
	}
	return fr, nil
}

// floorRead is one read of every page by the minimal client.
type floorRead struct {
	// wall runs from the first request sent to the last body read.
	wall      time.Duration
	bytes     int64
	throttled int
	// sandboxCPU and clientCPU are the sandbox's and this process's user+sys CPU over wall.
	sandboxCPU, clientCPU time.Duration
	load                  string
}

// readPages sends one request per URL on sendAt's schedule from firstSend and reads every body whole into
// io.Discard (no decoding: that is the connector's cost, not the machine's).
func readPages(ctx context.Context, sb *sandboxProc, urls []string, burst, perMinute int) (floorRead, error) {
	var fr floorRead
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Every request of a burst in flight at once, and the connections kept for the next burst.
	t.MaxIdleConns, t.MaxIdleConnsPerHost = max(burst, 100), max(burst, 2)
	client := &http.Client{Transport: t}
	defer t.CloseIdleConnections()

	start := firstSend(time.Now(), len(urls), perMinute)
	if err := sleepCtx(ctx, time.Until(start)); err != nil {
		return fr, err
	}
	fr.load = loadAvg()
	sandboxBefore, err := procCPU(sb.cmd.Process.Pid)
	if err != nil {
		return fr, err
	}
	clientBefore := selfCPU()

	type pageRead struct {
		status int
		bytes  int64
		err    error
	}
	reads := make([]pageRead, len(urls))
	var wg sync.WaitGroup
	t0 := time.Now()
	for k, u := range urls {
		if err := sleepCtx(ctx, time.Until(start.Add(sendAt(k, burst, perMinute)))); err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			reads[k].status, reads[k].bytes, reads[k].err = readPage(ctx, client, u)
		}()
	}
	wg.Wait()
	fr.wall = time.Since(t0)
	fr.clientCPU = selfCPU() - clientBefore
	sandboxAfter, err := procCPU(sb.cmd.Process.Pid)
	if err != nil {
		return fr, err
	}
	fr.sandboxCPU = sandboxAfter - sandboxBefore
	if err := ctx.Err(); err != nil {
		return fr, err
	}
	for k, p := range reads {
		fr.bytes += p.bytes
		switch {
		case p.err != nil:
			return fr, fmt.Errorf("page %d: %w", k, p.err)
		case p.status == http.StatusTooManyRequests:
			fr.throttled++
		case p.status != http.StatusOK:
			return fr, fmt.Errorf("page %d: status %d", k, p.status)
		}
	}
	return fr, nil
}

// readPage is one request with the headers the connector sends, its body read whole and discarded.
func readPage(ctx context.Context, client *http.Client, u string) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Klaviyo-API-Key "+benchKey)
	// The revision is the connector's constant, so the client asks the API the connector asks; nothing else of the
	// connector is used.
	req.Header.Set("revision", klaviyo.Revision)
	req.Header.Set("Accept", "application/vnd.api+json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("sending: %w", err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return resp.StatusCode, n, fmt.Errorf("reading the body: %w", err)
	}
	return resp.StatusCode, n, nil
}

// sleepCtx sleeps for d (nothing when d <= 0) unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// admin calls one of the sandbox's admin endpoints and hands its 200 body to read (nil: the body is not needed).
func (p *sandboxProc) admin(ctx context.Context, method, endpoint string, q url.Values, read func(io.Reader) error) error {
	u := p.url + endpoint
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", endpoint, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("sandbox %s: status %d: %s", endpoint, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if read == nil {
		return nil
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("sandbox %s: %w", endpoint, err)
	}
	return nil
}

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on every architecture Go supports).
const clockTick = 10 * time.Millisecond

// procCPU is a running process's user+sys CPU so far, from /proc/<pid>/stat (every thread's), to 10 ms.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the sandbox's CPU time: %w", err)
	}
	return parseProcStatCPU(string(b))
}

// parseProcStatCPU reads utime and stime (fields 14 and 15) of a /proc/<pid>/stat line; the command name, field 2,
// is in parentheses and may hold spaces, so fields are counted after its closing one.
func parseProcStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %.80q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat %.80q: too few fields", stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: CPU time %q: %w", s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// selfCPU is this process's user+sys CPU so far; zero if the kernel will not say.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineFloorNote is the report's paragraph on a small scenario's machine floor; "" when it was not run.
func machineFloorNote(r result) string {
	m := r.machine
	switch {
	case m == nil:
		return ""
	case m.err != "":
		return fmt.Sprintf("  Machine floor: not measured: %s.\n", m.err)
	}
	pace := "all at once"
	if m.requests > m.burst {
		pace = fmt.Sprintf("%d in each second of the sandbox's clock", m.burst)
	}
	verdict := "no 429s"
	if m.throttled > 0 {
		// A 429 is answered at once, so a run with one may look fast.
		verdict = fmt.Sprintf("%d 429s, so it is NOT a floor", m.throttled)
	}
	return fmt.Sprintf("  Machine floor: %.2f s (wall / machine floor %.2f×): the fastest any client could read these pages on this "+
		"machine, limits, latency and the sandbox's own CPU included, without decoding. A minimal client (plain net/http, no "+
		"connector code) read the same %d records, one request per page at time windows known in advance (%d requests, %s, "+
		"%.0f MB), each body read whole and discarded; the fastest of %d runs (%s s), each against a fresh sandbox with the "+
		"same flags; %s. CPU over the fastest run: sandbox %.2f s, client %.2f s; load %s at its start. Its query, filter "+
		"and paging aside, was the connector's: `%s`.\n",
		m.wall.Seconds(), r.wall.Seconds()/m.wall.Seconds(), m.records, m.requests, pace, float64(m.bytes)/1e6,
		len(m.walls), m.runs(), verdict, m.sandboxCPU.Seconds(), m.clientCPU.Seconds(), m.load, m.query)
}
