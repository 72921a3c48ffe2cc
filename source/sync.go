package source

// What both dialects' syncs share: the inputs (catalog and state files), the client, and running the engine to an
// exit code.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// readState loads the --state file. A missing file means no state (PyAirbyte and first syncs pass one that does
// not exist yet), but it is said in a warning, since a mistyped path means a full resync.
func readState(env Env, path string) (map[string]json.RawMessage, string, error) {
	if path == "" {
		return nil, "", nil
	}
	raw, err := env.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Sprintf("state file %s does not exist: syncing every stream from its start", path), nil
	}
	if err != nil {
		return nil, "", configErrorf("state file %s cannot be read (%s): check the path given to --state", path, osErrorText(err))
	}
	st, err := emit.ParseState(raw)
	if err != nil {
		return nil, "", configErrorf("state file %s: %s", path, strings.TrimPrefix(err.Error(), "state file: "))
	}
	return st, "", nil
}

func readCatalogFile(env Env, path string, sel func([]byte) ([]catalog.Selection, error)) ([]catalog.Selection, error) {
	if path == "" {
		return nil, configErrorf("--catalog is required: pass the configured catalog JSON file")
	}
	raw, err := env.ReadFile(path)
	if err != nil {
		return nil, configErrorf("catalog file %s cannot be read (%s): check the path given to --catalog", path, osErrorText(err))
	}
	sels, err := sel(raw)
	if err != nil {
		return nil, configErrorf("catalog file %s: %v", path, err)
	}
	return sels, nil
}

func newClient(cfg Config, logf func(level, msg string), attempts int, observe func(string, int, time.Duration, bool)) (*klaviyo.Client, error) {
	c, err := klaviyo.New(klaviyo.Config{
		BaseURL:        cfg.BaseURL,
		APIKey:         cfg.APIKey,
		Timeout:        time.Duration(cfg.RequestTimeoutSeconds) * time.Second,
		MaxAttempts:    attempts,
		MaxRetryAfter:  time.Duration(cfg.MaxRetryWaitSeconds) * time.Second,
		RateScale:      cfg.RateLimitScale,
		MaxConcurrency: cfg.MaxConcurrency,
		UserAgent:      "source-klaviyo/" + Version,
		Log:            logf,
		Observe:        observe,
	})
	if err != nil {
		return nil, configErrorf("config: %v", err)
	}
	return c, nil
}

// hasReports reports whether a selection reads a report stream.
func hasReports(sels []catalog.Selection) bool {
	for _, s := range sels {
		if s.Stream.Kind == catalog.Report {
			return true
		}
	}
	return false
}

// runSync runs the engine with either writer and turns failed streams into the exit code. display is the live
// progress display for a terminal, nil for none.
func runSync(ctx context.Context, env Env, cfg Config, w emit.Writer, sels []catalog.Selection, states map[string]json.RawMessage, display *liveDisplay) int {
	logf := func(level, msg string) { _ = w.Log(level, msg) }
	observe := func(endpoint string, status int, took time.Duration, ok bool) {
		_ = w.Request(emit.RequestMetric{Endpoint: endpoint, Status: status, Duration: took, OK: ok})
	}
	client, err := newClient(cfg, logf, 0, observe)
	if err != nil {
		_ = w.Error(emit.TraceError{Message: err.Error(), Failure: failureType(err)})
		_ = w.Flush()
		return 1
	}
	start := env.Now().UTC().Truncate(time.Second)
	bound := "the sync start"
	if !cfg.EndDate.IsZero() && cfg.EndDate.Before(start) {
		// end_date bounds every read as the sync start does: nothing after it is read, and no cursor passes it, so
		// the next sync (with a later end_date, or none) goes on from there.
		start, bound = cfg.EndDate, "end_date"
	}
	board := newProgressBoard(env.Now)
	rr, err := newReportRun(cfg, sels, states, start)
	if err != nil {
		_ = w.Error(emit.TraceError{Message: err.Error(), Failure: failureType(err)})
		_ = w.Flush()
		return 1
	}
	e := &engine{cfg: cfg, client: client, out: w, syncStart: start, parents: newParentCache(), board: board, reports: rr}
	_ = w.Log("INFO", fmt.Sprintf("source-klaviyo %s: syncing %d streams, cursors bounded by %s %s", Version, len(sels), bound, start.Format(cursorFormat)))
	stopReporter := board.runReporter(ctx, w, time.Duration(cfg.ProgressIntervalSeconds)*time.Second, display)
	failed := e.run(ctx, sels, states)
	stopReporter()
	if hasReports(sels) {
		_ = w.Log("INFO", rr.ledger.Summary())
	}
	stats := client.Stats()
	_ = w.Log("INFO", fmt.Sprintf("requests: %d sent, %d pages, %d resources, %d retries %v, %d rate-limited (429), %.1f MB read",
		stats.Requests, stats.Pages, stats.Records, stats.Retries, stats.RetriesByReason, stats.RateLimited, float64(stats.Bytes)/1e6))
	if ctx.Err() != nil {
		_ = w.Error(emit.TraceError{Message: "The sync was interrupted; the last state written is safe to resume from.", Failure: emit.TransientError})
		_ = w.Flush()
		return ExitInterrupted
	}
	if len(failed) == 0 {
		if err := w.Flush(); err != nil {
			return 1
		}
		return 0
	}
	names := make([]string, 0, len(failed))
	kind := emit.ConfigError
	for _, f := range failed {
		names = append(names, f.name)
		if ft := failureType(f.err); ft != emit.ConfigError {
			kind = ft
		}
	}
	sort.Strings(names)
	_ = w.Error(emit.TraceError{
		Message: fmt.Sprintf("%d of %d streams did not sync: %s (see the errors above); the others completed.", len(failed), len(sels), strings.Join(names, ", ")),
		Failure: kind,
	})
	_ = w.Flush()
	return 1
}
