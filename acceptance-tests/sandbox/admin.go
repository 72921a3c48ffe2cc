package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// serveAdmin is the sandbox's own surface: clock, advance (quiet=true: with nothing new in the interval), count,
// resources, stats, the last requests whole, and what the opt-in late events and removals did (for tests driving
// the klaviyo-sandbox binary).
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(status int, err error) { writeJSON(status, map[string]string{"error": err.Error()}) }
	q := r.URL.Query()
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/_sandbox/clock":
		writeJSON(200, map[string]string{"now": s.Now().Format(time.RFC3339)})
	case "/_sandbox/advance":
		if r.Method != http.MethodPost {
			fail(405, errors.New("use POST"))
			return
		}
		d, err := time.ParseDuration(q.Get("by"))
		if err != nil || d <= 0 {
			fail(400, fmt.Errorf("by=%q is not a positive duration", q.Get("by")))
			return
		}
		quiet := false
		if v := q.Get("quiet"); v != "" {
			if quiet, err = strconv.ParseBool(v); err != nil {
				fail(400, fmt.Errorf("quiet=%q is not a boolean", v))
				return
			}
		}
		if quiet {
			s.AdvanceQuiet(d)
		} else {
			s.Advance(d)
		}
		writeJSON(200, map[string]string{"now": s.Now().Format(time.RFC3339)})
	case "/_sandbox/count":
		path := q.Get("path")
		q.Del("path")
		n, err := s.Count(path, q)
		if err != nil {
			fail(400, err)
			return
		}
		writeJSON(200, map[string]int{"count": n})
	case "/_sandbox/resources":
		path := q.Get("path")
		q.Del("path")
		res, err := s.Resources(path, q)
		if err != nil {
			fail(400, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, raw := range res {
			_, _ = w.Write(raw)
			_, _ = w.Write([]byte("\n"))
		}
	case "/_sandbox/stats":
		writeJSON(200, s.Stats())
	case "/_sandbox/requests":
		since, err := strconv.ParseInt(q.Get("since"), 10, 64)
		if q.Get("since") == "" {
			since, err = 0, nil
		}
		if err != nil || since < 0 {
			fail(400, fmt.Errorf("since=%q is not a request number", q.Get("since")))
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, req := range s.RequestsSince(since) {
			_ = enc.Encode(req)
		}
	case "/_sandbox/late-events":
		writeJSON(200, s.LateEvents())
	case "/_sandbox/removed-members":
		writeJSON(200, s.RemovedMembers())
	case "/_sandbox/remove-member":
		if r.Method != http.MethodPost {
			fail(405, errors.New("use POST"))
			return
		}
		if err := s.RemoveMember(q.Get("group"), q.Get("profile")); err != nil {
			fail(400, err)
			return
		}
		writeJSON(200, s.RemovedMembers())
	default:
		keys := []string{"/_sandbox/clock", "/_sandbox/advance?by=24h", "/_sandbox/advance?by=1h&quiet=true", "/_sandbox/count?path=", "/_sandbox/resources?path=", "/_sandbox/stats",
			"/_sandbox/requests?since=", "/_sandbox/late-events", "/_sandbox/removed-members", "/_sandbox/remove-member?group=&profile="}
		sort.Strings(keys)
		writeJSON(404, map[string]any{"error": "unknown admin endpoint", "endpoints": keys})
	}
}
