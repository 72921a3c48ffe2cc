package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/source/reports"
)

// Issue 12: "on an account where events dominate, a whole-catalog sync takes at most 10% longer than an events-only
// sync of the same account, measured side by side". catalog-vs-events syncs one account twice, each time from a
// fresh sandbox started with the same flags and seed (so the same records and untouched rate-limit windows): events
// alone, then every stream but those the bench skips. The events fill -pair-minutes of the events budget at the
// factor; the other parents are as few as rate-catalog's (each S- or M-tier fan-out costs a request or more at
// 6-15 a minute when scaled), and profiles are a few pages, so events dominate as the issue says.

// reportStreams are the default report streams, which catalog-vs-events leaves out unless -pair-reports: at a
// tenth of the tiers the Reporting API's 2 requests a minute round up to 1 and its 225 a day to 23, and a first
// sync of a values report needs 24 windows, so the whole catalog would wait on (and run out of) the scaled daily
// quota; metric_aggregates reads a window per metric at 60 a minute, 6 when scaled. Both are fixed costs, whatever
// the events, that say nothing about how streams share the client. Their cost at the published tiers is in the
// quiet scenarios' first and second syncs.
func reportStreams() []string {
	var out []string
	for _, k := range reports.Kinds() {
		out = append(out, k.Stream)
	}
	return out
}

// pairGoal is the bound on the whole catalog's wall time over events alone.
const pairGoal = 1.10

func catalogVsEvents(o options) scenario {
	events := sizedFor("events", o.factor, o.pairMinutes)
	about := fmt.Sprintf("events alone, then every stream, of one account: %d events (%s minutes of the events budget), "+
		"%d profiles, few flows/campaigns/tags/forms, tiers x %s, %s latency", events, fmtFactor(o.pairMinutes), o.pairProfiles,
		fmtFactor(o.factor), o.latency)
	skip := o.skip
	if !o.pairReports {
		skip = append(slices.Clone(skip), reportStreams()...)
	}
	if len(skip) > 0 {
		about += fmt.Sprintf(", the catalog without %v", skip)
	}
	return scenario{
		name: "catalog-vs-events", kind: "pair", factor: o.factor, skip: skip, about: about, study: runPair,
		sandboxArgs: []string{"--events", strconv.Itoa(events), "--profiles", strconv.Itoa(o.pairProfiles),
			"--flows", "2", "--campaigns", "8", "--tags", "3", "--forms", "3",
			"--rate-limits", fmtFactor(o.factor), "--latency", o.latency},
	}
}

// runPair runs the events-only sync, then the whole-catalog one, each on a fresh sandbox of the same account.
func runPair(ctx context.Context, b bins, sc scenario, o options, dir string) (string, []result, error) {
	events := sc
	events.name, events.streams, events.skip = sc.name+"/events", []string{"events"}, nil
	whole := sc
	whole.name = sc.name + "/catalog"
	var rs []result
	for _, run := range []scenario{events, whole} {
		sub := filepath.Join(dir, strings.TrimPrefix(run.name, sc.name+"/"))
		if err := mkdir(sub); err != nil {
			return "", nil, err
		}
		r, err := runScenario(ctx, b, run, o, sub)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", run.name, err)
		}
		rs = append(rs, r)
	}
	return pairReport(sc, rs[0], rs[1]), rs, nil
}

// pairReport sets the two wall times side by side, with the whole catalog's requests per endpoint, so what else
// ran beside the events is visible.
func pairReport(sc scenario, events, whole result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### %s: a whole-catalog sync against an events-only one\n\n%s.\n\n", sc.name, sc.about)
	ratio := whole.wall.Seconds() / events.wall.Seconds()
	mark := "met"
	if ratio > pairGoal {
		mark = "NOT met"
	}
	b.WriteString("| sync | records | events | wall s | events finished at s | requests | 429s | load before → after |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range []result{events, whole} {
		status := ""
		if r.failed() {
			status = " (FAILED)"
		}
		fmt.Fprintf(&b, "| %s%s | %d | %d | %.1f | %.1f | %d | %d | %s → %s |\n", r.sc.name, status, r.records, r.byStream["events"],
			r.wall.Seconds(), r.finished["events"].Seconds(), r.stats.Requests, r.stats.Throttled, r.loadBefore, r.loadAfter)
	}
	fmt.Fprintf(&b, "\nWhole catalog / events only: %.1f s / %.1f s = **%.3f** (goal ≤ %.2f: %s).\n", whole.wall.Seconds(),
		events.wall.Seconds(), ratio, pairGoal, mark)
	if v, ok := events.midRun("/api/events"); ok {
		fmt.Fprintf(&b, "Mid-run pace of /api/events: events only %.1f%%", 100*v)
		if w, ok := whole.midRun("/api/events"); ok {
			fmt.Fprintf(&b, ", whole catalog %.1f%%", 100*w)
		}
		b.WriteString(" of its steady budget.\n")
	}
	ev, _ := events.floor()
	wf, which := whole.floor()
	fmt.Fprintf(&b, "Budget floors (steady limits): events only %.1f s; whole catalog %.1f s, set by %s.\n", ev.Seconds(), wf.Seconds(), which)
	if len(whole.finished) > 1 {
		fmt.Fprintf(&b, "Last streams to finish in the whole catalog (s after start): %s.\n", lastFinished(whole.finished, 8))
	}
	b.WriteString("\nThe whole catalog's requests per endpoint (discover's included):\n\n")
	table, _ := endpointTable(whole.stats, sc.factor, parseLatency(sc), nil)
	b.WriteString(table)
	for _, r := range []result{events, whole} {
		for _, e := range r.errors {
			fmt.Fprintf(&b, "ERROR (%s): `%s`\n", r.sc.name, e)
		}
	}
	return b.String()
}

func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}
