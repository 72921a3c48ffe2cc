package reports

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	json "github.com/goccy/go-json"
)

// stateVersion is the report state format this release writes, under state_version as every stream state of the
// connector; a newer one is refused rather than misread.
const stateVersion = 1

// State is what a report stream remembers between syncs.
//
// FinalTo is the read cursor: every window before it has been read after its days were final (older than the
// lookback), so no later sync reads it again. Every sync reads from FinalTo to the sync, then moves FinalTo to
// this sync's final boundary (today minus the lookback); a sync the daily quota stops moves it to the end of the
// last final window it finished, so the next one carries on from there. Metric aggregates of every metric keep
// one cursor per metric.
//
// Seen holds a fingerprint of every row read at or after FinalTo (and of the rows of a window cut short): the
// next sync reads those days again and writes only the rows whose content changed, under their same key. It
// costs 8 bytes a row of the lookback.
type State struct {
	// Definition is a digest of what the requests ask for; another digest means other rows, so the stream
	// starts over from its history start (rows are upserted under their keys; nothing is cleared).
	Definition string
	// Timezone is the account's timezone the windows were cut in; another one restarts the stream too.
	Timezone string
	// FinalTo maps a part ("" for a Reporting API report, a metric id for metric aggregates) to its cursor.
	FinalTo map[string]time.Time
	// Pending is the window a daily quota cut short after some of its pages, with the links.next to go on from.
	Pending *Pending
	// Seen are the fingerprints of the rows of the re-read days, sorted.
	Seen []uint64
	// Quota is how many requests this stream spent on its endpoint on the quota day Day (UTC, yyyy-mm-dd).
	Quota Quota
}

// Pending is a window read in part.
type Pending struct {
	Part     string
	From, To time.Time
	Next     string
}

// Quota is a stream's spending of its endpoint's daily quota.
type Quota struct {
	Day      string `json:"day"`
	Endpoint string `json:"endpoint"`
	Used     int    `json:"used"`
}

// wireState is the JSON form of State.
type wireState struct {
	Version    int             `json:"state_version"`
	Definition string          `json:"definition,omitempty"`
	Timezone   string          `json:"timezone,omitempty"`
	FinalTo    json.RawMessage `json:"final_to,omitempty"`
	Pending    *wirePending    `json:"pending,omitempty"`
	Seen       string          `json:"seen,omitempty"`
	Quota      *Quota          `json:"quota,omitempty"`
}

type wirePending struct {
	Part string `json:"part,omitempty"`
	From string `json:"from"`
	To   string `json:"to"`
	Next string `json:"next"`
}

// EncodeState renders a report stream's state: {"state_version":1, "definition", "timezone", "final_to" (a
// date-time, or an object of them by metric id), "pending", "seen" (base64 of the sorted fingerprints, 8 bytes
// each, little-endian), "quota": {"day", "endpoint", "used"}}. Equal states encode to equal bytes.
func EncodeState(s State) ([]byte, error) {
	w := wireState{Version: stateVersion, Definition: s.Definition, Timezone: s.Timezone}
	if len(s.FinalTo) > 0 {
		var v any
		if at, ok := s.FinalTo[""]; ok && len(s.FinalTo) == 1 {
			v = at.Format(wallClock)
		} else {
			m := make(map[string]string, len(s.FinalTo))
			for part, at := range s.FinalTo {
				m[part] = at.Format(wallClock)
			}
			v = m
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encoding a report state's cursor: %w", err)
		}
		w.FinalTo = b
	}
	if p := s.Pending; p != nil {
		w.Pending = &wirePending{Part: p.Part, From: p.From.Format(wallClock), To: p.To.Format(wallClock), Next: p.Next}
	}
	if len(s.Seen) > 0 {
		seen := union(nil, s.Seen)
		b := make([]byte, 8*len(seen))
		for i, f := range seen {
			binary.LittleEndian.PutUint64(b[8*i:], f)
		}
		w.Seen = base64.RawStdEncoding.EncodeToString(b)
	}
	if s.Quota.Day != "" {
		q := s.Quota
		w.Quota = &q
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding a report state: %w", err)
	}
	return b, nil
}

// DecodeState reads a report stream's state; empty or null is the state of a first sync. Errors name the field
// and say how to recover.
func DecodeState(stream string, raw []byte) (State, error) {
	var s State
	if len(raw) == 0 || string(raw) == "null" {
		return s, nil
	}
	bad := func(field, want string) error {
		return fmt.Errorf("state file: %s of report stream %q must be %s; remove the stream's state to read it again from its history start", field, stream, want)
	}
	var w wireState
	if err := json.Unmarshal(raw, &w); err != nil {
		return s, bad("the state", "an object with state_version, definition, final_to, seen and quota")
	}
	if w.Version > stateVersion {
		return s, fmt.Errorf("state file: the state of report stream %q was written by a newer source-klaviyo (state_version %d, this release reads up to %d): run that release or a later one", stream, w.Version, stateVersion)
	}
	s.Definition, s.Timezone = w.Definition, w.Timezone
	if len(w.FinalTo) > 0 {
		parse := func(v string) (time.Time, bool) {
			t, err := time.Parse(time.RFC3339, v)
			return t, err == nil
		}
		var one string
		var many map[string]string
		switch {
		case json.Unmarshal(w.FinalTo, &one) == nil:
			t, ok := parse(one)
			if !ok {
				return State{}, bad("final_to", "an RFC 3339 date-time")
			}
			s.FinalTo = map[string]time.Time{"": t}
		case json.Unmarshal(w.FinalTo, &many) == nil:
			s.FinalTo = make(map[string]time.Time, len(many))
			for part, v := range many {
				t, ok := parse(v)
				if !ok {
					return State{}, bad("final_to."+part, "an RFC 3339 date-time")
				}
				s.FinalTo[part] = t
			}
		default:
			return State{}, bad("final_to", "a date-time or an object of date-times by metric id")
		}
	}
	if p := w.Pending; p != nil {
		from, err1 := time.Parse(time.RFC3339, p.From)
		to, err2 := time.Parse(time.RFC3339, p.To)
		if err1 != nil || err2 != nil || p.Next == "" {
			return State{}, bad("pending", "an object with from, to (date-times) and next")
		}
		s.Pending = &Pending{Part: p.Part, From: from, To: to, Next: p.Next}
	}
	if w.Seen != "" {
		b, err := base64.RawStdEncoding.DecodeString(w.Seen)
		if err != nil || len(b)%8 != 0 {
			return State{}, bad("seen", "base64 of 8-byte fingerprints")
		}
		s.Seen = make([]uint64, len(b)/8)
		for i := range s.Seen {
			s.Seen[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
		slices.Sort(s.Seen)
		s.Seen = slices.Compact(s.Seen)
	}
	if w.Quota != nil {
		s.Quota = *w.Quota
	}
	return s, nil
}

// seenSet is a sorted set of row fingerprints.
type seenSet []uint64

func (s seenSet) has(f uint64) bool {
	_, ok := slices.BinarySearch(s, f)
	return ok
}

// union returns the sorted union of a and b.
func union(a, b []uint64) []uint64 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
