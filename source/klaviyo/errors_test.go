package klaviyo

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/source-klaviyo/source-klaviyo/source/secret"
	"github.com/stretchr/testify/assert"
)

func TestErrorMessagesNameTheEndpointAndTheFix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: KindScope, Status: 403, Endpoint: "/api/lists"},
			"the API key may not read /api/lists (403): give the key read access to it in Klaviyo"},
		{&Error{Kind: KindScope, Status: 403, Endpoint: "/api/lists/{id}/profiles", Scopes: []string{"lists:read", "profiles:read"}},
			"the API key lacks one of the scopes lists:read, profiles:read needed for /api/lists/{id}/profiles: add them to the key in Klaviyo"},
		{&Error{Kind: KindTransient, Endpoint: "/api/events", Err: errors.New("dial tcp: connection refused")},
			"Klaviyo did not answer /api/events successfully (dial tcp: connection refused): try again later"},
		{&Error{Kind: KindRateLimited, Status: 429, Endpoint: "/api/events", RetryAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))},
			"Klaviyo's rate limit for /api/events is used up until 2026-01-02T02:04:05Z: retry the sync after then"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.err.Error())
	}
}

func TestErrorMatchesItsKind(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("stream lists: %w", &Error{Kind: KindScope, Endpoint: "/api/lists"})
	assert.ErrorIs(t, err, KindScope)
	assert.NotErrorIs(t, err, KindAuth)
	var e *Error
	assert.ErrorAs(t, err, &e)
	assert.Equal(t, "scope", KindScope.String())
	assert.Equal(t, "kind(99)", Kind(99).String())
}

func TestErrorDetail(t *testing.T) {
	t.Parallel()
	m := secret.New(testKey)
	d, auth := errorDetail([]byte(`{"errors":[{"code":"invalid","title":"Invalid input.","detail":"bad sort","source":{"parameter":"sort"}},{"code":"x","title":"y","detail":"z"}]}`), m)
	assert.Equal(t, "Invalid input. bad sort [parameter sort]; and 1 more", d)
	assert.False(t, auth)

	d, auth = errorDetail([]byte(`{"errors":[{"code":"not_authenticated","title":"Authentication credentials were not provided.","detail":"Authentication credentials were not provided."}]}`), m)
	assert.Equal(t, "Authentication credentials were not provided.", d)
	assert.True(t, auth)

	d, _ = errorDetail([]byte("  line one\nline\x00two \xff "+testKey+strings.Repeat("x", 500)), m)
	assert.NotContains(t, d, testKey)
	assert.True(t, strings.HasPrefix(d, "line one line two ? ****xxx"), d)
	assert.LessOrEqual(t, len(d), maxDetail+len("…"))
	assert.True(t, strings.HasSuffix(d, "…"))
}
