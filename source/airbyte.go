package source

// The Airbyte dialect: spec, check, discover and read as sub-commands, every answer (errors included) an Airbyte
// message on stdout.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
	"github.com/source-klaviyo/source-klaviyo/source/maps"
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
	client, err := newClient(cfg, nil, 2, nil)
	if err != nil {
		return false, err.Error()
	}
	granted, err := probeScopes(ctx, client)
	if err != nil {
		return false, checkFailure(cfg, err)
	}
	var cannot []string
	readable := 0
	// Report streams count too: their scopes (the report's, accounts:read for the timezone, metrics:read) are
	// among those the GET probes test. A report POST is never a probe: Klaviyo spends the day's quota on it.
	for _, s := range cfg.streams() {
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
		wg.Go(func() {
			// The probe asks for what a read asks for, less the optional fields: it tests the scope, not the options.
			reqs := newRequestBuilder(Config{}, s, s.Fields)
			req := reqs.build("probe", reqs.variants[0], nil)
			if s.PageSize > 0 {
				req.Query.Set("page[size]", "1")
			}
			_, err := client.Get(ctx, req)
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
		})
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

func cmdDiscover(env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		return failAirbyte(env, nil, err)
	}
	streams, err := catalog.AirbyteStreamsOf(cfg.streams())
	if err == nil {
		// The catalog shows the streams the stream maps make: aliased, derived, with their mapped schemas.
		streams, err = cfg.streamMaps.AirbyteStreams(streams)
	}
	if err != nil {
		return failAirbyte(env, cfg.Secrets(), err)
	}
	if err := emit.WriteCatalog(env.Stdout, map[string]any{"streams": streams}); err != nil {
		return failAirbyte(env, nil, err)
	}
	return 0
}

func cmdRead(ctx context.Context, env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		return failAirbyte(env, nil, err)
	}
	secrets := cfg.Secrets()
	var run *maps.Plan
	sels, err := readCatalogFile(env, a.catalog, func(raw []byte) (s []catalog.Selection, err error) {
		s, run, err = cfg.streamMaps.SelectAirbyte(raw)
		return s, err
	})
	if err != nil {
		return failAirbyte(env, secrets, err)
	}
	states, warning, err := readState(env, a.state)
	if err != nil {
		return failAirbyte(env, secrets, err)
	}
	w := run.Writer(emit.NewAirbyte(env.Stdout, emit.Options{Secrets: secrets, Now: env.Now}))
	if warning != "" {
		_ = w.Log("WARN", warning)
	}
	// States are keyed by the streams the maps make; the engine resumes connector streams.
	states, warnings := run.SourceStates(states)
	for _, msg := range warnings {
		_ = w.Log("WARN", msg)
	}
	return runSync(ctx, env, cfg, w, sels, states, newLiveDisplay(env.Stderr))
}
