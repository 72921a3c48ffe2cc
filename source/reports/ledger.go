package reports

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Ledger keeps the Reporting API's daily quota: 225 requests per endpoint and account a day. Klaviyo counts
// every admitted request, a 400 or a retried attempt included, and answers the 226th with a 429 whose
// Retry-After reaches the next day. The connector cannot ask Klaviyo how much is left, so it counts itself: each
// report stream's state records what it spent on its endpoint on the quota day, a sync's Ledger starts from the
// sum over the streams' states, and every stream of the sync takes from the same Ledger before each request, so a
// plan reads what fits today and stops cleanly instead of drawing the 429.
//
// The quota day is the UTC day (as the sandbox counts it; Klaviyo does not document its reset). A request
// another integration spends on the same account is invisible here: its 429 still comes back as a
// KindRateLimited error and closes the endpoint for the rest of the day.
type Ledger struct {
	day   time.Time
	limit int

	mu     sync.Mutex
	used   map[string]int
	closed map[string]time.Time
}

// NewLedger starts the ledger of a sync starting at now. rateScale is the client's RateScale: a sandbox or a
// negotiated account scaled by it scales the daily quota alike (rounded, at least 1).
func NewLedger(now time.Time, rateScale float64) *Ledger {
	if rateScale <= 0 {
		rateScale = 1
	}
	limit := max(1, int(math.Floor(float64(dailyQuota)*rateScale+0.5)))
	day := now.UTC().Truncate(24 * time.Hour)
	return &Ledger{day: day, limit: limit, used: map[string]int{}, closed: map[string]time.Time{}}
}

// NewLedgerWithLimit starts the ledger of a sync with a daily quota of limit requests per endpoint (at least 1):
// the report_daily_quota option, for an account that keeps part of Klaviyo's 225 for another integration.
func NewLedgerWithLimit(now time.Time, limit int) *Ledger {
	l := NewLedger(now, 1)
	l.limit = max(1, limit)
	return l
}

// Day is the quota day, yyyy-mm-dd.
func (l *Ledger) Day() string { return l.day.Format(time.DateOnly) }

// Limit is the daily quota of each endpoint.
func (l *Ledger) Limit() int { return l.limit }

// ResumeAt is when the quota day turns and a spent endpoint has requests again.
func (l *Ledger) ResumeAt() time.Time { return l.day.Add(24 * time.Hour) }

// Count adds what a report stream's previous state says it spent today. The engine calls it for the state of
// every report stream, selected or not, before planning any.
func (l *Ledger) Count(s State) {
	if s.Quota.Day != l.Day() || s.Quota.Endpoint == "" || s.Quota.Used <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used[s.Quota.Endpoint] += s.Quota.Used
}

// Left is how many requests the endpoint has left today.
func (l *Ledger) Left(endpoint string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.closed[endpoint]; ok {
		return 0
	}
	return max(0, l.limit-l.used[endpoint])
}

// take spends one request of the endpoint's day if one is left.
func (l *Ledger) take(endpoint string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.closed[endpoint]; ok || l.used[endpoint] >= l.limit {
		return false
	}
	l.used[endpoint]++
	return true
}

// adjust corrects a take by what Klaviyo really counted: the attempts sent, minus the one taken (a retry spends
// more; a request that never left spends nothing).
func (l *Ledger) adjust(endpoint string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used[endpoint] = max(0, l.used[endpoint]+n)
}

// close marks an endpoint spent until until: Klaviyo said so with a 429 (someone else spent the quota).
func (l *Ledger) close(endpoint string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed[endpoint] = until
}

// Summary says what the sync spent and has left, endpoint by endpoint, for the sync's last log line.
func (l *Ledger) Summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for ep, n := range l.used {
		left := max(0, l.limit-n)
		if _, ok := l.closed[ep]; ok {
			left = 0
		}
		parts = append(parts, fmt.Sprintf("%s %d used, %d left", ep, n, left))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return fmt.Sprintf("report requests on %s (UTC): none used", l.Day())
	}
	return fmt.Sprintf("report requests on %s (UTC), of %d a day per endpoint: %s", l.Day(), l.limit, strings.Join(parts, "; "))
}
