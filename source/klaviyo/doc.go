// Package klaviyo is the HTTP client of Klaviyo's REST API: auth, revision, JSON:API pages, links.next pagination,
// per-endpoint rate budgets and retries. It knows nothing about streams.
//
// Every request names its endpoint template (the rate-budget key) and the endpoint's published Budget. All callers
// of an endpoint share one token bucket sized so Klaviyo's fixed one-second and one-minute windows are never
// overrun; a 429 closes the endpoint for everyone until its Retry-After and halves its rate, which then recovers
// step by step. Failures come back as *Error with a Kind the engine acts on (errors.As, or errors.Is with a Kind),
// and a message that names the endpoint and what to do. The API key never appears in an error or a log line.
package klaviyo
