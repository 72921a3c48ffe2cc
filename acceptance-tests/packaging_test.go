package acceptance_test

// Packaging tests: the Dockerfile, metadata.yaml and source.Version must describe the same image,
// and metadata.yaml must pass Airbyte's ConnectorMetadataDefinitionV0 (which rejects unknown keys).
// TestContainerImage goes further and builds and runs the image with scripts/container-test.sh.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/source-klaviyo/source-klaviyo/source"
)

// imageEntrypoint is where the image keeps the connector. Airbyte needs an absolute path because the
// platform may run the container from another working directory.
const imageEntrypoint = "/airbyte/bin/source-klaviyo"

// dockerInstruction is one Dockerfile instruction after line continuations are joined.
type dockerInstruction struct {
	line int    // first line of the instruction, for messages
	cmd  string // upper-cased keyword: FROM, ARG, LABEL, ...
	args string // the rest of the instruction, verbatim
}

// dockerStage is the instructions from one FROM up to the next.
type dockerStage struct {
	from         string // FROM arguments, e.g. "docker.io/library/busybox:${BUSYBOX_VERSION}"
	instructions []dockerInstruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM, then the stages.
type dockerfile struct {
	globalArgs map[string]string
	stages     []dockerStage
}

// parseDockerfile reads the subset of Dockerfile syntax this project uses: comments, blank lines,
// backslash continuations and one instruction per logical line. Heredocs and escape directives are
// not supported, and a Dockerfile that needs them should make this test fail loudly.
func parseDockerfile(text string) (dockerfile, error) {
	df := dockerfile{globalArgs: map[string]string{}}
	var (
		logical   strings.Builder
		startLine int
	)
	flush := func() error {
		raw := strings.TrimSpace(logical.String())
		logical.Reset()
		if raw == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(raw, " ")
		in := dockerInstruction{line: startLine, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if strings.Contains(in.args, "<<") {
			return fmt.Errorf("line %d: heredocs are not supported by this parser", in.line)
		}
		switch {
		case in.cmd == "FROM":
			df.stages = append(df.stages, dockerStage{from: in.args})
		case len(df.stages) == 0 && in.cmd == "ARG":
			name, value, _ := strings.Cut(in.args, "=")
			df.globalArgs[name] = value
		case len(df.stages) == 0:
			return fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		default:
			last := &df.stages[len(df.stages)-1]
			last.instructions = append(last.instructions, in)
		}
		return nil
	}
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue // as in Docker, blank and comment lines may also sit inside a continuation
		}
		if logical.Len() == 0 {
			startLine = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			logical.WriteString(body + " ")
			continue
		}
		logical.WriteString(trimmed)
		if err := flush(); err != nil {
			return dockerfile{}, err
		}
	}
	if logical.Len() > 0 {
		return dockerfile{}, fmt.Errorf("line %d: the file ends inside a continued instruction", startLine)
	}
	if len(df.stages) == 0 {
		return dockerfile{}, fmt.Errorf("no FROM instruction")
	}
	return df, nil
}

// final is the stage that becomes the image.
func (df dockerfile) final() dockerStage { return df.stages[len(df.stages)-1] }

// all returns the stage's instructions with the given keyword.
func (s dockerStage) all(cmd string) []dockerInstruction {
	var out []dockerInstruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// dockerWords splits shell-style words: whitespace separates, double or single quotes group, and a
// backslash inside double quotes escapes the next character.
func dockerWords(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '"' && r == '\\':
			escaped = true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// dockerKeyValues reads the key=value pairs of LABEL and ENV instructions.
func dockerKeyValues(ins []dockerInstruction) (map[string]string, error) {
	out := map[string]string{}
	for _, in := range ins {
		words, err := dockerWords(in.args)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", in.line, err)
		}
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %s %q is not in key=value form", in.line, in.cmd, w)
			}
			out[k] = v
		}
	}
	return out, nil
}

// packagingRoot is the module root; go test runs in acceptance-tests, one level below it.
func packagingRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"), "the tests expect to run from acceptance-tests/")
	return root
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(packagingRoot(t), "Dockerfile"))
	require.NoError(t, err)
	df, err := parseDockerfile(string(b))
	require.NoError(t, err, "parse Dockerfile")
	return df
}

// metadataFile mirrors the parts of metadata.yaml the tests compare; validation of every key is
// done on the generic map in TestMetadataKeys.
type metadataFile struct {
	Data struct {
		DockerRepository string `yaml:"dockerRepository"`
		DockerImageTag   string `yaml:"dockerImageTag"`
	} `yaml:"data"`
}

func readMetadata(t *testing.T) (metadataFile, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(packagingRoot(t), "metadata.yaml"))
	require.NoError(t, err)
	var typed metadataFile
	require.NoError(t, yaml.Unmarshal(b, &typed), "parse metadata.yaml")
	var generic map[string]any
	require.NoError(t, yaml.Unmarshal(b, &generic), "parse metadata.yaml")
	return typed, generic
}

func TestParseDockerfile(t *testing.T) {
	df, err := parseDockerfile(`# syntax=docker/dockerfile:1
ARG A=1
FROM base:${A} AS build
RUN one \
    # a comment inside a continuation
    two
FROM runtime
LABEL a="x y" \
      b=z
ENTRYPOINT ["/bin/x"]
`)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"A": "1"}, df.globalArgs)
	require.Len(t, df.stages, 2)
	assert.Equal(t, "base:${A} AS build", df.stages[0].from)
	assert.Equal(t, []dockerInstruction{{line: 4, cmd: "RUN", args: "one  two"}}, df.stages[0].instructions)
	labels, err := dockerKeyValues(df.final().all("LABEL"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "x y", "b": "z"}, labels)

	_, err = parseDockerfile("RUN x\n")
	assert.ErrorContains(t, err, "before the first FROM")
	_, err = parseDockerfile("FROM a\nRUN x \\\n")
	assert.ErrorContains(t, err, "ends inside a continued instruction")
	_, err = dockerKeyValues([]dockerInstruction{{line: 1, cmd: "LABEL", args: `a="open`}})
	assert.ErrorContains(t, err, "unterminated")
	_, err = dockerKeyValues([]dockerInstruction{{line: 1, cmd: "ENV", args: `A B`}})
	assert.ErrorContains(t, err, "key=value")
}

// TestImageMatchesMetadata pins the one version number: source.Version (what --version and spec
// report) must equal the Dockerfile's io.airbyte.version label and metadata.yaml's dockerImageTag,
// and the io.airbyte.name label must equal dockerRepository. Airbyte's acceptance tests compare
// the labels with metadata.yaml in the same way.
func TestImageMatchesMetadata(t *testing.T) {
	df := readDockerfile(t)
	meta, _ := readMetadata(t)
	final := df.final()

	labels, err := dockerKeyValues(final.all("LABEL"))
	require.NoError(t, err)
	assert.Equal(t, meta.Data.DockerRepository, labels["io.airbyte.name"], "label io.airbyte.name vs metadata.yaml dockerRepository")
	assert.Equal(t, meta.Data.DockerImageTag, labels["io.airbyte.version"], "label io.airbyte.version vs metadata.yaml dockerImageTag")
	assert.Equal(t, source.Version, meta.Data.DockerImageTag, "source.Version vs metadata.yaml dockerImageTag")
	assert.NotContains(t, labels["io.airbyte.version"], "$",
		"io.airbyte.version must be a literal: a build argument could make the label disagree with the binary")
}

func TestImageEntrypoint(t *testing.T) {
	final := readDockerfile(t).final()

	eps := final.all("ENTRYPOINT")
	require.Len(t, eps, 1, "the final stage needs exactly one ENTRYPOINT")
	var argv []string
	require.NoError(t, json.Unmarshal([]byte(eps[0].args), &argv),
		"ENTRYPOINT must be in exec (JSON array) form so signals reach the connector, not a shell")
	assert.Equal(t, []string{imageEntrypoint}, argv)

	env, err := dockerKeyValues(final.all("ENV"))
	require.NoError(t, err)
	assert.Equal(t, strings.Join(argv, " "), env["AIRBYTE_ENTRYPOINT"], "AIRBYTE_ENTRYPOINT must equal the ENTRYPOINT")
	assert.True(t, filepath.IsAbs(env["AIRBYTE_ENTRYPOINT"]), "AIRBYTE_ENTRYPOINT must be an absolute path")

	users := final.all("USER")
	require.NotEmpty(t, users, "the final stage must set USER")
	assert.Equal(t, "airbyte", users[len(users)-1].args, "the image must run as the non-root user airbyte")

	var copied bool
	for _, c := range final.all("COPY") {
		words, err := dockerWords(c.args)
		require.NoError(t, err)
		copied = copied || words[len(words)-1] == imageEntrypoint
	}
	assert.True(t, copied, "the final stage must COPY the binary to %s", imageEntrypoint)
}

// TestImageBuild checks the choices the runtime stage depends on: a builder for the module's Go
// version and a static binary (the busybox runtime has no libc to link against).
func TestImageBuild(t *testing.T) {
	df := readDockerfile(t)
	require.GreaterOrEqual(t, len(df.stages), 2, "the Dockerfile must be multi-stage")

	gomod, err := os.ReadFile(filepath.Join(packagingRoot(t), "go.mod"))
	require.NoError(t, err)
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	require.NotNil(t, goLine, "go.mod has no go directive")
	assert.Equal(t, string(goLine[1]), df.globalArgs["GO_VERSION"], "ARG GO_VERSION vs go.mod's go directive")
	assert.Contains(t, df.stages[0].from, "golang:${GO_VERSION}")
	assert.NotContains(t, df.final().from, "scratch", "Airbyte needs /bin/sh and printenv in the image")

	var build string
	for _, r := range df.stages[0].all("RUN") {
		if strings.Contains(r.args, "go build") {
			build = r.args
		}
	}
	require.NotEmpty(t, build, "the first stage must RUN go build")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/source-klaviyo"} {
		assert.Contains(t, build, want)
	}
}

// Key lists of Airbyte's ConnectorMetadataDefinitionV0 (../shared/docs/protocols.md section 2.1).
// The schema sets additionalProperties: false, so a key outside these lists fails registration.
var (
	metadataRequired = []string{
		"name", "definitionId", "connectorType", "dockerRepository", "dockerImageTag", "license",
		"documentationUrl", "githubIssueLabel", "connectorSubtype", "releaseStage",
	}
	// supportsDbt, supportsNormalization and normalizationConfig are for destinations, and
	// generated is filled in by Airbyte's CI, so a source's hand-written file leaves them out.
	metadataOptional = []string{
		"icon", "supportLevel", "tags", "registryOverrides", "allowedHosts", "suggestedStreams",
		"connectorBuildOptions", "connectorTestSuitesOptions", "releases", "ab_internal",
		"maxSecondsBetweenMessages", "releaseDate", "protocolVersion", "erdUrl",
		"externalDocumentationUrls", "remoteRegistries", "resourceRequirements", "supportsRefreshes",
		"supportsFileTransfer", "supportsDataActivation", "connectorIPCOptions",
	}
	registryOverrideKeys = []string{
		"enabled", "name", "dockerRepository", "dockerImageTag", "license", "documentationUrl",
		"connectorSubtype", "allowedHosts", "suggestedStreams", "resourceRequirements",
	}
	uuidPattern   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	semverPattern = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

func TestMetadataKeys(t *testing.T) {
	_, doc := readMetadata(t)

	assert.ElementsMatch(t, []string{"metadataSpecVersion", "data"}, yamlKeys(doc), "top-level keys")
	assert.Equal(t, "1.0", doc["metadataSpecVersion"], "metadataSpecVersion must be the string \"1.0\"")
	data, ok := doc["data"].(map[string]any)
	require.True(t, ok, "data must be a mapping")

	for _, k := range metadataRequired {
		assert.Contains(t, data, k, "required key data.%s", k)
	}
	allowed := slices.Concat(metadataRequired, metadataOptional)
	for _, k := range yamlKeys(data) {
		assert.True(t, slices.Contains(allowed, k), "data.%s is not a ConnectorMetadataDefinitionV0 key", k)
	}

	assert.Regexp(t, uuidPattern, data["definitionId"], "definitionId must be a lower-case UUID")
	assert.Regexp(t, semverPattern, data["dockerImageTag"], "dockerImageTag must be SemVer")
	assert.Equal(t, "source", data["connectorType"])
	assert.Equal(t, "api", data["connectorSubtype"])
	assert.Contains(t, []any{"alpha", "beta", "generally_available", "custom"}, data["releaseStage"])
	if sl, ok := data["supportLevel"]; ok {
		assert.Contains(t, []any{"community", "certified", "archived"}, sl)
	}
	assert.NotContains(t, data["dockerRepository"], "airbyte/", "airbyte/ is Airbyte's own namespace")
	assert.Equal(t, "source-klaviyo", data["githubIssueLabel"])
	for _, k := range []string{"name", "license", "dockerRepository", "githubIssueLabel"} {
		assert.IsType(t, "", data[k], "data.%s must be a string", k)
		assert.NotEmpty(t, data[k], "data.%s", k)
	}

	docURL, ok := data["documentationUrl"].(string)
	require.True(t, ok, "documentationUrl must be a string")
	u, err := url.Parse(docURL)
	require.NoError(t, err)
	assert.Equal(t, "https", u.Scheme, "documentationUrl must be an absolute https URL")
	assert.NotEmpty(t, u.Host)

	tags, ok := data["tags"].([]any)
	require.True(t, ok, "tags must be a list")
	assert.Contains(t, tags, "language:go")

	if v, ok := data["maxSecondsBetweenMessages"]; ok {
		n, isInt := v.(int)
		assert.True(t, isInt && n > 0, "maxSecondsBetweenMessages must be a positive integer, got %v", v)
	}
}

func TestMetadataAllowedHosts(t *testing.T) {
	_, doc := readMetadata(t)
	data := doc["data"].(map[string]any)

	ah, ok := data["allowedHosts"].(map[string]any)
	require.True(t, ok, "allowedHosts must be a mapping; without it Airbyte allows every host")
	assert.ElementsMatch(t, []string{"hosts"}, yamlKeys(ah))
	hosts, ok := ah["hosts"].([]any)
	require.True(t, ok, "allowedHosts.hosts must be a list")
	assert.Contains(t, hosts, "a.klaviyo.com", "Klaviyo's API host")
	ref := regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\}$`)
	for _, h := range hosts {
		s, ok := h.(string)
		require.True(t, ok, "host %v must be a string", h)
		if strings.Contains(s, "$") {
			assert.Regexp(t, ref, s, "a config reference must look like ${path.in.config}")
		} else {
			assert.NotContains(t, s, "/", "hosts are host names, not URLs")
		}
	}
}

func TestMetadataRegistryOverrides(t *testing.T) {
	_, doc := readMetadata(t)
	data := doc["data"].(map[string]any)

	ro, ok := data["registryOverrides"].(map[string]any)
	require.True(t, ok, "registryOverrides must be a mapping")
	for _, k := range yamlKeys(ro) {
		assert.Contains(t, []string{"oss", "cloud"}, k, "registryOverrides.%s", k)
	}
	for name, v := range ro {
		reg, ok := v.(map[string]any)
		require.True(t, ok, "registryOverrides.%s must be a mapping", name)
		assert.IsType(t, true, reg["enabled"], "registryOverrides.%s.enabled is required and boolean", name)
		for _, k := range yamlKeys(reg) {
			assert.True(t, slices.Contains(registryOverrideKeys, k), "registryOverrides.%s.%s is not an allowed key", name, k)
		}
	}
}

func yamlKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestContainerImage builds the image from the real Dockerfile and runs it, through
// scripts/container-test.sh. It needs buildah, podman and a few minutes (the script installs the
// tools when run as root; as another user it builds rootless, or fails with one sentence saying what
// to install), so it runs only when SOURCE_KLAVIYO_CONTAINER_TEST=1, as make test sets it; in CI
// (CI=true) a missing opt-in is a failure, so the check cannot silently drop out of the pipeline.
func TestContainerImage(t *testing.T) {
	if os.Getenv("SOURCE_KLAVIYO_CONTAINER_TEST") != "1" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but SOURCE_KLAVIYO_CONTAINER_TEST is not 1: CI must build and run the image")
		}
		t.Skip("set SOURCE_KLAVIYO_CONTAINER_TEST=1 to build and run the image (needs buildah and podman: `bash scripts/container-test.sh --setup`)")
	}
	root := packagingRoot(t)

	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		// Leave time for the script's cleanup and for the test to report before go test's alarm.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "container-test.sh"))
	cmd.Dir = root
	// The script runs in its own process group, and a timeout sends SIGTERM to the whole group:
	// buildah or podman stop, and the script's trap stops the sandbox it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	out := &scriptLog{t: t}
	cmd.Stdout, cmd.Stderr = out, out

	err := cmd.Run()
	out.flush()
	require.NoError(t, ctx.Err(), "scripts/container-test.sh was stopped: the test ran out of time (raise go test -timeout)")
	require.NoError(t, err, "scripts/container-test.sh failed; its last lines above say why")
}

// scriptLog passes a subprocess's output to t.Log line by line, so it streams under -v and is
// attributed to the test otherwise.
type scriptLog struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (l *scriptLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := slices.Index(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

func (l *scriptLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.t.Log(string(l.buf))
		l.buf = nil
	}
}
