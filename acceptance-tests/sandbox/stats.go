package sandbox

import (
	"sync"
	"sync/atomic"
	"time"
)

// stats counts requests per endpoint template and status for benchmarks and fault tests, and keeps the last
// recentRequests of them whole, so a benchmark can say why each request of a short sync was made.
type stats struct {
	mu        sync.Mutex
	byPath    map[string]map[int]int
	throttled atomic.Int64
	// seq is how many requests were recorded; recent[i%len] holds request number i+1 among the last ones.
	seq    int64
	recent []Request
}

// recentRequests bounds the requests kept whole: a quiet hourly sync makes hundreds to a few thousand, and
// 20,000 of about 200 bytes stay a few MiB however long a benchmark runs.
const recentRequests = 20_000

func newStats() *stats {
	return &stats{byPath: map[string]map[int]int{}, recent: make([]Request, 0, 1024)}
}

func (st *stats) record(path string, status int, method, uri string, arrived time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m := st.byPath[path]
	if m == nil {
		m = map[int]int{}
		st.byPath[path] = m
	}
	m[status]++
	st.seq++
	req := Request{Seq: st.seq, Method: method, Path: path, URI: uri, Status: status, Arrived: arrived.UnixMicro(),
		Micros: time.Since(arrived).Microseconds()}
	if len(st.recent) < recentRequests {
		st.recent = append(st.recent, req)
		return
	}
	st.recent[(st.seq-1)%recentRequests] = req
}

// Request is one request the sandbox answered: its number since the start, method, endpoint template, the
// request URI as sent (path and query), the status given ("0" for a dropped connection), and when it arrived (Unix
// microseconds) and how long it took to answer, so a benchmark can draw a short sync's timeline against the
// per-second windows the rate limits count in.
type Request struct {
	Seq     int64  `json:"seq"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	URI     string `json:"uri"`
	Status  int    `json:"status"`
	Arrived int64  `json:"arrived_us"`
	Micros  int64  `json:"micros"`
}

// RequestsSince returns the requests numbered after seq, oldest first, among the last 20,000 kept; a benchmark
// passes the Requests of a Stats taken before a sync to get that sync's requests.
func (s *Server) RequestsSince(seq int64) []Request {
	st := s.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	first := max(seq+1, st.seq-int64(len(st.recent))+1)
	out := make([]Request, 0, max(st.seq-first+1, 0))
	for n := first; n <= st.seq; n++ {
		out = append(out, st.recent[(n-1)%recentRequests])
	}
	return out
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
