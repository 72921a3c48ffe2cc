package specgen

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Report is everything the sandbox needs to know about one of the POST query endpoints (the
// Reporting API and metric aggregates). Most rules are enums of the request schema; the rest
// (default and required group-bys, interval limits, filter operators) exist only as prose in the
// schema descriptions, so they are read from that prose and the build fails when it changes shape.
type Report struct {
	Path        string   `json:"path"`
	OperationID string   `json:"operation_id"`
	Scopes      []string `json:"scopes"`
	Burst       int      `json:"burst"`
	Steady      int      `json:"steady"`
	Daily       int      `json:"daily,omitempty"`
	Type        string   `json:"type"`     // the only accepted data.type
	Required    []string `json:"required"` // required members of data.attributes
	Response    string   `json:"response"` // 200 response component
	// Fields are the fields[<type>] sparse fieldset enums; PageCursor tells whether page_cursor
	// is a query parameter of the operation.
	Fields     map[string][]string `json:"fields,omitempty"`
	PageCursor bool                `json:"page_cursor,omitempty"`

	// Reporting API.
	Statistics        []string          `json:"statistics,omitempty"`
	TimeframeKeys     []string          `json:"timeframe_keys,omitempty"`
	TimeframeMaxYears int               `json:"timeframe_max_years,omitempty"` // "(Max length: 1 year)"
	DataSince         string            `json:"data_since,omitempty"`          // "Data is unavailable before June 1st, 2023", as YYYY-MM-DD
	Intervals         []string          `json:"intervals,omitempty"`
	IntervalMaxDays   map[string]int    `json:"interval_max_days,omitempty"` // "If daily is used, the timeframe cannot be longer than 60 days"
	GroupBy           []string          `json:"group_by,omitempty"`
	GroupByDefault    []string          `json:"group_by_default,omitempty"`
	GroupByRequired   []string          `json:"group_by_required,omitempty"`
	GroupByPrereqs    map[string]string `json:"group_by_prereqs,omitempty"` // group-by -> the group-by it needs
	// Filters are the report filter's fields and operators; FilterValues the allowed values of a
	// field where the prose lists them; FilterMaxItems the longest list a list operator takes.
	Filters        map[string]FilterField `json:"filters,omitempty"`
	FilterValues   map[string][]string    `json:"filter_values,omitempty"`
	FilterMaxItems int                    `json:"filter_max_items,omitempty"`

	// Metric aggregates.
	Measurements         []string `json:"measurements,omitempty"`
	By                   []string `json:"by,omitempty"`
	Sort                 []string `json:"sort,omitempty"`
	IntervalDefault      string   `json:"interval_default,omitempty"`
	PageSizeDefault      int      `json:"page_size_default,omitempty"`
	TimezoneDefault      string   `json:"timezone_default,omitempty"`
	UnsupportedTimezones []string `json:"unsupported_timezones,omitempty"`
}

// reportOperation is the part of an OpenAPI POST operation the report table reads.
type reportOperation struct {
	operation
	Tags        []string `json:"tags"`
	RequestBody struct {
		Content map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

// schemaNode is the subset of a JSON Schema the report table reads.
type schemaNode struct {
	Ref         string                 `json:"$ref"`
	Type        string                 `json:"type"`
	Description string                 `json:"description"`
	Enum        []any                  `json:"enum"` // some enums elsewhere in the document are numbers
	Default     json.RawMessage        `json:"default"`
	Required    []string               `json:"required"`
	Properties  map[string]*schemaNode `json:"properties"`
	Items       *schemaNode            `json:"items"`
	OneOf       []*schemaNode          `json:"oneOf"`
}

var (
	dailyPattern       = regexp.MustCompile(`^(\d+)/d$`)
	maxYearsPattern    = regexp.MustCompile(`Max length: (\d+) years?`)
	dataSincePattern   = regexp.MustCompile(`Data is unavailable before ([A-Z][a-z]+) (\d+)(?:st|nd|rd|th), (\d{4})`)
	intervalPattern    = regexp.MustCompile(`If (\w+) is used, the timeframe cannot be longer than (\d+) (days|weeks)`)
	groupDefPattern    = regexp.MustCompile(`If not passed in, the data will be grouped by ([\w, ]+)\.`)
	groupReqPattern    = regexp.MustCompile(`The following group by attributes are required: ([\w, ]+)`)
	groupPrePattern    = regexp.MustCompile(`The prerequisites for (\w+) is (\w+)`)
	scalarPattern      = regexp.MustCompile(`Scalar attributes \(([\w, ]+)\): Supported operators: ([\w, -]+)\.`)
	listAttrPattern    = regexp.MustCompile(`List attributes \(([\w, ]+)\): Supported operators: ([\w, -]+)\.`)
	allowedPattern     = regexp.MustCompile(`Allowed filters are ([\w, ]+)\.\s*Allowed operators are ([\w, -]+)\.`)
	allowedOnlyPattern = regexp.MustCompile(`Allowed filters are ([\w, ]+)\.`)
	operatorsPattern   = regexp.MustCompile(`Allowed operators are ([\w, -]+)\.`)
	valuesPattern      = regexp.MustCompile(`When filtering on (\w+), allowed values are ([\w, -]+)\.`)
	maxItemsPattern    = regexp.MustCompile(`Max of (\d+) (?:items|messages) per`)
	exceptionsPattern  = regexp.MustCompile("exceptions are ((?:`[^`]+`(?:, | and )?)+)")
)

// BuildReports reads an OpenAPI document and returns the table of POST query endpoints (every
// operation tagged Reporting, and metric aggregates) as indented JSON, sorted by path.
func BuildReports(openapi []byte) ([]byte, error) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]*schemaNode `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi, &doc); err != nil {
		return nil, fmt.Errorf("specgen: decode openapi: %w", err)
	}
	var out []Report
	for path, item := range doc.Paths {
		raw, ok := item["post"]
		if !ok {
			continue
		}
		var op reportOperation
		if err := json.Unmarshal(raw, &op); err != nil {
			return nil, fmt.Errorf("specgen: %s: %w", path, err)
		}
		if !contains(op.Tags, "Reporting") && op.OperationID != "query_metric_aggregates" {
			continue
		}
		rep, err := report(path, op, doc.Components.Schemas)
		if err != nil {
			return nil, fmt.Errorf("specgen: POST %s: %w", path, err)
		}
		out = append(out, rep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return encodeTable(out)
}

func report(path string, op reportOperation, schemas map[string]*schemaNode) (Report, error) {
	rep := Report{Path: path, OperationID: op.OperationID, Scopes: op.Scopes, Response: responseComponent(op.operation)}
	var err error
	if rep.Burst, rep.Steady, err = limits(op.operation); err != nil {
		return rep, err
	}
	if d := op.RateLimit["daily"]; d != "" {
		m := dailyPattern.FindStringSubmatch(d)
		if m == nil {
			return rep, fmt.Errorf("unexpected daily rate limit %q", d)
		}
		rep.Daily, _ = strconv.Atoi(m[1])
	}
	for _, p := range op.Parameters {
		switch {
		case p.In == "query" && p.Name == "page_cursor":
			rep.PageCursor = true
		case p.In == "query" && strings.HasPrefix(p.Name, "fields["):
			if rep.Fields == nil {
				rep.Fields = map[string][]string{}
			}
			rep.Fields[bracket(p.Name)] = p.Schema.Items.Enum
		}
	}
	var bodyRef string
	for _, c := range op.RequestBody.Content {
		bodyRef = c.Schema.Ref
	}
	resolve := func(n *schemaNode) *schemaNode {
		for i := 0; n != nil && n.Ref != "" && i < 10; i++ {
			n = schemas[n.Ref[strings.LastIndex(n.Ref, "/")+1:]]
		}
		return n
	}
	body := resolve(&schemaNode{Ref: bodyRef})
	if body == nil || body.Properties["data"] == nil {
		return rep, fmt.Errorf("request body %q has no data", bodyRef)
	}
	data := resolve(body.Properties["data"])
	typ := resolve(data.Properties["type"])
	attrs := resolve(data.Properties["attributes"])
	if typ == nil || len(typ.enum()) != 1 || attrs == nil {
		return rep, fmt.Errorf("request body %q: want one data.type and attributes", bodyRef)
	}
	rep.Type = typ.enum()[0]
	rep.Required = attrs.Required
	itemEnum := func(name string) []string {
		if n := resolve(attrs.Properties[name]); n != nil && n.Items != nil {
			return resolve(n.Items).enum()
		}
		return nil
	}
	if op.OperationID == "query_metric_aggregates" {
		return rep, metricAggregateRules(&rep, attrs, resolve, itemEnum)
	}
	return rep, reportingRules(&rep, attrs, resolve, itemEnum)
}

// reportingRules reads the statistics, timeframe, interval, group_by and filter rules of a
// Reporting API request schema.
func reportingRules(rep *Report, attrs *schemaNode, resolve func(*schemaNode) *schemaNode, itemEnum func(string) []string) error {
	rep.Statistics = itemEnum("statistics")
	tf := resolve(attrs.Properties["timeframe"])
	if tf == nil {
		return fmt.Errorf("no timeframe")
	}
	for _, alt := range tf.OneOf {
		if key := resolve(alt).Properties["key"]; key != nil {
			rep.TimeframeKeys = resolve(key).enum()
		}
	}
	m := maxYearsPattern.FindStringSubmatch(tf.Description)
	if m == nil {
		return fmt.Errorf("timeframe description no longer states its maximum length")
	}
	rep.TimeframeMaxYears, _ = strconv.Atoi(m[1])
	if m := dataSincePattern.FindStringSubmatch(tf.Description); m != nil {
		months := map[string]string{"January": "01", "February": "02", "March": "03", "April": "04", "May": "05", "June": "06",
			"July": "07", "August": "08", "September": "09", "October": "10", "November": "11", "December": "12"}
		day, _ := strconv.Atoi(m[2])
		rep.DataSince = fmt.Sprintf("%s-%s-%02d", m[3], months[m[1]], day)
	}
	if iv := resolve(attrs.Properties["interval"]); iv != nil {
		rep.Intervals = iv.enum()
		rep.IntervalMaxDays = map[string]int{}
		for _, m := range intervalPattern.FindAllStringSubmatch(iv.Description, -1) {
			n, _ := strconv.Atoi(m[2])
			if m[3] == "weeks" {
				n *= 7
			}
			rep.IntervalMaxDays[m[1]] = n
		}
		if len(rep.IntervalMaxDays) == 0 {
			return fmt.Errorf("interval description no longer states its limits")
		}
	}
	if gb := resolve(attrs.Properties["group_by"]); gb != nil {
		rep.GroupBy = itemEnum("group_by")
		m := groupDefPattern.FindStringSubmatch(gb.Description)
		if m == nil {
			return fmt.Errorf("group_by description no longer states its default")
		}
		rep.GroupByDefault = splitWords(m[1])
		if m := groupReqPattern.FindStringSubmatch(gb.Description); m != nil {
			rep.GroupByRequired = splitWords(strings.TrimSuffix(m[1], "."))
		}
		for _, m := range groupPrePattern.FindAllStringSubmatch(gb.Description, -1) {
			if rep.GroupByPrereqs == nil {
				rep.GroupByPrereqs = map[string]string{}
			}
			rep.GroupByPrereqs[m[1]] = m[2]
		}
	}
	if f := resolve(attrs.Properties["filter"]); f != nil {
		return filterRules(rep, f.Description)
	}
	return nil
}

// filterRules reads the two shapes Klaviyo uses to describe a report filter: scalar and list
// attributes with their operators (campaigns, flows), or allowed fields and operators (forms, segments).
func filterRules(rep *Report, desc string) error {
	rep.Filters = map[string]FilterField{}
	add := func(fields, ops string) {
		for _, f := range splitWords(fields) {
			ff := rep.Filters[f]
			ff.Type = "string"
			for _, op := range splitWords(ops) {
				if op == "equals" {
					ff.Single = append(ff.Single, op)
				} else {
					ff.List = append(ff.List, op)
				}
			}
			rep.Filters[f] = ff
		}
	}
	if m := scalarPattern.FindStringSubmatch(desc); m != nil {
		add(m[1], m[2])
		if m := listAttrPattern.FindStringSubmatch(desc); m != nil {
			add(m[1], m[2])
		}
	} else if m := allowedPattern.FindStringSubmatch(desc); m != nil {
		add(m[1], m[2])
	} else if m, o := allowedOnlyPattern.FindStringSubmatch(desc), operatorsPattern.FindStringSubmatch(desc); m != nil && o != nil {
		add(m[1], o[1])
	} else {
		return fmt.Errorf("filter description no longer names its fields and operators")
	}
	for _, m := range valuesPattern.FindAllStringSubmatch(desc, -1) {
		if rep.FilterValues == nil {
			rep.FilterValues = map[string][]string{}
		}
		rep.FilterValues[m[1]] = splitWords(m[2])
	}
	if m := maxItemsPattern.FindStringSubmatch(desc); m != nil {
		rep.FilterMaxItems, _ = strconv.Atoi(m[1])
	}
	return nil
}

// metricAggregateRules reads the measurements, by, sort, interval, page size and timezone rules.
func metricAggregateRules(rep *Report, attrs *schemaNode, resolve func(*schemaNode) *schemaNode, itemEnum func(string) []string) error {
	rep.Measurements = itemEnum("measurements")
	rep.By = itemEnum("by")
	if s := resolve(attrs.Properties["sort"]); s != nil {
		rep.Sort = s.enum()
	}
	iv := resolve(attrs.Properties["interval"])
	ps := resolve(attrs.Properties["page_size"])
	tz := resolve(attrs.Properties["timezone"])
	if iv == nil || ps == nil || tz == nil {
		return fmt.Errorf("metric aggregate attributes lack interval, page_size or timezone")
	}
	rep.Intervals = iv.enum()
	if err := json.Unmarshal(iv.Default, &rep.IntervalDefault); err != nil {
		return fmt.Errorf("interval default: %w", err)
	}
	if err := json.Unmarshal(ps.Default, &rep.PageSizeDefault); err != nil {
		return fmt.Errorf("page_size default: %w", err)
	}
	if err := json.Unmarshal(tz.Default, &rep.TimezoneDefault); err != nil {
		return fmt.Errorf("timezone default: %w", err)
	}
	if m := exceptionsPattern.FindStringSubmatch(tz.Description); m != nil {
		for _, part := range strings.Split(m[1], "`") {
			if p := strings.TrimSpace(part); p != "" && p != "," && p != "and" {
				rep.UnsupportedTimezones = append(rep.UnsupportedTimezones, p)
			}
		}
	}
	return nil
}

// enum returns the string members of the node's enum.
func (n *schemaNode) enum() []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, v := range n.Enum {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func splitWords(s string) []string {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
