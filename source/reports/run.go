package reports

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// Poster sends POST queries; *klaviyo.Client is one.
type Poster interface {
	Post(ctx context.Context, req klaviyo.PostRequest) (*klaviyo.Document, error)
}

// Sink receives what a report stream produces. Rows come before the state that covers them; the engine writes
// them as RECORD messages of the stream, states as its STATE messages, and log lines as LOG messages.
type Sink interface {
	Row(row []byte) error
	State(state []byte) error
	Log(level, msg string)
}

// reader is one execution of a plan.
type reader struct {
	p   *Plan
	c   Poster
	out Sink
	// st is the state being built: the previous one advanced as windows finish.
	st State
	// prevSeen are the fingerprints of the rows written by the last sync in the days read again.
	prevSeen seenSet
	// liveSeen are the fingerprints of this sync's rows in windows that reach past the final boundary.
	liveSeen []uint64
	// sent counts the requests sent (attempts, as Klaviyo counts them), pages the pages read.
	sent, pages, written, skipped int
}

// Read executes the plan: it sends the requests in order, each only after taking it from the day's quota,
// follows their pages, writes the rows (of the re-read days, only those that changed since the last sync) and
// checkpoints a state after every final window and at the end.
//
// When the quota runs out before the plan does, Read checkpoints what it finished (and the links.next of a window
// cut short) and returns a *klaviyo.Error of KindRateLimited whose RetryAt is when the quota day turns: the
// engine ends the stream INCOMPLETE with a transient error, and the next sync carries on from the state with
// nothing lost and nothing written twice. Any other failure also checkpoints first.
func (p *Plan) Read(ctx context.Context, c Poster, out Sink) error {
	r := &reader{p: p, c: c, out: out, st: p.prev, prevSeen: p.prev.Seen}
	r.st.Definition, r.st.Timezone = p.digest, p.loc.String()
	if r.st.Quota.Day != p.ledger.Day() || r.st.Quota.Endpoint != p.Definition.Kind.Endpoint {
		r.st.Quota = Quota{Day: p.ledger.Day(), Endpoint: p.Definition.Kind.Endpoint}
	}
	for _, note := range p.Notes {
		out.Log("INFO", note)
	}
	out.Log("INFO", p.plannedLine())
	for i := range p.Requests {
		if err := r.read(ctx, &p.Requests[i]); err != nil {
			return r.stop(i, err)
		}
	}
	if p.Definition.Incremental() {
		r.st.Seen = union(nil, r.liveSeen)
		r.st.Pending = nil
	}
	if err := r.checkpoint(); err != nil {
		return err
	}
	out.Log("INFO", r.sentLine())
	return nil
}

// errQuota ends a plan when the day's quota has no room for its next request.
var errQuota = errors.New("daily quota spent")

// read sends one request and its pages and writes their rows. On a failure mid-way it records the window's
// progress in r.st.Pending and its rows in r.liveSeen, so a later sync neither loses nor repeats them.
func (r *reader) read(ctx context.Context, req *Request) error {
	def := r.p.Definition
	ep := def.Kind.Endpoint
	var windowSeen []uint64
	url := req.URL
	for page := 0; ; page++ {
		if def.Kind.Daily > 0 && !r.p.ledger.take(ep) {
			r.cutShort(req, url, page, windowSeen)
			return errQuota
		}
		attempts := 0
		pr := req.PostRequest
		pr.URL = url
		pr.Sent = func() { attempts++ }
		doc, err := r.c.Post(ctx, pr)
		r.sent += attempts
		if def.Kind.Daily > 0 {
			r.p.ledger.adjust(ep, attempts-1)
			r.st.Quota.Used += attempts
		}
		var ke *klaviyo.Error
		if errors.As(err, &ke) && ke.Kind == klaviyo.KindBadRequest && req.Resumed && page == 0 {
			// Klaviyo no longer takes the saved cursor: read the window whole; the rows written before are
			// in the state's fingerprints and are skipped.
			r.out.Log("WARN", fmt.Sprintf("%s: Klaviyo refused the saved page cursor (%s); reading the window from its first page", def.Name, ke.Detail))
			req.Resumed, url, page = false, "", -1
			continue
		}
		if err == nil && len(doc.Data) != 1 {
			err = fmt.Errorf("reading %s for stream %s: the answer holds %d report objects, not one", ep, def.Name, len(doc.Data))
		}
		var rows [][]byte
		if err == nil {
			r.pages++
			rows, err = def.Rows(*req, doc.Data[0].Attributes)
		}
		if err != nil {
			if ke != nil && ke.Kind == klaviyo.KindRateLimited {
				r.p.ledger.close(ep, ke.RetryAt)
			}
			r.cutShort(req, url, page, windowSeen)
			return err
		}
		for _, row := range rows {
			fp := fingerprint(row)
			windowSeen = append(windowSeen, fp)
			if def.Incremental() && r.prevSeen.has(fp) {
				r.skipped++
				continue
			}
			if err := r.out.Row(row); err != nil {
				return fmt.Errorf("writing a row of stream %s: %w", def.Name, err)
			}
			r.written++
		}
		if doc.Next == "" {
			break
		}
		if doc.Next == url {
			r.cutShort(req, "", 0, windowSeen) // no page to resume at: the window is read whole next time
			return fmt.Errorf("reading %s for stream %s: links.next repeats the page just read", ep, def.Name)
		}
		url = doc.Next
	}
	if !def.Incremental() {
		return nil
	}
	if !req.Final {
		r.liveSeen = append(r.liveSeen, windowSeen...)
	}
	// Windows are read in order from the cursor (or the final boundary, if the cursor is past it), so the cursor
	// is where this window ends, or the final boundary for a window reaching past it.
	r.st.FinalTo = cloneTimes(r.st.FinalTo)
	r.st.FinalTo[req.Part] = minTime(req.To, r.p.FinalBoundary)
	r.st.Pending = nil
	if req.Final {
		return r.checkpoint()
	}
	return nil
}

// cutShort records a window left after some pages: where to go on, and the rows already written, which a
// re-read of the whole window then skips.
func (r *reader) cutShort(req *Request, next string, page int, windowSeen []uint64) {
	if !r.p.Definition.Incremental() {
		return
	}
	r.liveSeen = append(r.liveSeen, windowSeen...)
	if page > 0 {
		r.st.Pending = &Pending{Part: req.Part, From: req.From, To: req.To, Next: next}
	}
}

// stop ends an interrupted plan: it checkpoints what is done and explains what is left.
func (r *reader) stop(at int, err error) error {
	p := r.p
	if p.Definition.Incremental() {
		// Days re-read by this sync keep the fingerprints of both syncs: some were not re-read yet.
		r.st.Seen = union(r.prevSeen, r.liveSeen)
	}
	if cerr := r.checkpoint(); cerr != nil {
		return errors.Join(err, cerr)
	}
	r.out.Log("INFO", r.sentLine())
	if !errors.Is(err, errQuota) {
		return err
	}
	left := len(p.Requests) - at
	resume := p.ledger.ResumeAt()
	from := "its first window"
	if c, ok := r.st.FinalTo[p.Requests[at].Part]; ok {
		from = c.Format(time.DateOnly)
	}
	r.out.Log("WARN", fmt.Sprintf("%s: the day's %d requests to %s are spent; %d planned requests wait until %s, and the next sync after then carries on from %s",
		p.Definition.Name, p.ledger.Limit(), p.Definition.Kind.Endpoint, left, resume.Format(time.RFC3339), from))
	return &klaviyo.Error{Kind: klaviyo.KindRateLimited, Endpoint: p.Definition.Kind.Endpoint, RetryAt: resume,
		Scopes: []string{p.Definition.Kind.Scope},
		Detail: fmt.Sprintf("the connector's plan for stream %s has %d more requests than today's quota of %d allows; the next sync carries on from %s, reading nothing twice",
			p.Definition.Name, left, p.ledger.Limit(), from)}
}

func (r *reader) checkpoint() error {
	b, err := EncodeState(r.st)
	if err != nil {
		return err
	}
	if err := r.out.State(b); err != nil {
		return fmt.Errorf("writing the state of stream %s: %w", r.p.Definition.Name, err)
	}
	return nil
}

// plannedLine is the log line of a plan: requests planned, what fits today, what is left.
func (p *Plan) plannedLine() string {
	d := p.Definition
	s := fmt.Sprintf("%s: %d report requests planned to %s", d.Name, len(p.Requests), d.Kind.Endpoint)
	if d.Kind.Daily == 0 {
		return s + " (no daily quota)"
	}
	s += fmt.Sprintf("; %d of the day's %d left", p.Left, p.ledger.Limit())
	if p.Fits < len(p.Requests) {
		s += fmt.Sprintf(", so %d are read today and the rest after %s", p.Fits, p.ResumeAt.Format(time.RFC3339))
	}
	return s
}

// sentLine is the log line at the end of a stream: what it sent and wrote, and what the day has left.
func (r *reader) sentLine() string {
	d := r.p.Definition
	s := fmt.Sprintf("%s: sent %d report requests (%d pages), wrote %d rows", d.Name, r.sent, r.pages, r.written)
	if r.skipped > 0 {
		s += fmt.Sprintf(" and skipped %d unchanged re-read rows", r.skipped)
	}
	if d.Kind.Daily > 0 {
		s += fmt.Sprintf("; %d of the day's %d left on %s", r.p.ledger.Left(d.Kind.Endpoint), r.p.ledger.Limit(), d.Kind.Endpoint)
	}
	return s
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// cloneTimes copies a cursor map so a state handed to the sink is never changed afterwards.
func cloneTimes(m map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
