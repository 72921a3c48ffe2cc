package sandbox

import (
	"fmt"
	"time"
)

// Removals (Options.Removals, Server.RemoveMember) take profiles out of lists and segments.
// Klaviyo has no endpoint listing who left, so a connector notices only by re-reading the
// membership; its tests need an account where members leave. Membership stays a hash of
// (group, profile) (profiles.go); the removals are the only stored state: one map entry and one
// log entry per removed membership, never per member. A removed member stays removed.

// membership is profile i's membership of list or segment l (kind kList or kSegment).
type membership struct {
	kind string
	l, i int64
}

// removal is a membership that ended at `at` (Unix seconds).
type removal struct {
	membership
	at int64
}

// isMember tells whether profile i is (or, once joined, will be) a current member of group l:
// drawn as a member and not removed since.
func (w *world) isMember(kind string, l, i int64) bool {
	if !w.memberOf(kind, l, i) {
		return false
	}
	if len(w.removed) == 0 {
		return true
	}
	_, gone := w.removed[membership{kind: kind, l: l, i: i}]
	return !gone
}

// pickRemovals chooses the memberships Advance k (epoch e) ends: Removals of lists and as many
// of segments, each a member that joined before the Advance started, leaving at a hashed instant
// of (e.from, e.to]. The group and a starting profile are hashes of (seed, k, m); the scan from
// that profile to the first eligible member takes about 1/share steps (shares are 5-60%).
func (w *world) pickRemovals(e epoch, k int) []removal {
	profiles := w.total(kProfile)
	if w.removals == 0 || profiles == 0 {
		return nil
	}
	var out []removal
	taken := func(m membership) bool {
		for _, r := range out {
			if r.membership == m {
				return true
			}
		}
		return false
	}
	for _, kind := range []string{kList, kSegment} {
		groups := w.total(kind)
		if groups == 0 {
			continue
		}
		for m := 0; m < w.removals; m++ {
			h := mix(w.salt(kind), 0x7e30, uint64(k), uint64(m))
			l := int64(h % uint64(groups))
			i0 := int64(mix(h, 1) % uint64(profiles))
			for step := int64(0); step < profiles; step++ {
				mb := membership{kind: kind, l: l, i: (i0 + step) % profiles}
				if !w.isMember(kind, l, mb.i) || w.joinedAt(kind, l, mb.i) > e.from || taken(mb) {
					continue
				}
				out = append(out, removal{membership: mb, at: e.from + 1 + int64(mix(h, 2)%uint64(e.to-e.from))})
				break
			}
		}
	}
	return out
}

// withRemovals returns copies of the removal map and log with adds recorded; w's stay as they
// are, since older worlds may still be answering requests.
func (w *world) withRemovals(adds []removal) (map[membership]int64, []removal) {
	removed := make(map[membership]int64, len(w.removed)+len(adds))
	for m, t := range w.removed {
		removed[m] = t
	}
	log := make([]removal, len(w.removedLog), len(w.removedLog)+len(adds))
	copy(log, w.removedLog)
	for _, r := range adds {
		removed[r.membership] = r.at
		log = append(log, r)
	}
	return removed, log
}

// membersRemoved counts the removals from group l at instants in [from, to), up to the clock.
func (w *world) membersRemoved(kind string, l, from, to int64) int64 {
	to = min(to, w.now+1)
	var n int64
	for _, r := range w.removedLog {
		if r.kind == kind && r.l == l && r.at >= from && r.at < to {
			n++
		}
	}
	return n
}

// RemovedMember is a membership that ended (Options.Removals or RemoveMember).
type RemovedMember struct {
	Kind      string    `json:"kind"`     // "list" or "segment"
	GroupID   string    `json:"group_id"` // the list's or segment's id
	ProfileID string    `json:"profile_id"`
	At        time.Time `json:"at"` // when the profile left: inside the Advance that removed it, or the clock at RemoveMember
}

// RemovedMembers lists every removed membership in the order of removal, so a test can check
// that a connector noticed them.
func (s *Server) RemovedMembers() []RemovedMember {
	w := s.world.Load()
	out := make([]RemovedMember, 0, len(w.removedLog))
	for _, r := range w.removedLog {
		id := w.listID(r.l)
		if r.kind == kSegment {
			id = w.segmentID(r.l)
		}
		out = append(out, RemovedMember{Kind: r.kind, GroupID: id, ProfileID: w.profileID(r.i), At: time.Unix(r.at, 0).UTC()})
	}
	return out
}

// RemoveMember takes profileID out of the list (or, if groupID names no list, the segment)
// groupID at the current clock, whatever Options.Removals says, so a test can remove exactly the
// member it will look for. It fails when either id is unknown or the profile is not a member.
func (s *Server) RemoveMember(groupID, profileID string) error {
	s.advMu.Lock()
	defer s.advMu.Unlock()
	w := s.world.Load()
	kind := kList
	l, ok := w.shortIdx(kList, groupID)
	if !ok {
		kind = kSegment
		if l, ok = w.shortIdx(kSegment, groupID); !ok {
			return fmt.Errorf("sandbox: no list or segment has id %q", groupID)
		}
	}
	i, ok := w.profileIndex(profileID)
	if !ok {
		return fmt.Errorf("sandbox: no profile has id %q", profileID)
	}
	if !w.isMember(kind, l, i) || w.joinedAt(kind, l, i) > w.now {
		return fmt.Errorf("sandbox: profile %s is not a member of %s %s", profileID, kind, groupID)
	}
	n := w.derive()
	n.removed, n.removedLog = w.withRemovals([]removal{{membership: membership{kind: kind, l: l, i: i}, at: w.now}})
	s.world.Store(n)
	return nil
}
