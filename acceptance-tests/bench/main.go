// Command bench measures source-klaviyo end to end: for each scenario it starts the sandbox binary (the local fake
// Klaviyo), runs the real connector binary against it as a child process, and prints one Markdown table of records,
// wall time, records per second, share of the rate-limit ceiling, the connector's own CPU time per million records,
// its peak RSS and the 429s the sandbox gave.
//
// It measures processes rather than functions because the claims it backs (issue 6) are about the binary a user
// runs: scheduling across endpoints, the budget arithmetic against a server that counts fixed windows, buffered
// output, and the memory of a whole sync. The in-process hot path has its own `go test -bench` benchmarks in
// source/bench_test.go.
//
//	go run ./acceptance-tests/bench                      # every scenario at the sizes (about 27 minutes)
//	go run ./acceptance-tests/bench -quick               # everything at 1/20 size, under a minute of syncing
//	go run ./acceptance-tests/bench -scenario cpu -events 5000000
//	go run ./acceptance-tests/bench -only rate-events,rate-profiles
//	go run ./acceptance-tests/bench -only small          # small syncs at Klaviyo's published limits, and their machine floor (seconds)
//	go run ./acceptance-tests/bench -only rate-core-tls -keep -connector-env GODEBUG=gctrace=1
//	go run ./acceptance-tests/bench -only quiet-demo,quiet-lists   # an hourly sync of an unchanged account (quiet.go)
//	go run ./acceptance-tests/bench -only catalog-vs-events        # whole catalog against events alone (pair.go)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	scenario    string
	only        string
	factor      float64
	rateMinutes float64
	rateEvents  int
	rateProfs   int
	smallEvents int
	smallProfs  int
	latency     string
	events      int
	profiles    int
	seed        int64
	concurrency int
	quick       bool
	binDir      string
	keep        bool
	skip        []string
	// eventSkew is the sandbox's --event-skew for rate-skewed, skewMinutes its size in minutes of the events budget.
	eventSkew   string
	skewMinutes float64
	// coreProfiles and coreEvents size rate-core-tls.
	coreProfiles int
	coreEvents   int
	// tlsMode is how the TLS scenarios are served: h2 (HTTPS, HTTP/2 offered), http1 (HTTPS, HTTP/1.1 only) or off
	// (plain HTTP), so what TLS and HTTP/2 cost can be told apart. connectorEnv is added to the connector's
	// environment (GODEBUG=gctrace=1, GOMEMLIMIT=...), whose stderr is then kept in the scenario's directory.
	tlsMode      string
	connectorEnv []string
	// pairMinutes sizes catalog-vs-events' events in minutes of the events budget; pairProfiles is its profiles.
	pairMinutes  float64
	pairProfiles int
	pairReports  bool
	// floorRuns is how many times the minimal client reads a small scenario's pages for its machine floor (the
	// fastest counts); 0 skips it.
	floorRuns int
	// quietClock is where the quiet scenarios' sandbox clock starts: "current" (an hour behind the wall clock) or
	// "sandbox" (its default, 30 days behind).
	quietClock string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	flag.StringVar(&o.scenario, "scenario", "all", "which scenarios: rate, small, cpu, quiet, pair or all (all: rate, small and cpu; the two-sync studies quiet and pair run only by name)")
	flag.StringVar(&o.only, "only", "", "comma-separated scenario names ("+scenarioNames+") or kinds (rate, small, cpu, quiet, pair) to run; overrides -scenario")
	flag.Float64Var(&o.factor, "factor", 0.1, "rate-bound scenarios: the sandbox's --rate-limits factor, and the connector's rate_limit_scale")
	flag.Float64Var(&o.rateMinutes, "rate-minutes", 2, "rate-bound scenarios: how long each should take at the steady ceiling; sizes are derived from it")
	flag.IntVar(&o.rateEvents, "rate-events", 0, "rate-bound scenarios: events in the account (0: -rate-minutes of the events budget)")
	flag.IntVar(&o.rateProfs, "rate-profiles", 0, "rate-bound scenarios: profiles in the account (0: -rate-minutes of the profiles budget)")
	flag.IntVar(&o.smallProfs, "small-profiles", 30_000, "small-profiles scenario: profiles in the account (300 pages: within a minute of the L tier)")
	flag.IntVar(&o.smallEvents, "small-events", 200_000, "small-events scenario: events in the account (200 pages: within a second of the XL tier)")
	flag.IntVar(&o.floorRuns, "floor-runs", 3, "small scenarios: runs of the minimal client that measures the machine floor, the fastest counting (0: none)")
	flag.StringVar(&o.latency, "latency", "300ms", "rate-bound and small scenarios: latency the sandbox adds to every request")
	flag.IntVar(&o.events, "events", 2_000_000, "CPU-bound scenario: events in the account")
	flag.IntVar(&o.profiles, "profiles", 500_000, "CPU-bound scenario: profiles in the account")
	flag.Int64Var(&o.seed, "seed", 1, "sandbox data seed")
	flag.IntVar(&o.concurrency, "max-concurrency", 0, "the connector's max_concurrency (0: its default)")
	flag.BoolVar(&o.quick, "quick", false, "run every scenario at 1/20 of its size (a smoke run; rate ratios of runs under a minute include the first minute's burst; the small scenarios keep their sizes)")
	flag.StringVar(&o.binDir, "bin", "", "directory with prebuilt source-klaviyo and klaviyo-sandbox (default: build them into a temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, catalogs, sandbox logs) for inspection")
	flag.StringVar(&o.eventSkew, "event-skew", "20:8", "rate-skewed scenario: the sandbox's --event-skew GROWTH[:BURST[:AGO]] (the last day GROWTH times the first, a week BURST times as dense)")
	flag.Float64Var(&o.skewMinutes, "skew-minutes", 5, "rate-skewed scenario: how long it should take at the steady ceiling (0: -rate-minutes); -rate-events overrides it")
	flag.IntVar(&o.coreProfiles, "core-profiles", 50_000, "rate-core-tls scenario: profiles in the account")
	flag.IntVar(&o.coreEvents, "core-events", 300_000, "rate-core-tls scenario: events in the account")
	flag.StringVar(&o.tlsMode, "tls", "h2", "TLS scenarios: h2 (HTTPS offering HTTP/2, which Go's client takes), http1 (HTTPS, HTTP/1.1 only) or off (plain HTTP, to compare)")
	flag.Float64Var(&o.pairMinutes, "pair-minutes", 3, "catalog-vs-events: minutes of the events budget its events fill")
	flag.IntVar(&o.pairProfiles, "pair-profiles", 2_000, "catalog-vs-events: profiles in the account (a few pages: events dominate)")
	flag.BoolVar(&o.pairReports, "pair-reports", false, "rate-catalog and catalog-vs-events: keep the report streams in the whole catalog (see reportStreams in pair.go)")
	flag.StringVar(&o.quietClock, "quiet-clock", "current", "quiet scenarios: current (the sandbox clock starts an hour behind the wall clock) or sandbox (its default, 30 days behind: every stream a month idle)")
	env := flag.String("connector-env", "", "comma-separated KEY=VALUE added to the connector's environment, e.g. GODEBUG=gctrace=1 (its stderr is kept in connector-read.stderr in the scenario's directory: use -keep)")
	skip := flag.String("skip-streams", "reviews", "streams the whole-catalog scenario leaves out, comma-separated (reviews: the sandbox serves invalid UTF-8 in some review authors)")
	flag.Parse()
	for _, n := range strings.Split(*skip, ",") {
		if n = strings.TrimSpace(n); n != "" {
			o.skip = append(o.skip, n)
		}
	}
	for _, kv := range strings.Split(*env, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("-connector-env %q: want KEY=VALUE", kv)
		}
		o.connectorEnv = append(o.connectorEnv, kv)
	}
	if o.tlsMode != "h2" && o.tlsMode != "http1" && o.tlsMode != "off" {
		return fmt.Errorf("-tls %q: want h2, http1 or off", o.tlsMode)
	}
	if o.quietClock != "current" && o.quietClock != "sandbox" {
		return fmt.Errorf("-quiet-clock %q: want current or sandbox", o.quietClock)
	}
	if o.factor <= 0 || o.factor > 1000 {
		return fmt.Errorf("-factor %g: want a factor in (0, 1000]", o.factor)
	}
	if o.skewMinutes <= 0 {
		o.skewMinutes = o.rateMinutes
	}
	if o.quick {
		o.rateMinutes /= 20
		o.skewMinutes /= 20
		o.events /= 20
		o.profiles /= 20
		o.rateEvents /= 20
		o.rateProfs /= 20
		o.coreProfiles /= 20
		o.coreEvents /= 20
		o.pairMinutes /= 20
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "source-klaviyo-bench")
	if err != nil {
		return fmt.Errorf("creating a work directory: %w", err)
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench: work directory", work)
	} else {
		defer os.RemoveAll(work)
	}
	bins, err := binaries(ctx, o.binDir, work)
	if err != nil {
		return err
	}
	scs, err := plan(o)
	if err != nil {
		return err
	}
	m := describeMachine()
	fmt.Fprintf(os.Stderr, "bench: %s\n", m.oneLine())

	var results, studied []result
	var sections []string
	for _, sc := range scs {
		fmt.Fprintf(os.Stderr, "bench: %s: %s\n", sc.name, sc.about)
		dir := filepath.Join(work, sc.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		if sc.study != nil {
			// A scenario of several syncs reports in a section of its own.
			section, rs, err := sc.study(ctx, bins, sc, o, dir)
			if err != nil {
				return fmt.Errorf("scenario %s: %w", sc.name, err)
			}
			for _, r := range rs {
				fmt.Fprintf(os.Stderr, "bench: %s: %s: %d records in %.1f s, %d requests\n", sc.name, r.sc.name, r.records, r.wall.Seconds(), r.stats.Requests)
			}
			sections, studied = append(sections, section), append(studied, rs...)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		r, err := runScenario(ctx, bins, sc, o, dir)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: %s: %d records in %.1f s (%.0f/s), %.2f CPU s, %.1f MiB peak RSS, load %s -> %s\n",
			sc.name, r.records, r.wall.Seconds(), r.perSecond(), r.cpu.Seconds(), r.rssMiB(), r.loadBefore, r.loadAfter)
		if m := r.machine; m.ok() {
			fmt.Fprintf(os.Stderr, "bench: %s: machine floor %.2f s, fastest of %s s (%d requests, %d 429s), sandbox CPU %.2f s, client CPU %.2f s, load %s\n",
				sc.name, m.wall.Seconds(), m.runs(), m.requests, m.throttled, m.sandboxCPU.Seconds(), m.clientCPU.Seconds(), m.load)
		} else if m != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: machine floor not measured: %s\n", sc.name, m.err)
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	if len(results) > 0 {
		fmt.Print(report(m, o, results))
	} else {
		fmt.Printf("## source-klaviyo benchmark, %s\n\nMachine: %s. Load average at the start: %s.\n\nCommand: `%s`\n", m.date, m.oneLine(), m.load, m.command)
	}
	for _, s := range sections {
		fmt.Print(s)
	}
	for _, r := range append(results, studied...) {
		if r.failed() {
			return fmt.Errorf("scenario %s: the connector did not finish cleanly (exit %d, %d error traces)", r.sc.name, r.exit, len(r.errors))
		}
	}
	return ctx.Err()
}

// scenarioNames lists the scenarios, for -only.
const scenarioNames = "rate-events, rate-skewed, rate-profiles, rate-both, rate-both-inflight, rate-catalog, rate-core-tls, small-profiles, small-events, small-busy-hours, cpu, cpu-maps, quiet-demo, quiet-lists, catalog-vs-events"

// plan builds the scenarios the flags ask for.
func plan(o options) ([]scenario, error) {
	all := []scenario{rateEvents(o), rateSkewed(o), rateProfiles(o), rateBoth(o, false), rateBoth(o, true), rateCatalog(o),
		rateCoreTLS(o), small(o, "profiles", o.smallProfs), small(o, "events", o.smallEvents), smallBusyHours(o), cpuBound(o), cpuMaps(o),
		quietDemo(o), quietLists(o), catalogVsEvents(o)}
	var out []scenario
	if o.only != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(o.only, ",") {
			want[strings.TrimSpace(n)] = true
		}
		used := map[string]bool{}
		for _, sc := range all {
			if want[sc.name] || want[sc.kind] {
				out = append(out, sc)
				used[sc.name], used[sc.kind] = true, true
			}
		}
		for n := range used {
			delete(want, n)
		}
		if len(want) > 0 {
			return nil, fmt.Errorf("-only names unknown scenarios %v: use %s, or a kind: rate, small, cpu, quiet, pair", keys(want), scenarioNames)
		}
		return out, nil
	}
	for _, sc := range all {
		switch o.scenario {
		case "all":
			// The studies sync twice and take minutes each; make bench's length stays what the README says.
			if sc.study != nil {
				continue
			}
		case "rate", "small", "cpu", "quiet", "pair":
			if sc.kind != o.scenario {
				continue
			}
		default:
			return nil, fmt.Errorf("-scenario %q: use rate, small, cpu, quiet, pair or all", o.scenario)
		}
		out = append(out, sc)
	}
	return out, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// binaries returns the paths of the two programs, building them unless dir already holds them.
func binaries(ctx context.Context, dir, work string) (bins, error) {
	if dir != "" {
		b := bins{connector: filepath.Join(dir, "source-klaviyo"), sandbox: filepath.Join(dir, "klaviyo-sandbox")}
		for _, p := range []string{b.connector, b.sandbox} {
			if _, err := os.Stat(p); err != nil {
				return bins{}, fmt.Errorf("-bin %s: %w", dir, err)
			}
		}
		return b, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return bins{}, err
	}
	b := bins{connector: filepath.Join(work, "source-klaviyo"), sandbox: filepath.Join(work, "klaviyo-sandbox")}
	start := time.Now()
	for _, t := range []struct{ out, pkg string }{{b.connector, "./cmd/source-klaviyo"}, {b.sandbox, "./cmd/klaviyo-sandbox"}} {
		// The same flags as `make build`: the benchmark measures the binary users get.
		if err := goBuild(ctx, root, t.out, t.pkg); err != nil {
			return bins{}, err
		}
	}
	fmt.Fprintf(os.Stderr, "bench: built both binaries in %.1f s\n", time.Since(start).Seconds())
	return b, nil
}

// moduleRoot walks up from the working directory to go.mod, so the program runs from anywhere in the tree.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: run the benchmark from the source-klaviyo tree, or pass -bin")
		}
		dir = parent
	}
}

// goBuild builds pkg into out the way `make build` does (static, trimmed paths).
func goBuild(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}
