package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// DocumentationURL is where users read about the connector (the SPEC and metadata.yaml point here).
const DocumentationURL = "https://github.com/source-klaviyo/source-klaviyo#readme"

// ExitInterrupted is the exit code after SIGTERM/SIGINT, once buffered records and their state are written.
const ExitInterrupted = 143

// specDocument is the SPEC payload: our connection specification plus the documentation link.
func specDocument() (json.RawMessage, error) {
	var conn map[string]any
	if err := json.Unmarshal(specJSON, &conn); err != nil {
		return nil, fmt.Errorf("parsing the embedded spec: %w", err)
	}
	conn["description"] = "source-klaviyo " + Version + ": reads a Klaviyo account through Klaviyo's API (revision " + klaviyo.Revision + ")."
	return json.Marshal(map[string]any{
		"documentationUrl":        DocumentationURL,
		"connectionSpecification": conn,
		"supportsIncremental":     true,
	})
}

func cmdSpec(env Env) int {
	spec, err := specDocument()
	if err != nil {
		return failAirbyte(env, nil, err)
	}
	if err := emit.WriteSpec(env.Stdout, spec); err != nil {
		return failAirbyte(env, nil, err)
	}
	return 0
}

// failAirbyte reports err as a TRACE ERROR on stdout, the Airbyte way, and returns the exit code.
func failAirbyte(env Env, secrets []string, err error) int {
	w := emit.NewAirbyte(env.Stdout, emit.Options{Secrets: secrets, Now: env.Now})
	_ = w.Error(emit.TraceError{Message: err.Error(), Internal: err.Error(), Failure: failureType(err)})
	_ = w.Flush()
	return 1
}

// failSinger reports err on stderr, the Singer way.
func failSinger(env Env, secrets []string, err error) int {
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "****")
		}
	}
	fmt.Fprintf(env.Stderr, "CRITICAL %s (%s)\n", msg, failureType(err))
	return 1
}

func newClient(cfg Config, logf func(level, msg string), attempts int) (*klaviyo.Client, error) {
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
	})
	if err != nil {
		return nil, configErrorf("config: %v", err)
	}
	return c, nil
}

// ---- check ----

func cmdCheck(ctx context.Context, env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		// A config the user must fix is a FAILED status with exit 0, as the Airbyte CDK does.
		if failureType(err) == emit.ConfigError {
			_ = emit.WriteConnectionStatus(env.Stdout, false, err.Error())
			return 0
		}
		return failAirbyte(env, nil, err)
	}
	ok, msg := checkConnection(ctx, cfg)
	if err := emit.WriteConnectionStatus(env.Stdout, ok, msg, cfg.Secrets()...); err != nil {
		return failAirbyte(env, cfg.Secrets(), err)
	}
	return 0
}

// checkConnection probes one endpoint per read scope our streams need (a page of one record each) and reports
// which streams the key can read. A key that lacks some scopes still passes: its message names what it cannot read.
func checkConnection(ctx context.Context, cfg Config) (bool, string) {
	client, err := newClient(cfg, nil, 2)
	if err != nil {
		return false, err.Error()
	}
	granted, err := probeScopes(ctx, client)
	if err != nil {
		return false, checkFailure(cfg, err)
	}
	var cannot []string
	readable := 0
	for _, s := range catalog.Streams() {
		var missing []string
		for _, sc := range s.Scopes {
			if !granted[sc] {
				missing = append(missing, sc)
			}
		}
		if len(missing) == 0 {
			readable++
			continue
		}
		cannot = append(cannot, fmt.Sprintf("%s (needs %s)", s.Name, strings.Join(missing, ", ")))
	}
	if readable == 0 {
		return false, "The API key is valid but can read none of the Klaviyo streams: give it read access (at least accounts:read, profiles:read, events:read, metrics:read, lists:read) in Klaviyo under Settings > API keys."
	}
	if len(cannot) == 0 {
		return true, fmt.Sprintf("Connected to Klaviyo; the API key can read all %d streams.", readable)
	}
	return true, fmt.Sprintf("Connected to Klaviyo; the API key can read %d streams but not %d: %s. Add those scopes to the key to sync them.",
		readable, len(cannot), strings.Join(cannot, "; "))
}

func checkFailure(cfg Config, err error) string {
	var ke *klaviyo.Error
	if errors.As(err, &ke) && ke.Kind == klaviyo.KindAuth {
		return "Klaviyo refused the API key (401): check api_key in the config; it must be a private key (pk_...)."
	}
	return fmt.Sprintf("Could not reach Klaviyo at %s: %v. Check base_url and the network.", cfg.BaseURL, err)
}

// probeScopes asks, for each scope, one endpoint that needs only that scope. 403 means the scope is missing; 401
// means the key itself is refused.
func probeScopes(ctx context.Context, client *klaviyo.Client) (map[string]bool, error) {
	probes := map[string]catalog.Stream{}
	for _, s := range catalog.Streams() {
		if len(s.Scopes) != 1 || s.Kind == catalog.PerParentObject || s.Kind == catalog.PerParentLinks {
			continue
		}
		if strings.Contains(s.Path, "{id}") {
			continue
		}
		if _, ok := probes[s.Scopes[0]]; !ok {
			probes[s.Scopes[0]] = s
		}
	}
	var (
		mu       sync.Mutex
		granted  = map[string]bool{}
		firstErr error
		wg       sync.WaitGroup
	)
	for scope, s := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh, err := newShaper(catalog.Selection{Stream: s})
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			e := &engine{client: client}
			r := &streamRun{s: s, shape: sh}
			req := e.request(r, "probe", variantsOf(s)[0], nil)
			if s.PageSize > 0 {
				req.Query.Set("page[size]", "1")
			}
			_, err = client.Get(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			var ke *klaviyo.Error
			switch {
			case err == nil:
				granted[scope] = true
			case errors.As(err, &ke) && ke.Kind == klaviyo.KindScope:
			case errors.As(err, &ke) && ke.Kind == klaviyo.KindNotFound:
				granted[scope] = true
			default:
				if firstErr == nil || (errors.As(err, &ke) && ke.Kind == klaviyo.KindAuth) {
					firstErr = err
				}
			}
		}()
	}
	wg.Wait()
	// Scopes only child streams need (none today) are granted when no probe exists for them, so check never
	// reports a stream it could not test as unreadable.
	for _, s := range catalog.Streams() {
		for _, sc := range s.Scopes {
			if _, probed := probes[sc]; !probed {
				granted[sc] = true
			}
		}
	}
	return granted, firstErr
}

// ---- discover ----

func cmdDiscover(env Env, a args) int {
	if _, err := loadConfig(env, a); err != nil {
		return failAirbyte(env, nil, err)
	}
	streams, err := catalog.AirbyteStreams()
	if err != nil {
		return failAirbyte(env, nil, err)
	}
	if err := emit.WriteCatalog(env.Stdout, map[string]any{"streams": streams}); err != nil {
		return failAirbyte(env, nil, err)
	}
	return 0
}

func cmdSingerDiscover(env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		return failSinger(env, nil, err)
	}
	doc, err := catalog.SingerCatalog()
	if err != nil {
		return failSinger(env, cfg.Secrets(), err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return failSinger(env, cfg.Secrets(), fmt.Errorf("encoding the catalog: %w", err))
	}
	if _, err := env.Stdout.Write(append(b, '\n')); err != nil {
		return 1
	}
	return 0
}

// ---- read ----

// readInputs loads what a sync needs; file names in errors are the ones the user passed.
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

func cmdRead(ctx context.Context, env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		return failAirbyte(env, nil, err)
	}
	secrets := cfg.Secrets()
	sels, err := readCatalogFile(env, a.catalog, catalog.SelectAirbyte)
	if err != nil {
		return failAirbyte(env, secrets, err)
	}
	states, warning, err := readState(env, a.state)
	if err != nil {
		return failAirbyte(env, secrets, err)
	}
	w := emit.NewAirbyte(env.Stdout, emit.Options{Secrets: secrets, Now: env.Now})
	if warning != "" {
		_ = w.Log("WARN", warning)
	}
	return sync_(ctx, env, cfg, w, sels, states)
}

func cmdSingerSync(ctx context.Context, env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		return failSinger(env, nil, err)
	}
	secrets := cfg.Secrets()
	var sels []catalog.Selection
	if a.catalog == "" {
		// Singer taps sync every stream when no catalog is given.
		for _, s := range catalog.Streams() {
			if s.SelectedByDefault {
				sels = append(sels, catalog.Selection{Stream: s, Incremental: s.Cursor != nil})
			}
		}
	} else if sels, err = readCatalogFile(env, a.catalog, catalog.SelectSinger); err != nil {
		return failSinger(env, secrets, err)
	}
	states, warning, err := readState(env, a.state)
	if err != nil {
		return failSinger(env, secrets, err)
	}
	if warning != "" {
		fmt.Fprintln(env.Stderr, "WARNING", warning)
	}
	infos := make([]emit.StreamInfo, 0, len(sels))
	for _, sel := range sels {
		info, err := singerStreamInfo(sel)
		if err != nil {
			return failSinger(env, secrets, err)
		}
		infos = append(infos, info)
	}
	w := emit.NewSinger(env.Stdout, infos, emit.SingerState{Bookmarks: states}, emit.Options{Secrets: secrets, Now: env.Now, Stderr: env.Stderr})
	return sync_(ctx, env, cfg, w, sels, states)
}

// singerStreamInfo is the SCHEMA a Singer target gets: the stream's schema less the deselected properties.
func singerStreamInfo(sel catalog.Selection) (emit.StreamInfo, error) {
	raw, err := schemas.Get(sel.Stream.Name)
	if err != nil {
		return emit.StreamInfo{}, fmt.Errorf("loading the schema of %s: %w", sel.Stream.Name, err)
	}
	if sel.Fields != nil {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return emit.StreamInfo{}, fmt.Errorf("parsing the schema of %s: %w", sel.Stream.Name, err)
		}
		keep := map[string]bool{}
		for _, f := range sel.Fields {
			keep[f] = true
		}
		if props, ok := doc["properties"].(map[string]any); ok {
			for k := range props {
				if !keep[k] {
					delete(props, k)
				}
			}
		}
		if raw, err = json.Marshal(doc); err != nil {
			return emit.StreamInfo{}, fmt.Errorf("encoding the schema of %s: %w", sel.Stream.Name, err)
		}
	}
	info := emit.StreamInfo{Name: sel.Stream.Name, Schema: raw, KeyProperties: sel.Stream.PrimaryKey}
	if sel.Incremental && sel.Stream.Cursor != nil {
		info.BookmarkProperties = []string{sel.Stream.Cursor.Field}
	}
	return info, nil
}

// sync_ runs the engine with either writer and turns failed streams into the exit code.
func sync_(ctx context.Context, env Env, cfg Config, w emit.Writer, sels []catalog.Selection, states map[string]json.RawMessage) int {
	logf := func(level, msg string) { _ = w.Log(level, msg) }
	client, err := newClient(cfg, logf, 0)
	if err != nil {
		_ = w.Error(emit.TraceError{Message: err.Error(), Failure: failureType(err)})
		_ = w.Flush()
		return 1
	}
	start := env.Now().UTC().Truncate(time.Second)
	e := &engine{cfg: cfg, client: client, out: w, syncStart: start, parents: newParentCache()}
	_ = w.Log("INFO", fmt.Sprintf("source-klaviyo %s: syncing %d streams, cursors bounded by the sync start %s", Version, len(sels), start.Format(cursorFormat)))
	failed := e.run(ctx, sels, states)
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

// ---- about ----

func cmdAbout(env Env, a args) int {
	var settings map[string]any
	if err := json.Unmarshal(specJSON, &settings); err != nil {
		return failSinger(env, nil, err)
	}
	if props, ok := settings["properties"].(map[string]any); ok {
		for _, p := range props {
			if m, ok := p.(map[string]any); ok && m["airbyte_secret"] == true {
				m["secret"], m["writeOnly"] = true, true
			}
		}
	}
	about := map[string]any{
		"name":         "tap-klaviyo-go",
		"description":  "Klaviyo source (source-klaviyo): every Klaviyo stream, incremental, rate-budgeted, for Singer and Airbyte.",
		"version":      Version,
		"capabilities": []string{"about", "catalog", "discover", "state"},
		"settings":     settings,
	}
	switch a.format {
	case "markdown":
		var b bytes.Buffer
		fmt.Fprintf(&b, "# tap-klaviyo-go\n\n%s\n\nVersion: %s\n\n## Capabilities\n\n", about["description"], Version)
		for _, c := range about["capabilities"].([]string) {
			fmt.Fprintf(&b, "* `%s`\n", c)
		}
		b.WriteString("\n## Settings\n\n| Setting | Required | Default | Description |\n|:--|:--|:--|:--|\n")
		props, _ := settings["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			m, _ := props[k].(map[string]any)
			def := ""
			if d, ok := m["default"]; ok {
				def = fmt.Sprint(d)
			}
			fmt.Fprintf(&b, "| %s | %v | %s | %v |\n", k, k == "api_key", def, m["description"])
		}
		_, _ = env.Stdout.Write(b.Bytes())
	default:
		out, err := json.MarshalIndent(about, "", "  ")
		if err != nil {
			return failSinger(env, nil, err)
		}
		_, _ = env.Stdout.Write(append(out, '\n'))
	}
	return 0
}

// mergeConfigFiles merges several Singer --config files, later keys winning.
func mergeConfigFiles(env Env, paths []string) ([]byte, error) {
	merged := map[string]json.RawMessage{}
	for _, p := range paths {
		raw, err := env.ReadFile(p)
		if err != nil {
			return nil, configErrorf("config file %s cannot be read (%s): check the path given to --config", p, osErrorText(err))
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, configErrorf("config file %s must hold a JSON object (%s)", p, jsonSyntaxHint(err))
		}
		for k, v := range m {
			merged[k] = v
		}
	}
	return json.Marshal(merged)
}
