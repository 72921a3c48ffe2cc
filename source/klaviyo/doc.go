// Package klaviyo is the HTTP client of Klaviyo's REST API: auth, revision, JSON:API pages, links.next pagination,
// per-endpoint rate budgets and retries. It knows nothing about streams.
//
// Every request names its endpoint template (the rate-budget key) and the endpoint's published Budget. All callers
// of an endpoint share its rate state: a log of recent send times that allows at most the burst in any second and
// the steady limit in any minute (so Klaviyo's fixed windows are never overrun, wherever they fall, and a small sync
// spends a whole burst at once), and an adaptive token bucket; a 429 closes the endpoint for everyone until its
// Retry-After and halves its rate, which then recovers step by step. Failures come back as *Error with a Kind the engine acts on (errors.As, or errors.Is with a Kind),
// and a message that names the endpoint and what to do. The API key never appears in an error or a log line.
package klaviyo
