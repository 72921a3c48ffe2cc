package klaviyo

import (
	"context"
	"errors"
	"fmt"
	"iter"

	json "github.com/goccy/go-json"
)

// PostRequest is one POST query of a Klaviyo endpoint: the Reporting API (/api/*-values-reports,
// /api/*-series-reports) and metric aggregates. They read data as GETs do, so they go through the same machinery:
// auth and revision headers, the endpoint's rate budget, retries, error classification and key masking.
//
// Pages follow links.next (the same URL with ?page_cursor=…), each POSTed with the same Body, as Klaviyo requires:
// a cursor belongs to the body it was issued for.
type PostRequest struct {
	// Request names the endpoint, its budget and scopes, and where to send, as for a GET: Path "" means Endpoint,
	// Query goes with the first page only, and URL, when set, is a links.next to POST instead (resuming a report
	// mid-way). The Reporting API's daily quota is not a Budget: the client cannot see it, so it is the caller's
	// to plan; a 429 for it comes back as a KindRateLimited error with RetryAt.
	Request
	// Body is the JSON:API request document, {"data":{"type":…,"attributes":{…}}}.
	Body []byte
	// Sent, when set, is called once per HTTP attempt, retries included: Klaviyo counts every admitted attempt
	// against the daily quota, so a caller keeping a ledger of it must too.
	Sent func()
}

// request is the Request the shared GET machinery sends: the same budget, retries and decoding, with a body.
func (p PostRequest) request() (Request, error) {
	if len(p.Body) == 0 {
		return Request{}, fmt.Errorf("klaviyo: POST %s has no body: a query is sent as a JSON:API document", p.Endpoint)
	}
	r := p.Request
	if r.Path == "" {
		r.Path = r.Endpoint
	}
	r.body, r.sent = p.Body, p.Sent
	return r, nil
}

// Post sends one page of a query and returns it: Data holds the one report object (its Attributes are the
// results), Next the links.next of a further page. Failures are *Error values, as for Get.
func (c *Client) Post(ctx context.Context, req PostRequest) (*Document, error) {
	r, err := req.request()
	if err != nil {
		return nil, err
	}
	return c.Get(ctx, r)
}

// PostPages sends a query and follows links.next, POSTing the same body for every page, until a page has none.
// It stops after yielding an error, or when the consumer stops; a consumer that must not spend another request
// (a daily quota) stops after the page it has, and keeps that page's Next to resume from.
func (c *Client) PostPages(ctx context.Context, req PostRequest) iter.Seq2[*Document, error] {
	r, err := req.request()
	if err != nil {
		return func(yield func(*Document, error) bool) { yield(nil, err) }
	}
	return c.Pages(ctx, r)
}

// method is the HTTP method of a request: POST when it carries a body.
func (r Request) method() string {
	if r.body != nil {
		return "POST"
	}
	return "GET"
}

// decodeReport decodes the answer of a POST query: one resource object, of which only the type is required. The
// Reporting API's report objects have no id (metric aggregates have an ephemeral one), so the id check of
// collection records does not apply; everything else (strict attributes, links.next) is decoded as for GETs.
func decodeReport(body []byte) (doc *Document, err error) {
	defer func() {
		if p := recover(); p != nil {
			doc, err = nil, fmt.Errorf("decode report document: decoder panicked: %v", p)
		}
	}()
	var w wireDocument
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode report document: %w", err)
	}
	if len(w.Data.items) != 1 {
		return nil, errors.New("decode report document: data is not one report object")
	}
	// newDocument checks resources as records, which need an id: lend one for the check and take it back.
	r := &w.Data.items[0]
	lent := r.ID == ""
	if lent {
		r.ID = "report"
	}
	doc, err = newDocument(w.Data.items, w.Included, w.Links.Next)
	if err != nil {
		return nil, fmt.Errorf("decode report document: %w", err)
	}
	if lent {
		doc.Data[0].ID = ""
	}
	return doc, nil
}
