package source

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// The hot path of a sync is, per page: decode the JSON:API document, reshape each resource into a flat record
// (finding its cursor on the way), and encode it as an Airbyte RECORD line. These benchmarks run that path on real
// pages served by the sandbox (1,000 events with their metrics included; 100 profiles with subscriptions), so
// their figures match what the binary does in `go run ./acceptance-tests/bench -scenario cpu`. Every benchmark
// reports records/s and allocations per record next to the usual per-page ns/op.
//
//	go test -run '^$' -bench . -benchmem ./source/
//	go test -run '^$' -bench Pipeline -cpuprofile cpu.out ./source/ && go tool pprof -top source.test cpu.out

// benchPage is one page of a stream as the sandbox serves it, raw and decoded.
type benchPage struct {
	stream string
	raw    []byte
	doc    klaviyo.Document
}

var (
	benchOnce  sync.Once
	benchPages map[string]*benchPage
	benchErr   error
)

// loadBenchPages fetches one full page of events and one of profiles from an in-process sandbox, with the query
// the engine sends (include=metric for events, additional-fields[profile]=subscriptions for profiles).
func loadBenchPages(b *testing.B) map[string]*benchPage {
	b.Helper()
	benchOnce.Do(func() {
		srv, err := sandbox.Start(sandbox.Options{Seed: 1, Scale: sandbox.Scale{Events: 5000, Profiles: 500},
			APIKeys: map[string][]string{"bench-key": nil}})
		if err != nil {
			benchErr = fmt.Errorf("starting the sandbox: %w", err)
			return
		}
		defer srv.Close()
		benchPages = map[string]*benchPage{}
		for _, p := range []struct {
			stream string
			query  url.Values
		}{
			{"events", url.Values{"page[size]": {"1000"}, "include": {"metric"}, "fields[metric]": {"name"}}},
			{"profiles", url.Values{"page[size]": {"100"}, "additional-fields[profile]": {"subscriptions"}}},
		} {
			s, _ := catalog.Lookup(p.stream)
			raw, err := fetch(srv.URL()+s.Path+"?"+p.query.Encode(), "bench-key")
			if err != nil {
				benchErr = fmt.Errorf("fetching a page of %s: %w", p.stream, err)
				return
			}
			// The same page through the client, so the resources are what the engine gets (with the page
			// decoder's index of their attributes).
			client, err := klaviyo.New(klaviyo.Config{BaseURL: srv.URL(), APIKey: "bench-key"})
			if err != nil {
				benchErr = fmt.Errorf("a client: %w", err)
				return
			}
			doc, err := client.Get(context.Background(), klaviyo.Request{Endpoint: s.Path, Path: s.Path, Query: p.query,
				Budget: klaviyo.Budget{Burst: 10, PerMinute: 600}})
			if err != nil {
				benchErr = fmt.Errorf("reading a page of %s: %w", p.stream, err)
				return
			}
			benchPages[p.stream] = &benchPage{stream: p.stream, raw: raw, doc: *doc}
		}
	})
	require.NoError(b, benchErr)
	return benchPages
}

func fetch(u, key string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Klaviyo-API-Key "+key)
	req.Header.Set("revision", klaviyo.Revision)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return body, nil
}

// benchRun is a stream run with every field selected, as a default catalog reads it.
func benchRun(b *testing.B, stream string) *streamRun {
	b.Helper()
	s, ok := catalog.Lookup(stream)
	require.True(b, ok, stream)
	sel := catalog.Selection{Stream: s, Incremental: true}
	sh, err := newShaper(sel)
	require.NoError(b, err)
	return &streamRun{s: s, shape: sh, prog: &streamProgress{name: s.Name}}
}

// BenchmarkShape reshapes one decoded page into flat records (the splice of id, relationship ids, metric_name and
// raw attributes). Finding each record's cursor is measured apart, in BenchmarkCursorOf; BenchmarkWritePage has both.
func BenchmarkShape(b *testing.B) {
	for _, stream := range []string{"events", "profiles"} {
		b.Run(stream, func(b *testing.B) {
			page := loadBenchPages(b)[stream]
			r := benchRun(b, stream)
			sc := &readScope{metricNames: r.shape.metricNames(page.doc.Included)}
			out := &rowSink{buf: make([]byte, 0, 64<<10)}
			b.SetBytes(int64(len(page.raw)))
			b.ReportAllocs()
			done := perRecord(b, len(page.doc.Data))
			for i := 0; i < b.N; i++ {
				for j := range page.doc.Data {
					out.reset()
					if _, err := r.shape.rows(out, page.doc.Data[j], sc); err != nil {
						b.Fatal(err)
					}
				}
			}
			done()
		})
	}
}

// BenchmarkCursorOf isolates finding a record's cursor: a scan of the attributes' top level.
func BenchmarkCursorOf(b *testing.B) {
	for _, stream := range []string{"events", "profiles"} {
		b.Run(stream, func(b *testing.B) {
			page := loadBenchPages(b)[stream]
			r := benchRun(b, stream)
			b.ReportAllocs()
			done := perRecord(b, len(page.doc.Data))
			for i := 0; i < b.N; i++ {
				for j := range page.doc.Data {
					if _, ok := r.shape.cursorOf(page.doc.Data[j], time.Time{}); !ok {
						b.Fatal("no cursor")
					}
				}
			}
			done()
		})
	}
}

// BenchmarkDecode is what the client does with one page before the engine sees it: the GET from a local server
// that replays the page, reading the body, and decoding it (BenchmarkPipeline without writePage).
func BenchmarkDecode(b *testing.B) {
	for _, stream := range []string{"events", "profiles"} {
		b.Run(stream, func(b *testing.B) {
			page := loadBenchPages(b)[stream]
			client, req := replay(b, page)
			ctx := context.Background()
			b.SetBytes(int64(len(page.raw)))
			b.ReportAllocs()
			done := perRecord(b, len(page.doc.Data))
			for i := 0; i < b.N; i++ {
				if _, err := client.Get(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// replay serves page.raw to every GET from a local server and returns a client of it, with a request of the page.
func replay(b *testing.B, page *benchPage) (*klaviyo.Client, klaviyo.Request) {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.Header().Set("Content-Length", strconv.Itoa(len(page.raw)))
		_, _ = w.Write(page.raw)
	}))
	b.Cleanup(srv.Close)
	client, err := klaviyo.New(klaviyo.Config{BaseURL: srv.URL, APIKey: "bench-key", RateScale: 1000})
	require.NoError(b, err)
	s, _ := catalog.Lookup(page.stream)
	return client, klaviyo.Request{Endpoint: s.Path, Budget: klaviyo.Budget{Burst: 1 << 20, PerMinute: 1 << 30}, Path: s.Path}
}

// BenchmarkWritePage shapes a decoded page and writes its records through the Airbyte writer (to io.Discard):
// shape + encode, with the engine's locking and state bookkeeping.
func BenchmarkWritePage(b *testing.B) {
	for _, stream := range []string{"events", "profiles"} {
		b.Run(stream, func(b *testing.B) {
			page := loadBenchPages(b)[stream]
			r := benchRun(b, stream)
			e := &engine{out: emit.NewAirbyte(io.Discard, emit.Options{})}
			observe := func(string, time.Time) {}
			b.SetBytes(int64(len(page.raw)))
			b.ReportAllocs()
			done := perRecord(b, len(page.doc.Data))
			for i := 0; i < b.N; i++ {
				if _, err := e.writePage(r, &page.doc, readScope{}, observe); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// BenchmarkPipeline is the whole per-page path of the binary minus the network's wait: the client GETs the page
// from a local server that replays it (HTTP, read, decode, validate), then the engine shapes and writes it. Its
// CPU per record is the floor of the connector's CPU per record in the end-to-end benchmark.
func BenchmarkPipeline(b *testing.B) {
	for _, stream := range []string{"events", "profiles"} {
		b.Run(stream, func(b *testing.B) {
			page := loadBenchPages(b)[stream]
			client, req := replay(b, page)
			r := benchRun(b, stream)
			e := &engine{client: client, out: emit.NewAirbyte(io.Discard, emit.Options{})}
			observe := func(string, time.Time) {}
			ctx := context.Background()
			b.SetBytes(int64(len(page.raw)))
			b.ReportAllocs()
			done := perRecord(b, len(page.doc.Data))
			for i := 0; i < b.N; i++ {
				doc, err := client.Get(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.writePage(r, doc, readScope{}, observe); err != nil {
					b.Fatal(err)
				}
			}
			done()
		})
	}
}

// perRecord starts counting allocations and returns the function that, after the loop, reports records/s,
// ns/record and allocs/record for a benchmark whose op is one page of n records.
func perRecord(b *testing.B, n int) func() {
	b.Helper()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	b.ResetTimer()
	return func() {
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		records := float64(b.N) * float64(n)
		if s := b.Elapsed().Seconds(); s > 0 {
			b.ReportMetric(records/s, "records/s")
			b.ReportMetric(s*1e9/records, "ns/record")
		}
		b.ReportMetric(float64(ms.Mallocs-before)/records, "allocs/record")
	}
}
