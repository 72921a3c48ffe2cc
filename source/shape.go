package source

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/schemas"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// shaper turns a stream's JSON:API resources into flat records (DESIGN.md rule 2). It is built once per stream
// per sync, so everything that depends only on the stream and the selection is computed up front.
type shaper struct {
	s catalog.Stream
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
	sh := &shaper{s: sel.Stream, props: map[string]bool{}}
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
		if sel.Stream.Shape == catalog.Flat && sel.Stream.Fields == nil {
			sh.attrFields = sh.selectedAttributes(sel.Fields)
		}
	}
	sh.bufs.New = func() any { b := make([]byte, 0, 64<<10); return &b }
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
	if sh.s.Cursor != nil && !contains(out, sh.s.Cursor.Field) {
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

func (sh *shaper) getBuf() *[]byte  { return sh.bufs.Get().(*[]byte) }
func (sh *shaper) putBuf(b *[]byte) { sh.bufs.Put(b) }

// cursorAttrs decodes only the attributes that can be cursors; the decoder skips the rest without allocating.
type cursorAttrs struct {
	Updated       string `json:"updated"`
	Datetime      string `json:"datetime"`
	UpdatedAt     string `json:"updated_at"`
	JoinedGroupAt string `json:"joined_group_at"`
}

func (c cursorAttrs) get(field string) string {
	switch field {
	case "updated":
		return c.Updated
	case "datetime":
		return c.Datetime
	case "updated_at":
		return c.UpdatedAt
	case "joined_group_at":
		return c.JoinedGroupAt
	}
	return ""
}

// cursorOf returns a resource's cursor value (for Flat and Membership shapes).
func (sh *shaper) cursorOf(res klaviyo.Resource) (time.Time, bool) {
	if sh.s.Cursor == nil || len(res.Attributes) == 0 {
		return time.Time{}, false
	}
	switch sh.s.Shape {
	case catalog.Suppressions, catalog.ListSuppressions:
		rows, err := suppressionsOf(res, sh.s.Shape == catalog.ListSuppressions)
		if err != nil {
			return time.Time{}, false
		}
		var best time.Time
		for _, r := range rows {
			if t, err := parseTime(r.Timestamp); err == nil && t.After(best) {
				best = t
			}
		}
		return best, !best.IsZero()
	}
	var ca cursorAttrs
	if err := json.Unmarshal(res.Attributes, &ca); err != nil {
		return time.Time{}, false
	}
	v := ca.get(sh.s.Cursor.Field)
	if v == "" {
		return time.Time{}, false
	}
	t, err := parseTime(v)
	return t, err == nil
}

// metricNames maps metric ids to names from a page's included metrics, for events' metric_name.
func (sh *shaper) metricNames(included []klaviyo.Resource) map[string]string {
	if len(included) == 0 || !contains(sh.s.Include, "metric") {
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

// rows shapes one resource into its rows, appending them to dst and the offset where each row ends to ends. Both
// slices are the caller's, reused for every resource of a page, so shaping allocates nothing per record.
func (sh *shaper) rows(dst []byte, ends []int, res klaviyo.Resource, parentID string, metricNames map[string]string) ([]byte, []int, error) {
	var err error
	switch sh.s.Shape {
	case catalog.Flat:
		if sh.s.Kind == catalog.PerParentLinks {
			dst = sh.linkRow(dst, res, parentID)
		} else {
			dst, err = sh.flatRow(dst, res, parentID, metricNames)
		}
		ends = append(ends, len(dst))
	case catalog.Membership:
		dst, err = sh.membershipRow(dst, res, parentID)
		ends = append(ends, len(dst))
	default:
		dst, ends, err = sh.explode(dst, ends, res, parentID)
	}
	return dst, ends, err
}

// flatRow writes {"id":..., <relationship>_id..., <parent key>, metric_name, <attributes...>} by splicing the raw
// attribute object, so an event is decoded once (by the client) and never re-encoded field by field.
func (sh *shaper) flatRow(dst []byte, res klaviyo.Resource, parentID string, metricNames map[string]string) ([]byte, error) {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, res.ID)
	if sh.s.ParentKey != "" && sh.want(sh.s.ParentKey) {
		dst = append(dst, `,"`...)
		dst = append(dst, sh.s.ParentKey...)
		dst = append(dst, `":`...)
		dst = appendString(dst, parentID)
	}
	for _, rf := range sh.relFields {
		field := rf.field
		r, ok := res.Relationships[rf.rel]
		if !ok || !sh.want(field) {
			continue
		}
		id, ok := r.ToOneID()
		if !ok {
			continue
		}
		dst = append(dst, `,"`...)
		dst = append(dst, field...)
		dst = append(dst, `":`...)
		dst = appendString(dst, id)
		if field == "metric_id" && metricNames != nil && sh.want("metric_name") {
			if name, ok := metricNames[id]; ok {
				dst = append(dst, `,"metric_name":`...)
				dst = appendString(dst, name)
			}
		}
	}
	attrs := bytes.TrimSpace(res.Attributes)
	if sh.keep != nil {
		var err error
		attrs, err = sh.filterAttributes(attrs)
		if err != nil {
			return dst, err
		}
	}
	if len(attrs) >= 2 && attrs[0] == '{' {
		inner := bytes.TrimSpace(attrs[1 : len(attrs)-1])
		if len(inner) > 0 {
			dst = append(dst, ',')
			dst = append(dst, inner...)
		}
	} else if len(attrs) > 0 && !bytes.Equal(attrs, []byte("null")) {
		return dst, fmt.Errorf("attributes of %s %s are not a JSON object", res.Type, res.ID)
	}
	return append(dst, '}'), nil
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
	out := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, k)
		out = append(out, ':')
		out = append(out, m[k]...)
	}
	return append(out, '}'), nil
}

func (sh *shaper) linkRow(dst []byte, res klaviyo.Resource, parentID string) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, sh.s.ParentKey...)
	dst = append(dst, `":`...)
	dst = appendString(dst, parentID)
	dst = append(dst, `,"`...)
	dst = append(dst, sh.s.LinkKey...)
	dst = append(dst, `":`...)
	dst = appendString(dst, res.ID)
	return append(dst, '}')
}

func (sh *shaper) membershipRow(dst []byte, res klaviyo.Resource, parentID string) ([]byte, error) {
	var a struct {
		JoinedGroupAt *string `json:"joined_group_at"`
	}
	if err := json.Unmarshal(res.Attributes, &a); err != nil {
		return dst, fmt.Errorf("decoding a member's joined_group_at: %w", err)
	}
	dst = append(dst, `{"`...)
	dst = append(dst, sh.s.ParentKey...)
	dst = append(dst, `":`...)
	dst = appendString(dst, parentID)
	dst = append(dst, `,"profile_id":`...)
	dst = appendString(dst, res.ID)
	if a.JoinedGroupAt == nil {
		// joined_group_at is the cursor and the schema's non-null field: a member without one cannot be placed.
		return dst, fmt.Errorf("member %s of %s has no joined_group_at", res.ID, parentID)
	}
	dst = append(dst, `,"joined_group_at":`...)
	dst = appendString(dst, *a.JoinedGroupAt)
	return append(dst, '}'), nil
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

// explode writes the rows of the shapes that turn one resource into several rows.
func (sh *shaper) explode(dst []byte, ends []int, res klaviyo.Resource, parentID string) ([]byte, []int, error) {
	row := func(fields ...any) {
		dst = append(dst, '{')
		for i := 0; i+1 < len(fields); i += 2 {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, fields[i].(string))
			dst = append(dst, ':')
			switch v := fields[i+1].(type) {
			case string:
				dst = appendString(dst, v)
			case *string:
				if v == nil {
					dst = append(dst, "null"...)
				} else {
					dst = appendString(dst, *v)
				}
			case json.RawMessage:
				if len(v) == 0 {
					dst = append(dst, "null"...)
				} else {
					dst = append(dst, v...)
				}
			}
		}
		dst = append(dst, '}')
		ends = append(ends, len(dst))
	}
	switch sh.s.Shape {
	case catalog.Suppressions, catalog.ListSuppressions:
		perList := sh.s.Shape == catalog.ListSuppressions
		sups, err := suppressionsOf(res, perList)
		if err != nil {
			return dst, nil, err
		}
		var a struct {
			Email *string `json:"email"`
		}
		_ = json.Unmarshal(res.Attributes, &a)
		for _, s := range sups {
			if perList {
				row("profile_id", res.ID, "email", a.Email, "list_id", s.ListID, "reason", s.Reason, "timestamp", s.Timestamp)
			} else {
				row("profile_id", res.ID, "email", a.Email, "reason", s.Reason, "timestamp", s.Timestamp)
			}
		}
	case catalog.Audiences:
		var a struct {
			Audiences *struct {
				Included []string `json:"included"`
				Excluded []string `json:"excluded"`
			} `json:"audiences"`
		}
		if err := json.Unmarshal(res.Attributes, &a); err != nil {
			return dst, nil, fmt.Errorf("decoding a campaign's audiences: %w", err)
		}
		if a.Audiences != nil {
			for _, id := range a.Audiences.Included {
				row("campaign_id", res.ID, "audience_id", id, "inclusion", "included")
			}
			for _, id := range a.Audiences.Excluded {
				row("campaign_id", res.ID, "audience_id", id, "inclusion", "excluded")
			}
		}
	case catalog.TrackingParams:
		var a struct {
			TrackingOptions *struct {
				Params []map[string]json.RawMessage `json:"custom_tracking_params"`
			} `json:"tracking_options"`
		}
		if err := json.Unmarshal(res.Attributes, &a); err != nil {
			return dst, nil, fmt.Errorf("decoding a campaign's tracking options: %w", err)
		}
		if a.TrackingOptions != nil {
			for _, p := range a.TrackingOptions.Params {
				fields := []any{"campaign_id", res.ID}
				keys := make([]string, 0, len(p))
				for k := range p {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					if sh.props[k] {
						fields = append(fields, k, p[k])
					}
				}
				row(fields...)
			}
		}
	case catalog.SendTimes:
		var a struct {
			SendTimes []struct {
				Datetime json.RawMessage `json:"datetime"`
				IsLocal  json.RawMessage `json:"is_local"`
			} `json:"send_times"`
		}
		if err := json.Unmarshal(res.Attributes, &a); err != nil {
			return dst, nil, fmt.Errorf("decoding a campaign message's send times: %w", err)
		}
		for _, st := range a.SendTimes {
			row("campaign_id", parentID, "campaign_message_id", res.ID, "datetime", st.Datetime, "is_local", st.IsLocal)
		}
	default:
		return dst, nil, fmt.Errorf("stream %s has an unknown shape %q", sh.s.Name, sh.s.Shape)
	}
	return dst, ends, nil
}

// appendString appends s as a JSON string. Klaviyo ids and names are mostly plain ASCII, which takes the fast
// path; anything else goes through the JSON encoder so escaping is always right.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
