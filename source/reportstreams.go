package source

import (
	"context"
	"fmt"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/reports"
)

// Report streams (catalog.Report) are read by the reports package: it plans every POST within the endpoint's daily
// quota, reads the pages and turns them into rows and states; the engine supplies the client, the shared quota
// ledger, the account (its timezone and metrics, read once per sync) and the writer.

// reportRun is what the report streams of one sync share.
type reportRun struct {
	ledger *reports.Ledger
	// needMetrics: some selected report looks a metric up (a discovered conversion metric, or every metric).
	needMetrics bool
	once        sync.Once
	acct        reports.Account
	acctErr     error
}

// newReportRun builds the ledger from the state of every report stream, selected or not (they spend one quota per
// endpoint), and notes what the selected ones need of the account.
func newReportRun(cfg Config, sels []catalog.Selection, states map[string]json.RawMessage, syncStart time.Time) (*reportRun, error) {
	rr := &reportRun{ledger: reports.NewLedger(syncStart, cfg.RateLimitScale)}
	var quota int
	if json.Unmarshal(cfg.options["report_daily_quota"], &quota) == nil && quota > 0 {
		rr.ledger = reports.NewLedgerWithLimit(syncStart, quota)
	}
	for _, d := range cfg.reports {
		raw, ok := states[d.Name]
		if !ok {
			continue
		}
		st, err := reports.DecodeState(d.Name, raw)
		if err != nil {
			return nil, configErrorf("state file: %v", err)
		}
		rr.ledger.Count(st)
	}
	for _, sel := range sels {
		if d, ok := cfg.report(sel.Stream.Name); ok {
			if (d.Kind.Messages && d.ConversionMetricID == "") || (d.Kind.Aggregate && d.MetricID == "") {
				rr.needMetrics = true
			}
		}
	}
	return rr, nil
}

// account reads the account's timezone (and metrics) once, for every report stream of the sync.
func (e *engine) account(ctx context.Context) (reports.Account, error) {
	e.reports.once.Do(func() { e.reports.acct, e.reports.acctErr = reports.Discover(ctx, e.client, e.reports.needMetrics) })
	return e.reports.acct, e.reports.acctErr
}

// readReport reads one report stream: plan within the day's quota, then read, writing rows and states through
// the stream's writer. A spent quota ends it with the client's KindRateLimited error (and its RetryAt), after a
// checkpoint, which runStream reports as INCOMPLETE with a transient error.
func (e *engine) readReport(ctx context.Context, sel catalog.Selection, prog *streamProgress, prevRaw json.RawMessage) error {
	name := sel.Stream.Name
	def, ok := e.cfg.report(name)
	if !ok {
		return fmt.Errorf("stream %s is not a report of this config", name)
	}
	r := &streamRun{s: sel.Stream, prog: prog}
	var prev reports.State
	if sel.Incremental && len(prevRaw) > 0 {
		var err error
		if prev, err = reports.DecodeState(name, prevRaw); err != nil {
			return configErrorf("state file: %v", err)
		}
	}
	acct, err := e.account(ctx)
	if err == nil {
		var p *reports.Plan
		if p, err = def.Plan(prev, e.syncStart, acct, e.reports.ledger); err == nil {
			prog.total.Store(int64(len(p.Requests)))
			prog.unit.Store(ptr("report requests"))
			err = p.Read(ctx, e.client, reportSink{e: e, r: r})
		}
	}
	e.endStream(r, prevRaw)
	return err
}

func ptr[T any](v T) *T { return &v }

// reportSink writes what a report stream produces through the engine's writer.
type reportSink struct {
	e *engine
	r *streamRun
}

func (s reportSink) Row(row []byte) error {
	s.r.markRunning(s.e.out)
	s.r.prog.records.Add(1)
	if err := s.e.out.Record(s.r.s.Name, row); err != nil {
		return fmt.Errorf("writing a record of stream %s: %w", s.r.s.Name, err)
	}
	return nil
}

func (s reportSink) State(state []byte) error {
	s.r.prog.done.Add(1)
	return s.e.writeState(s.r, state)
}

func (s reportSink) Log(level, msg string) { _ = s.e.out.Log(level, s.r.s.Name+": "+msg) }
