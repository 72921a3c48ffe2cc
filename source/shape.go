package source

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// shapeRules is what the engine knows of a shape (catalog.Shape): how a resource becomes rows, and where its
// cursor lives. shapeOf is the one place a shape is declared, so a new shape is added there and nowhere else.
type shapeRules struct {
	// rows appends the rows of one resource to out. Shapes whose cursor is per row keep only the rows in scope
	// (the read's window, less what a previous sync wrote) and return the largest cursor they kept.
	rows func(sh *shaper, out *rowSink, res klaviyo.Resource, sc *readScope) (rowCursor, error)
	// perRowCursor is set when the cursor is a field of each row rather than of the resource (a profile's
	// suppressions each have their own timestamp). Klaviyo's filter then returns a resource in every window that
	// holds one of its rows, so each window must write only its own rows; and the resource's order in a sorted
	// response says nothing certain of its rows' order, so such windows never checkpoint mid-window.
	perRowCursor bool
	// sparse is set when a record carries the resource's attributes as they are, so a partial selection can ask
	// Klaviyo for only the selected attributes (fields[type]).
	sparse bool
}

// shapeOf returns the rules of a shape; an unknown shape is an error (a stream table entry naming a shape this
// engine does not implement), found by a test that walks the table.
func shapeOf(s catalog.Shape) (shapeRules, error) {
	switch s {
	case catalog.Flat:
		return shapeRules{rows: (*shaper).flatRows, sparse: true}, nil
	case catalog.Membership:
		return shapeRules{rows: (*shaper).membershipRow}, nil
	case catalog.Suppressions:
		return shapeRules{rows: (*shaper).suppressionRows, perRowCursor: true}, nil
	case catalog.ListSuppressions:
		return shapeRules{rows: (*shaper).suppressionRows, perRowCursor: true}, nil
	case catalog.Audiences:
		return shapeRules{rows: (*shaper).audienceRows}, nil
	case catalog.TrackingParams:
		return shapeRules{rows: (*shaper).trackingParamRows}, nil
	case catalog.SendTimes:
		return shapeRules{rows: (*shaper).sendTimeRows}, nil
	}
	return shapeRules{}, fmt.Errorf("shape %q is not implemented by the engine", s)
}

// readScope is what one read (a query and its pages) tells shaping: the parent whose records these are, and,
// for resuming and per-row cursors, the read's window and the ids a previous sync already wrote at its cursor.
type readScope struct {
	parentID string
	// window bounds per-row cursors; nil means no bounds.
	window *window
	// skip reports a resource (by id and cursor) that a previous sync wrote at its checkpoint's exact moment.
	skip func(id string, at time.Time) bool
	// metricNames maps metric ids to names from the page's included metrics (events' metric_name).
	metricNames map[string]string
	// until is end_date: a resource or row whose cursor is at or after it is not written (endpoints without an
	// upper-bound filter return such records); zero means no end_date.
	until time.Time
	// admit, in a sorted window's read, is asked before a resource's rows are written: false when a split has
	// moved the window's upper bound to or below the resource's cursor (tracker.admit); nil admits everything.
	admit func(at time.Time) bool
}

// keeps reports whether a row of resource id with cursor at belongs to this read.
func (sc *readScope) keeps(id string, at time.Time) bool {
	if sc.window != nil && !sc.window.holds(at) {
		return false
	}
	if !sc.until.IsZero() && !at.Before(sc.until) {
		return false
	}
	return sc.skip == nil || !sc.skip(id, at)
}

// rowCursor is the cursor a resource's rows carried: the engine tells the tracker, so checkpoints cover it.
type rowCursor struct {
	at time.Time
	// ok is false when there is nothing to observe: the resource has no cursor, or wrote no row.
	ok bool
}

// shaper turns a stream's JSON:API resources into flat records (DESIGN.md rule 2). It is built once per stream
// per sync, so everything that depends only on the stream and the selection is computed up front.
type shaper struct {
	s     catalog.Stream
	rules shapeRules
	// props are the schema's properties; to-one relationship ids are written only when the schema declares them.
	props map[string]bool
	// keep is the set of selected properties, nil when all are selected.
	keep map[string]bool
	// attrFields is the sparse fieldset sent to Klaviyo, nil to ask for every attribute.
	attrFields []string
	// relFields maps relationship names to their record fields, precomputed ("flow-action" -> "flow_action_id"),
	// sorted by field so every record lists its fields in the same order.
	relFields []relField
	bufs      sync.Pool
}

func newShaper(sel catalog.Selection) (*shaper, error) {
	rules, err := shapeOf(sel.Stream.Shape)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", sel.Stream.Name, err)
	}
	raw, err := schemas.Get(sel.Stream.Name)
	if err != nil {
		return nil, fmt.Errorf("loading the schema of stream %s: %w", sel.Stream.Name, err)
	}
	var doc struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing the schema of stream %s: %w", sel.Stream.Name, err)
	}
	sh := &shaper{s: sel.Stream, rules: rules, props: map[string]bool{}}
	for p := range doc.Properties {
		sh.props[p] = true
	}
	// The schema generator knows which fields are relationship ids (external_id is an attribute, flow_id is not);
	// the parent key is written from the fan-out instead.
	for field, rel := range schemas.Relationships(sel.Stream.Name) {
		if field != sel.Stream.ParentKey {
			sh.relFields = append(sh.relFields, relField{rel: rel, field: field})
		}
	}
	sort.Slice(sh.relFields, func(i, j int) bool { return sh.relFields[i].field < sh.relFields[j].field })
	if sel.Fields != nil {
		sh.keep = map[string]bool{}
		for _, f := range sel.Fields {
			sh.keep[f] = true
		}
		if rules.sparse && sel.Stream.Kind != catalog.PerParentLinks && sel.Stream.Fields == nil {
			sh.attrFields = sh.selectedAttributes(sel.Fields)
		}
	}
	sh.bufs.New = func() any { s := &rowSink{buf: make([]byte, 0, 64<<10)}; return s }
	return sh, nil
}

// selectedAttributes maps selected record properties back to Klaviyo attribute names for fields[type]: the
// properties we add (id, relationship ids, parent key, metric_name) are not attributes.
func (sh *shaper) selectedAttributes(fields []string) []string {
	var out []string
	for _, f := range fields {
		if f == "id" || f == "metric_name" || f == sh.s.ParentKey {
			continue
		}
		if _, isRel := sh.relOf(f); isRel {
			continue
		}
		out = append(out, f)
	}
	if sh.s.Cursor != nil && !slices.Contains(out, sh.s.Cursor.Field) {
		out = append(out, sh.s.Cursor.Field)
	}
	sort.Strings(out)
	return out
}

// relField pairs a relationship name with the record field that carries its id.
type relField struct{ rel, field string }

func (sh *shaper) relOf(field string) (string, bool) {
	for _, rf := range sh.relFields {
		if rf.field == field {
			return rf.rel, true
		}
	}
	return "", false
}

// sparseFields is the fields[type] value for requests: the stream's own (memberships ask only for
// joined_group_at) or the selection's attributes.
func (sh *shaper) sparseFields() []string {
	if sh.s.Fields != nil {
		return sh.s.Fields
	}
	return sh.attrFields
}

func (sh *shaper) getSink() *rowSink {
	s := sh.bufs.Get().(*rowSink)
	s.reset()
	return s
}
func (sh *shaper) putSink(s *rowSink) { sh.bufs.Put(s) }

// cursorOf returns a resource's cursor: the cursor field of its attributes, or for per-row cursors the earliest
// of its rows' cursors at or after from (what a probe for the start of the data asks).
func (sh *shaper) cursorOf(res klaviyo.Resource, from time.Time) (time.Time, bool) {
	if sh.s.Cursor == nil || len(res.Attributes) == 0 {
		return time.Time{}, false
	}
	if sh.rules.perRowCursor {
		rows, err := suppressionsOf(res, sh.s.Shape == catalog.ListSuppressions)
		if err != nil {
			return time.Time{}, false
		}
		var first time.Time
		for _, r := range rows {
			if t, err := parseTime(r.Timestamp); err == nil && !t.Before(from) && (first.IsZero() || t.Before(first)) {
				first = t
			}
		}
		return first, !first.IsZero()
	}
	if raw, found, indexed := res.Attribute(sh.s.Cursor.Field); indexed {
		// The page decoder noted where each attribute starts: no walk over the others (a profile's cursor comes
		// after 3 KB of subscriptions and properties when attributes are sorted, as the sandbox sorts them).
		if !found {
			return time.Time{}, false
		}
		return cursorTime(raw)
	}
	v, ok := topLevelString(res.Attributes, sh.s.Cursor.Field)
	if !ok || v == "" {
		return time.Time{}, false
	}
	t, err := parseTime(v)
	return t, err == nil
}

// cursorTime parses a raw JSON string value as parseTime does, and reports false for anything else (null, a
// number, an empty string). Klaviyo writes date-times one way, 2026-05-03T12:07:49+00:00; that form is read here
// without allocating, every other goes through parseTime.
func cursorTime(raw []byte) (time.Time, bool) {
	if len(raw) < 3 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return time.Time{}, false
	}
	v := raw[1 : len(raw)-1]
	if t, ok := plainUTC(v); ok {
		return t, true
	}
	s := string(v)
	if bytes.IndexByte(v, '\\') >= 0 {
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, false
		}
	}
	if s == "" {
		return time.Time{}, false
	}
	t, err := parseTime(s)
	return t, err == nil
}

// plainUTC reads YYYY-MM-DDTHH:MM:SS+00:00 (or Z for +00:00) into the time parseTime gives for it; ok is false for
// any other form or an impossible date, which parseTime then decides.
func plainUTC(b []byte) (time.Time, bool) {
	switch {
	case len(b) == 25 && string(b[19:]) == "+00:00":
	case len(b) == 20 && b[19] == 'Z':
	default:
		return time.Time{}, false
	}
	if b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // the 31st of a 30-day month: time.Date moved it on; parseTime refuses it
		return time.Time{}, false
	}
	return t, true
}

// metricNames maps metric ids to names from a page's included metrics, for events' metric_name.
func (sh *shaper) metricNames(included []klaviyo.Resource) map[string]string {
	if len(included) == 0 || !slices.Contains(sh.s.Include, "metric") {
		return nil
	}
	m := make(map[string]string, len(included))
	for _, inc := range included {
		if inc.Type != "metric" {
			continue
		}
		var a struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(inc.Attributes, &a) == nil {
			m[inc.ID] = a.Name
		}
	}
	return m
}

// rows shapes one resource into its rows in out, and returns the cursor to observe for it.
func (sh *shaper) rows(out *rowSink, res klaviyo.Resource, sc *readScope) (rowCursor, error) {
	return sh.rules.rows(sh, out, res, sc)
}

// resourceCursor is the cursor of shapes whose cursor is the resource's. A resource a previous sync already wrote
// (at its checkpoint, or in its lookback) is skipped whole, but still observed, so the next state lists it as
// written; one at or after end_date is neither written nor observed.
func (sh *shaper) resourceCursor(res klaviyo.Resource, sc *readScope) (c rowCursor, skip bool) {
	at, ok := sh.cursorOf(res, time.Time{})
	if !ok {
		return rowCursor{}, false
	}
	if !sc.until.IsZero() && !at.Before(sc.until) {
		return rowCursor{}, true
	}
	if sc.skip != nil && sc.skip(res.ID, at) {
		return rowCursor{at: at, ok: true}, true
	}
	return rowCursor{at: at, ok: true}, false
}

// flatRows writes {"id":..., <parent key>, <relationship>_id..., metric_name, <attributes...>} by splicing the
// raw attribute object, so an event is decoded once (by the client) and never re-encoded field by field. A
// relationship stream (PerParentLinks) writes {<parent key>, <link key>} instead.
func (sh *shaper) flatRows(out *rowSink, res klaviyo.Resource, sc *readScope) (rowCursor, error) {
	c, skip := sh.resourceCursor(res, sc)
	if skip {
		return c, nil
	}
	out.begin()
	if sh.s.Kind == catalog.PerParentLinks {
		out.str(sh.s.ParentKey, sc.parentID)
		out.str(sh.s.LinkKey, res.ID)
		out.end()
		return c, nil
	}
	out.str("id", res.ID)
	if sh.s.ParentKey != "" && sh.want(sh.s.ParentKey) {
		out.str(sh.s.ParentKey, sc.parentID)
	}
	for _, rf := range sh.relFields {
		r, ok := res.Relationships[rf.rel]
		if !ok || !sh.want(rf.field) {
			continue
		}
		id, ok := r.ToOneIDBytes()
		if !ok {
			continue
		}
		out.strBytes(rf.field, id)
		if rf.field == "metric_id" && sc.metricNames != nil && sh.want("metric_name") {
			if name, ok := sc.metricNames[string(id)]; ok {
				out.str("metric_name", name)
			}
		}
	}
	attrs := bytes.TrimSpace(res.Attributes)
	if sh.keep != nil {
		var err error
		if attrs, err = sh.filterAttributes(attrs); err != nil {
			return c, err
		}
	}
	if !out.members(attrs) {
		return c, fmt.Errorf("attributes of %s %s are not a JSON object", res.Type, res.ID)
	}
	out.end()
	return c, nil
}

func (sh *shaper) want(field string) bool { return sh.keep == nil || sh.keep[field] }

// filterAttributes drops deselected attributes. Only partial selections pay for this decode.
func (sh *shaper) filterAttributes(attrs []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(attrs, &m); err != nil {
		return nil, fmt.Errorf("decoding attributes: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if sh.keep[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := rowSink{}
	out.begin()
	for _, k := range keys {
		out.raw(k, m[k])
	}
	out.end()
	return out.buf, nil
}

// membershipRow writes {<parent>_id, profile_id, joined_group_at} for a list or segment member.
func (sh *shaper) membershipRow(out *rowSink, res klaviyo.Resource, sc *readScope) (rowCursor, error) {
	c, skip := sh.resourceCursor(res, sc)
	if skip {
		return c, nil
	}
	var a struct {
		JoinedGroupAt *string `json:"joined_group_at"`
	}
	if err := json.Unmarshal(res.Attributes, &a); err != nil {
		return c, fmt.Errorf("decoding a member's joined_group_at: %w", err)
	}
	if a.JoinedGroupAt == nil {
		// joined_group_at is the cursor and the schema's non-null field: a member without one cannot be placed.
		return c, fmt.Errorf("member %s of %s has no joined_group_at", res.ID, sc.parentID)
	}
	out.begin()
	out.str(sh.s.ParentKey, sc.parentID)
	out.str("profile_id", res.ID)
	out.str("joined_group_at", *a.JoinedGroupAt)
	out.end()
	return c, nil
}

// suppression is one entry of a profile's email suppressions.
type suppression struct {
	ListID    string `json:"list_id,omitempty"`
	Reason    string `json:"reason"`
	Timestamp string `json:"timestamp"`
}

// suppressionsOf reads subscriptions.email.marketing.suppression (or list_suppressions) of a profile.
func suppressionsOf(res klaviyo.Resource, perList bool) ([]suppression, error) {
	var a struct {
		Subscriptions *struct {
			Email *struct {
				Marketing *struct {
					Suppression      []suppression `json:"suppression"`
					ListSuppressions []suppression `json:"list_suppressions"`
				} `json:"marketing"`
			} `json:"email"`
		} `json:"subscriptions"`
	}
	if err := json.Unmarshal(res.Attributes, &a); err != nil {
		return nil, fmt.Errorf("decoding a profile's subscriptions: %w", err)
	}
	if a.Subscriptions == nil || a.Subscriptions.Email == nil || a.Subscriptions.Email.Marketing == nil {
		return nil, nil
	}
	if perList {
		return a.Subscriptions.Email.Marketing.ListSuppressions, nil
	}
	return a.Subscriptions.Email.Marketing.Suppression, nil
}

// suppressionRows writes one row per suppression of a profile (global, or per list) that lies in the read's
// scope. A suppression whose timestamp cannot be read goes with the profile's earliest readable one, so it is
// written by exactly one window rather than by none or by all.
func (sh *shaper) suppressionRows(out *rowSink, res klaviyo.Resource, sc *readScope) (rowCursor, error) {
	perList := sh.s.Shape == catalog.ListSuppressions
	sups, err := suppressionsOf(res, perList)
	if err != nil || len(sups) == 0 {
		return rowCursor{}, err
	}
	var email struct {
		Email *string `json:"email"`
	}
	// An email that is not a string is written as null rather than costing the suppression its row.
	_ = json.Unmarshal(res.Attributes, &email)
	at := make([]time.Time, len(sups))
	var earliest time.Time
	for i, s := range sups {
		if t, err := parseTime(s.Timestamp); err == nil {
			at[i] = t
			if earliest.IsZero() || t.Before(earliest) {
				earliest = t
			}
		}
	}
	var c rowCursor
	for i, s := range sups {
		t := at[i]
		if t.IsZero() {
			t = earliest
		}
		if !sc.keeps(res.ID, t) {
			continue
		}
		if !t.IsZero() && (!c.ok || t.After(c.at)) {
			c = rowCursor{at: t, ok: true}
		}
		out.begin()
		out.str("profile_id", res.ID)
		out.nullableStr("email", email.Email)
		if perList {
			out.str("list_id", s.ListID)
		}
		out.str("reason", s.Reason)
		out.str("timestamp", s.Timestamp)
		out.end()
	}
	return c, nil
}

// audienceRows writes one row per list or segment a campaign includes or excludes.
func (sh *shaper) audienceRows(out *rowSink, res klaviyo.Resource, _ *readScope) (rowCursor, error) {
	var a struct {
		Audiences *struct {
			Included []string `json:"included"`
			Excluded []string `json:"excluded"`
		} `json:"audiences"`
	}
	if err := json.Unmarshal(res.Attributes, &a); err != nil {
		return rowCursor{}, fmt.Errorf("decoding a campaign's audiences: %w", err)
	}
	if a.Audiences == nil {
		return rowCursor{}, nil
	}
	for _, side := range []struct {
		ids       []string
		inclusion string
	}{{a.Audiences.Included, "included"}, {a.Audiences.Excluded, "excluded"}} {
		for _, id := range side.ids {
			out.begin()
			out.str("campaign_id", res.ID)
			out.str("audience_id", id)
			out.str("inclusion", side.inclusion)
			out.end()
		}
	}
	return rowCursor{}, nil
}

// trackingParamRows writes one row per custom tracking parameter of a campaign, with the parameter's fields the
// schema declares, in name order.
func (sh *shaper) trackingParamRows(out *rowSink, res klaviyo.Resource, _ *readScope) (rowCursor, error) {
	var a struct {
		TrackingOptions *struct {
			Params []map[string]json.RawMessage `json:"custom_tracking_params"`
		} `json:"tracking_options"`
	}
	if err := json.Unmarshal(res.Attributes, &a); err != nil {
		return rowCursor{}, fmt.Errorf("decoding a campaign's tracking options: %w", err)
	}
	if a.TrackingOptions == nil {
		return rowCursor{}, nil
	}
	for _, p := range a.TrackingOptions.Params {
		keys := make([]string, 0, len(p))
		for k := range p {
			if sh.props[k] {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		out.begin()
		out.str("campaign_id", res.ID)
		for _, k := range keys {
			out.raw(k, p[k])
		}
		out.end()
	}
	return rowCursor{}, nil
}

// sendTimeRows writes one row per send time of a campaign message.
func (sh *shaper) sendTimeRows(out *rowSink, res klaviyo.Resource, sc *readScope) (rowCursor, error) {
	var a struct {
		SendTimes []struct {
			Datetime json.RawMessage `json:"datetime"`
			IsLocal  json.RawMessage `json:"is_local"`
		} `json:"send_times"`
	}
	if err := json.Unmarshal(res.Attributes, &a); err != nil {
		return rowCursor{}, fmt.Errorf("decoding a campaign message's send times: %w", err)
	}
	for _, st := range a.SendTimes {
		out.begin()
		out.str("campaign_id", sc.parentID)
		out.str("campaign_message_id", res.ID)
		out.raw("datetime", st.Datetime)
		out.raw("is_local", st.IsLocal)
		out.end()
	}
	return rowCursor{}, nil
}
