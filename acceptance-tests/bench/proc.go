package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// benchKey is the API key the sandbox accepts and the connector sends; it is a throwaway, not a secret.
const benchKey = "pk_bench_key_not_secret"

type bins struct{ connector, sandbox string }

// result is what one scenario measured.
type result struct {
	sc       scenario
	records  int64
	byStream map[string]int64
	wall     time.Duration
	// cpu is the connector's user+sys time, from its rusage.
	cpu time.Duration
	// maxRSS is the connector's peak resident set in KiB (Linux reports ru_maxrss in KiB).
	maxRSS     int64
	sandboxCPU time.Duration
	exit       int
	errors     []string
	warnings   int
	warnSample []string
	stats      sandboxStats
	// finished is when each stream reported COMPLETE or INCOMPLETE, from the sync's start: the last ones to
	// finish are what a whole-catalog sync waits for.
	finished   map[string]time.Duration
	loadBefore string
	loadAfter  string
	// samples are the sandbox's answered requests per endpoint every few seconds of a rate-bound sync.
	samples []sample
	// states is the last STATE message of each stream, as it goes into a --state file (quiet.go syncs again from
	// it); one per stream, so it stays small however long the sync.
	states map[string]json.RawMessage
	// started is when the connector was started, the cutoff of what the sync reads.
	started time.Time
	// machine is a small scenario's machine floor (machinefloor.go); nil for other scenarios.
	machine *machineFloor
}

// sample is how many requests the sandbox had answered (429s excluded) per endpoint at one moment of the sync.
type sample struct {
	at time.Duration
	ok map[string]int
}

// midRun is an endpoint's request rate over the middle half of the sync, as a share of its steady budget: the
// pace the sync keeps once its windows are planned and before its last windows drain, which is what a sync many
// times longer than the benchmark would keep for almost all of its time. ok is false without enough samples.
//
// The middle half is rounded to whole minutes of the sync. The send log spends each minute's allowance as early as
// it can, in the first seconds of the minute, so a rate taken over a stretch that is not whole minutes counts
// however many minute starts the stretch happens to hold: over the plain middle half, the same even account read
// 103% in a two-minute sync and 80% in a five-minute one, and a skewed account whose windows spent the second
// minute's whole allowance, only later in the minute, read 78%. So the stretch runs from the minute boundary
// nearest a quarter of the wall time to the one nearest three quarters (at least one minute), each read from the
// last sample at or before it.
func (r result) midRun(path string) (float64, bool) {
	budget, known := endpointBudgets()[path]
	if !known || r.sc.factor <= 0 || len(r.samples) < 2 {
		return 0, false
	}
	from := time.Duration(math.Round(r.wall.Minutes()/4)) * time.Minute
	to := max(time.Duration(math.Round(3*r.wall.Minutes()/4))*time.Minute, from+time.Minute)
	if to > r.wall {
		return 0, false
	}
	// A stream that ends before the stretch does (events in the whole-catalog run) leaves its endpoint idle
	// there for want of work, not of pace: no figure rather than a misleading one.
	if d, ok := r.finished[strings.TrimPrefix(path, "/api/")]; ok && d < to {
		return 0, false
	}
	a, okA := r.answeredAt(path, from)
	b, okB := r.answeredAt(path, to)
	if !okA || !okB {
		return 0, false
	}
	perSecond := float64(b-a) / (to - from).Seconds()
	return perSecond / (float64(scaled(budget, r.sc.factor)) / 60), true
}

// answeredAt is how many requests to path had been answered at moment t of the sync, from the last sample at or
// before it; the sync's start counts as none. ok is false when that sample is more than 5 s old (failed polls).
func (r result) answeredAt(path string, t time.Duration) (int, bool) {
	n, at := 0, time.Duration(0)
	for _, s := range r.samples {
		if s.at > t {
			break
		}
		n, at = s.ok[path], s.at
	}
	return n, t-at <= 5*time.Second
}

// paceBy is how many requests to path the sandbox answered in each interval of every from the sync's start (429s
// excluded), from the first sample at or after each interval's end; the last entry is the part-interval before the
// last sample. The send log spends each minute's allowance as early as it can, so in 10-s intervals an evenly
// spread account shows the allowance spent in the first seconds of each minute, and a skewed one shows it spread
// over the minute: the seconds in which the densest windows drain alone, too few to spend it.
func (r result) paceBy(path string, every time.Duration) []int {
	var out []int
	prev, next := 0, every
	for i, s := range r.samples {
		if s.at >= next || i == len(r.samples)-1 {
			out = append(out, s.ok[path]-prev)
			prev = s.ok[path]
			for next <= s.at {
				next += every
			}
		}
	}
	return out
}

// sandboxStats is the part of GET /_sandbox/stats the report uses.
type sandboxStats struct {
	Requests  int                       `json:"requests"`
	ByPath    map[string]map[string]int `json:"by_path"`
	Throttled int64                     `json:"throttled"`
}

func (r result) perSecond() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.records) / r.wall.Seconds()
}

func (r result) rssMiB() float64 { return float64(r.maxRSS) / 1024 }

// cpuPerMillion is the connector's CPU seconds per million records.
func (r result) cpuPerMillion() float64 {
	if r.records == 0 {
		return 0
	}
	return r.cpu.Seconds() / (float64(r.records) / 1e6)
}

func (r result) failed() bool { return r.exit != 0 || len(r.errors) > 0 }

// ratio compares the run with the rate limits. For a single-stream scenario it is records/s over the steady ceiling
// (steady requests a minute × factor × page size). For the whole catalog, where streams share endpoints and pages
// are partly filled, it is the budget floor over the wall time: the floor is the longest any one endpoint needs to
// serve the requests it served at its steady limit, so 100% means the sync took no longer than its busiest endpoint
// allows. ok is false when no rate limit applied.
func (r result) ratio() (float64, bool) {
	if r.sc.factor <= 0 || r.wall <= 0 || r.sc.smallStream != "" {
		return 0, false
	}
	if r.sc.ceilingStream != "" {
		return r.perSecond() / ceilingPerSecond(r.sc.ceilingStream, r.sc.factor), true
	}
	floor, _ := r.floor()
	return floor.Seconds() / r.wall.Seconds(), true
}

// small compares a small-sync run with the time the limits and the latency allow: the pages its records need
// (full pages of the stream's size), that floor (burstFloor), and the requests the sandbox answered on the
// stream's endpoint (429s included), which the pages leave out: the probe, each window's last partial page.
func (r result) small() (pages, requests int, floor time.Duration, ok bool) {
	if r.sc.smallStream == "" {
		return 0, 0, 0, false
	}
	page, budget := pageAndRate(r.sc.smallStream)
	pages = int((r.byStream[r.sc.smallStream] + int64(page) - 1) / int64(page))
	if s, found := catalog.Lookup(r.sc.smallStream); found {
		for _, n := range r.stats.ByPath[s.Path] {
			requests += n
		}
	}
	floor = burstFloor(pages, scaled(budget.Burst, r.sc.factor), scaled(budget.PerMinute, r.sc.factor), r.sc.latency)
	return pages, requests, floor, true
}

// floor is the shortest time the sandbox's steady limits allow for the requests it answered (429s excluded, since
// they are not counted against the budget), and the endpoint that sets it.
func (r result) floor() (time.Duration, string) {
	budgets := endpointBudgets()
	var best time.Duration
	var which string
	for path, byStatus := range r.stats.ByPath {
		perMinute, ok := budgets[path]
		if !ok {
			continue
		}
		n := 0
		for status, c := range byStatus {
			if status != "429" {
				n += c
			}
		}
		d := time.Duration(float64(n) / float64(scaled(perMinute, r.sc.factor)) * float64(time.Minute))
		if d > best {
			best, which = d, path
		}
	}
	return best, which
}

// runScenario starts the sandbox, builds the configured catalog, runs the sync and collects the figures.
func runScenario(ctx context.Context, b bins, sc scenario, o options, dir string) (result, error) {
	sc = sc.startingAt(time.Now())
	a, err := startAccount(ctx, b, sc, o, dir)
	if err != nil {
		return result{}, err
	}
	defer a.sb.stop()
	r, err := a.measure(ctx, sc)
	if err != nil {
		return result{}, err
	}
	if sc.smallStream == "" || o.floorRuns <= 0 {
		r.sandboxCPU = a.sb.stop()
		return r, nil
	}
	// A small sync is also set beside its machine floor, planned from this sandbox (the connector's query is in its
	// request log) and read from a fresh one once this one has stopped. The planning's CPU is not the sync's.
	plan, err := planMachineFloor(ctx, a.sb, sc, r)
	r.sandboxCPU = a.sb.stop() - plan.sandboxCPU
	mf := machineFloor{}
	if err != nil {
		mf.err = err.Error()
	} else {
		mf = measureMachineFloor(ctx, b, sc, o, dir, r, plan)
	}
	r.machine = &mf
	return r, nil
}

// account is a running sandbox with the connector's config and configured catalog written for one scenario, so
// a scenario of several syncs (quiet.go) runs them against the same account.
type account struct {
	sb               *sandboxProc
	conn             connector
	cfgPath, catPath string
}

// sandboxFlags are the sandbox's flags for sc, TLS aside: a second sandbox with them serves the same account.
func sandboxFlags(sc scenario, o options) []string {
	return append([]string{"--api-key", benchKey, "--seed", fmt.Sprint(o.seed)}, sc.sandboxArgs...)
}

// startAccount starts the sandbox of sc and writes the connector's config and configured catalog in dir. The
// caller stops the sandbox.
func startAccount(ctx context.Context, b bins, sc scenario, o options, dir string) (account, error) {
	args := sandboxFlags(sc, o)
	env := append(os.Environ(), o.connectorEnv...)
	certFile := ""
	if sc.tls {
		// The sandbox writes its certificate before printing its URL; the connector, whose client uses Go's
		// default roots, trusts it through SSL_CERT_FILE (honoured by crypto/x509 on Linux) and runs unchanged.
		certFile = filepath.Join(dir, "sandbox-cert.pem")
		args = append(args, "--tls-cert", certFile)
		env = append(env, "SSL_CERT_FILE="+certFile)
	}
	sb, err := startSandbox(ctx, b.sandbox, args, dir, certFile)
	if err != nil {
		return account{}, err
	}
	conn := connector{bin: b.connector, env: env}
	if len(o.connectorEnv) > 0 {
		conn.stderrDir = dir
	}

	cfg := map[string]any{"api_key": benchKey, "base_url": sb.url}
	if sc.factor > 0 {
		cfg["rate_limit_scale"] = sc.factor
	} else {
		cfg["rate_limit_scale"] = 1000
	}
	if o.concurrency > 0 {
		cfg["max_concurrency"] = o.concurrency
	}
	for k, v := range sc.config {
		cfg[k] = v
	}
	a := account{sb: sb, conn: conn, cfgPath: filepath.Join(dir, "config.json"), catPath: filepath.Join(dir, "catalog.json")}
	if err := writeJSON(a.cfgPath, cfg); err != nil {
		sb.stop()
		return account{}, err
	}
	if err := configuredCatalog(ctx, conn, a.cfgPath, a.catPath, sc.streams, sc.skip); err != nil {
		sb.stop()
		return account{}, err
	}
	return a, nil
}

// measure runs one sync of the account (extra are read's further arguments, such as --state) and collects its
// figures; the stats are the sandbox's totals so far, discover's requests and any earlier sync's included.
func (a account) measure(ctx context.Context, sc scenario, extra ...string) (result, error) {
	// discover may have used part of a budget; its requests count in the stats, never in the sync's time.
	r := result{sc: sc, loadBefore: loadAvg()}
	stopSampling := func() []sample { return nil }
	if sc.factor > 0 {
		stopSampling = a.sb.sample(ctx, 2*time.Second)
	}
	err := runSync(ctx, a.conn, a.cfgPath, a.catPath, &r, extra...)
	r.samples = stopSampling()
	if err != nil {
		return result{}, err
	}
	r.loadAfter = loadAvg()
	if err := a.sb.statsInto(ctx, &r.stats); err != nil {
		return result{}, err
	}
	return r, nil
}

// connector is how the connector binary is run: its environment (SSL_CERT_FILE for a TLS sandbox, -connector-env)
// and, when stderrDir is set, where each command's whole stderr is kept (gctrace lines) besides the tail kept for
// error messages.
type connector struct {
	bin       string
	env       []string
	stderrDir string
}

// command is the connector with args, its environment set and its stderr in the returned tail (and in
// stderrDir/connector-<command>.stderr); the returned func closes that file once the command has ended.
func (c connector) command(ctx context.Context, args ...string) (*exec.Cmd, *tail, func(), error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	t := &tail{}
	cmd.Stderr = t
	if c.stderrDir == "" {
		return cmd, t, func() {}, nil
	}
	name := filepath.Join(c.stderrDir, "connector-"+args[0]+".stderr")
	f, err := os.Create(name)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating %s: %w", name, err)
	}
	cmd.Stderr = io.MultiWriter(t, f)
	return cmd, t, func() { _ = f.Close() }, nil
}

// runSync runs `read` and scans its stdout line by line: records are counted, never kept, so the benchmark's own memory
// stays flat and the pipe never holds the connector back.
func runSync(ctx context.Context, c connector, cfgPath, catPath string, r *result, extra ...string) error {
	cmd, stderr, closeStderr, err := c.command(ctx, append([]string{"read", "--config", cfgPath, "--catalog", catPath}, extra...)...)
	if err != nil {
		return err
	}
	defer closeStderr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("connector stdout: %w", err)
	}
	start := time.Now()
	r.started = start
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the connector: %w", err)
	}
	r.byStream = map[string]int64{}
	r.finished = map[string]time.Duration{}
	scanErr := scanOutput(out, r, start)
	// Whatever stopped the scan, the rest of the output is drained so the connector never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, out)
	waitErr := cmd.Wait()
	r.wall = time.Since(start)
	if scanErr != nil {
		return scanErr
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return fmt.Errorf("running the connector: %w", waitErr)
	}
	r.exit = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.maxRSS = ru.Maxrss
	}
	if r.exit != 0 && len(r.errors) == 0 {
		r.errors = append(r.errors, "stderr: "+stderr.String())
	}
	return ctx.Err()
}

// recordPrefix is how the connector starts every RECORD line, up to the stream name. Records are counted by this
// prefix without being decoded: decoding millions of them would take the CPU from the connector being measured.
// Every other line (states, logs, traces: a few per page at most) is decoded with the protocol package.
var recordPrefix = []byte(`{"type":"RECORD","record":{"stream":"`)

// scanOutput counts RECORD lines per stream, notes when each stream ends, and keeps error traces and a sample of
// warnings. Status lines are flushed as they happen, so the time they are read is the time they were written. A
// line that is not an Airbyte message stops the scan: the figures of a broken sync would mean nothing.
func scanOutput(out io.Reader, r *result, start time.Time) error {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	var last []byte
	var lastN *int64
	// count adds a record of stream name. Records of one stream come in runs (one page at a time); the map is
	// touched once per run.
	count := func(name []byte) {
		r.records++
		if lastN != nil && bytes.Equal(name, last) {
			*lastN++
			return
		}
		if lastN != nil {
			r.byStream[string(last)] = *lastN
		}
		last = append(last[:0], name...)
		n := r.byStream[string(last)] + 1
		lastN = &n
	}
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, recordPrefix); ok {
			end := bytes.IndexByte(rest, '"')
			if end < 0 {
				return fmt.Errorf("line %d: a RECORD line without a stream name: %.200s", lineNo, line)
			}
			count(rest[:end])
			continue
		}
		m, err := protocol.ParseAirbyteLine(line)
		if err != nil {
			return fmt.Errorf("line %d of the connector's output: %w", lineNo, err)
		}
		switch {
		case m.Record != nil:
			count([]byte(m.Record.Stream))
		case m.Trace != nil && m.Trace.StreamStatus != nil:
			if st := m.Trace.StreamStatus; st.Status == "COMPLETE" || st.Status == "INCOMPLETE" {
				r.finished[st.Stream] = time.Since(start)
			}
		case m.State != nil && m.State.Type == "STREAM":
			r.keepState(m.State.Stream, m.State.Raw)
		case m.Trace != nil && m.Trace.Error != nil:
			r.errors = append(r.errors, clip(string(line), 400))
		case m.Log != nil && m.Log.Level == "WARN":
			r.warnings++
			if len(r.warnSample) < 5 {
				r.warnSample = append(r.warnSample, clip(string(line), 300))
			}
		}
	}
	if lastN != nil {
		r.byStream[string(last)] = *lastN
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the connector's output: %w", err)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// configuredCatalog runs discover and writes a configured catalog of the named streams (all but skip when names is
// nil):
// incremental with the default cursor where the stream supports it, full refresh otherwise.
func configuredCatalog(ctx context.Context, c connector, cfgPath, out string, names, skip []string) error {
	cmd, stderr, closeStderr, err := c.command(ctx, "discover", "--config", cfgPath)
	if err != nil {
		return err
	}
	defer closeStderr()
	raw, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("discover: %w (%s)", err, stderr.String())
	}
	msgs, err := protocol.ParseAirbyteOutput(raw)
	if err != nil {
		return fmt.Errorf("discover: %w", err)
	}
	cat := msgs.Catalog()
	if cat == nil || len(cat.Streams) == 0 {
		return fmt.Errorf("discover printed no CATALOG message with streams")
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	skipped := map[string]bool{}
	for _, n := range skip {
		skipped[n] = true
	}
	var configured []map[string]any
	for _, s := range cat.Streams {
		if names != nil && !want[s.Name] || names == nil && skipped[s.Name] {
			continue
		}
		delete(want, s.Name)
		entry := map[string]any{"stream": s.Raw, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
		if slices.Contains(s.SupportedSyncModes, "incremental") {
			entry["sync_mode"], entry["destination_sync_mode"] = "incremental", "append"
			if s.DefaultCursorField != nil {
				entry["cursor_field"] = s.DefaultCursorField
			}
		}
		configured = append(configured, entry)
	}
	if len(want) > 0 {
		return fmt.Errorf("discover has no streams %v", keys(want))
	}
	return writeJSON(out, map[string]any{"streams": configured})
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// sandboxProc is a running sandbox binary.
type sandboxProc struct {
	cmd *exec.Cmd
	url string
	// client reads the admin endpoints; it trusts the sandbox's certificate when it serves HTTPS.
	client *http.Client
	once   sync.Once
	cpu    time.Duration
	done   chan struct{}
}

// startSandbox starts the sandbox and waits for the base URL it prints first. Its log goes to dir/sandbox.log.
// certFile, when set, is where the sandbox writes its certificate (--tls-cert), which the admin client trusts.
func startSandbox(ctx context.Context, bin string, args []string, dir, certFile string) (*sandboxProc, error) {
	logf, err := os.Create(filepath.Join(dir, "sandbox.log"))
	if err != nil {
		return nil, fmt.Errorf("creating the sandbox log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("sandbox stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	p := &sandboxProc{cmd: cmd, done: make(chan struct{}), client: http.DefaultClient}
	first := make(chan string, 1)
	go func() {
		defer close(p.done)
		defer logf.Close()
		br := bufio.NewReader(out)
		line, _ := br.ReadString('\n')
		first <- strings.TrimSpace(line)
		_, _ = io.Copy(logf, br)
	}()
	select {
	case u := <-first:
		if !strings.HasPrefix(u, "http") {
			p.stop()
			return nil, fmt.Errorf("the sandbox printed %q instead of its URL (see %s)", u, filepath.Join(dir, "sandbox.log"))
		}
		p.url = u
		if certFile != "" {
			if p.client, err = trustingClient(certFile); err != nil {
				p.stop()
				return nil, err
			}
		}
	case <-time.After(2 * time.Minute):
		p.stop()
		return nil, errors.New("the sandbox printed no URL within 2 minutes")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	return p, nil
}

// stop ends the sandbox (SIGTERM, then SIGKILL after 10 s) and returns the CPU time it used.
func (p *sandboxProc) stop() time.Duration {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
		}
		<-p.done
		if ps := p.cmd.ProcessState; ps != nil {
			p.cpu = ps.UserTime() + ps.SystemTime()
		}
	})
	return p.cpu
}

// sample polls the sandbox's stats every interval until the returned function is called, which returns the
// samples. A failed poll is skipped: the samples are a refinement, the totals come from the final stats.
func (p *sandboxProc) sample(ctx context.Context, every time.Duration) func() []sample {
	ctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	done := make(chan []sample, 1)
	go func() {
		var out []sample
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- out
				return
			case <-t.C:
			}
			var st sandboxStats
			if err := p.statsInto(ctx, &st); err != nil {
				continue
			}
			s := sample{at: time.Since(start), ok: map[string]int{}}
			for path, byStatus := range st.ByPath {
				for status, n := range byStatus {
					if status != "429" {
						s.ok[path] += n
					}
				}
			}
			out = append(out, s)
		}
	}()
	return func() []sample {
		cancel()
		return <-done
	}
}

// statsInto reads GET /_sandbox/stats.
func (p *sandboxProc) statsInto(ctx context.Context, st *sandboxStats) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.admin(ctx, http.MethodGet, "/_sandbox/stats", nil, func(body io.Reader) error {
		return json.NewDecoder(body).Decode(st)
	})
}

// trustingClient is an HTTP client whose only root is the certificate in certFile.
func trustingClient(certFile string) (*http.Client, error) {
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("the sandbox's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("the sandbox's certificate %s holds no PEM certificate", certFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// loadAvg is the 1-minute load average: the machine is shared, so every figure carries it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// tail keeps the last 4 KiB written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-4096:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
