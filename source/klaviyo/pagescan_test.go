package klaviyo

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox"
	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// agree checks decodePage against the general path on one body: when decodePage takes the body, the general path
// must decode it to an equal Document; either way decodeBytes must answer as the general path does. It returns
// whether decodePage took the body.
func agree(t testing.TB, body []byte) bool {
	t.Helper()
	want, wantErr := generalRecovering(bytes.Clone(body))
	got, took := decodePage(bytes.Clone(body))
	if took {
		if wantErr != nil {
			t.Fatalf("decodePage took a body the general path refuses (%v): %.300q", wantErr, body)
		}
		if !equalDocuments(got, want) {
			t.Fatalf("decodePage and the general path disagree on %.300q:\n got %+v\nwant %+v", body, got, want)
		}
	}
	doc, err := decodeBytes(bytes.Clone(body), nil)
	if (err == nil) != (wantErr == nil) || (err == nil && !equalDocuments(doc, want)) {
		t.Fatalf("decodeBytes answers %v, %v; the general path %v, %v", doc, err, want, wantErr)
	}
	return took
}

// generalRecovering is decodeGeneral with decodeBytes's recovery: goccy/go-json panics on some broken bodies.
func generalRecovering(body []byte) (doc *Document, err error) {
	defer func() {
		if p := recover(); p != nil {
			doc, err = nil, fmt.Errorf("panicked: %v", p)
		}
	}()
	return decodeGeneral(body)
}

// equalDocuments compares what the engine can observe of two documents: an empty slice and nil are the same page.
func equalDocuments(a, b *Document) bool {
	if a.Next != b.Next {
		return false
	}
	return equalResources(a.Data, b.Data) && equalResources(a.Included, b.Included)
}

func equalResources(a, b []Resource) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Type != y.Type || x.ID != y.ID || !bytes.Equal(x.Attributes, y.Attributes) ||
			(x.Attributes == nil) != (y.Attributes == nil) || len(x.Relationships) != len(y.Relationships) ||
			(x.Relationships == nil) != (y.Relationships == nil) {
			return false
		}
		for name, rx := range x.Relationships {
			ry, ok := y.Relationships[name]
			if !ok || !bytes.Equal(rx.Data, ry.Data) || (rx.Data == nil) != (ry.Data == nil) {
				return false
			}
		}
	}
	return true
}

// TestDecodePageAgreesOnSandboxPages runs the first page of every stream the sandbox serves, with the query a
// sync sends, through both decoders. decodePage must take the ordinary pages (or it saves nothing) and agree.
func TestDecodePageAgreesOnSandboxPages(t *testing.T) {
	t.Parallel()
	srv, err := sandbox.Start(sandbox.Options{Seed: 3, Now: sandboxNow,
		Scale: sandbox.Scale{Events: 300, Profiles: 60}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	taken := 0
	for _, s := range catalog.Streams() {
		if strings.Contains(s.Path, "{") {
			continue
		}
		q := url.Values{}
		if len(s.Include) > 0 {
			q.Set("include", strings.Join(s.Include, ","))
		}
		if s.Name == "profiles" {
			q.Set("additional-fields[profile]", "subscriptions")
		}
		if s.Filter != "" && !strings.Contains(s.Filter, "{") {
			q.Set("filter", s.Filter)
		}
		body, status := rawGet(t, srv.URL()+s.Path+"?"+q.Encode())
		if status != http.StatusOK {
			continue // an endpoint that needs a filter this test does not build; the engine tests read it
		}
		if agree(t, body) {
			taken++
		}
	}
	assert.Greater(t, taken, 10, "decodePage should take the sandbox's ordinary pages")
	assert.True(t, agree(t, eventsPage(100)), "a page of events")
}

func rawGet(t testing.TB, u string) ([]byte, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Klaviyo-API-Key "+sandbox.DefaultAPIKey)
	req.Header.Set("revision", Revision)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return body, resp.StatusCode
}

// TestDecodePageLeavesOddBodiesToTheGeneralPath lists what decodePage must not decide by itself, and what it
// takes; in every case decodeBytes answers as the general path does.
func TestDecodePageLeavesOddBodiesToTheGeneralPath(t *testing.T) {
	t.Parallel()
	ev := func(attrs string) string {
		return `{"data":[{"type":"event","id":"e1","attributes":` + attrs + `}]}`
	}
	for body, takes := range map[string]bool{
		ev(`{"a":1}`): true,
		ev(`null`):    true,
		` {"data" : [ ] , "links" : {"next" : null} } `:                                                true,
		`{"data":[],"included":null,"meta":{"x":[1,{"y":null}]}}`:                                      true,
		`{"data":[{"type":"e","id":"1","relationships":{"r":{"data":null},"s":{},"t":{"links":{}}}}]}`: true,
		`{"data":[{"type":"e","id":"1","relationships":null}]}`:                                        true,
		`{"included":[{"type":"m","id":"m1","relationships":{"x":{"data":{"type":"t","id":"1"}}}}],"data":[{"type":"e","id":"1","relationships":{"metric":{"data":{"type":"m","id":"m1"}},"profile":{"data":null}}},{"type":"e","id":"2"},{"type":"e","id":"3","relationships":{"metric":{"data":{"type":"m","id":"m2"}}}}]}`: true,
		`{"data":[{"type":"e","id":"1"}],"links":{"next":"https://a.klaviyo.com/api/x?page%5Bcursor%5D=1"}}`: true,

		`{"data":{"type":"list","id":"L1"}}`: false, // a single resource
		`{"data":null}`:                      false,
		`{"Data":[]}`:                        false, // goccy matches names ignoring case
		`{"data":[{"TYPE":"e","id":"1"}]}`:   false,
		`{"data":[{"type":"e","id":"1","relationships":{"r":{"Data":{}}}}]}`: false,
		`{"d\u0061ta":[]}`:                                                 false, // an escaped name
		`{"data":[{"type":"e\u0076","id":"1"}]}`:                           false, // an escaped type
		`{"data":[],"data":[]}`:                                            false, // a duplicate member
		`{"data":[{"type":"e","id":"1","id":"2"}]}`:                        false,
		`{"data":[{"type":"e","id":"1","relationships":{"r":{},"r":{}}}]}`: false,
		`{"data":[{"type":"e","id":""}]}`:                                  false,
		`{"data":[{"type":"e"}]}`:                                          false,
		`{"data":[{"type":"e","id":5}]}`:                                   false,
		ev(`[1]`):                                                          false,
		ev(`{"a" 1}`):                                                      false,
		ev("{\"a\":\"caf\xe9\"}"):                                          false, // invalid UTF-8: the general path repairs it
		`{"data":[],"links":{"self":"caf` + "\xe9" + `"}}`:                 false,
		`{"data":[],"links":{"next":5}}`:                                   false,
		`{"data":[]} x`:                                                    false,
		`{"data":[]`:                                                       false,
		`{"errors":[]}`:                                                    false,
		``:                                                                 false,
	} {
		assert.Equal(t, takes, agree(t, []byte(body)), "%q", body)
	}
}

// TestDecodePageCopiesOutOfTheBody shows that a Document outlives the body buffer, which the client reuses.
func TestDecodePageCopiesOutOfTheBody(t *testing.T) {
	t.Parallel()
	body := eventsPage(3)
	doc, ok := decodePage(body)
	require.True(t, ok)
	want := fmt.Sprintf("%s %s %s", doc.Data[0].ID, doc.Data[0].Attributes, doc.Data[0].Relationships["metric"].Data)
	for i := range body {
		body[i] = 'x'
	}
	assert.Equal(t, want, fmt.Sprintf("%s %s %s", doc.Data[0].ID, doc.Data[0].Attributes, doc.Data[0].Relationships["metric"].Data))
	assert.Equal(t, "event", doc.Data[2].Type)
}

// FuzzDecodePageAgrees holds decodePage to the general path on any bytes. Seeds: FuzzDecodeDocument's, and
// testdata/fuzz/FuzzDecodePageAgrees. Run longer with:
// go test ./source/klaviyo -run '^$' -fuzz FuzzDecodePageAgrees -fuzztime 60s
func FuzzDecodePageAgrees(f *testing.F) {
	f.Add(eventsPage(2))
	f.Add([]byte(`{"data":[{"type":"e","id":"1","attributes":{"a":"\u00e9"},"relationships":{"r":{"data":[{"type":"t","id":"x"}]}}}],"included":[]}`))
	f.Add([]byte(`{"data":[],"links":{"next":null,"self":"s"},"meta":{}}`))
	f.Add([]byte(`{"data":[{"type":"e","id":"1","relationships":{"r":{"data":null}}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !agree(t, body) {
			return
		}
		doc, _ := decodePage(body)
		for _, r := range append(doc.Data, doc.Included...) {
			var m map[string]json.RawMessage
			if !r.indexed || json.Unmarshal(r.Attributes, &m) != nil || len(m) != len(r.keys) {
				continue // not indexed, or a name repeats (goccy keeps the last, Attribute the first)
			}
			for k, want := range m {
				if got, found, _ := r.Attribute(k); !found || !bytes.Equal(got, want) {
					t.Fatalf("Attribute(%q) = %q, %v; goccy says %q", k, got, found, want)
				}
			}
		}
	})
}

// TestAttributeFindsWhatTheDecoderFinds holds Resource.Attribute to goccy/go-json on every attribute of the
// sandbox's first pages and on hand-made objects with white space and nesting.
func TestAttributeFindsWhatTheDecoderFinds(t *testing.T) {
	t.Parallel()
	srv, err := sandbox.Start(sandbox.Options{Seed: 5, Now: sandboxNow, Scale: sandbox.Scale{Events: 100, Profiles: 30}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	bodies := [][]byte{
		[]byte(`{"data":[{"type":"e","id":"1","attributes": { "a" : [1, {"b": "}"}] , "updated" :"x\"y",` + "\n" + `"n":null , "z": {} } }]}`),
		[]byte(`{"data":[{"type":"e","id":"1","attributes":{}},{"type":"e","id":"2","attributes":{"only":"v"}}]}`),
	}
	for _, q := range []string{"/api/profiles?additional-fields%5Bprofile%5D=subscriptions", "/api/events?include=metric", "/api/lists", "/api/campaigns?filter=equals(messages.channel,'email')"} {
		body, status := rawGet(t, srv.URL()+q)
		require.Equal(t, http.StatusOK, status, q)
		bodies = append(bodies, body)
	}
	checked := 0
	for _, body := range bodies {
		doc, ok := decodePage(body)
		require.True(t, ok, "%.200s", body)
		for _, r := range doc.Data {
			require.True(t, r.indexed, r.ID)
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(r.Attributes, &m))
			for k, want := range m {
				got, found, indexed := r.Attribute(k)
				require.True(t, found && indexed, k)
				require.Equal(t, string(want), string(got), k)
				checked++
			}
			_, found, _ := r.Attribute("no such attribute")
			require.False(t, found)
		}
	}
	assert.Greater(t, checked, 100)

	_, _, indexed := Resource{Attributes: []byte(`{"a":1}`)}.Attribute("a")
	assert.False(t, indexed, "a resource the page decoder did not make")
	doc, ok := decodePage([]byte(`{"data":[{"type":"e","id":"1","attributes":{"\u0061":1}}]}`))
	require.True(t, ok)
	_, _, indexed = doc.Data[0].Attribute("a")
	assert.False(t, indexed, "an escaped name")
}

// TestAttributeWithAnIndexOfOtherAttributes: a caller that replaces the attributes of its copy of a resource gets
// "not indexed" (or the right answer), never a read out of place.
func TestAttributeWithAnIndexOfOtherAttributes(t *testing.T) {
	t.Parallel()
	doc, ok := decodePage([]byte(`{"data":[{"type":"e","id":"1","attributes":{"name":"a long enough value","updated":"x"}}]}`))
	require.True(t, ok)
	for _, other := range []string{`{"x":1}`, `{}`, ``, `{"updated":"y","name":"a long enough value"}`, `{"name":"a long enough value","updated":"x"}`} {
		r := doc.Data[0]
		r.Attributes = []byte(other)
		v, found, indexed := r.Attribute("updated")
		if indexed && found {
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(r.Attributes, &m), other)
			assert.Equal(t, string(m["updated"]), string(v), other)
		}
	}
}

// BenchmarkDecodeProfilesPage decodes a sandbox page of 100 profiles with their subscriptions (383 KB) with
// decodeBytes, as the client does once the body is read: the page that costs the most per record, and the one the
// rate-profiles benchmark reads. Most of its bytes are short strings, so it measures the validator's per-string
// cost where BenchmarkDecodeEventsPage measures its per-byte cost.
func BenchmarkDecodeProfilesPage(b *testing.B) {
	srv, err := sandbox.Start(sandbox.Options{Seed: 1, Now: sandboxNow, Scale: sandbox.Scale{Profiles: 100}})
	require.NoError(b, err)
	body, status := rawGet(b, srv.URL()+"/api/profiles?page%5Bsize%5D=100&additional-fields%5Bprofile%5D=subscriptions")
	require.NoError(b, srv.Close())
	require.Equal(b, http.StatusOK, status)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	records := 0
	var scratch scanScratch // the client keeps one with each body buffer
	for b.Loop() {
		doc, err := decodeBytes(body, &scratch)
		if err != nil {
			b.Fatal(err)
		}
		records += len(doc.Data)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// A client decodes every page into the same scratch and the same body buffer. Each Document must own what it
// holds: decoding the next pages, or writing over the body, changes nothing in the ones before, and each equals
// what a fresh scratch decodes (resources, raw values, attribute offsets, and whether Data and Included are nil).
func TestScratchReusedAcrossPagesLeavesEarlierDocumentsIntact(t *testing.T) {
	t.Parallel()
	srv, err := sandbox.Start(sandbox.Options{Seed: 7, Now: sandboxNow, Scale: sandbox.Scale{Events: 120, Profiles: 40}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	var bodies [][]byte
	for _, q := range []string{"/api/profiles?additional-fields%5Bprofile%5D=subscriptions", "/api/events?include=metric",
		"/api/lists", "/api/profiles?page%5Bsize%5D=5"} {
		body, status := rawGet(t, srv.URL()+q)
		require.Equal(t, http.StatusOK, status, q)
		bodies = append(bodies, body)
	}
	bodies = append(bodies,
		[]byte(`{"data":[{"type":"e","id":"1","attributes":{"a":1},"relationships":{"m":{"data":{"type":"m","id":"x"}}}}],"included":[]}`),
		[]byte(`{"data":[{"type":"e","id":"1","attributes":{"a":1}},{"type":"e","id":"2","attributes":{"b":`), // broken
		[]byte(`{"data":[],"included":null}`),
		bodies[0])

	var scratch scanScratch
	buf := make([]byte, 0, 1<<20)
	var kept []*Document
	var wants []*Document
	for _, body := range bodies {
		want, wantOK := decodePage(bytes.Clone(body))
		buf = append(buf[:0], body...)
		got, ok := scratch.decode(buf)
		require.Equal(t, wantOK, ok, "%.100s", body)
		if !ok {
			continue
		}
		kept, wants = append(kept, got), append(wants, want)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	require.Len(t, kept, len(bodies)-1)
	for i, got := range kept {
		want := wants[i]
		require.True(t, equalDocuments(got, want), "page %d", i)
		require.Equal(t, want.Data == nil, got.Data == nil, "page %d", i)
		require.Equal(t, want.Included == nil, got.Included == nil, "page %d", i)
		for j := range want.Data {
			require.Equal(t, want.Data[j].indexed, got.Data[j].indexed, "page %d resource %d", i, j)
			require.Equal(t, want.Data[j].keys, got.Data[j].keys, "page %d resource %d", i, j)
		}
	}
}

// A kept page buffer keeps its scratch's room for the next page, unless a page grew it past what Klaviyo's pages
// need: then the room goes (the body buffer stays), so one hostile page does not hold memory for the whole sync.
func TestRecycleDropsScratchOnlyWhenAPageGrewItLarge(t *testing.T) {
	t.Parallel()
	page := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"data":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"e","id":"%d","attributes":{"a":%d}}`, i, i)
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	c := &Client{bufs: make(chan *pageBuffer, 1)}
	for _, tc := range []struct {
		resources int
		kept      bool
	}{{100, true}, {maxKeptResources + 1, false}} {
		pb := c.buffer()
		doc, ok := pb.scratch.decode(page(tc.resources))
		require.True(t, ok)
		require.Len(t, doc.Data, tc.resources)
		c.recycle(pb)
		again := c.buffer()
		require.Same(t, pb, again, "the buffer is kept either way")
		assert.Equal(t, tc.kept, cap(again.scratch.data) >= tc.resources, "%d resources", tc.resources)
		require.Empty(t, again.scratch.data)
		for _, r := range again.scratch.data[:cap(again.scratch.data)] {
			require.Empty(t, r.ID, "a kept scratch holds no resource of the last page")
		}
		c.recycle(again)
	}
}
