package sandbox

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

func TestReportTableIsCurrent(t *testing.T) {
	table, err := specgen.BuildReports(stableSpec(t))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(table, reportsJSON), "reports.json is stale: run go generate ./acceptance-tests/sandbox")
	reps, err := loadReports()
	require.NoError(t, err)
	require.Len(t, reps, 8, "seven Reporting endpoints and metric aggregates")
	// The prose-derived rules the sandbox enforces, pinned so a rewording of the spec is noticed.
	fs := reps["/api/flow-series-reports"]
	assert.Equal(t, map[string]int{"hourly": 7, "daily": 60, "monthly": 364}, fs.IntervalMaxDays)
	assert.Equal(t, []string{"flow_id", "flow_message_id", "send_channel"}, fs.GroupByDefault)
	assert.ElementsMatch(t, []string{"flow_id", "flow_message_id"}, fs.GroupByRequired)
	assert.Equal(t, 225, fs.Daily)
	assert.Equal(t, map[string]string{"form_version_id": "form_id"}, reps["/api/form-values-reports"].GroupByPrereqs)
	assert.Equal(t, "2023-06-01", reps["/api/segment-values-reports"].DataSince)
	assert.Equal(t, []string{"email", "sms", "push-notification", "whatsapp"}, reps["/api/campaign-values-reports"].FilterValues["send_channel"])
	ma := reps["/api/metric-aggregates"]
	assert.Equal(t, 500, ma.PageSizeDefault)
	assert.Equal(t, "day", ma.IntervalDefault)
	assert.Zero(t, ma.Daily)
}
