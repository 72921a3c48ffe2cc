package source

// The Singer dialect: --discover, --about and a sync driven by --config, --catalog/--properties and --state;
// records and state on stdout, logs and errors on stderr.

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/maps"
	"github.com/source-klaviyo/source-klaviyo/source/secret"
)

// failSinger reports err on stderr, the Singer way.
func failSinger(env Env, secrets []string, err error) int {
	fmt.Fprintf(env.Stderr, "CRITICAL %s (%s)\n", secret.New(secrets...).Text(err.Error()), failureType(err))
	return 1
}

func cmdSingerDiscover(env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		return failSinger(env, nil, err)
	}
	doc, err := catalog.SingerCatalogOf(cfg.streams())
	if err == nil {
		doc, err = cfg.streamMaps.SingerCatalog(doc)
	}
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

func cmdSingerSync(ctx context.Context, env Env, a args) int {
	cfg, err := loadConfig(env, a)
	if err != nil {
		return failSinger(env, nil, err)
	}
	secrets := cfg.Secrets()
	var sels []catalog.Selection
	var run *maps.Plan
	if a.catalog == "" {
		// Singer taps sync every stream selected by default when no catalog is given.
		sels, run = cfg.streamMaps.SelectDefault()
	} else if sels, err = readCatalogFile(env, a.catalog, func(raw []byte) (s []catalog.Selection, err error) {
		s, run, err = cfg.streamMaps.SelectSinger(raw)
		return s, err
	}); err != nil {
		return failSinger(env, secrets, err)
	}
	states, warning, err := readState(env, a.state)
	if err != nil {
		return failSinger(env, secrets, err)
	}
	if warning != "" {
		fmt.Fprintln(env.Stderr, "WARNING", warning)
	}
	// Full-table streams are versioned (the SDK's activate-version): the sync's start in milliseconds grows from
	// one sync to the next, so a target drops the rows an earlier sync wrote that this one no longer found.
	version := env.Now().UnixMilli()
	infos, err := run.SingerStreamInfos(sels, func(sel catalog.Selection) (emit.StreamInfo, error) {
		info, err := singerStreamInfo(sel)
		if !sel.Incremental || sel.Stream.Cursor == nil {
			info.Version = version
		}
		return info, err
	})
	if err != nil {
		return failSinger(env, secrets, err)
	}
	// The writer keeps the file's bookmarks as they are, keyed by the streams the maps make, so the streams not
	// synced this time keep theirs; the engine resumes connector streams.
	w := run.Writer(emit.NewSinger(env.Stdout, infos, emit.SingerState{Bookmarks: states}, emit.Options{Secrets: secrets, Now: env.Now, Stderr: env.Stderr}))
	engineStates, warnings := run.SourceStates(states)
	for _, msg := range warnings {
		_ = w.Log("WARN", msg)
	}
	// No live display: in Singer mode stderr carries the log and METRIC lines Meltano reads.
	return runSync(ctx, env, cfg, w, sels, engineStates, nil)
}

// singerStreamInfo is the SCHEMA a Singer target gets: the stream's schema less the deselected properties.
func singerStreamInfo(sel catalog.Selection) (emit.StreamInfo, error) {
	raw := sel.Stream.Schema
	if len(raw) == 0 {
		var err error
		if raw, err = schemas.Get(sel.Stream.Name); err != nil {
			return emit.StreamInfo{}, fmt.Errorf("loading the schema of %s: %w", sel.Stream.Name, err)
		}
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
		var err error
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
		"name":         "tap-klaviyo",
		"description":  "Klaviyo source (source-klaviyo): every Klaviyo stream, incremental, rate-budgeted, for Singer and Airbyte.",
		"version":      Version,
		"capabilities": []string{"about", "catalog", "discover", "state", "stream-maps", "schema-flattening", "activate-version"},
		"settings":     settings,
	}
	switch a.format {
	case "markdown":
		var b bytes.Buffer
		fmt.Fprintf(&b, "# tap-klaviyo\n\n%s\n\nVersion: %s\n\n## Capabilities\n\n", about["description"], Version)
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
