package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
)

// progressSync runs one sync of a few streams in process against a fresh sandbox, in the given dialect.
func progressSync(t *testing.T, singer bool, streams ...string) (stdout, stderr string) {
	t.Helper()
	srv, err := sandbox.Start(sandbox.Options{Seed: 3, Scale: sandbox.Scale{Events: 300, Profiles: 40}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`{"api_key":%q,"base_url":%q,"rate_limit_scale":100}`, sandbox.DefaultAPIKey, srv.URL())), 0o600))
	var entries []string
	for _, s := range streams {
		if singer {
			entries = append(entries, fmt.Sprintf(`{"tap_stream_id":%q,"stream":%q,"schema":{"type":"object"},"metadata":[{"breadcrumb":[],"metadata":{"selected":true}}]}`, s, s))
		} else {
			entries = append(entries, fmt.Sprintf(`{"stream":{"name":%q,"json_schema":{},"supported_sync_modes":["full_refresh"]},"sync_mode":"full_refresh","destination_sync_mode":"overwrite"}`, s))
		}
	}
	cat := filepath.Join(dir, "catalog.json")
	require.NoError(t, os.WriteFile(cat, []byte(`{"streams":[`+strings.Join(entries, ",")+`]}`), 0o600))
	var out, errb bytes.Buffer
	argv := []string{"read", "--config", cfg, "--catalog", cat}
	if singer {
		argv = []string{"--config", cfg, "--catalog", cat}
	}
	now := srv.Now()
	code := Run(context.Background(), argv, Env{Stdout: &out, Stderr: &errb, Now: func() time.Time { return now }})
	require.Equal(t, 0, code, "%s\n%s", out.String(), errb.String())
	return out.String(), errb.String()
}

// Every stream of an Airbyte read ends with a progress LOG whose count is the records it wrote; the output stays
// valid protocol.
func TestAirbyteReadReportsProgress(t *testing.T) {
	stdout, _ := progressSync(t, false, "events", "list_memberships", "accounts")
	msgs, err := protocol.ParseAirbyteOutput([]byte(stdout))
	require.NoError(t, err)
	require.NoError(t, protocol.NewAirbyteValidator(t).ValidateOutput([]byte(stdout)))
	final := regexp.MustCompile(`^progress: ([a-z_]+): ([0-9,]+) records .* finished in `)
	reported := map[string]int{}
	for _, l := range msgs.Logs() {
		if m := final.FindStringSubmatch(l.Message); m != nil {
			n, err := strconv.Atoi(strings.ReplaceAll(m[2], ",", ""))
			require.NoError(t, err)
			reported[m[1]] = n
		}
	}
	for _, s := range []string{"events", "list_memberships", "accounts"} {
		require.Contains(t, reported, s, "a final progress report of %s", s)
		require.Equal(t, len(msgs.Records(s)), reported[s], "the report counts the records of %s", s)
	}
	require.Regexp(t, `progress: events: [0-9,]+ records \([0-9,]+/s\), \d+ of \d+ windows done, finished in`, stdout)
	require.Regexp(t, `progress: list_memberships: [0-9,]+ records \([0-9,]+/s\), \d+ of \d+ parents done, finished in`, stdout)
}

// A Singer sync writes the SDK's METRIC lines on stderr: record_count counters that add up to the records of each
// stream, a sync_duration per stream, and an http_request_duration per request.
func TestSingerSyncWritesMetrics(t *testing.T) {
	stdout, stderr := progressSync(t, true, "events", "lists")
	msgs, err := protocol.ParseSingerOutput([]byte(stdout))
	require.NoError(t, err)
	counted := map[string]float64{}
	durations, requests := map[string]bool{}, 0
	for _, line := range strings.Split(stderr, "\n") {
		raw, ok := strings.CutPrefix(line, "INFO METRIC: ")
		if !ok {
			continue
		}
		var m struct {
			Type, Metric string
			Value        float64
			Tags         map[string]any
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &m), line)
		switch m.Metric {
		case "record_count":
			require.Equal(t, "counter", m.Type)
			counted[m.Tags["stream"].(string)] += m.Value
		case "sync_duration":
			require.Equal(t, "timer", m.Type)
			durations[m.Tags["stream"].(string)] = true
		case "http_request_duration":
			require.Equal(t, "timer", m.Type)
			require.EqualValues(t, 200, m.Tags["http_status_code"])
			requests++
		}
	}
	for _, s := range []string{"events", "lists"} {
		require.Equal(t, float64(len(msgs.Records(s))), counted[s], "record_count of %s", s)
		require.True(t, durations[s], "sync_duration of %s", s)
	}
	require.Positive(t, requests)
}

// progressRecorder is a writer that keeps the progress reports it is given.
type progressRecorder struct {
	emit.Writer
	mu      sync.Mutex
	reports []emit.Progress
}

func (r *progressRecorder) Progress(p emit.Progress) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, p)
	return nil
}

// The board reports each running stream with its counts and the time since it started, and forgets a stream
// once it ended (its final snapshot is returned to the engine, which writes it).
func TestProgressBoardReportsRunningStreams(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newProgressBoard(func() time.Time { return now })
	ev := b.start("events")
	ev.planned(&streamPlan{mode: readWindows, tasks: make([]task, 8)})
	ev.records.Add(400)
	ev.done.Add(2)
	li := b.start("lists")
	now = now.Add(10 * time.Second)
	rec := &progressRecorder{}
	b.report(rec)
	require.Equal(t, []emit.Progress{
		{Stream: "events", Records: 400, Elapsed: 10 * time.Second, TasksDone: 2, TasksTotal: 8, Unit: "windows"},
		{Stream: "lists", Elapsed: 10 * time.Second, Unit: "tasks"},
	}, rec.reports)
	final := b.end(ev)
	require.True(t, final.Final)
	require.Equal(t, int64(400), final.Records)
	rec.reports = nil
	b.report(rec)
	require.Len(t, rec.reports, 1)
	require.Equal(t, "lists", rec.reports[0].Stream)
	b.end(li)

	stop := b.runReporter(context.Background(), rec, time.Hour, nil)
	stop() // stops and waits, without a report when the interval never came
}

// The live display redraws in place: each drawing first erases the lines of the previous one.
func TestLiveDisplayRedrawsInPlace(t *testing.T) {
	require.Nil(t, newLiveDisplay(&bytes.Buffer{}), "only a terminal gets a live display")
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	defer f.Close()
	require.Nil(t, newLiveDisplay(f), "a file is not a terminal")
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	require.Nil(t, newLiveDisplay(null), "/dev/null is a character device but not a terminal")

	var buf bytes.Buffer
	d := &liveDisplay{w: &buf}
	var many []emit.Progress
	for i := 0; i < maxDisplayLines+3; i++ {
		many = append(many, emit.Progress{Stream: fmt.Sprintf("s%02d", i), Records: int64(i)})
	}
	d.draw(many[:2])
	require.Equal(t, "s00: 0 records (0/s)\ns01: 1 records (0/s)\n", buf.String())
	buf.Reset()
	d.draw(many)
	require.True(t, strings.HasPrefix(buf.String(), strings.Repeat("\x1b[1A\x1b[2K", 2)), "the two lines drawn before are erased")
	require.Contains(t, buf.String(), "... and 3 more streams\n")
	buf.Reset()
	d.clear()
	require.Equal(t, strings.Repeat("\x1b[1A\x1b[2K", maxDisplayLines+1), buf.String())
}
