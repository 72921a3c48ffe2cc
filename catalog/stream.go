// Package catalog declares every Klaviyo stream as data and renders the Airbyte and Singer catalogs from it.
package catalog

// Kind says how a stream's records are fetched. One generic reader serves each kind; nothing is coded per stream.
type Kind int

const (
	// Collection is one paginated (or unpaginated) collection endpoint, e.g. /api/events.
	Collection Kind = iota
	// PerParent is a collection read once per parent record: Path or Filter holds "{id}", and every record gets
	// the parent's id in ParentKey. Flow actions per flow, members per list.
	PerParent
	// PerParentObject is a single-resource GET per parent id (a 404 means the parent has none, e.g. a campaign
	// that was never sent has no send job).
	PerParentObject
	// PerParentLinks reads a relationship endpoint per parent; each row links the parent id to one related id.
	PerParentLinks
	// Report is a Reporting API stream (source/reports): its requests are POSTs the reports package plans within
	// the endpoint's daily quota, and its rows, schema and state are that package's. Report streams are not in the
	// table: the config defines them, so they come with their Schema.
	Report
)

// Shape names a reshaping of a resource into rows that the generic flattening cannot express. The engine owns the
// implementations; the table only names them, so a stream stays one literal.
type Shape string

const (
	// Flat is the default: id, attributes at top level, to-one relationship ids as <relationship>_id.
	Flat Shape = ""
	// Membership turns a list or segment member into {<parent>_id, profile_id, joined_group_at}.
	Membership Shape = "membership"
	// Audiences explodes a campaign's audiences.included/excluded into one row per audience.
	Audiences Shape = "audiences"
	// TrackingParams explodes a campaign's tracking_options.custom_tracking_params into one row per parameter.
	TrackingParams Shape = "tracking_params"
	// SendTimes explodes a campaign message's send_times into one row per send time.
	SendTimes Shape = "send_times"
	// Suppressions explodes a profile's global email suppressions into one row per suppression.
	Suppressions Shape = "suppressions"
	// ListSuppressions explodes a profile's per-list email suppressions into one row per list.
	ListSuppressions Shape = "list_suppressions"
)

// Rate is an endpoint's published budget (x-klaviyo-ratelimit): Burst requests per second, PerMinute steady.
type Rate struct {
	Burst     int
	PerMinute int
}

// Klaviyo publishes five rate tiers (x-klaviyo-ratelimit in stable.json); every endpoint has one of them. These
// functions are the connector's one table of them (functions, so no caller can change a tier for another): streams
// name their tier, and the engine reads budgets only from streams.

// TierXS is 1 request a second, 15 a minute.
func TierXS() Rate { return Rate{Burst: 1, PerMinute: 15} }

// TierS is 3 requests a second, 60 a minute.
func TierS() Rate { return Rate{Burst: 3, PerMinute: 60} }

// TierM is 10 requests a second, 150 a minute.
func TierM() Rate { return Rate{Burst: 10, PerMinute: 150} }

// TierL is 75 requests a second, 750 a minute.
func TierL() Rate { return Rate{Burst: 75, PerMinute: 750} }

// TierXL is 350 requests a second, 3,500 a minute.
func TierXL() Rate { return Rate{Burst: 350, PerMinute: 3500} }

// OptionalField is an additional field (additional-fields[type]) that a boolean config option switches on, and
// what Klaviyo does differently when a request asks for it.
type OptionalField struct {
	// Field is the additional-fields value, e.g. "predictive_analytics".
	Field string
	// Option is the boolean config option (a SPEC property) that asks for it; the SPEC's default applies when the
	// config leaves it out.
	Option string
	// Rate, when set, is the stricter budget Klaviyo applies to requests that ask for the field. Those requests
	// share a budget of their own, apart from the endpoint's other requests.
	Rate *Rate
	// Fallible marks a field Klaviyo sometimes fails with a 5xx after every retry: the page is then read again
	// without it, so the records still arrive (the field null) and the sync goes on.
	Fallible bool
}

// OptionVariants reads a stream once per value of a list config option instead of once per Variants entry, each
// read filtered by Filter with "{value}" replaced by the quoted value. Klaviyo's filters on such fields take a
// single value (events' metric_id), so a list becomes one query per value.
type OptionVariants struct {
	Option string
	Filter string
}

// Cursor describes how a stream is read incrementally: the record field that orders changes, and the filter
// operators Klaviyo accepts on it. The engine reads half-open windows [lo, hi) and translates them into the
// operators the endpoint has (a greater-than-only endpoint gets greater-than(lo - 1s), since Klaviyo timestamps
// have whole seconds).
type Cursor struct {
	// Field is the record field, also the API filter field unless FilterField is set.
	Field string
	// FilterField is the API filter field when it differs from the record field (suppression timestamps).
	FilterField string
	// Lower is the operator for the lower bound: "greater-or-equal" or "greater-than".
	Lower string
	// Upper is the operator for the upper bound, "less-than" or "less-or-equal", or "" when the endpoint has
	// none (lists and segments). Without one the engine reads a single window and cannot split by time.
	Upper string
	// Sort is the sort value that returns records in ascending cursor order, "" when the API cannot sort on it.
	// Sorted windows checkpoint mid-window; unsorted ones only when the window ends.
	Sort string
}

// FilterField is a field Klaviyo lets a request filter on, and how: x-klaviyo-filters in stable.json.
type FilterField struct {
	// Single are the operators taking one value, List those taking an array of values.
	Single, List []string
	// DateTime is set when the value is a date-time (written unquoted); otherwise it is a quoted string.
	DateTime bool
}

// UserFilter is a filter expression the config may add to every request of a stream, read from the config option
// Option and checked against Fields (every field the endpoint filters on) before the first request.
type UserFilter struct {
	Option string
	Fields map[string]FilterField
}

// Stream is one entry of the stream table. Names are part of the interface: warehouses key tables on them.
type Stream struct {
	Name string
	// Doc is one line for the README and the catalog description.
	Doc  string
	Kind Kind
	// Path is the API path template; PerParent kinds contain "{id}".
	Path string
	// ResourceType is the JSON:API type of the records read (also the key of fields[...] for sparse fieldsets).
	ResourceType string
	// Component is the OpenAPI component in stable.json whose attributes the stream's schema lists.
	Component string
	Scopes    []string
	Rate      Rate
	// PageSize is the largest page[size] the endpoint accepts; 0 means the endpoint takes no page[size].
	PageSize   int
	PrimaryKey []string
	// Cursor is nil for full-refresh-only streams.
	Cursor *Cursor
	// Parent names the stream whose record ids the PerParent kinds fan out over; ParentKey is the record field
	// that carries that id. LinkKey is the field for the related id of PerParentLinks rows.
	Parent    string
	ParentKey string
	LinkKey   string
	// Filter is sent on every request (after "{id}" is replaced by the parent id), e.g. a required filter.
	Filter string
	// Variants are alternative filters ANDed with Filter; the stream is read once per variant. Campaigns need one
	// channel per request; archived flows and campaigns are only returned when asked for.
	Variants []string
	// Include lists related resources requested with include= (events include their metric for metric_name).
	Include []string
	// Fields, when set, is sent as fields[ResourceType] (membership reads ask only for joined_group_at).
	Fields []string
	// AdditionalFields is sent as additional-fields[ResourceType] (suppressions live in profile subscriptions).
	AdditionalFields []string
	// OptionalFields are more additional fields, each asked for when its config option is on.
	OptionalFields []OptionalField
	// OptionVariants, when set and its option is not empty, replaces Variants.
	OptionVariants *OptionVariants
	// UserFilter, when set, lets the config narrow the stream on Klaviyo's side (profiles_filter).
	UserFilter *UserFilter
	// LookbackOption names the config option (minutes) by which an incremental read starts below the stream's
	// checkpoint, to catch records that arrive with a cursor already passed (Klaviyo accepts backdated events).
	// Streams of a class share an option; empty means no lookback.
	LookbackOption string
	Shape          Shape
	// SelectedByDefault is false for streams that cost a lot of requests for little data (Singer metadata).
	SelectedByDefault bool
	// Schema is the stream's JSON Schema when it is not in the schemas package (report streams); nil otherwise.
	Schema []byte
}

// Incremental reports whether the stream can be read incrementally.
func (s Stream) Incremental() bool { return s.Cursor != nil }

// SchemaFile is the file name of the stream's JSON Schema in the schemas package.
func (s Stream) SchemaFile() string { return s.Name + ".json" }

// rangeCursor is the common "updated" cursor with the full set of range operators and a sort.
func rangeCursor(field string) *Cursor {
	return &Cursor{Field: field, Lower: "greater-or-equal", Upper: "less-than", Sort: field}
}

// Streams returns the stream table, in catalog order. It builds a fresh slice each call so no caller can change
// another's view of it.
func Streams() []Stream {
	id := []string{"id"}
	// The published tiers (x-klaviyo-ratelimit in stable.json; a test checks each stream against its path).
	tierXS, tierS, tierM, tierL, tierXL := TierXS(), TierS(), TierM(), TierL(), TierXL()
	// Campaigns need exactly one channel per request, and archived ones are only returned when asked for.
	campaignChannels := []string{
		"equals(messages.channel,'email'),equals(archived,false)",
		"equals(messages.channel,'email'),equals(archived,true)",
		"equals(messages.channel,'sms'),equals(archived,false)",
		"equals(messages.channel,'sms'),equals(archived,true)",
		"equals(messages.channel,'mobile_push'),equals(archived,false)",
		"equals(messages.channel,'mobile_push'),equals(archived,true)",
	}
	archivedBoth := []string{"equals(archived,false)", "equals(archived,true)"}
	return withLookbacks([]Stream{
		{Name: "accounts", Doc: "The Klaviyo account the key belongs to: contact information, timezone, currency.",
			Path: "/api/accounts", ResourceType: "account", Component: "AccountResponseObjectResource",
			Scopes: []string{"accounts:read"}, Rate: tierXS, PrimaryKey: id, SelectedByDefault: true},
		{Name: "profiles", Doc: "Profiles with location, custom properties and, by option, consent (subscriptions) and predictive analytics.",
			Path: "/api/profiles", ResourceType: "profile", Component: "ProfileResponsePluralConversationsObjectResource",
			Scopes: []string{"profiles:read"}, Rate: tierL, PageSize: 100, PrimaryKey: id,
			Cursor: &Cursor{Field: "updated", Lower: "greater-than", Upper: "less-than", Sort: "updated"},
			OptionalFields: []OptionalField{
				{Field: "subscriptions", Option: "profile_subscriptions"},
				// Klaviyo allows predictive analytics only the M tier, and fails it with 503s at times.
				{Field: "predictive_analytics", Option: "profile_predictive_analytics", Rate: &tierM, Fallible: true},
			},
			UserFilter:        &UserFilter{Option: "profiles_filter", Fields: profileFilterFields()},
			SelectedByDefault: true},
		{Name: "global_exclusions", Doc: "Profiles suppressed from email marketing: one row per suppression, with reason and timestamp.",
			Path: "/api/profiles", ResourceType: "profile", Component: "ProfileResponsePluralConversationsObjectResource",
			Scopes: []string{"profiles:read"}, Rate: tierL, PageSize: 100, PrimaryKey: []string{"profile_id", "reason"},
			Cursor: &Cursor{Field: "timestamp", FilterField: "subscriptions.email.marketing.suppression.timestamp",
				Lower: "greater-or-equal", Upper: "less-than", Sort: "subscriptions.email.marketing.suppression.timestamp"},
			AdditionalFields: []string{"subscriptions"}, Shape: Suppressions, SelectedByDefault: true},
		{Name: "list_exclusions", Doc: "Profiles suppressed from one list's email marketing: one row per profile and list.",
			Path: "/api/profiles", ResourceType: "profile", Component: "ProfileResponsePluralConversationsObjectResource",
			Scopes: []string{"profiles:read"}, Rate: tierL, PageSize: 100, PrimaryKey: []string{"profile_id", "list_id"},
			Cursor: &Cursor{Field: "timestamp", FilterField: "subscriptions.email.marketing.list_suppressions.timestamp",
				Lower: "greater-or-equal", Upper: "less-than", Sort: "subscriptions.email.marketing.list_suppressions.timestamp"},
			AdditionalFields: []string{"subscriptions"}, Shape: ListSuppressions, SelectedByDefault: true},
		{Name: "events", Doc: "Every event (activity) with its metric id and name and its profile id.",
			Path: "/api/events", ResourceType: "event", Component: "EventResponseObjectResource",
			Scopes: []string{"events:read"}, Rate: tierXL, PageSize: 1000, PrimaryKey: id,
			Cursor: rangeCursor("datetime"), Include: []string{"metric"},
			OptionVariants: &OptionVariants{Option: "event_metric_ids", Filter: "equals(metric_id,{value})"},
			LookbackOption: "events_lookback_minutes", SelectedByDefault: true},
		{Name: "metrics", Doc: "Metrics (event types) and the integration that sends them.",
			Path: "/api/metrics", ResourceType: "metric", Component: "MetricResponseObjectResource",
			Scopes: []string{"metrics:read"}, Rate: tierM, PrimaryKey: id, SelectedByDefault: true},
		{Name: "lists", Doc: "Lists.",
			Path: "/api/lists", ResourceType: "list", Component: "ListListResponseObjectResource",
			Scopes: []string{"lists:read"}, Rate: tierL, PageSize: 10, PrimaryKey: id,
			Cursor: &Cursor{Field: "updated", Lower: "greater-than", Sort: "updated"}, SelectedByDefault: true},
		{Name: "list_memberships", Doc: "Which profiles are on which list, and since when (joined_group_at).",
			Kind: PerParent, Path: "/api/lists/{id}/profiles", ResourceType: "profile", Component: "ListMemberResponseObjectResource",
			Scopes: []string{"lists:read", "profiles:read"}, Rate: tierL, PageSize: 100, PrimaryKey: []string{"list_id", "profile_id"},
			Cursor: rangeCursor("joined_group_at"), Parent: "lists", ParentKey: "list_id",
			Fields: []string{"joined_group_at"}, Shape: Membership, SelectedByDefault: true},
		{Name: "segments", Doc: "Segments with their definitions.",
			Path: "/api/segments", ResourceType: "segment", Component: "SegmentListResponseObjectResource",
			Scopes: []string{"segments:read"}, Rate: tierL, PageSize: 10, PrimaryKey: id,
			Cursor: &Cursor{Field: "updated", Lower: "greater-than", Sort: "updated"}, SelectedByDefault: true},
		{Name: "segment_memberships", Doc: "Which profiles are in which segment, and since when (joined_group_at).",
			Kind: PerParent, Path: "/api/segments/{id}/profiles", ResourceType: "profile", Component: "SegmentMemberResponseObjectResource",
			Scopes: []string{"profiles:read", "segments:read"}, Rate: tierL, PageSize: 100, PrimaryKey: []string{"segment_id", "profile_id"},
			Cursor: rangeCursor("joined_group_at"), Parent: "segments", ParentKey: "segment_id",
			Fields: []string{"joined_group_at"}, Shape: Membership, SelectedByDefault: true},
		{Name: "flows", Doc: "Flows (automations), archived or not.",
			Path: "/api/flows", ResourceType: "flow", Component: "FlowResponseObjectResource",
			Scopes: []string{"flows:read"}, Rate: tierS, PageSize: 50, PrimaryKey: id,
			Cursor: rangeCursor("updated"), Variants: archivedBoth, SelectedByDefault: true},
		{Name: "flow_actions", Doc: "The actions (steps) of each flow.",
			Kind: PerParent, Path: "/api/flows/{id}/flow-actions", ResourceType: "flow-action", Component: "FlowActionEncodedResponseObjectResource",
			Scopes: []string{"flows:read"}, Rate: tierS, PageSize: 50, PrimaryKey: id,
			Cursor: rangeCursor("updated"), Parent: "flows", ParentKey: "flow_id", SelectedByDefault: true},
		{Name: "flow_messages", Doc: "The messages sent by each flow action.",
			Kind: PerParent, Path: "/api/flow-actions/{id}/flow-messages", ResourceType: "flow-message", Component: "FlowMessageEncodedResponseObjectResource",
			Scopes: []string{"flows:read"}, Rate: tierS, PageSize: 50, PrimaryKey: id,
			Cursor: rangeCursor("updated"), Parent: "flow_actions", ParentKey: "flow_action_id", SelectedByDefault: true},
		{Name: "campaigns", Doc: "Campaigns on every channel (email, SMS, mobile push), archived or not.",
			Path: "/api/campaigns", ResourceType: "campaign", Component: "CampaignResponseObjectResource",
			Scopes: []string{"campaigns:read"}, Rate: tierM, PageSize: 100, PrimaryKey: id,
			Cursor: rangeCursor("updated_at"), Variants: campaignChannels, SelectedByDefault: true},
		{Name: "campaign_messages", Doc: "The messages of each campaign, with their content definition.",
			Kind: PerParent, Path: "/api/campaigns/{id}/campaign-messages", ResourceType: "campaign-message", Component: "CampaignMessageResponseObjectResource",
			Scopes: []string{"campaigns:read"}, Rate: tierM, PrimaryKey: id, Parent: "campaigns", ParentKey: "campaign_id", SelectedByDefault: true},
		{Name: "campaign_send_times", Doc: "When each campaign message is sent: one row per send time.",
			Kind: PerParent, Path: "/api/campaigns/{id}/campaign-messages", ResourceType: "campaign-message", Component: "SendTime",
			Scopes: []string{"campaigns:read"}, Rate: tierM, PrimaryKey: []string{"campaign_message_id", "datetime"},
			Parent: "campaigns", ParentKey: "campaign_id", Shape: SendTimes, SelectedByDefault: true},
		{Name: "campaign_audiences", Doc: "The lists and segments each campaign includes or excludes: one row each.",
			Path: "/api/campaigns", ResourceType: "campaign", Component: "Audiences",
			Scopes: []string{"campaigns:read"}, Rate: tierM, PageSize: 100, PrimaryKey: []string{"campaign_id", "audience_id"},
			Variants: campaignChannels, Fields: []string{"audiences"}, Shape: Audiences, SelectedByDefault: true},
		{Name: "campaign_tracking_params", Doc: "UTM and custom tracking parameters of each campaign: one row per parameter.",
			Path: "/api/campaigns", ResourceType: "campaign", Component: "CampaignsEmailTrackingOptions",
			Scopes: []string{"campaigns:read"}, Rate: tierM, PageSize: 100, PrimaryKey: []string{"campaign_id", "name"},
			Variants: campaignChannels, Fields: []string{"tracking_options"}, Shape: TrackingParams, SelectedByDefault: true},
		{Name: "campaign_recipient_estimations", Doc: "The estimated number of recipients of each campaign.",
			Kind: PerParentObject, Path: "/api/campaign-recipient-estimations/{id}", ResourceType: "campaign-recipient-estimation",
			Component: "CampaignRecipientEstimationResponseObjectResource", Scopes: []string{"campaigns:read"}, Rate: tierM,
			PrimaryKey: id, Parent: "campaigns", ParentKey: "campaign_id", SelectedByDefault: true},
		{Name: "campaign_send_jobs", Doc: "The send job of each campaign that has been sent or scheduled.",
			Kind: PerParentObject, Path: "/api/campaign-send-jobs/{id}", ResourceType: "campaign-send-job",
			Component: "CampaignSendJobResponseObjectResource", Scopes: []string{"campaigns:read"}, Rate: tierM,
			PrimaryKey: id, Parent: "campaigns", ParentKey: "campaign_id", SelectedByDefault: true},
		{Name: "templates", Doc: "Email templates with their HTML and text.",
			Path: "/api/templates", ResourceType: "template", Component: "TemplateDndResponseObjectResource",
			Scopes: []string{"templates:read"}, Rate: tierL, PageSize: 10, PrimaryKey: id,
			Cursor: rangeCursor("updated"), SelectedByDefault: true},
		{Name: "tags", Doc: "Tags and their tag group.",
			Path: "/api/tags", ResourceType: "tag", Component: "TagResponseObjectResource",
			Scopes: []string{"tags:read"}, Rate: tierS, PageSize: 50, PrimaryKey: id, SelectedByDefault: true},
		{Name: "tag_groups", Doc: "Tag groups.",
			Path: "/api/tag-groups", ResourceType: "tag-group", Component: "TagGroupResponseObjectResource",
			Scopes: []string{"tags:read"}, Rate: tierS, PageSize: 25, PrimaryKey: id, SelectedByDefault: true},
		{Name: "campaign_tags", Doc: "Which tags are on which campaign.",
			Kind: PerParentLinks, Path: "/api/tags/{id}/relationships/campaigns", ResourceType: "campaign",
			Scopes: []string{"campaigns:read", "tags:read"}, Rate: tierS, PrimaryKey: []string{"tag_id", "campaign_id"},
			Parent: "tags", ParentKey: "tag_id", LinkKey: "campaign_id", SelectedByDefault: true},
		{Name: "flow_tags", Doc: "Which tags are on which flow.",
			Kind: PerParentLinks, Path: "/api/tags/{id}/relationships/flows", ResourceType: "flow",
			Scopes: []string{"flows:read", "tags:read"}, Rate: tierS, PrimaryKey: []string{"tag_id", "flow_id"},
			Parent: "tags", ParentKey: "tag_id", LinkKey: "flow_id", SelectedByDefault: true},
		{Name: "list_tags", Doc: "Which tags are on which list.",
			Kind: PerParentLinks, Path: "/api/tags/{id}/relationships/lists", ResourceType: "list",
			Scopes: []string{"lists:read", "tags:read"}, Rate: tierS, PrimaryKey: []string{"tag_id", "list_id"},
			Parent: "tags", ParentKey: "tag_id", LinkKey: "list_id", SelectedByDefault: true},
		{Name: "segment_tags", Doc: "Which tags are on which segment.",
			Kind: PerParentLinks, Path: "/api/tags/{id}/relationships/segments", ResourceType: "segment",
			Scopes: []string{"segments:read", "tags:read"}, Rate: tierS, PrimaryKey: []string{"tag_id", "segment_id"},
			Parent: "tags", ParentKey: "tag_id", LinkKey: "segment_id", SelectedByDefault: true},
		{Name: "coupons", Doc: "Coupons.",
			Path: "/api/coupons", ResourceType: "coupon", Component: "CouponResponseObjectResource",
			Scopes: []string{"coupons:read"}, Rate: tierL, PageSize: 100, PrimaryKey: id, SelectedByDefault: true},
		{Name: "coupon_codes", Doc: "The codes of each coupon, with status and expiry.",
			Kind: PerParent, Path: "/api/coupon-codes", Filter: "any(coupon.id,[\"{id}\"])", ResourceType: "coupon-code",
			Component: "CouponCodeResponseObjectResource", Scopes: []string{"coupon-codes:read"}, Rate: tierXL, PageSize: 100,
			PrimaryKey: id, Parent: "coupons", ParentKey: "coupon_id", SelectedByDefault: true},
		{Name: "catalog_items", Doc: "Catalog items (products).",
			Path: "/api/catalog-items", ResourceType: "catalog-item", Component: "CatalogItemResponseObjectResource",
			Scopes: []string{"catalogs:read"}, Rate: tierXL, PageSize: 100, PrimaryKey: id, SelectedByDefault: true},
		{Name: "catalog_variants", Doc: "Catalog variants with SKU, price and inventory.",
			Path: "/api/catalog-variants", ResourceType: "catalog-variant", Component: "CatalogVariantResponseObjectResource",
			Scopes: []string{"catalogs:read"}, Rate: tierXL, PageSize: 100, PrimaryKey: id, SelectedByDefault: true},
		{Name: "catalog_categories", Doc: "Catalog categories.",
			Path: "/api/catalog-categories", ResourceType: "catalog-category", Component: "CatalogCategoryResponseObjectResource",
			Scopes: []string{"catalogs:read"}, Rate: tierXL, PageSize: 100, PrimaryKey: id, SelectedByDefault: true},
		{Name: "images", Doc: "Images uploaded to the account.",
			Path: "/api/images", ResourceType: "image", Component: "ImageResponseObjectResource",
			Scopes: []string{"images:read"}, Rate: tierM, PageSize: 100, PrimaryKey: id,
			Cursor: rangeCursor("updated_at"), SelectedByDefault: true},
		{Name: "forms", Doc: "Sign-up forms.",
			Path: "/api/forms", ResourceType: "form", Component: "FormResponseObjectResource",
			Scopes: []string{"forms:read"}, Rate: tierS, PageSize: 100, PrimaryKey: id,
			Cursor: rangeCursor("updated_at"), SelectedByDefault: true},
		{Name: "form_versions", Doc: "The versions (variations) of each form.",
			Kind: PerParent, Path: "/api/forms/{id}/form-versions", ResourceType: "form-version", Component: "FormVersionResponseObjectResource",
			Scopes: []string{"forms:read"}, Rate: tierS, PageSize: 100, PrimaryKey: id,
			Cursor: rangeCursor("updated_at"), Parent: "forms", ParentKey: "form_id", SelectedByDefault: true},
		{Name: "reviews", Doc: "Product reviews. Klaviyo filters reviews only by creation date, so a full refresh keeps edits.",
			Path: "/api/reviews", ResourceType: "review", Component: "ReviewResponseDTOObjectResource",
			Scopes: []string{"reviews:read"}, Rate: tierM, PageSize: 100, PrimaryKey: id, SelectedByDefault: true},
		{Name: "push_tokens", Doc: "Mobile push tokens and the profile each belongs to.",
			Path: "/api/push-tokens", ResourceType: "push-token", Component: "PushTokenResponseObjectResource",
			Scopes: []string{"profiles:read", "push-tokens:read"}, Rate: tierM, PageSize: 100, PrimaryKey: id, SelectedByDefault: true},
		{Name: "template_universal_content", Doc: "Universal content blocks shared by templates.",
			Path: "/api/template-universal-content", ResourceType: "template-universal-content", Component: "UniversalContentResponseObjectResource",
			Scopes: []string{"templates:read"}, Rate: tierL, PageSize: 100, PrimaryKey: id,
			Cursor: rangeCursor("updated"), SelectedByDefault: true},
		{Name: "tracking_settings", Doc: "The account's UTM tracking settings.",
			Path: "/api/tracking-settings", ResourceType: "tracking-setting", Component: "TrackingSettingResponseObjectResource",
			Scopes: []string{"tracking-settings:read"}, Rate: tierM, PageSize: 1, PrimaryKey: id, SelectedByDefault: true},
		{Name: "web_feeds", Doc: "Web feeds used in templates.",
			Path: "/api/web-feeds", ResourceType: "web-feed", Component: "WebFeedResponseObjectResource",
			Scopes: []string{"web-feeds:read"}, Rate: tierXS, PageSize: 20, PrimaryKey: id,
			Cursor: rangeCursor("updated"), SelectedByDefault: true},
		{Name: "custom_metrics", Doc: "Custom metrics (combinations of metrics).",
			Path: "/api/custom-metrics", ResourceType: "custom-metric", Component: "CustomMetricResponseObjectResource",
			Scopes: []string{"metrics:read"}, Rate: tierS, PrimaryKey: id, SelectedByDefault: true},
		{Name: "mapped_metrics", Doc: "Which metric or custom metric each conversion slot maps to.",
			Path: "/api/mapped-metrics", ResourceType: "mapped-metric", Component: "MappedMetricResponseObjectResource",
			Scopes: []string{"metrics:read"}, Rate: tierS, PrimaryKey: id, SelectedByDefault: true},
		{Name: "webhook_topics", Doc: "The event topics webhooks can subscribe to.",
			Path: "/api/webhook-topics", ResourceType: "webhook-topic", Component: "WebhookTopicResponseObjectResource",
			Scopes: []string{"webhooks:read"}, Rate: tierXS, PrimaryKey: id, SelectedByDefault: true},
		{Name: "webhooks", Doc: "Webhooks the account sends.",
			Path: "/api/webhooks", ResourceType: "webhook", Component: "WebhookResponseObjectResource",
			Scopes: []string{"webhooks:read"}, Rate: tierXS, PrimaryKey: id, SelectedByDefault: true},
	})
}

// profileFilterFields are the fields /api/profiles filters on (x-klaviyo-filters; a test compares them).
func profileFilterFields() map[string]FilterField {
	ids := FilterField{Single: []string{"equals"}, List: []string{"any", "equals"}}
	equals := FilterField{Single: []string{"equals"}}
	gtLt := FilterField{Single: []string{"greater-than", "less-than"}, DateTime: true}
	allRanges := FilterField{Single: []string{"greater-or-equal", "greater-than", "less-or-equal", "less-than"}, DateTime: true}
	return map[string]FilterField{
		"id": ids, "email": ids, "phone_number": ids, "external_id": ids, "_kx": equals,
		"created": gtLt, "updated": gtLt,
		"subscriptions.email.marketing.list_suppressions.reason":    equals,
		"subscriptions.email.marketing.list_suppressions.timestamp": allRanges,
		"subscriptions.email.marketing.list_suppressions.list_id":   equals,
		"subscriptions.email.marketing.suppression.reason":          equals,
		"subscriptions.email.marketing.suppression.timestamp":       allRanges,
	}
}

// withLookbacks gives every other incremental collection the shared lookback option of its class. Per-parent
// streams have none: their state keeps a cursor per parent, and a lookback list per parent would multiply it.
func withLookbacks(streams []Stream) []Stream {
	for i := range streams {
		s := &streams[i]
		if s.Kind == Collection && s.Cursor != nil && s.LookbackOption == "" {
			s.LookbackOption = "lookback_minutes"
		}
	}
	return streams
}

// Lookup returns the stream of that name.
func Lookup(name string) (Stream, bool) { return lookupIn(Streams(), name) }

func lookupIn(streams []Stream, name string) (Stream, bool) {
	for _, s := range streams {
		if s.Name == name {
			return s, true
		}
	}
	return Stream{}, false
}
