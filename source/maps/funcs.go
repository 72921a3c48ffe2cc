package maps

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	json "github.com/goccy/go-json"
)

// function is one function expressions can call: the SDK's md5 and sha256, Python's conversions str, int, float and
// bool (which expr's own int and float replace, so that the SDK's type hints mean what they mean in Python), and the
// datetime helpers that stand in for Python's datetime module, which expr cannot expose as such.
type function struct {
	name string
	fn   func(args ...any) (any, error)
	sig  any // the Go signature expr's checker types calls and results with
}

// functions returns the table of expression functions; now is the clock of now() and utcnow().
func functions(now func() time.Time) []function {
	return []function{
		{"md5", hashWith("md5", func(b []byte) []byte { s := md5.Sum(b); return s[:] }), new(func(any) string)},
		{"sha256", hashWith("sha256", func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }), new(func(any) string)},
		{"str", nilOr(toStr), new(func(any) string)},
		{"int", nilOr(toInt), new(func(any) int)},
		{"float", nilOr(toFloat), new(func(any) float64)},
		{"bool", func(a ...any) (any, error) { return truthy(a[0]), nil }, new(func(any) bool)},
		{"now", func(...any) (any, error) { return now().UTC(), nil }, new(func() time.Time)},
		{"utcnow", func(...any) (any, error) { return now().UTC(), nil }, new(func() time.Time)},
		{"fromisoformat", nilOr(fromISO), new(func(any) time.Time)},
		{"isoformat", nilOr(func(v any) (any, error) { t, err := timeArg("isoformat", v); return isoformat(t), err }), new(func(any) string)},
		{"strptime", strptime, new(func(any, string) time.Time)},
		{"strftime", strftime, new(func(any, string) string)},
		{"timedelta", timedelta, new(func(...any) time.Duration)},
	}
}

// functionNames lists the functions' names, which start the messages of the errors they return.
func functionNames() []string {
	fs := functions(time.Now)
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

func functionOptions(now func() time.Time) []expr.Option {
	fs := functions(now)
	opts := make([]expr.Option, 0, len(fs))
	for _, f := range fs {
		opts = append(opts, expr.Function(f.name, f.fn, f.sig))
	}
	return opts
}

// nilOr wraps a one-argument conversion so that null stays null: a nullable column mapped through str() or md5()
// stays nullable instead of failing the sync on the first empty value, as Python's str(None) == "None" would not.
func nilOr(f func(any) (any, error)) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		if args[0] == nil {
			return nil, nil
		}
		return f(args[0])
	}
}

// hashWith is md5 or sha256 as the SDK defines them: the hex digest of the value's UTF-8 text.
func hashWith(name string, sum func([]byte) []byte) func(args ...any) (any, error) {
	return nilOr(func(v any) (any, error) {
		s, err := toStr(v)
		if err != nil {
			return nil, errors.New(name + "() needs a value that has a text form")
		}
		return hex.EncodeToString(sum([]byte(s.(string)))), nil
	})
}

// toStr is Python's str() for JSON values: True/False for booleans, a float keeps a decimal point, containers
// become JSON (more useful downstream than Python's repr), times their ISO form.
func toStr(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if x {
			return "True", nil
		}
		return "False", nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return pyFloat(x), nil
	case time.Time:
		return isoformat(x), nil
	case time.Duration:
		return pyFloat(x.Seconds()), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errors.New("str() cannot write this value as text")
	}
	return string(b), nil
}

// pyFloat formats a float as Python's str() does: shortest form, always with a decimal point or an exponent.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// toInt is Python's int(): truncates floats, parses whole-number text, counts booleans as 0 and 1.
func toInt(v any) (any, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("int() cannot convert an infinite or NaN number")
		}
		return int(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(x), "_", ""))
		if err != nil {
			return nil, errors.New("int() needs text that is a whole number")
		}
		return n, nil
	}
	return nil, errors.New("int() needs a number, a boolean or text holding a whole number")
}

// toFloat is Python's float(): numbers, numeric text (inf and nan included) and booleans.
func toFloat(v any) (any, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float64:
		return x, nil
	case bool:
		if x {
			return 1.0, nil
		}
		return 0.0, nil
	case string:
		f, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSpace(x), "_", ""), 64)
		if err != nil {
			return nil, errors.New("float() needs text that is a number")
		}
		return f, nil
	}
	return nil, errors.New("float() needs a number, a boolean or text holding a number")
}

// truthy is Python's bool(): null, false, zero, empty text and empty containers are false.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int:
		return x != 0
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case time.Duration:
		return x != 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
		return rv.Len() > 0
	}
	return true
}

func timeArg(name string, v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		t, err := fromISO(x)
		if err != nil {
			return time.Time{}, errors.New(name + "() needs a date-time or ISO 8601 text")
		}
		return t.(time.Time), nil
	}
	return time.Time{}, errors.New(name + "() needs a date-time or ISO 8601 text")
}

// isoLayouts are the forms datetime.fromisoformat reads, the zone optional (no zone means UTC).
func isoLayouts() []string {
	return []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"}
}

// fromISO is datetime.fromisoformat. Text without a zone is read as UTC, so results never depend on the machine.
func fromISO(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		if t, isTime := v.(time.Time); isTime {
			return t, nil
		}
		return nil, errors.New("fromisoformat() needs ISO 8601 text")
	}
	s = strings.TrimSpace(s)
	for _, layout := range isoLayouts() {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return nil, errors.New("fromisoformat() needs ISO 8601 text such as 2024-01-02T03:04:05+00:00")
}

// isoformat is datetime.isoformat: microseconds only when there are some, and the offset as +HH:MM.
func isoformat(t time.Time) string {
	if t.Nanosecond()/1000 != 0 {
		return t.Format("2006-01-02T15:04:05.000000-07:00")
	}
	return t.Format("2006-01-02T15:04:05-07:00")
}

// strptime is datetime.strptime(text, format) with Python's % directives.
func strptime(args ...any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, errors.New("strptime() needs text to parse")
	}
	layout, err := goLayout("strptime", args[1].(string))
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(layout, strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("strptime() found text that does not match the format")
	}
	return t, nil
}

// strftime is datetime.strftime(format), called as strftime(value, format); ISO text is accepted as the value.
func strftime(args ...any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	t, err := timeArg("strftime", args[0])
	if err != nil {
		return nil, err
	}
	layout, err := goLayout("strftime", args[1].(string))
	if err != nil {
		return nil, err
	}
	return t.Format(layout), nil
}

// pyDirectives maps Python's strftime directives to Go layout elements.
func pyDirectives() map[byte]string {
	return map[byte]string{
		'Y': "2006", 'y': "06", 'm': "01", 'd': "02", 'H': "15", 'I': "03", 'M': "04", 'S': "05", 'f': "000000",
		'p': "PM", 'z': "-0700", 'Z': "MST", 'b': "Jan", 'B': "January", 'a': "Mon", 'A': "Monday", 'j': "002", '%': "%",
	}
}

// goLayout translates a Python format into a Go layout. Text between directives is copied; Go reads digits in it
// as layout elements, so formats with literal digits are refused rather than misread.
func goLayout(name, format string) (string, error) {
	dirs := pyDirectives()
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			if c >= '0' && c <= '9' {
				return "", errors.New(name + "() formats cannot hold literal digits")
			}
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(format) {
			return "", errors.New(name + "() format ends with a lone %")
		}
		i++
		d, ok := dirs[format[i]]
		if !ok {
			return "", errors.New(name + "() format has a directive this connector does not support; see docs/stream-maps.md")
		}
		if format[i] == 'f' && name == "strptime" {
			// Go reads a fraction after the seconds whatever the layout says, and any number of digits of it.
			s := strings.TrimSuffix(b.String(), ".")
			b.Reset()
			b.WriteString(s)
			continue
		}
		b.WriteString(d)
	}
	return b.String(), nil
}

// timedelta is datetime.timedelta with positional arguments in Python's order: days, seconds, microseconds,
// milliseconds, minutes, hours, weeks.
func timedelta(args ...any) (any, error) {
	units := []time.Duration{24 * time.Hour, time.Second, time.Microsecond, time.Millisecond, time.Minute, time.Hour, 7 * 24 * time.Hour}
	if len(args) > len(units) {
		return nil, errors.New("timedelta() takes at most 7 numbers: days, seconds, microseconds, milliseconds, minutes, hours, weeks")
	}
	var d time.Duration
	for i, a := range args {
		f, err := toFloat(a)
		if err != nil || a == nil {
			return nil, errors.New("timedelta() needs numbers")
		}
		d += time.Duration(f.(float64) * float64(units[i]))
	}
	return d, nil
}
