package source

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// Some streams are different shapes of the same responses: campaign_messages and campaign_send_times both page
// through every campaign's /api/campaigns/{id}/campaign-messages, campaign_audiences and campaign_tracking_params
// both through /api/campaigns. Reading such an endpoint once per stream spends its budget twice for nothing, and
// on a whole-catalog sync the campaign endpoints' tier M is what the sync waits for. So streams whose reads are the
// same requests (apart from which attributes they keep) form a share: the first of them (the leader) reads, with
// the union of their sparse fieldsets, and writes every page into each member's shaper; the others (followers)
// only announce themselves, wait, and end on their own state. Only reads without a cursor share: a cursor's
// requests depend on each stream's own state.

// share is the streams of one sync that read the same requests.
type share struct {
	leader string
	// key is what the reads are (readKey).
	key string
	// sparse is the union of the members' sparse fieldsets; nil when any member keeps every attribute.
	sparse []string
	// members are the followers, in selection order.
	members []*shareMember
	// lists is set when the reads are also a parent stream's listing (parentCache): the leader keeps the ids it
	// reads in ids, and the listing waits for them instead of paging through the same responses again.
	lists bool
	ids   []string
	seen  map[string]bool
	// done is closed once the leader has read everything (or failed with err).
	done chan struct{}
	err  error
}

// shareMember is one follower: ready is closed once it has announced itself (run is then its stream, or nil when
// it failed before it could read).
type shareMember struct {
	name  string
	ready chan struct{}
	run   *streamRun
}

// shares maps each member stream's name, leader or follower, to its share.
type shares map[string]*share

// planShares groups the selections whose reads are the same requests. Two streams share when both read without a
// cursor and their first requests, built with no sparse fieldset, are equal for every variant and parent. A
// stream that reads alone still leads a share when its reads are also the listing of a selected stream's parents
// (the campaigns list that campaign_audiences reads is the one campaign_messages fans out over).
func planShares(cfg Config, sels []catalog.Selection) shares {
	byKey := map[string]*share{}
	var order []*share
	for _, sel := range sels {
		key, sparse, ok := shareKey(cfg, sel)
		if !ok {
			continue
		}
		sh, found := byKey[key]
		if !found {
			sh = &share{leader: sel.Stream.Name, key: key, sparse: sparse, done: make(chan struct{})}
			byKey[key] = sh
			order = append(order, sh)
			continue
		}
		if sh.sparse != nil {
			if sparse == nil {
				sh.sparse = nil
			} else {
				for _, f := range sparse {
					if !slices.Contains(sh.sparse, f) {
						sh.sparse = append(sh.sparse, f)
					}
				}
			}
		}
		sh.members = append(sh.members, &shareMember{name: sel.Stream.Name, ready: make(chan struct{})})
	}
	for _, sel := range sels {
		if p, ok := catalog.Lookup(sel.Stream.Parent); ok && p.Kind == catalog.Collection {
			if sh := byKey[readKey(cfg, p)]; sh != nil {
				sh.lists, sh.seen = true, map[string]bool{}
			}
		}
	}
	out := shares{}
	for _, sh := range order {
		if len(sh.members) == 0 && !sh.lists {
			continue
		}
		out[sh.leader] = sh
		for _, m := range sh.members {
			out[m.name] = sh
		}
	}
	return out
}

// shareKey is what a stream's reads are, for planShares, and its sparse fieldset; false when the stream cannot
// share (it reads with a cursor, or one resource per parent).
func shareKey(cfg Config, sel catalog.Selection) (string, []string, bool) {
	s := sel.Stream
	switch {
	case s.Kind != catalog.Collection && s.Kind != catalog.PerParent:
		return "", nil, false
	case sel.Incremental && s.Cursor != nil:
		return "", nil, false
	case s.Kind == catalog.Collection && s.Cursor != nil && s.Cursor.Upper != "":
		// A full refresh of a time-filterable collection reads windows (plan.go), not one query.
		return "", nil, false
	}
	sh, err := newShaper(sel)
	if err != nil {
		return "", nil, false
	}
	return readKey(cfg, s), slices.Clone(sh.sparseFields()), true
}

// readKey is the requests a stream reads without a cursor: its path, parent and every variant's first query
// without a sparse fieldset. It is also what listing the stream's ids as a parent reads (parentCache).
func readKey(cfg Config, s catalog.Stream) string {
	reqs := newRequestBuilder(cfg, s, nil)
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s", s.Kind, s.Parent, s.Path)
	for _, v := range reqs.variants {
		req := reqs.build("{id}", v, nil)
		b.WriteString(" " + req.Endpoint + "?" + req.Query.Encode())
	}
	return b.String()
}

// listing returns the share whose reads list the parent stream s, nil when none does.
func (s shares) listing(cfg Config, p catalog.Stream) *share {
	if len(s) == 0 || p.Kind != catalog.Collection {
		return nil
	}
	key := readKey(cfg, p)
	for _, sh := range s {
		if sh.lists && sh.key == key {
			return sh
		}
	}
	return nil
}

// listed keeps the ids of a page the leader read, for the parent listing; the leader calls it page by page.
func (sh *share) listed(doc *klaviyo.Document) {
	for _, d := range doc.Data {
		if !sh.seen[d.ID] {
			sh.seen[d.ID] = true
			sh.ids = append(sh.ids, d.ID)
		}
	}
}

// sparseFor is the sparse fieldset a stream's requests ask for: its own, or its share's union when it leads one.
func (s shares) sparseFor(name string, own []string) []string {
	if sh, ok := s[name]; ok && sh.leader == name {
		return sh.sparse
	}
	return own
}

// follower returns the share a stream follows, and its place in it; nil when it reads for itself.
func (s shares) follower(name string) (*share, *shareMember) {
	sh, ok := s[name]
	if !ok || sh.leader == name {
		return nil, nil
	}
	for _, m := range sh.members {
		if m.name == name {
			return sh, m
		}
	}
	return nil, nil
}

// lead prepares a leader's run: it waits until every follower of the share the stream leads has announced itself,
// and has the run write its pages into those that can take them and keep its ids when the share lists a parent.
func (s shares) lead(ctx context.Context, r *streamRun) error {
	sh, ok := s[r.s.Name]
	if !ok || sh.leader != r.s.Name {
		return nil
	}
	if sh.lists {
		r.lists = sh
	}
	for _, m := range sh.members {
		select {
		case <-m.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if m.run != nil {
			r.also = append(r.also, m.run)
		}
	}
	return nil
}

// finish records how the leader's read ended and releases its followers.
func (s shares) finish(name string, err error) {
	if sh, ok := s[name]; ok && sh.leader == name {
		sh.err = err
		close(sh.done)
	}
}

// abandon releases whoever waits on a stream that ends before it reads: the followers and the parent listing of
// a share it leads, or the leader of a share it follows.
func (s shares) abandon(name string, err error) {
	if sh, m := s.follower(name); sh != nil {
		close(m.ready)
		return
	}
	s.finish(name, err)
}

// follow runs a follower: it announces its stream to the leader, waits for the leader's read, and ends on its own
// full-refresh state. A follower that cannot read (its plan failed) still announces itself, so the leader never
// waits for it.
func (e *engine) follow(ctx context.Context, sh *share, m *shareMember, r *streamRun, sp *streamPlan, planErr error) error {
	if planErr != nil {
		close(m.ready)
		return planErr
	}
	m.run = r
	close(m.ready)
	select {
	case <-sh.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if sh.err != nil {
		return fmt.Errorf("stream %s reads with stream %s, whose read failed: %w", r.s.Name, sh.leader, sh.err)
	}
	return e.writeFullRefreshState(r, sp)
}
