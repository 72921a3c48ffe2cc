package maps

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
)

// The cost of maps per record, on real profile records: a page of 100 profiles with their subscriptions as the
// in-process sandbox serves it, each turned into the flat record the engine writes (id plus attributes). Every
// benchmark reports records/s and allocs/record; identity is the floor (a map lookup), hashing is the PII case
// (md5 in place plus one sha256 column), flattening spreads location and subscriptions.
//
//	go test -run '^$' -bench . -benchmem ./source/maps/

var (
	benchOnce    sync.Once
	benchRecords [][]byte
	benchErr     error
)

func profileRecords(b *testing.B) [][]byte {
	b.Helper()
	benchOnce.Do(func() { benchRecords, benchErr = fetchProfiles() })
	require.NoError(b, benchErr)
	return benchRecords
}

// fetchProfiles reads one page through the connector's own client, with the query a sync sends for profiles.
func fetchProfiles() ([][]byte, error) {
	srv, err := sandbox.Start(sandbox.Options{Seed: 1, Scale: sandbox.Scale{Profiles: 200}, APIKeys: map[string][]string{"bench-key": nil}})
	if err != nil {
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	defer srv.Close()
	client, err := klaviyo.New(klaviyo.Config{BaseURL: srv.URL(), APIKey: "bench-key", RateScale: 1000})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	doc, err := client.Get(context.Background(), klaviyo.Request{Endpoint: "/api/profiles", Path: "/api/profiles",
		Budget: klaviyo.Budget{Burst: 10, PerMinute: 1000},
		Query:  url.Values{"page[size]": {"100"}, "additional-fields[profile]": {"subscriptions"}}})
	if err != nil {
		return nil, fmt.Errorf("GET profiles: %w", err)
	}
	records := make([][]byte, 0, len(doc.Data))
	for _, r := range doc.Data {
		attrs := bytes.TrimSpace(r.Attributes)
		id, _ := json.Marshal(r.ID)
		rec := append(append([]byte(`{"id":`), id...), ',')
		records = append(records, append(rec, attrs[1:]...))
	}
	return records, nil
}

func benchmarkPlan(b *testing.B, config string) {
	records := profileRecords(b)
	p := planFor(b, config)
	var n int
	sink := func(_ string, data []byte) error { n += len(data); return nil }
	size := 0
	for _, rec := range records {
		size += len(rec)
	}
	b.SetBytes(int64(size))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, rec := range records {
			if err := p.Map("profiles", rec, sink); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	total := float64(b.N) * float64(len(records))
	b.ReportMetric(total/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(ms.Mallocs-mallocs)/total, "allocs/record")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/total, "ns/record")
}

// BenchmarkMap compares a sync's per-record mapping cost with no map, a hashing map and flattening.
func BenchmarkMap(b *testing.B) {
	b.Run("identity", func(b *testing.B) { benchmarkPlan(b, `{}`) })
	b.Run("hashing", func(b *testing.B) {
		benchmarkPlan(b, `{"stream_maps":{"profiles":{"email":"md5(email)","phone_hash":"sha256(phone_number)"}}}`)
	})
	b.Run("flattening", func(b *testing.B) { benchmarkPlan(b, `{"flattening_enabled":true,"flattening_max_depth":3}`) })
}
