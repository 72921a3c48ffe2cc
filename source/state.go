package source

import (
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// cursorFormat is how cursors are written in state: RFC 3339 in UTC, whole seconds (Klaviyo's precision).
const cursorFormat = "2006-01-02T15:04:05Z"

// idsKey names the ids already written at the cursor's exact timestamp in a state; fromKey and recentKey the
// lookback: the ids written with a cursor in [lookback_from, cursor).
const (
	idsKey    = "ids_at_cursor"
	fromKey   = "lookback_from"
	recentKey = "lookback_ids"
)

// stateVersion is the version of the state format this release writes, under versionKey in every stream state.
// States without the key are version 1 (every release before the key existed wrote exactly that format), so they
// resume as they always did. A later format bumps the number, and this release refuses a state from a newer one
// rather than misreading it.
const (
	stateVersion = 1
	versionKey   = "state_version"
)

// encodeState renders a stream's state. Collection streams: {"<cursor field>": "<cursor>", "ids_at_cursor": [...]}.
// Per-parent streams: {"parents": {"<parent id>": {"<cursor field>": ..., "ids_at_cursor": [...]}}}. Full
// refresh: {}. Every state also carries state_version. Map keys are sorted by the encoder, so equal states are
// equal bytes.
func encodeState(s catalog.Stream, cursor cursorState, parents map[string]cursorState) (json.RawMessage, error) {
	doc := map[string]any{versionKey: stateVersion}
	one := func(c cursorState) map[string]any {
		m := map[string]any{s.Cursor.Field: c.At.UTC().Format(cursorFormat)}
		if len(c.IDs) > 0 {
			m[idsKey] = c.IDs
		}
		if !c.From.IsZero() {
			// Written even with no ids: a state with lookback_from tells the next sync that its lookback is listed,
			// so it may re-read it; a state without (an older release's) is resumed exactly at its cursor.
			recent := c.Recent
			if recent == nil {
				recent = []string{}
			}
			m[fromKey], m[recentKey] = c.From.UTC().Format(cursorFormat), recent
		}
		return m
	}
	switch {
	case s.Cursor == nil:
	case s.Kind == catalog.PerParent:
		m := make(map[string]any, len(parents))
		for id, c := range parents {
			if !c.At.IsZero() {
				m[id] = one(c)
			}
		}
		doc["parents"] = m
	case !cursor.At.IsZero():
		for k, v := range one(cursor) {
			doc[k] = v
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding the state of stream %s: %w", s.Name, err)
	}
	return b, nil
}

// fullRefreshState is the state of a stream read without a cursor: nothing to resume from but the version.
func fullRefreshState() (json.RawMessage, error) {
	return encodeState(catalog.Stream{}, cursorState{}, nil)
}

// decodeState reads a stream's previous state. It accepts our own shape (with or without state_version) and the
// Singer SDK's {"replication_key_value": ...} bookmark, and names the stream and field when the shape is wrong.
func decodeState(s catalog.Stream, raw json.RawMessage) (cursorState, map[string]cursorState, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return cursorState{}, nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return cursorState{}, nil, configErrorf("state file: the state of stream %q is not a JSON object; remove it to resync the stream", s.Name)
	}
	if v, ok := m[versionKey]; ok {
		var n int
		if err := json.Unmarshal(v, &n); err != nil || n < 1 {
			return cursorState{}, nil, configErrorf("state file: %s of stream %q must be a whole number from 1; remove the stream's state to resync it", versionKey, s.Name)
		}
		if n > stateVersion {
			return cursorState{}, nil, configErrorf("state file: the state of stream %q was written by a newer source-klaviyo (%s %d; this release %s reads up to %d): run that release or a later one, or remove the stream's state to resync it", s.Name, versionKey, n, Version, stateVersion)
		}
	}
	if s.Cursor == nil {
		return cursorState{}, nil, nil
	}
	parseIDs := func(obj map[string]json.RawMessage, where string) ([]string, error) {
		v, ok := obj[idsKey]
		if !ok {
			return nil, nil
		}
		var ids []string
		if err := json.Unmarshal(v, &ids); err != nil {
			return nil, configErrorf("state file: %s%s of stream %q must be a list of ids; remove it to resync the stream", where, idsKey, s.Name)
		}
		return ids, nil
	}
	parseCursor := func(v json.RawMessage, where string) (time.Time, error) {
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return time.Time{}, configErrorf("state file: %s of stream %q must be a date-time string; remove it to resync the stream", where, s.Name)
		}
		t, err := parseTime(str)
		if err != nil {
			return time.Time{}, configErrorf("state file: %s of stream %q is %q, not an RFC 3339 date-time; remove it to resync the stream", where, s.Name, str)
		}
		return t, nil
	}
	if s.Kind == catalog.PerParent {
		parents := map[string]cursorState{}
		pr, ok := m["parents"]
		if !ok {
			return cursorState{}, parents, nil
		}
		var pm map[string]map[string]json.RawMessage
		if err := json.Unmarshal(pr, &pm); err != nil {
			return cursorState{}, nil, configErrorf("state file: \"parents\" of stream %q must map parent ids to {%q: date-time}; remove it to resync the stream", s.Name, s.Cursor.Field)
		}
		for id, v := range pm {
			c, ok := v[s.Cursor.Field]
			if !ok {
				continue
			}
			t, err := parseCursor(c, fmt.Sprintf("parents.%s.%s", id, s.Cursor.Field))
			if err != nil {
				return cursorState{}, nil, err
			}
			ids, err := parseIDs(v, "parents."+id+".")
			if err != nil {
				return cursorState{}, nil, err
			}
			parents[id] = cursorState{At: t, IDs: ids}
		}
		return cursorState{}, parents, nil
	}
	for _, key := range []string{s.Cursor.Field, "replication_key_value"} {
		if v, ok := m[key]; ok {
			t, err := parseCursor(v, key)
			if err != nil {
				return cursorState{}, nil, err
			}
			ids, err := parseIDs(m, "")
			if err != nil {
				return cursorState{}, nil, err
			}
			c := cursorState{At: t, IDs: ids}
			if f, ok := m[fromKey]; ok {
				if c.From, err = parseCursor(f, fromKey); err != nil {
					return cursorState{}, nil, err
				}
				var recent []string
				if err := json.Unmarshal(m[recentKey], &recent); err != nil {
					return cursorState{}, nil, configErrorf("state file: %s of stream %q must be a list of ids; remove it to resync the stream", recentKey, s.Name)
				}
				c.Recent, c.recentSet = recent, make(map[string]bool, len(recent))
				for _, id := range recent {
					c.recentSet[id] = true
				}
			}
			return c, nil, nil
		}
	}
	return cursorState{}, nil, nil
}

// parseTime accepts Klaviyo's timestamp forms ("2022-11-08T00:00:00+00:00", with or without fractions, "Z").
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04:05.999999", s)
		if err != nil {
			return time.Time{}, fmt.Errorf("parsing time %q: %w", s, err)
		}
	}
	return t.UTC(), nil
}

// fixedStart is a relative start_date (a period such as P3M) resolved at a stream's first sync and kept in each
// of its states, so later syncs, and a resumed first sync, start at the same moment rather than a moving one.
type fixedStart struct {
	// At is the resolved moment; Setting is the start_date it was resolved from, so a changed setting resolves
	// again.
	At      time.Time
	Setting string
}

const (
	fixedStartKey   = "start_date"
	fixedSettingKey = "start_date_setting"
)

// decodeFixedStart reads the fixed start a state carries, zero when it has none.
func decodeFixedStart(s catalog.Stream, raw json.RawMessage) (fixedStart, error) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m[fixedStartKey] == nil {
		return fixedStart{}, nil
	}
	var at, setting string
	if json.Unmarshal(m[fixedStartKey], &at) != nil || json.Unmarshal(m[fixedSettingKey], &setting) != nil {
		return fixedStart{}, configErrorf("state file: %s and %s of stream %q must be strings; remove the stream's state to resync it", fixedStartKey, fixedSettingKey, s.Name)
	}
	t, err := parseTime(at)
	if err != nil {
		return fixedStart{}, configErrorf("state file: %s of stream %q is not an RFC 3339 date-time; remove the stream's state to resync it", fixedStartKey, s.Name)
	}
	return fixedStart{At: t, Setting: setting}, nil
}

// withFixedStart adds a fixed start to an encoded state; a zero one leaves it as it is.
func withFixedStart(st json.RawMessage, fs fixedStart) (json.RawMessage, error) {
	if fs.At.IsZero() {
		return st, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(st, &m); err != nil {
		return nil, fmt.Errorf("adding the fixed start to a state: %w", err)
	}
	m[fixedStartKey], _ = json.Marshal(fs.At.UTC().Format(cursorFormat))
	m[fixedSettingKey], _ = json.Marshal(fs.Setting)
	return json.Marshal(m)
}
