package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/source-klaviyo/source-klaviyo/acceptance-tests/sandbox/internal/specgen"
)

// valueKind tells literals apart; a quoted string that looks like a date stays a string, which is
// how Klaviyo can reject quoted datetimes.
type valueKind int

const (
	vNull valueKind = iota
	vString
	vNumber
	vBool
	vTime
	vList
)

// fval is one literal of a filter expression.
type fval struct {
	kind valueKind
	s    string
	n    float64
	b    bool
	t    tval
	list []fval
}

// tval is an instant as Unix nanoseconds; record accessors return it for date-time fields so
// comparisons never reparse strings on the hot path.
type tval int64

func timeOf(t time.Time) tval { return tval(t.UnixNano()) }
func secOf(sec int64) tval    { return tval(sec * int64(time.Second)) }

// pred is one operator(field[,value]) term; a filter is the AND of its preds.
type pred struct {
	op    string
	field string
	val   fval
	noVal bool
}

type filterError struct{ msg string }

func (e *filterError) Error() string { return e.msg }

func ferr(format string, a ...any) error { return &filterError{msg: fmt.Sprintf(format, a...)} }

// parseFilter parses Klaviyo's filter syntax: and(...) and a top-level comma list are both AND;
// operators take a field and, except has, one literal. It checks every term against the
// endpoint's allowed field/operator pairs and value types.
func parseFilter(src string, allowed map[string]specgen.FilterField) ([]pred, error) {
	p := &fparser{src: src}
	var out []pred
	if err := p.terms(&out); err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.src) {
		return nil, ferr("unexpected %q at position %d", p.src[p.pos:], p.pos)
	}
	if len(out) == 0 {
		return nil, ferr("empty filter")
	}
	for i := range out {
		if err := checkPred(&out[i], allowed); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type fparser struct {
	src   string
	pos   int
	depth int
}

// maxFilterDepth bounds and(...) nesting so a hostile filter cannot exhaust the stack.
const maxFilterDepth = 32

func (p *fparser) ws() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n') {
		p.pos++
	}
}

func (p *fparser) peek() byte {
	p.ws()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

// terms parses a comma list of terms, which is an AND at the top level and inside and(...).
func (p *fparser) terms(out *[]pred) error {
	for {
		if err := p.term(out); err != nil {
			return err
		}
		if p.peek() != ',' {
			return nil
		}
		p.pos++
	}
}

func (p *fparser) ident() string {
	p.ws()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '(' || c == ')' || c == ',' || c == ' ' {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *fparser) term(out *[]pred) error {
	op := p.ident()
	if op == "" {
		return ferr("expected an operator at position %d", p.pos)
	}
	if p.peek() != '(' {
		return ferr("expected '(' after %q", op)
	}
	p.pos++
	if op == "and" {
		if p.depth++; p.depth > maxFilterDepth {
			return ferr("filter nests and() more than %d deep", maxFilterDepth)
		}
		if err := p.terms(out); err != nil {
			return err
		}
		p.depth--
	} else {
		switch op {
		case "equals", "any", "greater-than", "greater-or-equal", "less-than", "less-or-equal",
			"contains", "contains-any", "contains-all", "starts-with", "ends-with", "has":
		case "or", "not":
			return ferr("operator %q is not supported", op)
		default:
			return ferr("unknown operator %q", op)
		}
		field := p.ident()
		if field == "" {
			return ferr("operator %q needs a field", op)
		}
		pr := pred{op: op, field: field, noVal: true}
		if p.peek() == ',' {
			p.pos++
			v, err := p.value()
			if err != nil {
				return err
			}
			pr.val, pr.noVal = v, false
		}
		*out = append(*out, pr)
	}
	if p.peek() != ')' {
		return ferr("expected ')' at position %d", p.pos)
	}
	p.pos++
	return nil
}

func (p *fparser) value() (fval, error) {
	switch c := p.peek(); c {
	case '\'', '"':
		p.pos++
		var b strings.Builder
		for p.pos < len(p.src) {
			ch := p.src[p.pos]
			if ch == '\\' && p.pos+1 < len(p.src) {
				b.WriteByte(p.src[p.pos+1])
				p.pos += 2
				continue
			}
			if ch == c {
				p.pos++
				return fval{kind: vString, s: b.String()}, nil
			}
			b.WriteByte(ch)
			p.pos++
		}
		return fval{}, ferr("unterminated string")
	case '[':
		p.pos++
		v := fval{kind: vList}
		if p.peek() == ']' {
			p.pos++
			return v, nil
		}
		for {
			e, err := p.value()
			if err != nil {
				return fval{}, err
			}
			if e.kind == vList {
				return fval{}, ferr("nested lists are not allowed")
			}
			v.list = append(v.list, e)
			switch p.peek() {
			case ',':
				p.pos++
			case ']':
				p.pos++
				return v, nil
			default:
				return fval{}, ferr("expected ',' or ']' in list at position %d", p.pos)
			}
		}
	}
	p.ws()
	start := p.pos
	for p.pos < len(p.src) && p.src[p.pos] != ',' && p.src[p.pos] != ')' && p.src[p.pos] != ']' {
		p.pos++
	}
	tok := strings.TrimSpace(p.src[start:p.pos])
	return bareValue(tok)
}

func bareValue(tok string) (fval, error) {
	switch tok {
	case "":
		return fval{}, ferr("missing value")
	case "null":
		return fval{kind: vNull}, nil
	case "true":
		return fval{kind: vBool, b: true}, nil
	case "false":
		return fval{kind: vBool}, nil
	}
	if t, ok := parseFilterTime(tok); ok {
		return fval{kind: vTime, t: timeOf(t)}, nil
	}
	if n, err := strconv.ParseFloat(tok, 64); err == nil {
		return fval{kind: vNumber, n: n}, nil
	}
	return fval{}, ferr("invalid value %q (strings must be quoted)", tok)
}

func parseFilterTime(tok string) (time.Time, bool) {
	if len(tok) < 10 || tok[4] != '-' {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, tok); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func checkPred(pr *pred, allowed map[string]specgen.FilterField) error {
	f, ok := allowed[pr.field]
	if !ok {
		return ferr("%q is not a valid field for the resource", pr.field)
	}
	switch {
	case pr.noVal:
		if !contains(f.None, pr.op) {
			return ferr("operator %q needs a value for field %q", pr.op, pr.field)
		}
		return nil
	case pr.val.kind == vList:
		if !contains(f.List, pr.op) {
			if contains(f.Single, pr.op) || contains(f.None, pr.op) {
				return ferr("operator %q on field %q does not take a list", pr.op, pr.field)
			}
			return ferr("operator %q is not allowed for field %q", pr.op, pr.field)
		}
		for _, e := range pr.val.list {
			if err := checkType(pr, e, f); err != nil {
				return err
			}
		}
		return nil
	default:
		// Klaviyo files equals under "list" for fields like coupon.id and list names, yet
		// documents equals(field,'value') for them; a scalar equals is accepted wherever equals is.
		if !contains(f.Single, pr.op) && !(pr.op == "equals" && contains(f.List, pr.op)) {
			if contains(f.List, pr.op) {
				return ferr("operator %q on field %q takes a list", pr.op, pr.field)
			}
			return ferr("operator %q is not allowed for field %q", pr.op, pr.field)
		}
		return checkType(pr, pr.val, f)
	}
}

func checkType(pr *pred, v fval, f specgen.FilterField) error {
	if v.kind == vNull {
		return nil
	}
	switch f.Type {
	case "date-time":
		if v.kind == vString {
			if _, ok := parseFilterTime(v.s); ok {
				return ferr("datetime for field %q must not be quoted", pr.field)
			}
		}
		if v.kind != vTime {
			return ferr("field %q needs a datetime value", pr.field)
		}
	case "boolean":
		if v.kind != vBool {
			return ferr("field %q needs a boolean value", pr.field)
		}
	case "integer", "number":
		if v.kind == vTime && f.Type == "number" {
			return ferr("field %q needs a number", pr.field)
		}
		if v.kind != vNumber {
			return ferr("field %q needs a number", pr.field)
		}
	default: // string or enum
		if v.kind != vString {
			return ferr("field %q needs a quoted string", pr.field)
		}
		if len(f.Enum) > 0 && !contains(f.Enum, v.s) {
			return ferr("%q is not a valid value for field %q", v.s, pr.field)
		}
	}
	return nil
}

// matches evaluates one term against a record's value for the field (nil when absent).
func (pr *pred) matches(actual any) bool {
	switch pr.op {
	case "has":
		switch a := actual.(type) {
		case nil:
			return false
		case []any:
			return len(a) > 0
		case []string:
			return len(a) > 0
		}
		return true
	case "equals":
		if pr.val.kind == vList {
			return anyEqual(actual, pr.val.list)
		}
		return equalsVal(actual, pr.val)
	case "any", "contains-any":
		return anyEqual(actual, pr.val.list)
	case "contains-all":
		for _, v := range pr.val.list {
			if !containsVal(actual, v) {
				return false
			}
		}
		return true
	case "contains":
		return containsVal(actual, pr.val)
	case "starts-with", "ends-with":
		s, ok := actual.(string)
		if !ok || pr.val.kind != vString {
			return false
		}
		if pr.op == "starts-with" {
			return strings.HasPrefix(s, pr.val.s)
		}
		return strings.HasSuffix(s, pr.val.s)
	}
	if list, ok := actual.([]any); ok {
		// A range term on an array field (list_suppressions.timestamp) holds if any element does.
		for _, e := range list {
			if pr.matches(e) {
				return true
			}
		}
		return false
	}
	c, ok := compareVal(actual, pr.val)
	if !ok {
		return false
	}
	switch pr.op {
	case "greater-than":
		return c > 0
	case "greater-or-equal":
		return c >= 0
	case "less-than":
		return c < 0
	case "less-or-equal":
		return c <= 0
	}
	return false
}

func anyEqual(actual any, list []fval) bool {
	for _, v := range list {
		if equalsVal(actual, v) {
			return true
		}
	}
	return false
}

func equalsVal(actual any, v fval) bool {
	if list, ok := actual.([]any); ok {
		for _, e := range list {
			if equalsVal(e, v) {
				return true
			}
		}
		return false
	}
	if list, ok := actual.([]string); ok {
		for _, e := range list {
			if v.kind == vString && e == v.s {
				return true
			}
		}
		return false
	}
	if v.kind == vNull {
		return actual == nil
	}
	c, ok := compareVal(actual, v)
	return ok && c == 0
}

func containsVal(actual any, v fval) bool {
	switch a := actual.(type) {
	case string:
		return v.kind == vString && strings.Contains(a, v.s)
	case []any, []string:
		return equalsVal(a, v)
	}
	return false
}

// compareVal orders a record value against a literal; ok is false when they are not comparable.
func compareVal(actual any, v fval) (int, bool) {
	switch v.kind {
	case vString:
		s, ok := actual.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(s, v.s), true
	case vBool:
		b, ok := actual.(bool)
		if !ok {
			return 0, false
		}
		if b == v.b {
			return 0, true
		}
		if b {
			return 1, true
		}
		return -1, true
	case vNumber:
		var n float64
		switch a := actual.(type) {
		case float64:
			n = a
		case int:
			n = float64(a)
		case int64:
			n = float64(a)
		case tval:
			n = float64(int64(a) / int64(time.Second))
		default:
			return 0, false
		}
		return cmpFloat(n, v.n), true
	case vTime:
		var t tval
		switch a := actual.(type) {
		case tval:
			t = a
		case string:
			pt, err := time.Parse(time.RFC3339Nano, a)
			if err != nil {
				return 0, false
			}
			t = timeOf(pt)
		default:
			return 0, false
		}
		switch {
		case t < v.t:
			return -1, true
		case t > v.t:
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
