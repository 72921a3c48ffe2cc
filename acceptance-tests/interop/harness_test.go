// Package interop_test proves that source-klaviyo works with the real clients its users run, installed from PyPI
// at pinned versions by setup.sh: Meltano, Singer targets (target-jsonl, target-csv, target-postgres), PyAirbyte
// and the airbyte-protocol-models package. Each test builds nothing itself: TestMain builds the connector and the
// sandbox once, and every test starts its own sandbox process so clock moves in one test cannot reach another.
package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testKey is recognisable so every test can search what a client printed for it: the key must never leak.
const testKey = "pk_INTEROP_9c41e2b7d05a"

// bins holds the two binaries TestMain builds; tests only read it.
type bins struct {
	connector string // source-klaviyo
	sandbox   string // klaviyo-sandbox
}

// built is set once by TestMain before any test runs and never written afterwards.
var built bins

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop: temp dir:", err)
		os.Exit(1)
	}
	built = bins{connector: filepath.Join(dir, "source-klaviyo"), sandbox: filepath.Join(dir, "klaviyo-sandbox")}
	for out, pkg := range map[string]string{built.connector: "./cmd/source-klaviyo", built.sandbox: "./cmd/klaviyo-sandbox"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "interop: building %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root (two levels above this package), where the venvs and meltano.yml live.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "../.."
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// venvRoot is where setup.sh put the client venvs: $INTEROP_VENV, or .venv-interop at the repository root.
func venvRoot() string {
	if v := os.Getenv("INTEROP_VENV"); v != "" {
		return v
	}
	return filepath.Join(repoRoot(), ".venv-interop")
}

// missing ends a test whose client is not installed. In CI a missing client is a failure (the suite must not pass
// by proving nothing); on a developer's machine it is a skip that says how to install it.
func missing(t *testing.T, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not installed: run `bash acceptance-tests/interop/setup.sh` (or set INTEROP_VENV to where it put the venvs)", what)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// tool returns the path of an executable inside one of setup.sh's venvs, e.g. tool(t, "meltano", "meltano").
// The venv names are requirements/<venv>.txt's.
func tool(t *testing.T, venv, name string) string {
	t.Helper()
	p := filepath.Join(venvRoot(), venv, "bin", name)
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		missing(t, fmt.Sprintf("%s from the %s venv (expected at %s)", name, venv, p))
	}
	return p
}

// sandbox is one running klaviyo-sandbox process.
type sandbox struct {
	url string
}

// startSandbox runs the sandbox binary at its default scale with testKey as the only accepted key, and stops it
// when the test ends.
func startSandbox(t *testing.T) *sandbox {
	t.Helper()
	cmd := exec.Command(built.sandbox, "--api-key", testKey)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start(), "starting the sandbox")
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the sandbox printed no base URL; stderr: %s", stderr.String())
	base := strings.TrimSpace(line)
	_, err = url.ParseRequestURI(base)
	require.NoError(t, err, "the sandbox's first line is not a URL: %q", line)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return &sandbox{url: base}
}

// admin calls one of the sandbox's unauthenticated /_sandbox endpoints and decodes its JSON answer into out.
func (s *sandbox) admin(t *testing.T, method, path string, q url.Values, out any) {
	t.Helper()
	u := s.url + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", method, u, body)
	if out != nil {
		require.NoError(t, json.Unmarshal(body, out), "%s %s: %s", method, u, body)
	}
}

// clock is the sandbox's current time: records dated after it do not exist yet for the API.
func (s *sandbox) clock(t *testing.T) time.Time {
	t.Helper()
	var c struct {
		Now time.Time `json:"now"`
	}
	s.admin(t, http.MethodGet, "/_sandbox/clock", nil, &c)
	require.False(t, c.Now.IsZero(), "the sandbox clock answered no time")
	return c.Now
}

// advance moves the sandbox clock, which creates and updates records the way a live account would.
func (s *sandbox) advance(t *testing.T, by time.Duration) {
	t.Helper()
	s.admin(t, http.MethodPost, "/_sandbox/advance", url.Values{"by": {by.String()}}, nil)
}

// count asks the sandbox how many resources a list endpoint serves in total, with the same filter syntax as the API.
func (s *sandbox) count(t *testing.T, path, filter string) int {
	t.Helper()
	q := url.Values{"path": {path}}
	if filter != "" {
		q.Set("filter", filter)
	}
	var c struct {
		Count *int `json:"count"`
	}
	s.admin(t, http.MethodGet, "/_sandbox/count", q, &c)
	require.NotNil(t, c.Count, "the sandbox gave no count for %s", path)
	return *c.Count
}

// expectedCounts is what a full sync of the countable top-level streams must deliver, asked of the sandbox itself.
// Child streams fan out per parent and have no single list endpoint to count, so they are checked by key
// uniqueness instead. Events dated after the sandbox clock are excluded: the connector never reads past the moment
// its sync starts (Klaviyo has future-dated events), and the API would serve them.
func (s *sandbox) expectedCounts(t *testing.T) map[string]int {
	t.Helper()
	now := s.clock(t).UTC().Format(time.RFC3339)
	out := map[string]int{}
	for stream, path := range map[string]string{
		"accounts": "/api/accounts", "profiles": "/api/profiles", "metrics": "/api/metrics", "lists": "/api/lists",
		"segments": "/api/segments", "templates": "/api/templates", "tags": "/api/tags",
		"tag_groups": "/api/tag-groups", "coupons": "/api/coupons", "catalog_items": "/api/catalog-items",
		"catalog_variants": "/api/catalog-variants", "catalog_categories": "/api/catalog-categories",
		"images": "/api/images", "forms": "/api/forms", "reviews": "/api/reviews", "webhooks": "/api/webhooks",
		"push_tokens": "/api/push-tokens", "web_feeds": "/api/web-feeds", "custom_metrics": "/api/custom-metrics",
		"tracking_settings": "/api/tracking-settings", "mapped_metrics": "/api/mapped-metrics",
		"webhook_topics": "/api/webhook-topics", "template_universal_content": "/api/template-universal-content",
	} {
		out[stream] = s.count(t, path, "")
	}
	out["events"] = s.count(t, "/api/events", "less-or-equal(datetime,"+now+")")
	// Klaviyo leaves archived flows and campaigns out unless asked, and lists campaigns one channel at a time;
	// the streams hold all of them.
	for _, archived := range []string{"true", "false"} {
		out["flows"] += s.count(t, "/api/flows", "equals(archived,"+archived+")")
		for _, ch := range []string{"email", "sms", "mobile_push"} {
			out["campaigns"] += s.count(t, "/api/campaigns", "and(equals(messages.channel,'"+ch+"'),equals(archived,"+archived+"))")
		}
	}
	return out
}

// connectorConfig writes the connector's config for this sandbox. rate_limit_scale 200 keeps fan-out streams, which
// Klaviyo allows one request a second, and the report streams, allowed 2 a minute, from dominating the suite's
// time; the sandbox itself imposes no limits.
func connectorConfig(t *testing.T, dir string, sb *sandbox) string {
	t.Helper()
	return writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"api_key": testKey, "base_url": sb.url, "rate_limit_scale": 200,
	})
}

// writeJSON marshals v into path and returns path.
func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// result is what one client process did.
type result struct {
	stdout, stderr []byte
	code           int
}

// combined is stdout and stderr together, for failure messages and the secret check.
func (r result) combined() string { return string(r.stdout) + "\n" + string(r.stderr) }

// tail keeps failure messages readable: the end of a client's log is where it says what went wrong.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// runCmd runs a client command to completion in dir with extra environment variables. It fails the test if the
// API key appears anywhere in what the command printed, whatever its exit code.
func runCmd(t *testing.T, dir string, env []string, stdin io.Reader, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(clientEnv(dir), env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.Bytes(), stderr: errb.Bytes()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err, "running %s", name)
	}
	require.NotContains(t, r.combined(), testKey, "%s printed the API key", filepath.Base(name))
	return r
}

// clientEnv is the environment every client runs with: no telemetry, no network look-ups, no live progress bars,
// and Python's caches and logs kept inside the test's directory.
func clientEnv(dir string) []string {
	return append(os.Environ(),
		"DO_NOT_TRACK=1",
		"MELTANO_SEND_ANONYMOUS_USAGE_STATS=false",
		"AIRBYTE_OFFLINE_MODE=1",
		"NO_LIVE_PROGRESS=1",
		"AIRBYTE_LOGGING_ROOT="+filepath.Join(dir, "airbyte-logs"),
		"PYTHONWARNINGS=ignore",
		"HOME="+dir,
	)
}

// jsonLines decodes a JSON-lines file or buffer into one map per line.
func jsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(line, &m), "line %d: %.200s", i+1, line)
		out = append(out, m)
	}
	return out
}
