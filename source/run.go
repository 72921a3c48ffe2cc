package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// Env is what a run needs from the outside world; tests fill it with buffers and a fixed clock.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	// Now is the wall clock; the moment a sync starts bounds every cursor it writes.
	Now func() time.Time
	// ReadFile reads config, catalog and state files.
	ReadFile func(string) ([]byte, error)
}

// args is the parsed command line of either dialect.
type args struct {
	command  string // Airbyte: spec, check, discover, read; Singer: singer-sync, singer-discover, about, version
	config   []string
	catalog  string
	state    string
	format   string
	airbyte  bool
	unknown  []string
	positive []string
}

// parseArgs reads both dialects. Airbyte passes a sub-command first; Singer passes only flags. Unknown flags such as
// --debug are collected and ignored, as the Python CDK does, so platform upgrades that add flags do not break us.
func parseArgs(argv []string) (args, error) {
	var a args
	rest := argv
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		switch rest[0] {
		case "spec", "check", "discover", "read":
			a.command, a.airbyte = rest[0], true
			rest = rest[1:]
		default:
			return a, configErrorf("unknown command %q: use spec, check, discover or read (Airbyte), or --discover/--config (Singer)", rest[0])
		}
	}
	var discover, about, version bool
	for i := 0; i < len(rest); i++ {
		arg := rest[i]
		name, value, hasValue := strings.Cut(arg, "=")
		takeValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(rest) {
				return "", configErrorf("%s needs a file path after it", name)
			}
			i++
			return rest[i], nil
		}
		var err error
		switch name {
		case "--config":
			var v string
			v, err = takeValue()
			a.config = append(a.config, v)
		case "--catalog", "--properties":
			a.catalog, err = takeValue()
		case "--state":
			a.state, err = takeValue()
		case "--format":
			a.format, err = takeValue()
		case "--discover":
			discover = true
		case "--about":
			about = true
		case "--version", "-v":
			version = true
		default:
			if strings.HasPrefix(arg, "-") {
				a.unknown = append(a.unknown, name)
			} else {
				a.positive = append(a.positive, arg)
			}
		}
		if err != nil {
			return a, err
		}
	}
	switch {
	case a.airbyte:
	case version:
		a.command = "version"
	case about:
		a.command = "about"
	case discover:
		a.command = "singer-discover"
	case len(a.config) > 0:
		a.command = "singer-sync"
	default:
		return a, configErrorf("nothing to do: run `source-klaviyo spec` (Airbyte) or `source-klaviyo --config config.json --discover` (Singer)")
	}
	return a, nil
}

// Run executes one invocation and returns the process exit code. It never panics on bad input: every failure
// becomes one sentence for the user, in the dialect's own error channel.
func Run(ctx context.Context, argv []string, env Env) (code int) {
	defer func() {
		// A bug must still end as one protocol message and a non-zero exit, never a stack trace on stdout.
		if p := recover(); p != nil {
			err := &Error{Failure: "system_error", Msg: fmt.Sprintf("source-klaviyo hit an internal error (%v); please report it", p)}
			secrets := secretsFromArgs(env, argv)
			if len(argv) > 0 && isAirbyteCommand(argv[0]) {
				code = failAirbyte(env, secrets, err)
				return
			}
			code = failSinger(env, secrets, err)
		}
	}()
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.ReadFile == nil {
		env.ReadFile = os.ReadFile
	}
	a, err := parseArgs(argv)
	if err != nil {
		if len(argv) > 0 && isAirbyteCommand(argv[0]) {
			return failAirbyte(env, nil, err)
		}
		fmt.Fprintln(env.Stderr, "ERROR", err)
		return 2
	}
	switch a.command {
	case "version":
		fmt.Fprintln(env.Stdout, Version)
		return 0
	case "spec":
		return cmdSpec(env)
	case "check":
		return cmdCheck(ctx, env, a)
	case "discover":
		return cmdDiscover(env, a)
	case "read":
		return cmdRead(ctx, env, a)
	case "about":
		return cmdAbout(env, a)
	case "singer-discover":
		return cmdSingerDiscover(env, a)
	case "singer-sync":
		return cmdSingerSync(ctx, env, a)
	}
	return failAirbyte(env, nil, errors.New("unreachable command "+a.command))
}

func isAirbyteCommand(s string) bool {
	switch s {
	case "spec", "check", "discover", "read":
		return true
	}
	return false
}

// loadConfig reads and validates the config named by --config. Singer allows several --config files; later files
// override earlier keys, as the Singer SDK does.
func loadConfig(env Env, a args) (Config, error) {
	if len(a.config) == 0 {
		return Config{}, configErrorf("--config is required: pass the path of a JSON file with at least api_key")
	}
	if len(a.config) == 1 {
		raw, err := env.ReadFile(a.config[0])
		if err != nil {
			return Config{}, configErrorf("config file %s cannot be read (%s): check the path given to --config", a.config[0], osErrorText(err))
		}
		return parseConfig("config file "+a.config[0], raw, env.Now)
	}
	merged, err := mergeConfigFiles(env, a.config)
	if err != nil {
		return Config{}, err
	}
	return parseConfig("config files "+strings.Join(a.config, ", "), merged, env.Now)
}

// osErrorText strips the path from an *os.PathError, which the caller already names.
func osErrorText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// secretsFromArgs finds the API key in the config files named on the command line, without validating anything,
// so even a crash report can mask it.
func secretsFromArgs(env Env, argv []string) []string {
	a, _ := parseArgs(argv)
	read := env.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	var out []string
	for _, p := range a.config {
		raw, err := read(p)
		if err != nil {
			continue
		}
		var c struct {
			APIKey string `json:"api_key"`
		}
		if json.Unmarshal(raw, &c) == nil && c.APIKey != "" {
			out = append(out, c.APIKey)
		}
	}
	return out
}
