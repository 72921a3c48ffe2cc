package interop_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/protocol"
)

// singerKeys maps each stream of a catalog to its key properties.
func singerKeys(c *protocol.SingerCatalog) map[string][]string {
	out := map[string][]string{}
	for _, s := range c.Streams {
		out[s.TapStreamID] = s.KeyProperties
	}
	return out
}

// discoverSinger runs `source-klaviyo --config c --discover` and writes the catalog next to the config, unchanged,
// the way a user would pass it straight back with --catalog.
func discoverSinger(t *testing.T, dir, cfg string) (string, *protocol.SingerCatalog) {
	t.Helper()
	r := runCmd(t, dir, nil, nil, built.connector, "--config", cfg, "--discover")
	require.Equal(t, 0, r.code, "--discover failed: %s", tail(string(r.stderr), 2000))
	cat, err := protocol.ParseSingerCatalog(r.stdout)
	require.NoError(t, err, "--discover stdout")
	require.NotEmpty(t, cat.Streams)
	path := filepath.Join(dir, "catalog.json")
	require.NoError(t, os.WriteFile(path, r.stdout, 0o600))
	return path, cat
}

// piped is the outcome of `tap | target`: each side's result, and the RECORD count per stream the tap sent.
type piped struct {
	tap, target result
	sent        map[string]int
}

// pipe runs the connector as a Singer tap into a target's stdin, as `source-klaviyo ... | target` would, keeping a
// copy of what crossed the pipe so the test knows how many records the target was given.
func pipe(t *testing.T, dir string, tapArgs []string, target string, targetArgs ...string) piped {
	t.Helper()
	tap := exec.Command(built.connector, tapArgs...)
	tgt := exec.Command(target, targetArgs...)
	for _, c := range []*exec.Cmd{tap, tgt} {
		c.Dir = dir
		c.Env = clientEnv(dir)
	}
	pr, pw := io.Pipe()
	var sent, tapErr, tgtOut, tgtErr bytes.Buffer
	tap.Stdout = io.MultiWriter(pw, &sent)
	tap.Stderr = &tapErr
	tgt.Stdin = pr
	tgt.Stdout, tgt.Stderr = &tgtOut, &tgtErr
	require.NoError(t, tgt.Start(), "starting %s", target)
	tgtDone := make(chan error, 1)
	go func() {
		err := tgt.Wait()
		// A target that exits early must not leave the tap blocked on a full pipe.
		_ = pr.CloseWithError(errors.New("target exited"))
		tgtDone <- err
	}()
	require.NoError(t, tap.Start(), "starting the tap")
	tapRunErr := tap.Wait()
	_ = pw.Close()
	tgtRunErr := <-tgtDone

	p := piped{
		tap:    result{stdout: sent.Bytes(), stderr: tapErr.Bytes(), code: exitCode(t, tapRunErr)},
		target: result{stdout: tgtOut.Bytes(), stderr: tgtErr.Bytes(), code: exitCode(t, tgtRunErr)},
		sent:   map[string]int{},
	}
	require.NotContains(t, p.tap.combined(), testKey, "the tap printed the API key")
	require.NotContains(t, p.target.combined(), testKey, "the target printed the API key")
	msgs, err := protocol.ParseSingerOutput(p.tap.stdout)
	require.NoError(t, err, "the tap's output")
	for name, recs := range msgs.RecordsByStream() {
		p.sent[name] = len(recs)
	}
	return p
}

// exitCode turns a Wait error into an exit code; only a failure to run at all is fatal here.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil && strings.Contains(err.Error(), "target exited") {
		return -1 // the tap's stdout copy failed because the target went away; the target's result says why
	}
	require.NoError(t, err)
	return 0
}

// requirePipeOK fails with both sides' logs when either end of the pipe failed.
func requirePipeOK(t *testing.T, p piped) {
	t.Helper()
	require.Equal(t, 0, p.target.code, "the target failed:\n%s\n--- tap stderr:\n%s", tail(string(p.target.stderr), 4000), tail(string(p.tap.stderr), 2000))
	require.Equal(t, 0, p.tap.code, "the tap failed:\n%s", tail(string(p.tap.stderr), 4000))
}

// fullSync is one full sync of every stream, piped from the tap into a target: the test's directory, the sandbox
// it read, the Singer catalog discovered from it, and what each end of the pipe did.
type fullSync struct {
	dir string
	sb  *sandbox
	cat *protocol.SingerCatalog
	piped
}

// pipeFullSync starts a sandbox, discovers the Singer catalog and pipes a sync of all of it into target, whose
// config, written as name.json, targetConfig makes from the test's directory. It fails unless both ends succeed and
// records crossed the pipe.
func pipeFullSync(t *testing.T, target, name string, targetConfig func(dir string) map[string]any) fullSync {
	t.Helper()
	dir := t.TempDir()
	sb := startSandbox(t)
	cfg := connectorConfig(t, dir, sb)
	catPath, cat := discoverSinger(t, dir, cfg)
	tcfg := writeJSON(t, filepath.Join(dir, name+".json"), targetConfig(dir))
	p := pipe(t, dir, []string{"--config", cfg, "--catalog", catPath}, target, "--config", tcfg)
	requirePipeOK(t, p)
	require.NotEmpty(t, p.sent, "the tap sent no records")
	return fullSync{dir: dir, sb: sb, cat: cat, piped: p}
}

// requireRowsLoaded checks the rows a target holds per stream against the records the tap sent it and, for the
// streams the sandbox can count, against the sandbox's own count. An empty table counts as no rows, the same as
// no table: a target may create one from a SCHEMA message alone.
func (f fullSync) requireRowsLoaded(t *testing.T, rows map[string]int, where string) {
	t.Helper()
	loaded := map[string]int{}
	for stream, n := range rows {
		if n > 0 {
			loaded[stream] = n
		}
	}
	assert.Equal(t, f.sent, loaded, "rows per stream in %s vs records sent per stream", where)
	for stream, want := range f.sb.expectedCounts(t) {
		assert.Equal(t, want, rows[stream], "rows of %s in %s vs the sandbox's count", stream, where)
	}
}

// TestSingerPipeIntoTargetCSV pipes a full sync into MeltanoLabs' target-csv, which validates every record against
// the SCHEMA message before writing it, and checks one file per stream with one row per record.
func TestSingerPipeIntoTargetCSV(t *testing.T) {
	t.Parallel()
	targetCSV := tool(t, "target-csv", "target-csv")
	sync := pipeFullSync(t, targetCSV, "target-csv", func(dir string) map[string]any {
		return map[string]any{"output_path": filepath.Join(dir, "csv"), "validate_records": true}
	})

	rows := map[string]int{}
	files, err := filepath.Glob(filepath.Join(sync.dir, "csv", "*.csv"))
	require.NoError(t, err)
	for _, f := range files {
		stream := strings.TrimSuffix(filepath.Base(f), ".csv")
		rows[stream] = csvRows(t, f)
	}
	sync.requireRowsLoaded(t, rows, "target-csv's files (one per stream, one row per record)")
}

// csvRows counts the data rows of a CSV file (a header line, then one row per record; quoted fields may hold
// newlines, so lines are not rows).
func csvRows(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err, "%s is not valid CSV", path)
	require.NotEmpty(t, all, "%s has no header", path)
	return len(all) - 1
}

// TestSingerPipeIntoTargetPostgres loads a full sync into a real PostgreSQL server with MeltanoLabs'
// target-postgres: every stream becomes a table whose row count equals what was sent (and, for the countable
// streams, the sandbox's own count), and whose key columns are unique.
func TestSingerPipeIntoTargetPostgres(t *testing.T) {
	t.Parallel()
	targetPG := tool(t, "target-postgres", "target-postgres")
	pg := startPostgres(t)
	const schema = "tap_klaviyo"
	sync := pipeFullSync(t, targetPG, "target-postgres", func(string) map[string]any {
		return map[string]any{
			"host": "127.0.0.1", "port": pg.port, "user": "postgres", "password": "", "database": "postgres",
			"default_target_schema": schema, "validate_records": true,
		}
	})

	tables := map[string]int{}
	for _, line := range pg.query(t, fmt.Sprintf(
		"select table_name from information_schema.tables where table_schema = '%s' order by 1", schema)) {
		tables[line] = 0
	}
	for table := range tables {
		var n int
		_, err := fmt.Sscan(pg.query(t, fmt.Sprintf(`select count(*) from %s.%q`, schema, table))[0], &n)
		require.NoError(t, err)
		tables[table] = n
	}
	sync.requireRowsLoaded(t, tables, "PostgreSQL schema "+schema)

	keys := singerKeys(sync.cat)
	streams := make([]string, 0, len(sync.sent))
	for s := range sync.sent {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	for _, stream := range streams {
		key := keys[stream]
		if !assert.NotEmpty(t, key, "stream %s declares no key_properties", stream) {
			continue
		}
		cols := make([]string, len(key))
		for i, k := range key {
			cols[i] = fmt.Sprintf("%q", k)
		}
		dups := pg.query(t, fmt.Sprintf(`select count(*) from (select %s from %s.%q group by %s having count(*) > 1) d`,
			strings.Join(cols, ", "), schema, stream, strings.Join(cols, ", ")))
		assert.Equal(t, []string{"0"}, dups, "duplicate keys %v in %s.%s", key, schema, stream)
		nulls := pg.query(t, fmt.Sprintf(`select count(*) from %s.%q where %s`, schema, stream,
			strings.Join(cols, " is null or ")+" is null"))
		assert.Equal(t, []string{"0"}, nulls, "null key %v in %s.%s", key, schema, stream)
	}
}

// TestSingerPipeIntoTargetDuckDB loads a full sync into DuckDB with target-duckdb at the versions the README names
// as working (requirements/target-duckdb.txt: target-duckdb 0.8.0 with duckdb 1.0.0; with duckdb 1.3 and later it
// drops the first row of every batch) and with add_metadata_columns on (without it target-duckdb crashes on a table
// whose every column is part of the key, such as webhook_topics). Small batches give every big stream many batch
// starts, so a lost first row cannot hide. Every stream must land with every row.
func TestSingerPipeIntoTargetDuckDB(t *testing.T) {
	t.Parallel()
	targetDuckDB := tool(t, "target-duckdb", "target-duckdb")
	python := tool(t, "target-duckdb", "python")
	const schema = "tap_klaviyo"
	sync := pipeFullSync(t, targetDuckDB, "target-duckdb", func(dir string) map[string]any {
		return map[string]any{"path": filepath.Join(dir, "warehouse.duckdb"), "default_target_schema": schema,
			"add_metadata_columns": true, "batch_size_rows": 50}
	})

	count := `import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
tables = con.execute("select table_name from information_schema.tables where table_schema = ?", [sys.argv[2]]).fetchall()
print(json.dumps({t: con.execute(f'select count(*) from "{sys.argv[2]}"."{t}"').fetchone()[0] for (t,) in tables}))`
	r := runCmd(t, sync.dir, nil, nil, python, "-c", count, filepath.Join(sync.dir, "warehouse.duckdb"), schema)
	require.Equal(t, 0, r.code, "counting rows: %s", r.stderr)
	var tables map[string]int
	require.NoError(t, json.Unmarshal(r.stdout, &tables), "%s", r.stdout)
	sync.requireRowsLoaded(t, tables, "DuckDB schema "+schema)
}

// TestTargetPostgresDropsRemovedMembers proves activate-version end to end: list_memberships read FULL_TABLE into
// MeltanoLabs' target-postgres twice, with a member removed from a list in between; the second sync's
// ACTIVATE_VERSION makes the target drop that member's row, and only that one.
func TestTargetPostgresDropsRemovedMembers(t *testing.T) {
	t.Parallel()
	targetPG := tool(t, "target-postgres", "target-postgres")
	pg := startPostgres(t)
	sb := startSandbox(t)
	dir := t.TempDir()
	cfg := connectorConfig(t, dir, sb)
	_, cat := discoverSinger(t, dir, cfg)
	var all struct {
		Streams []map[string]any `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(cat.Raw, &all))
	var streams []json.RawMessage
	for _, doc := range all.Streams {
		if doc["tap_stream_id"] != "list_memberships" {
			continue
		}
		for _, md := range doc["metadata"].([]any) {
			m := md.(map[string]any)
			if len(m["breadcrumb"].([]any)) == 0 {
				m["metadata"].(map[string]any)["selected"] = true
				m["metadata"].(map[string]any)["replication-method"] = "FULL_TABLE"
			}
		}
		b, err := json.Marshal(doc)
		require.NoError(t, err)
		streams = append(streams, b)
	}
	require.Len(t, streams, 1)
	catPath := writeJSON(t, filepath.Join(dir, "members.json"), map[string]any{"streams": streams})
	const schema = "removals"
	tcfg := writeJSON(t, filepath.Join(dir, "target-postgres.json"), map[string]any{
		"host": "127.0.0.1", "port": pg.port, "user": "postgres", "password": "", "database": "postgres",
		"default_target_schema": schema, "hard_delete": true, "add_record_metadata": true,
	})
	sync := func() {
		t.Helper()
		p := pipe(t, dir, []string{"--config", cfg, "--catalog", catPath}, targetPG, "--config", tcfg)
		requirePipeOK(t, p)
		require.Contains(t, string(p.tap.stdout), `"type":"ACTIVATE_VERSION","stream":"list_memberships"`)
	}
	rows := func() map[string]bool {
		out := map[string]bool{}
		for _, line := range pg.query(t, fmt.Sprintf(`select list_id || '/' || profile_id from %s.list_memberships`, schema)) {
			out[line] = true
		}
		return out
	}
	sync()
	before := rows()
	require.NotEmpty(t, before)
	var removed string
	for k := range before {
		removed = k
		break
	}
	list, profile, _ := strings.Cut(removed, "/")
	sb.admin(t, http.MethodPost, "/_sandbox/remove-member", url.Values{"group": {list}, "profile": {profile}}, nil)

	sync()
	after := rows()
	require.NotContains(t, after, removed, "the member removed at the source is gone from the table")
	require.Len(t, after, len(before)-1, "every other member is still there")
}
