package emit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Progress is where one stream stands: what a long sync reports periodically, so that a first sync of a large
// account that lasts hours is never silent until it ends.
type Progress struct {
	Stream string
	// Records is how many records the stream has written in this sync.
	Records int64
	// Elapsed is how long the stream has been reading.
	Elapsed time.Duration
	// TasksDone of TasksTotal are the windows or parents the plan gave the stream, finished so far; TasksTotal is 0
	// while the stream is still planning.
	TasksDone, TasksTotal int
	// Unit names the tasks ("windows", "parents", "reads") in the report.
	Unit string
	// Final is set on the stream's last report, when it has ended.
	Final bool
}

// RowEstimate is the stream's total rows extrapolated from its finished tasks, and false when no honest estimate
// can be made: nothing finished yet, or nothing left to estimate.
func (p Progress) RowEstimate() (int64, bool) {
	if p.Final || p.TasksDone == 0 || p.TasksTotal == 0 || p.TasksDone >= p.TasksTotal {
		return 0, false
	}
	return int64(math.Round(float64(p.Records) / float64(p.TasksDone) * float64(p.TasksTotal))), true
}

// Remaining is the time left at the pace of the finished tasks, and false when it cannot be said.
func (p Progress) Remaining() (time.Duration, bool) {
	if p.Final || p.TasksDone == 0 || p.TasksTotal == 0 || p.TasksDone >= p.TasksTotal {
		return 0, false
	}
	left := float64(p.Elapsed) / float64(p.TasksDone) * float64(p.TasksTotal-p.TasksDone)
	return time.Duration(left).Round(time.Second), true
}

// Rate is records per second so far.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Records) / p.Elapsed.Seconds()
}

// Text is the report as one line for people: "events: 120,000 records (4,000/s), 5 of 32 windows done, about
// 3m10s left".
func (p Progress) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s records (%s/s)", p.Stream, thousands(p.Records), thousands(int64(math.Round(p.Rate()))))
	if p.TasksTotal > 0 {
		fmt.Fprintf(&b, ", %d of %d %s done", p.TasksDone, p.TasksTotal, p.Unit)
	}
	if left, ok := p.Remaining(); ok {
		fmt.Fprintf(&b, ", about %s left", left)
	}
	if p.Final {
		fmt.Fprintf(&b, ", finished in %s", p.Elapsed.Round(time.Millisecond))
	}
	return b.String()
}

// thousands writes n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// RequestMetric is one HTTP request to Klaviyo as it ended, for the Singer SDK's http_request_duration metric.
type RequestMetric struct {
	Endpoint string
	Status   int // 0 when no response arrived
	Duration time.Duration
	OK       bool
}
