package maps

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eval evaluates one expression as a property of the profiles stream on profileRecord.
func eval(t *testing.T, expression string) any {
	t.Helper()
	p := planFor(t, `{"stream_maps":{"profiles":{"v":`+quote(expression)+`}},"stream_map_config":{"seed":"s3"}}`)
	out := mapRecord(t, p, "profiles", profileRecord)
	require.Len(t, out, 1)
	return out[0].Data["v"]
}

func quote(s string) string { return string(appendString(nil, s)) }

// TestFunctions checks every function the expressions get, values computed independently where the SDK defines
// them by a standard library (md5 and sha256 against crypto/md5 and crypto/sha256).
func TestFunctions(t *testing.T) {
	tests := []struct {
		expr string
		want any
	}{
		{`md5(email)`, md5Hex("Jane@Example.com")},
		{`md5('')`, md5Hex("")},
		{`md5('é')`, md5Hex("é")},
		{`sha256(email)`, sha256Hex("Jane@Example.com")},
		{`sha256(config.seed + lower(email))`, sha256Hex("s3jane@example.com")},
		{`md5(properties.visits)`, md5Hex("3")},
		{`md5(phone_number)`, nil},
		{`str(properties.visits)`, "3"},
		{`str(1.0)`, "1.0"},
		{`str(2.5)`, "2.5"},
		{`str(true)`, "True"},
		{`str(phone_number)`, nil},
		{`str(location.latitude)`, "42.36"},
		{`int('42')`, float64(42)},
		{`int(' 7 ')`, float64(7)},
		{`int(3.9)`, float64(3)},
		{`int(-3.9)`, float64(-3)},
		{`int(true)`, float64(1)},
		{`float('1.5')`, 1.5},
		{`float(2)`, float64(2)},
		{`bool(email)`, true},
		{`bool('')`, false},
		{`bool(0)`, false},
		{`bool(phone_number)`, false},
		{`bool(properties)`, true},
		{`bool(subscriptions.email.marketing.list_suppressions)`, false},
		{`fromisoformat(created)`, "2024-01-02T03:04:05+00:00"},
		{`fromisoformat('2024-01-02')`, "2024-01-02T00:00:00+00:00"},
		{`fromisoformat('2024-01-02T03:04:05.250+02:00')`, "2024-01-02T03:04:05.250000+02:00"},
		{`isoformat(fromisoformat(created) + timedelta(1))`, "2024-01-03T03:04:05+00:00"},
		{`fromisoformat(created) + timedelta(0, 30, 0, 0, 1, 2)`, "2024-01-02T05:05:35+00:00"},
		{`fromisoformat(created) - timedelta(0, 0, 0, 0, 0, 0, 1)`, "2023-12-26T03:04:05+00:00"},
		{`fromisoformat(updated) - fromisoformat(created)`, float64(32*24*3600 + 3661)},
		{`strftime(created, '%Y/%m/%d %H:%M:%S')`, "2024/01/02 03:04:05"},
		{`strftime(fromisoformat(created), '%b %d, %Y %I%p %j %A')`, "Jan 02, 2024 03AM 002 Tuesday"},
		{`strptime('03/02/2024 10:11', '%d/%m/%Y %H:%M')`, "2024-02-03T10:11:00+00:00"},
		{`strptime('2024-02-03 10:11:12.5', '%Y-%m-%d %H:%M:%S.%f')`, "2024-02-03T10:11:12.500000+00:00"},
		{`strptime(phone_number, '%Y')`, nil},
		{`fromisoformat(created).Year()`, float64(2024)},
		{`date(created).Unix()`, float64(1704164645)},
		{`toJSON(properties.visits)`, "3"},
		{`fromJSON('{"a": 1}').a`, float64(1)},
		{`upper(first_name) + '!'`, "JANE!"},
		{`trim('  x ')`, "x"},
		{`email startsWith 'Jane' and email contains '@'`, true},
		{`'gold' in ['gold', 'silver']`, true},
		{`first_name[0:2]`, "Ja"},
		{`len(email)`, float64(16)},
		{`properties?.missing ?? 'default'`, "default"},
		{`phone_number == nil ? 'none' : phone_number`, "none"},
		{`map(['a','b'], upper(#))`, []any{"A", "B"}},
		{`filter([1, 2, 3], # > 1)`, []any{float64(2), float64(3)}},
		{`2 ** 10`, float64(1024)},
		{`7 % 3`, float64(1)},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			assert.Equal(t, tt.want, eval(t, tt.expr))
		})
	}
}

// TestFunctionErrors: conversions that cannot succeed fail the record with their own value-free reason.
func TestFunctionErrors(t *testing.T) {
	for expression, reason := range map[string]string{
		`int(first_name)`:                  "int() needs text that is a whole number",
		`float(first_name)`:                "float() needs text that is a number",
		`int(properties)`:                  "int() needs a number",
		`fromisoformat(first_name)`:        "fromisoformat() needs ISO 8601 text",
		`strptime(first_name, '%Y')`:       "strptime() found text that does not match the format",
		`strftime(created, '%Q')`:          "strftime() format has a directive this connector does not support",
		`strftime(created, 'day 1 %d')`:    "strftime() formats cannot hold literal digits",
		`timedelta(1,2,3,4,5,6,7,8)`:       "timedelta() takes at most 7 numbers",
		`timedelta(first_name)`:            "timedelta() needs numbers",
		`isoformat(first_name)`:            "isoformat() needs a date-time",
		`float('inf') + 0`:                 "JSON cannot hold",
		`md5(fromJSON('{"a": [1]}').a)`:    "", // containers have a text form: JSON
		`str(fromJSON('{"a": [1, 2]}').a)`: "",
	} {
		t.Run(expression, func(t *testing.T) {
			p := planFor(t, `{"stream_maps":{"profiles":{"v":`+quote(expression)+`}}}`)
			err := p.Map("profiles", []byte(profileRecord), func(string, []byte) error { return nil })
			if reason == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), reason)
			assert.Contains(t, err.Error(), "stream_maps.profiles.v: ")
		})
	}
}
