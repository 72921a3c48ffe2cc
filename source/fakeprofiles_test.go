package source

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// fakeProfile is one profile of fakeProfiles: when it last changed, and when it was suppressed (globally, and
// from lists).
type fakeProfile struct {
	id          string
	updated     time.Time
	suppressed  []time.Time
	listSupps   []time.Time
	predictions bool
}

// fakeProfiles serves GET /api/profiles as Klaviyo documents it, for engine tests that need a page sequence the
// sandbox does not produce: range filters on updated and on the suppression timestamps, sort, page[size] capped at
// pageSize, page[cursor] and links.next. fail decides, per request, whether Klaviyo answers 503.
type fakeProfiles struct {
	profiles []fakeProfile
	pageSize int
	fail     func(q url.Values, page int) bool

	mu       sync.Mutex
	requests []url.Values
}

func (f *fakeProfiles) start(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

// served returns every query the fake was asked, in order.
func (f *fakeProfiles) served() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.requests...)
}

var filterTermRE = regexp.MustCompile(`(greater-than|greater-or-equal|less-than)\(([^,]+),([^)]+)\)`)

// matches reports whether t satisfies every range term on field.
func matches(terms [][]string, field string, t time.Time) bool {
	for _, m := range terms {
		if m[2] != field {
			continue
		}
		v, err := time.Parse(time.RFC3339, m[3])
		if err != nil {
			return false
		}
		switch m[1] {
		case "greater-than":
			if !t.After(v) {
				return false
			}
		case "greater-or-equal":
			if t.Before(v) {
				return false
			}
		case "less-than":
			if !t.Before(v) {
				return false
			}
		}
	}
	return true
}

const (
	suppressionField     = "subscriptions.email.marketing.suppression.timestamp"
	listSuppressionField = "subscriptions.email.marketing.list_suppressions.timestamp"
)

// selected returns the profiles a query matches, in its sort order, and the sort key of each.
func (f *fakeProfiles) selected(q url.Values) []fakeProfile {
	terms := filterTermRE.FindAllStringSubmatch(q.Get("filter"), -1)
	var out []fakeProfile
	var keys []time.Time
	for _, p := range f.profiles {
		if !matches(terms, "updated", p.updated) {
			continue
		}
		key := p.updated
		ok := true
		for _, arr := range []struct {
			field string
			ts    []time.Time
		}{{suppressionField, p.suppressed}, {listSuppressionField, p.listSupps}} {
			if !strings.Contains(q.Get("filter"), arr.field) {
				continue
			}
			// An array field matches when one of its entries satisfies every term on it.
			ok = false
			for _, t := range arr.ts {
				if matches(terms, arr.field, t) {
					if !ok || t.Before(key) {
						key = t
					}
					ok = true
				}
			}
		}
		if ok {
			out = append(out, p)
			keys = append(keys, key)
		}
	}
	if q.Get("sort") != "" {
		idx := make([]int, len(out))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]].Before(keys[idx[b]]) })
		sorted := make([]fakeProfile, len(out))
		for i, j := range idx {
			sorted[i] = out[j]
		}
		out = sorted
	}
	return out
}

func (f *fakeProfiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.requests = append(f.requests, q)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/vnd.api+json")
	if r.URL.Path != "/api/profiles" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[{"id":"x","code":"not_found","title":"Not found","detail":"no such path"}]}`))
		return
	}
	offset, _ := strconv.Atoi(q.Get("page[cursor]"))
	size, _ := strconv.Atoi(q.Get("page[size]"))
	if size <= 0 || size > f.pageSize {
		size = f.pageSize
	}
	if f.fail != nil && f.fail(q, offset/size+1) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"errors":[{"id":"x","code":"service_unavailable","title":"Unavailable","detail":"try later"}]}`))
		return
	}
	all := f.selected(q)
	end := min(offset+size, len(all))
	if offset > end {
		offset = end
	}
	predictive := strings.Contains(q.Get("additional-fields[profile]"), "predictive_analytics")
	var data []map[string]any
	for _, p := range all[offset:end] {
		attrs := map[string]any{"email": p.id + "@example.com", "updated": p.updated.Format("2006-01-02T15:04:05+00:00")}
		var supps, lists []map[string]any
		for _, t := range p.suppressed {
			supps = append(supps, map[string]any{"reason": "USER_SUPPRESSED", "timestamp": t.Format("2006-01-02T15:04:05+00:00")})
		}
		for i, t := range p.listSupps {
			lists = append(lists, map[string]any{"list_id": fmt.Sprintf("L%d", i), "reason": "USER_SUPPRESSED", "timestamp": t.Format("2006-01-02T15:04:05+00:00")})
		}
		attrs["subscriptions"] = map[string]any{"email": map[string]any{"marketing": map[string]any{"suppression": supps, "list_suppressions": lists}}}
		if predictive {
			attrs["predictive_analytics"] = map[string]any{"historic_clv": 1.5}
		}
		data = append(data, map[string]any{"type": "profile", "id": p.id, "attributes": attrs, "links": map[string]any{"self": "x"}})
	}
	links := map[string]any{"self": "x"}
	if end < len(all) {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("page[cursor]", strconv.Itoa(end))
		links["next"] = "http://" + r.Host + r.URL.Path + "?" + next.Encode()
	}
	if data == nil {
		data = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"data": data, "links": links})
	_, _ = w.Write(b)
}
