package source

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/source-klaviyo/source-klaviyo/catalog"
)

// A user filter (profiles_filter) is a Klaviyo filter expression the config adds to every request of a stream. It
// is checked before the first request against what the endpoint accepts (the stream table's copy of stable.json's
// x-klaviyo-filters), so a filter Klaviyo would refuse fails the config, with one sentence, instead of failing the
// stream mid-sync with a 400. Its terms are ANDed with the read's own (the window on the cursor): a filter on the
// cursor field itself would fight the window, and is refused too.

// checkUserFilter parses expr (terms joined by commas or wrapped in and(...), as Klaviyo's filter syntax has them)
// and returns it as the comma-joined terms the requests append. It never quotes a value back: a filter may hold an
// email address.
func checkUserFilter(expr string, s catalog.Stream) (string, error) {
	uf := s.UserFilter
	terms, err := filterTerms(strings.TrimSpace(expr))
	if err != nil {
		return "", err
	}
	if len(terms) == 0 {
		return "", fmt.Errorf("%s is empty; remove it to read every %s", uf.Option, s.Name)
	}
	for i, t := range terms {
		op, field, value, err := splitTerm(t)
		if err != nil {
			return "", fmt.Errorf("%s, term %d: %v", uf.Option, i+1, err)
		}
		if s.Cursor != nil && (field == s.Cursor.Field || field == s.Cursor.FilterField) {
			return "", fmt.Errorf("%s, term %d: %s is the cursor of %s, which every read already filters on (start_date and end_date set its range); remove the term", uf.Option, i+1, field, s.Name)
		}
		f, ok := uf.Fields[field]
		if !ok {
			return "", fmt.Errorf("%s, term %d: Klaviyo does not filter %s on %s; it filters on %s", uf.Option, i+1, s.Name, field, strings.Join(sortedKeys(uf.Fields), ", "))
		}
		list := strings.HasPrefix(value, "[")
		allowed := f.Single
		if list {
			allowed = f.List
		}
		if !slices.Contains(allowed, op) {
			kind := "a single value"
			if list {
				kind = "a list"
			}
			return "", fmt.Errorf("%s, term %d: Klaviyo does not accept %s on %s with %s; it accepts %s", uf.Option, i+1, op, field, kind, describeOps(f))
		}
		if err := checkFilterValue(value, list, f.DateTime); err != nil {
			return "", fmt.Errorf("%s, term %d (%s on %s): %v", uf.Option, i+1, op, field, err)
		}
	}
	return strings.Join(terms, ","), nil
}

// filterTerms splits an expression into its ANDed terms: a top-level comma list, with and(...) unwrapped.
func filterTerms(expr string) ([]string, error) {
	var out []string
	parts, err := splitTop(expr)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("has an empty term (two commas, or a comma at an end)")
		}
		if inner, ok := strings.CutPrefix(p, "and("); ok && strings.HasSuffix(inner, ")") {
			sub, err := filterTerms(strings.TrimSuffix(inner, ")"))
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if strings.HasPrefix(p, "or(") || strings.HasPrefix(p, "not(") {
			return nil, fmt.Errorf("uses %s, which Klaviyo's filters do not offer: terms can only be ANDed", p[:strings.Index(p, "(")])
		}
		out = append(out, p)
	}
	return out, nil
}

// splitTop splits s at the commas outside parentheses, brackets and quotes.
func splitTop(s string) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("closes a parenthesis or bracket it never opened")
			}
		case c == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("has a string that is never closed")
	}
	if depth != 0 {
		return nil, fmt.Errorf("leaves a parenthesis or bracket open")
	}
	if s == "" {
		return nil, nil
	}
	return append(parts, s[start:]), nil
}

// splitTerm splits operator(field,value).
func splitTerm(t string) (op, field, value string, err error) {
	open := strings.IndexByte(t, '(')
	if open <= 0 || !strings.HasSuffix(t, ")") {
		return "", "", "", fmt.Errorf("is not of the form operator(field,value)")
	}
	op = t[:open]
	args, err := splitTop(t[open+1 : len(t)-1])
	if err != nil {
		return "", "", "", err
	}
	if len(args) != 2 {
		return "", "", "", fmt.Errorf("%s takes a field and a value", op)
	}
	return op, strings.TrimSpace(args[0]), strings.TrimSpace(args[1]), nil
}

// checkFilterValue checks a value's form: date-times unquoted (RFC 3339 or a date), strings quoted, lists of them
// in brackets.
func checkFilterValue(v string, list, dateTime bool) error {
	items := []string{v}
	if list {
		inner := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
		var err error
		if items, err = splitTop(inner); err != nil || len(items) == 0 {
			return fmt.Errorf("the list is empty or malformed")
		}
	}
	for _, it := range items {
		it = strings.TrimSpace(it)
		quoted := len(it) >= 2 && (it[0] == '"' || it[0] == '\'') && it[len(it)-1] == it[0]
		switch {
		case dateTime && quoted:
			return fmt.Errorf("Klaviyo wants date-times unquoted, like 2024-01-01T00:00:00Z")
		case dateTime:
			if _, err := time.Parse(time.RFC3339, it); err != nil {
				if _, err := time.Parse(time.DateOnly, it); err != nil {
					return fmt.Errorf("the value is not an RFC 3339 date-time or a date")
				}
			}
		case !quoted:
			return fmt.Errorf("the value must be a quoted string")
		}
	}
	return nil
}

func describeOps(f catalog.FilterField) string {
	var parts []string
	if len(f.Single) > 0 {
		parts = append(parts, strings.Join(f.Single, ", ")+" with a single value")
	}
	if len(f.List) > 0 {
		parts = append(parts, strings.Join(f.List, ", ")+" with a list")
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
