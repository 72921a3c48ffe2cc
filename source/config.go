package source

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/maps"
	"github.com/source-klaviyo/source-klaviyo/source/reports"
	"github.com/xeipuuv/gojsonschema"
)

// specJSON is the connection specification: the SPEC command prints it and every config is validated against it,
// so the form Airbyte shows and the checks we run can never disagree.
//
//go:embed spec.json
var specJSON []byte

// DefaultBaseURL is Klaviyo's API host, base_url's default in the SPEC (a test holds them equal).
const DefaultBaseURL = "https://a.klaviyo.com"

// withSpecDefaults decodes a config object and fills in the SPEC's default for every property it leaves out.
func withSpecDefaults(raw []byte) (map[string]json.RawMessage, error) {
	var options map[string]json.RawMessage
	if err := json.Unmarshal(raw, &options); err != nil {
		return nil, err
	}
	var spec struct {
		Properties map[string]struct {
			Default json.RawMessage `json:"default"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(specJSON, &spec); err != nil {
		return nil, fmt.Errorf("parsing the connector's own spec: %w", err)
	}
	for name, p := range spec.Properties {
		if _, set := options[name]; !set && len(p.Default) > 0 {
			options[name] = p.Default
		}
	}
	return options, nil
}

// Config is the validated connector configuration. Every default comes from the SPEC (spec.json), the same
// document Airbyte renders as the form and Meltano's settings follow, so a default is written down once.
type Config struct {
	APIKey string `json:"api_key"`
	// StartDate is an absolute start_date; StartPeriod a relative one (an ISO 8601 period such as P3M), which each
	// stream resolves at its first sync and keeps in its state.
	StartDate    time.Time `json:"-"`
	StartPeriod  string    `json:"-"`
	RawStartDate string    `json:"start_date"`
	// EndDate bounds every read: nothing after it is read, and no cursor passes it.
	EndDate               time.Time `json:"-"`
	RawEndDate            string    `json:"end_date"`
	BaseURL               string    `json:"base_url"`
	MaxConcurrency        int       `json:"max_concurrency"`
	RateLimitScale        float64   `json:"rate_limit_scale"`
	MaxRetryWaitSeconds   int       `json:"max_retry_wait_seconds"`
	RequestTimeoutSeconds int       `json:"request_timeout_seconds"`
	// ProgressIntervalSeconds is how often a running stream reports where it stands.
	ProgressIntervalSeconds int `json:"progress_interval_seconds"`

	// reports are the Reporting API streams: the eight defaults and the config's own (reports.Definitions).
	reports []reports.Definition

	// userFilters are the checked user filters (catalog.UserFilter) by stream name.
	userFilters map[string]string

	// streamMaps are the stream maps and flattening the config asks for, resolved against every stream (a plan
	// that passes everything through when none is set).
	streamMaps *maps.Plan

	// options holds every option by its SPEC name, defaults applied. The options that shape what streams read
	// (event_metric_ids, profile_subscriptions, profile_predictive_analytics) are named by the stream table
	// (catalog.OptionalField, catalog.OptionVariants) and read through Flag and List, so the engine never names
	// an option or a stream.
	options map[string]json.RawMessage
}

// period is an ISO 8601 period of whole years, months, weeks and days (P1Y2M3W4D).
type period struct{ years, months, days int }

// parsePeriod reads P[nY][nM][nW][nD]; time parts (T...) are refused: a start is a day, not an hour.
func parsePeriod(s string) (period, error) {
	var p period
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return p, fmt.Errorf("not a period")
	}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || i > 6 {
			return p, fmt.Errorf("not a period")
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil {
			return p, fmt.Errorf("not a period: %w", err)
		}
		switch rest[i] {
		case 'Y':
			p.years += n
		case 'M':
			p.months += n
		case 'W':
			p.days += 7 * n
		case 'D':
			p.days += n
		default:
			return p, fmt.Errorf("not a period")
		}
		rest = rest[i+1:]
	}
	return p, nil
}

// startBefore resolves the relative start_date against a sync's start: that moment, less the period, at
// midnight UTC (a history of three months starts on a day).
func (c Config) startBefore(syncStart time.Time) time.Time {
	p, err := parsePeriod(c.StartPeriod)
	if err != nil {
		return time.Time{}
	}
	return syncStart.UTC().AddDate(-p.years, -p.months, -p.days).Truncate(24 * time.Hour)
}

// Flag reports a boolean option by its SPEC name; an option that is absent or not a boolean is false.
func (c Config) Flag(name string) bool {
	var v bool
	return json.Unmarshal(c.options[name], &v) == nil && v
}

// Minutes returns an integer option counting minutes, by its SPEC name; absent or of another type gives 0.
func (c Config) Minutes(name string) time.Duration {
	var v int
	if json.Unmarshal(c.options[name], &v) != nil || v < 0 {
		return 0
	}
	return time.Duration(v) * time.Minute
}

// List returns a list-of-strings option by its SPEC name; absent or of another type gives nil.
func (c Config) List(name string) []string {
	var v []string
	if json.Unmarshal(c.options[name], &v) != nil {
		return nil
	}
	return v
}

// Secrets lists the values that must never appear in output: the API key, and the string values of
// stream_map_config, which may hold a hash seed (whoever has it can test guesses against the hashes).
func (c Config) Secrets() []string {
	var out []string
	if c.APIKey != "" {
		out = append(out, c.APIKey)
	}
	var mapConfig string
	if json.Unmarshal(c.options["stream_map_config"], &mapConfig) == nil && mapConfig != "" {
		var values map[string]any
		if json.Unmarshal([]byte(mapConfig), &values) == nil {
			for _, v := range values {
				// Shorter values (a flag, a unit) are not secrets, and masking them would garble every log line.
				if s, ok := v.(string); ok && len(s) >= 4 {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// ParseConfig validates raw config JSON against the SPEC and returns the config with defaults applied. file names
// the config file in error messages. The API key is never quoted back.
func ParseConfig(file string, raw []byte) (Config, error) { return parseConfig(file, raw, time.Now) }

// parseConfig is ParseConfig with the clock that stream map expressions (now(), utcnow()) read.
func parseConfig(file string, raw []byte, now func() time.Time) (Config, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Config{}, configErrorf("%s is empty: it must hold a JSON object with at least api_key", file)
	}
	var probe any
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Config{}, configErrorf("%s is not valid JSON (%s): fix the file's syntax", file, jsonSyntaxHint(err))
	}
	obj, ok := probe.(map[string]any)
	if !ok {
		return Config{}, configErrorf("%s must hold a JSON object, like {\"api_key\": \"pk_...\"}", file)
	}
	raw, err := objectSettingsAsStrings(obj, raw)
	if err != nil {
		return Config{}, fmt.Errorf("reading %s: %w", file, err)
	}
	if err := validateAgainstSpec(file, raw); err != nil {
		return Config{}, err
	}
	options, err := withSpecDefaults(raw)
	if err != nil {
		return Config{}, configErrorf("%s could not be read: %v", file, err)
	}
	withDefaults, err := json.Marshal(options)
	if err != nil {
		return Config{}, fmt.Errorf("encoding %s with its defaults: %w", file, err)
	}
	var c Config
	if err := json.Unmarshal(withDefaults, &c); err != nil {
		return Config{}, configErrorf("%s could not be read: %v", file, err)
	}
	c.options = options
	if strings.HasPrefix(c.RawStartDate, "P") {
		if _, err := parsePeriod(c.RawStartDate); err != nil {
			// Values are never quoted back: a pasted key could sit in any field.
			return Config{}, configErrorf("%s: start_date is not an ISO 8601 period of years, months, weeks or days; write it like P3M or P90D", file)
		}
		c.StartPeriod = c.RawStartDate
	} else if c.RawStartDate != "" {
		t, err := time.Parse(time.RFC3339, c.RawStartDate)
		if err != nil {
			return Config{}, configErrorf("%s: start_date is not an RFC 3339 date-time; write it like 2024-01-01T00:00:00Z", file)
		}
		c.StartDate = t.UTC()
	}
	if c.RawEndDate != "" {
		t, err := time.Parse(time.RFC3339, c.RawEndDate)
		if err != nil {
			return Config{}, configErrorf("%s: end_date is not an RFC 3339 date-time; write it like 2024-07-01T00:00:00Z", file)
		}
		c.EndDate = t.UTC().Truncate(time.Second)
		if !c.StartDate.IsZero() && !c.EndDate.After(c.StartDate) {
			return Config{}, configErrorf("%s: end_date must be after start_date, or nothing would be read", file)
		}
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return Config{}, configErrorf("%s: base_url is not an http(s) URL with a host; remove it to use %s", file, DefaultBaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.userFilters, err = checkUserFilters(options); err != nil {
		return Config{}, configErrorf("%s: %v", file, err)
	}
	if c.reports, err = reportStreams(c, options, now); err != nil {
		return Config{}, &Error{Failure: emit.ConfigError, Msg: fmt.Sprintf("%s: %v", file, err), Err: err}
	}
	if c.streamMaps, err = planStreamMaps(withDefaults, now, c.reportCatalog()); err != nil {
		return Config{}, &Error{Failure: emit.ConfigError, Msg: fmt.Sprintf("%s: %v", file, err), Err: err}
	}
	return c, nil
}

// reportStreams reads the report definitions of the config: the defaults and the reports option's own, checked
// (every problem in one error, each naming its place in the config).
func reportStreams(c Config, options map[string]json.RawMessage, now func() time.Time) ([]reports.Definition, error) {
	taken := make([]string, 0, 64)
	for _, s := range catalog.Streams() {
		taken = append(taken, s.Name)
	}
	var lookback int
	if err := json.Unmarshal(options["report_lookback_days"], &lookback); err != nil {
		return nil, fmt.Errorf("report_lookback_days: %w", err)
	}
	var metric string
	_ = json.Unmarshal(options["report_conversion_metric_id"], &metric)
	start := c.StartDate
	if c.StartPeriod != "" {
		// A report's history starts where the period reaches today; report streams keep their own cursor in state.
		start = c.startBefore(now())
	}
	return reports.Definitions(reports.Config{Reports: options["reports"], StartDate: start, LookbackDays: &lookback,
		ConversionMetricID: metric}, taken)
}

// reportCatalog turns the report definitions into streams of the catalog: discover lists them, a configured
// catalog selects them, and the engine reads them with the reports package.
func (c Config) reportCatalog() []catalog.Stream {
	out := make([]catalog.Stream, 0, len(c.reports))
	for _, d := range c.reports {
		s := catalog.Stream{Name: d.Name, Doc: d.Doc(), Kind: catalog.Report, Scopes: d.Scopes(),
			PrimaryKey: d.KeyProperties(), Schema: d.Schema(), SelectedByDefault: true}
		if f := d.CursorField(); f != "" && d.Incremental() {
			s.Cursor = &catalog.Cursor{Field: f}
		}
		// Campaign values have no cursor field (Klaviyo reports a campaign on its send date without saying which),
		// so they are a full refresh: the whole history is a few requests (a year each).
		out = append(out, s)
	}
	return out
}

// report returns the definition of a report stream.
func (c Config) report(name string) (reports.Definition, bool) {
	for _, d := range c.reports {
		if d.Name == name {
			return d, true
		}
	}
	return reports.Definition{}, false
}

// streams are every stream this config can read: the table's, then the report streams.
func (c Config) streams() []catalog.Stream { return append(catalog.Streams(), c.reportCatalog()...) }

// checkUserFilters checks the user filter of every stream that has one in the config.
func checkUserFilters(options map[string]json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range catalog.Streams() {
		if s.UserFilter == nil {
			continue
		}
		var expr string
		if json.Unmarshal(options[s.UserFilter.Option], &expr) != nil || expr == "" {
			continue
		}
		f, err := checkUserFilter(expr, s)
		if err != nil {
			return nil, err
		}
		out[s.Name] = f
	}
	return out, nil
}

// objectSettings are the settings Singer and Meltano users write as JSON objects while the SPEC declares them as
// strings holding JSON (Airbyte's form has no free-form object field): an object is turned into that string before
// the config is validated, and both forms mean the same.
func objectSettingsAsStrings(obj map[string]any, raw []byte) ([]byte, error) {
	changed := false
	for _, k := range []string{"stream_maps", "stream_map_config"} {
		if m, ok := obj[k].(map[string]any); ok {
			b, err := json.Marshal(m)
			if err != nil {
				return nil, fmt.Errorf("encoding %s: %w", k, err)
			}
			obj[k] = string(b)
			changed = true
		}
	}
	if !changed {
		return raw, nil
	}
	return json.Marshal(obj)
}

// planStreamMaps resolves the Singer SDK stream maps and flattening settings against every stream, so a map that
// names an unknown stream or a bad expression is refused before the first request.
func planStreamMaps(config []byte, now func() time.Time, reportStreams []catalog.Stream) (*maps.Plan, error) {
	mc, err := maps.Parse(config, maps.Options{Now: now})
	if err != nil {
		return nil, err
	}
	streams, err := maps.CatalogStreams(reportStreams...)
	if err != nil {
		return nil, fmt.Errorf("listing the streams for the stream maps: %w", err)
	}
	return mc.Plan(streams)
}

// validateAgainstSpec checks the config against spec.json with gojsonschema and turns the first problems into one
// sentence that names the fields. Values are never echoed: a misplaced API key could be among them.
func validateAgainstSpec(file string, raw []byte) error {
	schema, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(specJSON))
	if err != nil {
		return fmt.Errorf("compiling the connector's own spec: %w", err)
	}
	res, err := schema.Validate(gojsonschema.NewBytesLoader(raw))
	if err != nil {
		return configErrorf("%s could not be validated: %v", file, err)
	}
	if res.Valid() {
		return nil
	}
	var problems []string
	for _, e := range res.Errors() {
		field := e.Field()
		if field == "(root)" {
			if p, ok := e.Details()["property"].(string); ok {
				field = p
			}
		}
		problems = append(problems, fmt.Sprintf("%s %s", field, describeSchemaError(e)))
	}
	sort.Strings(problems)
	// A field can fail two keywords with the same meaning (pattern and format): say it once.
	problems = slices.Compact(problems)
	return configErrorf("%s does not match the connector's spec: %s; run `spec` to see every option", file, strings.Join(problems, "; "))
}

// describeSchemaError words a gojsonschema error without quoting the offending value.
func describeSchemaError(e gojsonschema.ResultError) string {
	d := e.Details()
	switch e.Type() {
	case "required":
		return "is required"
	case "invalid_type":
		return fmt.Sprintf("must be %v, not %v", d["expected"], d["given"])
	case "string_gte":
		return "must not be empty"
	case "pattern", "format":
		switch e.Field() {
		case "start_date":
			return "must be an RFC 3339 date-time like 2024-01-01T00:00:00Z or an ISO 8601 period like P3M"
		case "end_date":
			return "must be an RFC 3339 date-time like 2024-07-01T00:00:00Z"
		}
		return "has the wrong format"
	case "number_gte", "number_lte", "number_gt", "number_lt":
		return fmt.Sprintf("is out of range (%s)", strings.TrimPrefix(e.Type(), "number_"))
	default:
		return "is invalid (" + e.Type() + ")"
	}
}

// jsonSyntaxHint keeps a decoder error short and free of the document's contents.
func jsonSyntaxHint(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "offset"); i >= 0 {
		return "syntax error near " + msg[i:]
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}
