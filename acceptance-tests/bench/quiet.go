package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/reports"
)

// Issue 12, "quiet hourly syncs": most syncs find little new, so what an incremental sync of an unchanged account
// costs is what users pay every hour. A quiet scenario syncs the whole catalog once, keeps the final state, moves
// the sandbox clock an hour with nothing created, updated or removed (the sandbox's quiet advance), and syncs
// again from that state. The second sync is the measurement: every request it makes found nothing, so each is
// either needed to prove that nothing changed or can be cut. It runs at Klaviyo's published tiers with the usual
// latency, so its seconds are what a user would wait.

// quietHour is how far the clock moves between the two syncs: an hourly schedule.
const quietHour = time.Hour

// quietDemo is the account `make demo` serves (its seed, the sandbox's default sizes), synced hourly.
func quietDemo(o options) scenario {
	return quietScenario(o, "quiet-demo", "the demo account (make demo: --seed 7, default sizes)", "--seed", "7")
}

// quietLists is the demo's sizes but 1,000 lists and 300 segments, the larger account: its parents and
// their member reads are what an hourly sync of a real account repeats.
func quietLists(o options) scenario {
	return quietScenario(o, "quiet-lists", "1,000 lists and 300 segments, the other sizes the sandbox's defaults",
		"--lists", "1000", "--segments", "300")
}

func quietScenario(o options, name, account string, args ...string) scenario {
	clock := "the sandbox clock an hour behind the wall clock at the start, so the newest records are as old as in an account synced hourly"
	if o.quietClock == "sandbox" {
		clock = "the sandbox's default clock (30 days behind the wall clock: every stream's newest record is a month before the sync)"
	}
	about := fmt.Sprintf("%s; a whole-catalog incremental sync, an hour with nothing new, the same sync again from its state; "+
		"Klaviyo's published tiers, %s latency; %s", account, o.latency, clock)
	if len(o.skip) > 0 {
		about += fmt.Sprintf(", without %v", o.skip)
	}
	return scenario{
		name: name, kind: "quiet", factor: 1, skip: o.skip, about: about,
		sandboxArgs: append(args, "--rate-limits", "klaviyo", "--latency", o.latency),
		study:       runQuiet,
	}
}

// runQuiet runs a quiet scenario and returns its report section, and both syncs' results for the exit status.
//
// The connector's sync start is the wall clock, and the sandbox's clock starts 30 days behind it by default, so a
// state's cursors would be a month behind the next sync and every windowed stream would split that month into its
// most windows: the cost of a stream idle for a month, not of an hour. By default (-quiet-clock current) the
// sandbox starts an hour behind the wall clock, read when the scenario starts; after the first sync and the quiet
// hour its clock and the wall clock agree within the first sync's length.
func runQuiet(ctx context.Context, b bins, sc scenario, o options, dir string) (string, []result, error) {
	if o.quietClock != "sandbox" {
		sc.sandboxArgs = append(slices.Clone(sc.sandboxArgs), "--now", time.Now().Add(-quietHour).UTC().Format(time.RFC3339))
	}
	a, err := startAccount(ctx, b, sc, o, dir)
	if err != nil {
		return "", nil, err
	}
	defer a.sb.stop()
	first, err := a.measure(ctx, sc)
	if err != nil {
		return "", nil, fmt.Errorf("first sync: %w", err)
	}
	if first.failed() {
		return quietReport(sc, first, result{}, nil), []result{first}, nil
	}
	statePath := filepath.Join(dir, "state.json")
	if err := writeStateFile(statePath, first.states); err != nil {
		return "", nil, err
	}
	if err := a.sb.advanceQuiet(ctx, quietHour); err != nil {
		return "", nil, err
	}
	if err := waitNextMinute(ctx); err != nil {
		return "", nil, err
	}
	second, err := a.measure(ctx, sc, "--state", statePath)
	if err != nil {
		return "", nil, fmt.Errorf("second sync: %w", err)
	}
	second.stats = statsDelta(first.stats, second.stats)
	reqs, err := a.sb.requestsSince(ctx, first.stats.Requests)
	if err != nil {
		return "", nil, err
	}
	if err := writeRequests(filepath.Join(dir, "requests-second-sync.ndjson"), reqs); err != nil {
		return "", nil, err
	}
	second.sandboxCPU = a.sb.stop()
	return quietReport(sc, first, second, reqs), []result{first, second}, nil
}

// keepState keeps a stream's latest state message; the last one of a stream is its final state.
func (r *result) keepState(stream string, raw json.RawMessage) {
	if r.states == nil {
		r.states = map[string]json.RawMessage{}
	}
	r.states[stream] = append(json.RawMessage(nil), raw...)
}

// writeStateFile writes the states as read takes them with --state: a JSON array of Airbyte state messages, one
// per stream, in name order so the file is the same for the same sync.
func writeStateFile(path string, states map[string]json.RawMessage) error {
	if len(states) == 0 {
		return fmt.Errorf("the first sync wrote no STREAM state: nothing to sync again from")
	}
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]json.RawMessage, len(names))
	for i, n := range names {
		out[i] = states[n]
	}
	return writeJSON(path, out)
}

// advanceQuiet moves the sandbox clock by d with nothing new in the interval (POST /_sandbox/advance?quiet=true).
func (p *sandboxProc) advanceQuiet(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.admin(ctx, http.MethodPost, "/_sandbox/advance", url.Values{"quiet": {"true"}, "by": {d.String()}}, nil)
}

// waitNextMinute sleeps into the next wall-clock minute. The sandbox counts each endpoint's requests in fixed
// windows of the wall-clock second and minute, so a sync started right after another would find part of this
// minute's allowance spent; an hour later at Klaviyo every window is fresh, and so it is here.
func waitNextMinute(ctx context.Context) error {
	now := time.Now()
	wait := now.Truncate(time.Minute).Add(time.Minute + 200*time.Millisecond).Sub(now)
	fmt.Fprintf(os.Stderr, "bench: waiting %.1f s for a fresh minute of the rate limits\n", wait.Seconds())
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sandboxRequest is one request of the sandbox's log (GET /_sandbox/requests).
type sandboxRequest struct {
	Seq    int64  `json:"seq"`
	Method string `json:"method"`
	Path   string `json:"path"`
	URI    string `json:"uri"`
	Status int    `json:"status"`
}

// requestsSince reads the requests the sandbox answered after the first seq, from its log of the last 20,000.
func (p *sandboxProc) requestsSince(ctx context.Context, seq int) ([]sandboxRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []sandboxRequest
	err := p.admin(ctx, http.MethodGet, "/_sandbox/requests", url.Values{"since": {strconv.Itoa(seq)}}, func(body io.Reader) error {
		dec := json.NewDecoder(body)
		for dec.More() {
			var r sandboxRequest
			if err := dec.Decode(&r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// writeRequests keeps a sync's requests in the scenario's directory (-keep), one JSON object a line, for reading
// why each was made.
func writeRequests(path string, reqs []sandboxRequest) error {
	var b strings.Builder
	for _, r := range reqs {
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// requestRole says what a request of an incremental sync is for, from its query alone: a probe (page[size]=1 sorted
// by the cursor, where a windowed stream's data starts, as releases before the productive probe sent it), a next
// page (page[cursor]), a read bounded by the cursor (a window, a parent's read from its own cursor, or today's
// probe: a page of up to 100 that is the window's read when it holds the whole span), or anything else (parent
// listings, full-refresh reads, single resources, report POSTs).
func requestRole(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "other"
	}
	q := u.Query()
	f := q.Get("filter")
	switch {
	case q.Get("page[size]") == "1" && q.Get("sort") != "":
		// tracking_settings' pages hold one record, unsorted; a probe is always sorted by the cursor.
		return "probe"
	case q.Get("page[cursor]") != "":
		return "next page"
	case strings.Contains(f, "greater-") || strings.Contains(f, "less-"):
		return "cursor-bounded"
	}
	return "other"
}

// rolesByPath counts each endpoint's requests by requestRole.
func rolesByPath(reqs []sandboxRequest) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, r := range reqs {
		if out[r.Path] == nil {
			out[r.Path] = map[string]int{}
		}
		out[r.Path][requestRole(r.URI)]++
	}
	return out
}

// statsDelta is what the sandbox served between two snapshots of its totals.
func statsDelta(before, after sandboxStats) sandboxStats {
	out := sandboxStats{Requests: after.Requests - before.Requests, Throttled: after.Throttled - before.Throttled,
		ByPath: map[string]map[string]int{}}
	for path, byStatus := range after.ByPath {
		for status, n := range byStatus {
			if d := n - before.ByPath[path][status]; d > 0 {
				if out.ByPath[path] == nil {
					out.ByPath[path] = map[string]int{}
				}
				out.ByPath[path][status] = d
			}
		}
	}
	return out
}

// endpointRow is one endpoint's requests in a sync: the template the sandbox counts by, per status.
type endpointRow struct {
	path     string
	total    int
	byStatus map[string]int
}

// endpointRows lists the endpoints of st, most requested first.
func endpointRows(st sandboxStats) []endpointRow {
	var rows []endpointRow
	for path, byStatus := range st.ByPath {
		row := endpointRow{path: path, byStatus: byStatus}
		for _, n := range byStatus {
			row.total += n
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].total > rows[j].total || rows[i].total == rows[j].total && rows[i].path < rows[j].path
	})
	return rows
}

// streamsByPath names the streams that read each endpoint template, from the stream table and the default
// report streams (full-refresh streams marked "(full)", since they read everything every sync).
func streamsByPath() map[string][]string {
	out := map[string][]string{}
	for _, s := range catalog.Streams() {
		name := s.Name
		if s.Cursor == nil {
			name += " (full)"
		}
		out[s.Path] = append(out[s.Path], name)
	}
	for _, k := range reports.Kinds() {
		out[k.Endpoint] = append(out[k.Endpoint], k.Stream)
	}
	return out
}

// endpointRates is each endpoint template's published tier, from the stream table and the report kinds.
func endpointRates() map[string]catalog.Rate {
	out := map[string]catalog.Rate{}
	for _, s := range catalog.Streams() {
		if _, ok := out[s.Path]; !ok {
			out[s.Path] = s.Rate
		}
	}
	for _, k := range reports.Kinds() {
		out[k.Endpoint] = catalog.Rate{Burst: k.Budget.Burst, PerMinute: k.Budget.PerMinute}
	}
	return out
}

func statusCell(byStatus map[string]int) string {
	codes := make([]string, 0, len(byStatus))
	for c := range byStatus {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = c + ": " + strconv.Itoa(byStatus[c])
	}
	return strings.Join(parts, ", ")
}

// endpointTable renders a sync's requests per endpoint with the streams that read it, its tier, and the
// shortest time the tier and one latency allow for that many requests (burstFloor; pagination and the wait for
// a parent's page before its children are left out, so it is a floor, not a forecast). roles, when set, adds
// what the requests were for (requestRole).
func endpointTable(st sandboxStats, factor float64, latency time.Duration, roles map[string]map[string]int) (string, time.Duration) {
	var b strings.Builder
	rates, readers := endpointRates(), streamsByPath()
	roleCol, roleSep := "", ""
	if roles != nil {
		roleCol, roleSep = " probe / bounded / next page / other |", "---|"
	}
	b.WriteString("| endpoint | requests | by status |" + roleCol + " streams | tier (burst/s, per min) | floor s |\n")
	b.WriteString("|---|---:|---|" + roleSep + "---|---|---:|\n")
	var worst time.Duration
	total := 0
	for _, row := range endpointRows(st) {
		total += row.total
		tier, floor := "?", "?"
		if rt, ok := rates[row.path]; ok {
			burst, perMinute := scaled(rt.Burst, factor), scaled(rt.PerMinute, factor)
			tier = fmt.Sprintf("%d, %d", burst, perMinute)
			d := burstFloor(row.total-row.byStatus["429"], burst, perMinute, latency)
			worst = max(worst, d)
			floor = fmt.Sprintf("%.1f", d.Seconds())
		}
		role := ""
		if roles != nil {
			r := roles[row.path]
			role = fmt.Sprintf(" %d / %d / %d / %d |", r["probe"], r["cursor-bounded"], r["next page"], r["other"])
		}
		fmt.Fprintf(&b, "| %s | %d | %s |%s %s | %s | %s |\n", row.path, row.total, statusCell(row.byStatus), role,
			strings.Join(readers[row.path], ", "), tier, floor)
	}
	if roles != nil {
		sum := map[string]int{}
		for _, r := range roles {
			for k, n := range r {
				sum[k] += n
			}
		}
		fmt.Fprintf(&b, "| **total** | **%d** | | %d / %d / %d / %d | | | %.1f |\n", total, sum["probe"], sum["cursor-bounded"],
			sum["next page"], sum["other"], worst.Seconds())
	} else {
		fmt.Fprintf(&b, "| **total** | **%d** | | | | %.1f |\n", total, worst.Seconds())
	}
	return b.String(), worst
}

// quietReport is a quiet scenario's section: the first sync in a line, the second in full.
func quietReport(sc scenario, first, second result, reqs []sandboxRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s: an hourly sync of an unchanged account\n\n%s.\n\n", sc.name, sc.about)
	fmt.Fprintf(&b, "First sync (no state): %d records in %.1f s, %d requests (%d throttled), load %s → %s.\n",
		first.records, first.wall.Seconds(), first.stats.Requests, first.stats.Throttled, first.loadBefore, first.loadAfter)
	if first.failed() {
		fmt.Fprintf(&b, "\nThe first sync FAILED (exit %d): %v\n", first.exit, first.errors)
		return b.String()
	}
	latency := parseLatency(sc)
	fmt.Fprintf(&b, "\nSecond sync, from the first's final state after %s with nothing new: **%d requests, %.1f s, %d records** "+
		"(%d throttled; connector CPU %.2f s; load %s → %s).\n\n",
		quietHour, second.stats.Requests, second.wall.Seconds(), second.records, second.stats.Throttled, second.cpu.Seconds(),
		second.loadBefore, second.loadAfter)
	table, floor := endpointTable(second.stats, sc.factor, latency, rolesByPath(reqs))
	b.WriteString(table)
	fmt.Fprintf(&b, "\nThe requests' floor at the tiers with one %s latency is %.1f s (the busiest endpoint; chains of parent then "+
		"child requests add a latency each).\n", latency, floor.Seconds())
	if len(second.byStream) > 0 {
		fmt.Fprintf(&b, "Records of the second sync by stream: %s.\n", topStreams(second.byStream, len(second.byStream)))
	}
	writeEnding(&b, "", second, 8)
	return b.String()
}

// parseLatency is the fixed latency a scenario's sandbox adds (its --latency), 0 when it has none or a range.
func parseLatency(sc scenario) time.Duration {
	for i, a := range sc.sandboxArgs {
		if a == "--latency" && i+1 < len(sc.sandboxArgs) {
			if d, err := time.ParseDuration(sc.sandboxArgs[i+1]); err == nil {
				return d
			}
		}
	}
	return 0
}
