package acceptance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// This file proves that a sync killed at any point loses nothing: each restart resumes from the last state the
// killed run printed, and the union of all runs equals a clean sync. SOAK_KILLS raises the number of kills.

// signalRun is one invocation of the binary that receives sig once it has printed `after` lines of stdout.
type signalRun struct {
	run
	// signalled is true when the signal was sent, i.e. the run printed at least `after` lines.
	signalled bool
}

// runSignalled runs the connector and sends sig after it has printed `after` complete lines. It reads stdout as it
// arrives, so the kill lands while the sync is in flight; the output is checked for the API key like runBin's.
func runSignalled(t *testing.T, sig syscall.Signal, after int, args ...string) signalRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var out bytes.Buffer
	rd := bufio.NewReaderSize(pipe, 1<<16)
	lines, sent := 0, false
	for {
		line, rerr := rd.ReadBytes('\n')
		out.Write(line)
		if len(line) > 0 && line[len(line)-1] == '\n' {
			lines++
		}
		if !sent && lines >= after {
			require.NoError(t, cmd.Process.Signal(sig))
			sent = true
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				require.NoError(t, rerr)
			}
			break
		}
	}
	err = cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else {
		require.NoError(t, err)
	}
	r := signalRun{run: run{stdout: out.Bytes(), stderr: errb.Bytes(), code: code}, signalled: sent}
	requireNoSecret(t, r.run)
	return r
}

// completeLines drops a last line cut short by the kill: a platform cannot parse it and discards it too.
func completeLines(b []byte) []byte {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[:i+1]
	}
	return nil
}

// countLines counts the lines of a run's stdout.
func countLines(b []byte) int { return bytes.Count(b, []byte("\n")) }

// stateCursors flattens a stream state into cursor positions: "datetime" for a collection,
// "parents/<id>/<field>" for a per-parent stream. A full-refresh state ({}) has none.
func stateCursors(t *testing.T, raw json.RawMessage) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m), "state %s", raw)
	for k, v := range m {
		if k == "ids_at_cursor" || k == "state_version" || k == "lookback_from" || k == "lookback_ids" {
			continue // the ids already written at the cursor's exact moment, and the format's version: not cursors
		}
		if k == "parents" {
			var parents map[string]map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(v, &parents), "state %s", raw)
			for id, fields := range parents {
				for f, fv := range fields {
					if f == "ids_at_cursor" {
						continue
					}
					var ts string
					require.NoError(t, json.Unmarshal(fv, &ts), "state %s", raw)
					tt, err := time.Parse(time.RFC3339, ts)
					require.NoError(t, err, "state %s", raw)
					out["parents/"+id+"/"+f] = tt
				}
			}
			continue
		}
		var ts string
		require.NoError(t, json.Unmarshal(v, &ts), "state %s", raw)
		tt, err := time.Parse(time.RFC3339, ts)
		require.NoError(t, err, "state %s", raw)
		out[k] = tt
	}
	return out
}

// requireForward fails when next moves any cursor of prev backwards, or drops one.
func requireForward(t *testing.T, stream string, prev, next json.RawMessage) {
	t.Helper()
	if prev == nil {
		return
	}
	p, n := stateCursors(t, prev), stateCursors(t, next)
	for k, pt := range p {
		nt, ok := n[k]
		require.True(t, ok, "stream %s: state %s dropped cursor %s of the earlier state %s", stream, next, k, prev)
		require.False(t, nt.Before(pt), "stream %s: state moved backwards from %s to %s", stream, prev, next)
	}
}

// coveredBy says whether a row's cursor lies below what the stream's state already covers: a resumed sync must
// never read such a row again (that is the whole point of the state).
func coveredBy(t *testing.T, s catalog.Stream, state json.RawMessage, row map[string]any) bool {
	t.Helper()
	if state == nil || s.Cursor == nil {
		return false
	}
	cur := stateCursors(t, state)
	key := s.Cursor.Field
	if s.Kind == catalog.PerParent {
		parent, _ := row[s.ParentKey].(string)
		key = "parents/" + parent + "/" + s.Cursor.Field
	}
	c, ok := cur[key]
	if !ok {
		return false
	}
	return cursorOf(t, s, row).Before(c)
}

// killTally sums what the kill tests saw, for the soak report.
type killTally struct {
	kills, runs, records, incDuplicates, fullRereads int
}

// TestKillRestartLosesNothing SIGKILLs a multi-stream incremental sync at seeded random points and restarts it
// from the last state each stream printed, until a run completes. It checks: the union of the records equals a
// clean sync's; a resumed run never re-reads a row its state covers (so duplicates are bounded by what the last
// checkpoint could not cover); no state moves backwards; no cursor passes the moment the first run started.
func TestKillRestartLosesNothing(t *testing.T) {
	kills := soakCount(t, "SOAK_KILLS", 6)
	// Latency stretches a run to about a second, so kills land at many different points of it.
	srv := startSandbox(t, sandbox.Options{Seed: 77, Latency: sandbox.Latency{Min: 20 * time.Millisecond, Max: 60 * time.Millisecond}})
	cfg := configFor(t, srv, nil)
	streams := soakStreams(t)
	cat := configuredCatalog(t, cfg, true, soakStreamNames()...)

	clean := runBin(t, "read", "--config", cfg, "--catalog", cat)
	require.Equal(t, 0, clean.code, "%s", tail(clean.stdout))
	co := parseAirbyte(t, clean.stdout)
	cleanLines := countLines(clean.stdout)

	tally := killChains(t, 77, kills, cleanLines, cfg, cat, streams, co)
	t.Logf("SOAK kills: %d SIGKILLs survived over %d runs; %d records read, %d incremental duplicates, %d full-refresh re-reads; union equals the clean sync (%d records)",
		tally.kills, tally.runs, tally.records, tally.incDuplicates, tally.fullRereads, cleanTotal(co, streams))
}

// TestKillRestartWhileWindowsSplit kills syncs of an account whose events crowd into a burst week, where idle
// workers split the dense windows while they run: a checkpoint taken between a split window's halves must resume
// with nothing lost, and nothing written twice but the records at a checkpoint's own timestamp.
func TestKillRestartWhileWindowsSplit(t *testing.T) {
	kills := soakCount(t, "SOAK_KILLS", 6)
	srv := startSandbox(t, sandbox.Options{Seed: 79, Scale: sandbox.Scale{Events: 20_000},
		EventSkew: sandbox.EventSkew{Growth: 100, Burst: 50, BurstAgo: 7 * 24 * time.Hour},
		Latency:   sandbox.Latency{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	cfg := configFor(t, srv, map[string]any{"max_concurrency": 8})
	events, ok := catalog.Lookup("events")
	require.True(t, ok)
	cat := configuredCatalog(t, cfg, true, "events")

	clean := runBin(t, "read", "--config", cfg, "--catalog", cat)
	require.Equal(t, 0, clean.code, "%s", tail(clean.stdout))
	require.Contains(t, string(clean.stdout), "events: split", "the skewed account makes idle workers split windows:\n%s", grepLogs(clean.stdout))
	co := parseAirbyte(t, clean.stdout)
	cleanLines := countLines(clean.stdout)

	tally := killChains(t, 79, kills, cleanLines, cfg, cat, []catalog.Stream{events}, co)
	t.Logf("SOAK kills while windows split: %d SIGKILLs survived over %d runs; %d records read, %d incremental duplicates; union equals the clean sync (%d records)",
		tally.kills, tally.runs, tally.records, tally.incDuplicates, len(co.Records("events")))
}

func cleanTotal(o protocol.Messages, streams []catalog.Stream) int {
	n := 0
	for _, s := range streams {
		n += len(o.Records(s.Name))
	}
	return n
}

// killChains runs kill chains (killChain) until kills SIGKILLs have been survived, or one chain fails; the kill
// points come from a generator seeded with seed, so a run can be repeated.
func killChains(t *testing.T, seed uint64, kills, cleanLines int, cfg, cat string, streams []catalog.Stream, clean protocol.Messages) killTally {
	rng := rand.New(rand.NewPCG(seed, uint64(kills)))
	var tally killTally
	for chain := 1; tally.kills < kills; chain++ {
		t.Run("chain="+strconv.Itoa(chain), func(t *testing.T) {
			killChain(t, rng, kills-tally.kills, cleanLines, cfg, cat, streams, clean, &tally)
		})
		if t.Failed() {
			break
		}
	}
	return tally
}

// killChain restarts one sync until a run completes; it kills at most `budget` runs.
func killChain(t *testing.T, rng *rand.Rand, budget, cleanLines int, cfg, cat string, streams []catalog.Stream, clean protocol.Messages, tally *killTally) {
	names := make([]string, 0, len(streams))
	for _, s := range streams {
		names = append(names, s.Name)
	}
	start := time.Now().UTC().Truncate(time.Second)
	merged := map[string]json.RawMessage{}
	union := map[string]map[string]map[string]any{}
	for _, s := range streams {
		union[s.Name] = map[string]map[string]any{}
	}
	done := false
	for attempt := 0; !done; attempt++ {
		require.Less(t, attempt, 20*budget+20, "the sync never completed")
		args := []string{"read", "--config", cfg, "--catalog", cat}
		if len(merged) > 0 {
			args = append(args, "--state", mergedStateFile(t, merged))
		}
		after := cleanLines + 1 // past the end: this run completes
		if budget > 0 {
			after = 1 + rng.IntN(cleanLines)
		}
		r := runSignalled(t, syscall.SIGKILL, after, args...)
		tally.runs++
		if r.signalled && r.code == 128+int(syscall.SIGKILL) {
			tally.kills++
			budget--
		} else {
			require.Equal(t, 0, r.code, "run %d ended with %d:\n%s", attempt+1, r.code, tail(r.stdout))
			done = true
		}
		o := parseAirbyte(t, completeLines(r.stdout))
		passed := map[string]json.RawMessage{}
		for k, v := range merged {
			passed[k] = v
		}
		for _, s := range streams {
			for _, row := range o.Rows(s.Name) {
				tally.records++
				require.False(t, coveredBy(t, s, passed[s.Name], row),
					"stream %s re-read row %s although the state it resumed from (%s) covers it", s.Name, pkOf(s, row), passed[s.Name])
				k := pkOf(s, row)
				if _, dup := union[s.Name][k]; dup {
					if s.Cursor != nil {
						tally.incDuplicates++
					} else {
						tally.fullRereads++
					}
				}
				union[s.Name][k] = row
			}
			for _, st := range o.StatesOf(s.Name) {
				requireForward(t, s.Name, merged[s.Name], st.StreamState)
				for k, c := range stateCursors(t, st.StreamState) {
					require.False(t, c.After(start), "stream %s: cursor %s=%s passes the moment the first run started (%s)", s.Name, k, c, start)
				}
				merged[s.Name] = st.StreamState
			}
		}
		if done {
			requireStatuses(t, o, names, "COMPLETE")
		}
	}
	for _, s := range streams {
		got := make([]map[string]any, 0, len(union[s.Name]))
		for _, row := range union[s.Name] {
			got = append(got, row)
		}
		requireSameRows(t, s, clean.Rows(s.Name), got)
	}
}

// mergedStateFile writes the per-stream states as an Airbyte state file.
func mergedStateFile(t *testing.T, states map[string]json.RawMessage) string {
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	var arr []map[string]any
	for _, n := range names {
		arr = append(arr, map[string]any{"type": "STREAM", "stream": map[string]any{
			"stream_descriptor": map[string]any{"name": n}, "stream_state": states[n]}})
	}
	return writeJSON(t, "state.json", arr)
}

// TestSigtermEndsCleanly: SIGTERM in the middle of a sync makes the connector write its buffered records, then for
// every stream a state covering them (no record after a stream's last state), then a transient error, and exit 143.
// Resuming from those states completes the data. The full-refresh case signals between the pages of multi-page
// collections, where no cursor exists to checkpoint.
func TestSigtermEndsCleanly(t *testing.T) {
	cases := []struct {
		name        string
		incremental bool
		streams     []string
		latency     time.Duration
	}{
		{"incremental mix", true, soakStreamNames(), 20 * time.Millisecond},
		{"full refresh", false, []string{"events", "profiles", "catalog_variants", "coupon_codes", "tags"}, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSandbox(t, sandbox.Options{Seed: 78, Latency: sandbox.Latency{Min: tc.latency / 4, Max: tc.latency}})
			cfg := configFor(t, srv, nil)
			cat := configuredCatalog(t, cfg, tc.incremental, tc.streams...)
			clean := runBin(t, "read", "--config", cfg, "--catalog", cat)
			require.Equal(t, 0, clean.code, "%s", tail(clean.stdout))
			requireSigtermClean(t, cfg, cat, tc.streams, parseAirbyte(t, clean.stdout), countLines(clean.stdout))
		})
	}
}

func requireSigtermClean(t *testing.T, cfg, cat string, names []string, clean protocol.Messages, cleanLines int) {
	// Signal a quarter of the way through; should the sync finish before the signal lands (a busy machine), try
	// earlier.
	var r signalRun
	for _, after := range []int{cleanLines / 4, cleanLines / 16, 1} {
		r = runSignalled(t, syscall.SIGTERM, after, "read", "--config", cfg, "--catalog", cat)
		if r.code != 0 {
			break
		}
	}
	require.True(t, r.signalled)
	require.Equal(t, 143, r.code, "exit code after SIGTERM; output:\n%s", tail(r.stdout))
	require.True(t, bytes.HasSuffix(r.stdout, []byte("\n")), "the last line is cut short")
	o := parseAirbyte(t, r.stdout)
	require.NotEmpty(t, o, "nothing printed before the signal landed")
	last := o[len(o)-1]
	require.NotNil(t, last.Trace)
	require.NotNil(t, last.Trace.Error, "the last message is the interruption's error trace")
	require.Equal(t, "transient_error", last.Trace.Error.FailureType)
	var interrupted []string
	for _, name := range names {
		st := o.StreamStatuses(name)
		require.NotEmpty(t, st, "stream %s has no status", name)
		final := st[len(st)-1]
		require.Contains(t, []string{"COMPLETE", "INCOMPLETE"}, final, "stream %s", name)
		if final == "INCOMPLETE" {
			interrupted = append(interrupted, name)
		}
	}
	t.Logf("SIGTERM after %d of %d lines interrupted %v", countLines(r.stdout), cleanLines, interrupted)
	require.NotEmpty(t, interrupted, "the signal landed after the sync was done: the test proves nothing")
	// Every record of a completed stream is followed by a state that counts it; an interrupted stream may end with
	// records past its last checkpoint, which no state may claim: the resume below reads them again.
	requireStateCounts(t, o, interrupted...)

	resumed := runBin(t, "read", "--config", cfg, "--catalog", cat, "--state", stateFile(t, o))
	require.Equal(t, 0, resumed.code, "%s", tail(resumed.stdout))
	ro := parseAirbyte(t, resumed.stdout)
	for _, name := range names {
		s, ok := catalog.Lookup(name)
		require.True(t, ok)
		merged := map[string]map[string]any{}
		for _, rows := range [][]map[string]any{o.Rows(name), ro.Rows(name)} {
			for _, row := range rows {
				merged[pkOf(s, row)] = row
			}
		}
		got := make([]map[string]any, 0, len(merged))
		for _, row := range merged {
			got = append(got, row)
		}
		requireSameRows(t, s, clean.Rows(name), got)
	}
}

// grepLogs returns the LOG messages of an Airbyte output, one a line.
func grepLogs(stdout []byte) string {
	var b strings.Builder
	for _, line := range bytes.Split(stdout, []byte("\n")) {
		if bytes.Contains(line, []byte(`"type":"LOG"`)) {
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
