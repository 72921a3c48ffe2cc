package klaviyo

import (
	"io"
	"sync/atomic"
	"time"
)

// Stats are the client's counters since New, for logs and benchmarks.
type Stats struct {
	// Requests is the number of HTTP attempts sent, retries included.
	Requests int64
	// Pages is the number of documents decoded successfully, and Records the resources in their data.
	Pages   int64
	Records int64
	// Retries is the number of attempts retried, and RetriesByReason the same split by reason: rate_limited,
	// server_error, network, timeout, bad_body.
	Retries         int64
	RetriesByReason map[string]int64
	// RateLimited counts 429 responses, and SlowDowns the times an endpoint's rate was lowered because of them.
	RateLimited int64
	SlowDowns   int64
	// Bytes is the response body bytes read (after transparent decompression).
	Bytes int64
	// Wait is the time callers spent waiting for rate budgets, Retry-After gates and concurrency slots, summed
	// over callers (it exceeds wall time when many wait at once).
	Wait time.Duration
}

// counters are the live, lock-free counterparts of Stats.
type counters struct {
	requests, pages, records  atomic.Int64
	throttled, slowDowns      atomic.Int64
	bytes, waitNanos, retries atomic.Int64
	byReason                  [numReasons]atomic.Int64
}

func (s *counters) retry(r reason) {
	s.retries.Add(1)
	if r >= 0 && r < numReasons {
		s.byReason[r].Add(1)
	}
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	out := Stats{
		Requests:        s.requests.Load(),
		Pages:           s.pages.Load(),
		Records:         s.records.Load(),
		Retries:         s.retries.Load(),
		RetriesByReason: make(map[string]int64, numReasons),
		RateLimited:     s.throttled.Load(),
		SlowDowns:       s.slowDowns.Load(),
		Bytes:           s.bytes.Load(),
		Wait:            time.Duration(s.waitNanos.Load()),
	}
	for r := range numReasons {
		if n := s.byReason[r].Load(); n > 0 {
			out.RetriesByReason[r.String()] = n
		}
	}
	return out
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
