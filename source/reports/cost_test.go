package reports

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
)

// TestBackfillCostOfTheDefaults measures what docs/reports.md quotes: the report requests (pages included) of a
// two-year backfill of the eight default streams, then of the next day's sync, for an account of 500 campaigns
// and 100 flows, by running the planner and the reader against the sandbox at that scale. Run it with
//
//	go test ./source/reports/ -run TestBackfillCostOfTheDefaults -v
func TestBackfillCostOfTheDefaults(t *testing.T) {
	s, c := startSandbox(t, func(o *sandbox.Options) {
		o.Scale = sandbox.Scale{Campaigns: 500, Flows: 100, Events: 40000, Segments: 20, Forms: 10}
	})
	cfg := Config{StartDate: s.Now().AddDate(-2, 0, 0)}
	defs, err := Definitions(cfg, nil)
	require.NoError(t, err)
	acct, err := Discover(context.Background(), c, true)
	require.NoError(t, err)

	type cost struct{ planned, sent, rows, stateBytes int }
	run := func(states map[string]State) (map[string]cost, map[string]State) {
		led := NewLedger(s.Now(), 1)
		for _, st := range states {
			led.Count(st)
		}
		out, next := map[string]cost{}, map[string]State{}
		for _, def := range defs {
			p, err := def.Plan(states[def.Name], s.Now(), acct, led)
			require.NoError(t, err)
			sink := &memSink{}
			require.NoError(t, p.Read(context.Background(), c, sink), def.Name)
			st := sink.lastState(t, def.Name)
			next[def.Name] = st
			sent := st.Quota.Used
			if def.Kind.Daily == 0 {
				sent = pagesIn(sink.logs)
			}
			out[def.Name] = cost{planned: len(p.Requests), sent: sent, rows: len(sink.rows), stateBytes: len(sink.states[len(sink.states)-1])}
		}
		return out, next
	}
	backfill, states := run(map[string]State{})
	s.Advance(24 * time.Hour)
	daily, _ := run(states)

	var b strings.Builder
	fmt.Fprintf(&b, "| stream | backfill requests (planned) | rows | next day's requests | rows written | state bytes |\n|---|---|---|---|---|---|\n")
	total, totalDaily, busiest := 0, 0, 0
	for _, def := range defs {
		bf, d := backfill[def.Name], daily[def.Name]
		fmt.Fprintf(&b, "| %s | %d (%d) | %d | %d | %d | %d |\n", def.Name, bf.sent, bf.planned, bf.rows, d.sent, d.rows, d.stateBytes)
		if def.Kind.Daily > 0 {
			total += bf.sent
			totalDaily += d.sent
			busiest = max(busiest, bf.sent)
		}
	}
	fmt.Fprintf(&b, "Reporting API total: %d requests for the backfill (the busiest endpoint %d of its 225 a day), %d a day after.\n", total, busiest, totalDaily)
	t.Log("\n" + b.String())
	assert.LessOrEqual(t, busiest, 225, "a two-year backfill of the defaults fits in one day of every endpoint's quota")
	assert.LessOrEqual(t, totalDaily, 2*7, "a daily sync costs one or two requests per report endpoint")
	for _, def := range defs {
		assert.Equal(t, backfill[def.Name].planned, backfill[def.Name].sent, "%s: every window fits one page of 500 results", def.Name)
	}
}

// pagesIn reads the pages count of a stream's last log line ("sent N report requests (P pages)").
func pagesIn(logs []string) int {
	var sent, pages int
	for _, l := range logs {
		if i := strings.Index(l, ": sent "); i >= 0 {
			_, _ = fmt.Sscanf(l[i:], ": sent %d report requests (%d pages)", &sent, &pages)
		}
	}
	return pages
}
