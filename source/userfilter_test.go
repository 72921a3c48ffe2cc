package source

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

func TestCheckUserFilter(t *testing.T) {
	profiles, _ := catalog.Lookup("profiles")
	for _, tc := range []struct {
		expr, want, err string
	}{
		{expr: `equals(email,"a@example.com")`, want: `equals(email,"a@example.com")`},
		{expr: ` greater-than(created,2024-01-01T00:00:00Z), any(id,["a","b"]) `, want: `greater-than(created,2024-01-01T00:00:00Z),any(id,["a","b"])`},
		{expr: `and(equals(external_id,'x,y'),less-than(created,2025-02-03))`, want: `equals(external_id,'x,y'),less-than(created,2025-02-03)`},
		{expr: `equals(subscriptions.email.marketing.suppression.reason,"HARD_BOUNCE")`, want: `equals(subscriptions.email.marketing.suppression.reason,"HARD_BOUNCE")`},
		{expr: ``, err: "profiles_filter is empty"},
		{expr: `greater-than(updated,2024-01-01T00:00:00Z)`, err: "term 1: updated is the cursor of profiles"},
		{expr: `equals(first_name,"Ann")`, err: "Klaviyo does not filter profiles on first_name; it filters on _kx, created, email,"},
		{expr: `contains(email,"example")`, err: "does not accept contains on email with a single value; it accepts equals with a single value; any, equals with a list"},
		{expr: `any(_kx,["a"])`, err: "does not accept any on _kx with a list"},
		{expr: `greater-than(created,"2024-01-01T00:00:00Z")`, err: "wants date-times unquoted"},
		{expr: `greater-than(created,yesterday)`, err: "not an RFC 3339 date-time"},
		{expr: `equals(email,a@example.com)`, err: "must be a quoted string"},
		{expr: `or(equals(email,"a"),equals(email,"b"))`, err: "uses or, which Klaviyo's filters do not offer"},
		{expr: `equals(email,"a"`, err: "leaves a parenthesis or bracket open"},
		{expr: `equals(email,"a)`, err: "string that is never closed"},
		{expr: `equals(email,"a"),,equals(id,"b")`, err: "empty term"},
		{expr: `email="a"`, err: "term 1: is not of the form operator(field,value)"},
		{expr: `equals(email)`, err: "equals takes a field and a value"},
		{expr: `any(id,[])`, err: "the list is empty"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := checkUserFilter(tc.expr, profiles)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				require.NotContains(t, err.Error(), "example.com", "values are never quoted back")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// profiles_filter is checked when the config is read, and ANDed with every profiles request's own filter.
func TestProfilesFilterReachesEveryProfilesRequest(t *testing.T) {
	_, err := ParseConfig("config.json", []byte(`{"api_key":"pk_x","profiles_filter":"equals(first_name,\"A\")"}`))
	require.ErrorContains(t, err, "config.json: profiles_filter, term 1: Klaviyo does not filter profiles on first_name")
	require.Equal(t, "config_error", string(failureType(err)))

	cfg, err := ParseConfig("config.json", []byte(`{"api_key":"pk_x","profiles_filter":"greater-than(created,2024-01-01T00:00:00Z)"}`))
	require.NoError(t, err)
	profiles, _ := catalog.Lookup("profiles")
	w := &window{lo: ts("2026-01-01T00:00:00Z"), hi: ts("2026-01-02T00:00:00Z")}
	req := newRequestBuilder(cfg, profiles, nil).build("", "", w)
	require.Equal(t, "greater-than(created,2024-01-01T00:00:00Z),greater-than(updated,2025-12-31T23:59:59Z),less-than(updated,2026-01-02T00:00:00Z)", req.Query.Get("filter"))
	exclusions, _ := catalog.Lookup("global_exclusions")
	req = newRequestBuilder(cfg, exclusions, nil).build("", "", w)
	require.NotContains(t, req.Query.Get("filter"), "created", "the filter is the profiles stream's only")
}
