package sandbox

import (
	"sync"
	"sync/atomic"
)

// stats counts requests per endpoint template and status for benchmarks and fault tests.
type stats struct {
	mu        sync.Mutex
	byPath    map[string]map[int]int
	throttled atomic.Int64
}

func newStats() *stats { return &stats{byPath: map[string]map[int]int{}} }

func (st *stats) record(path string, status int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.byPath[path]
	if m == nil {
		m = map[int]int{}
		st.byPath[path] = m
	}
	m[status]++
}

// Stats is a snapshot of the requests served.
type Stats struct {
	Requests  int                       `json:"requests"`
	ByPath    map[string]map[string]int `json:"by_path"`   // endpoint template -> status ("0" = dropped) -> count
	ByStatus  map[string]int            `json:"by_status"` // status -> count
	Throttled int64                     `json:"throttled"` // 429s given, real and spurious
}

// Stats returns the requests served so far.
func (s *Server) Stats() Stats {
	st := s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	out := Stats{ByPath: map[string]map[string]int{}, ByStatus: map[string]int{}, Throttled: st.throttled.Load()}
	for p, m := range st.byPath {
		pm := map[string]int{}
		for code, n := range m {
			k := itoa(int64(code))
			pm[k] += n
			out.ByStatus[k] += n
			out.Requests += n
		}
		out.ByPath[p] = pm
	}
	return out
}
