package sandbox

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// BenchmarkServeEvents measures events served per second over HTTP with 1000-event pages,
// following links.next as the connector does (rate limits off, no latency). The client only
// scans for the next link, so almost all the CPU measured is the sandbox's.
func BenchmarkServeEvents(b *testing.B) {
	s, err := Start(Options{Seed: 1, Now: fixedNow, Scale: Scale{Events: 1_000_000}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	first := s.URL() + "/api/events?page[size]=1000"
	next := first
	events, size := 0, 0
	var body bytes.Buffer
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		req, err := http.NewRequest(http.MethodGet, next, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Klaviyo-API-Key "+DefaultAPIKey)
		req.Header.Set("revision", LatestRevision)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body.Reset()
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		size += body.Len()
		events += bytes.Count(body.Bytes(), []byte(`{"type":"event",`))
		next = nextLink(body.Bytes())
		if next == "" {
			next = first
		}
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(events)/el, "events/s")
	b.ReportMetric(float64(size)/float64(max(events, 1)), "bytes/event")
}

// nextLink extracts links.next from the end of a collection document.
func nextLink(body []byte) string {
	i := bytes.LastIndex(body, []byte(`"links":{"self":`))
	if i < 0 {
		return ""
	}
	rest := body[i:]
	j := bytes.Index(rest, []byte(`"next":"`))
	if j < 0 {
		return ""
	}
	rest = rest[j+len(`"next":"`):]
	k := bytes.IndexByte(rest, '"')
	if k < 0 {
		return ""
	}
	return string(rest[:k])
}
