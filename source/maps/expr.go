package maps

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// The names every expression sees besides the record's properties, as the SDK defines them. They win over a
// property of the same name, which stays reachable as record['name'].
const (
	varRecord     = "record"
	varShort      = "_"
	varConfig     = "config"
	varSelf       = "self"
	varStreamName = "__stream_name__"
)

// program is one compiled expression and what it reads from a record.
type program struct {
	path string
	text string
	prog *vm.Program
	// reads are the record properties the expression names directly; the evaluator decodes only these.
	reads []string
	// whole is set when the expression reads record or _, which needs every property decoded.
	whole bool
	self  bool
}

// anyMap is the type of record and _: a map whose keys are not known when compiling.
func anyMap() types.Map { return types.Map{types.Extra: types.Any} }

// checkSyntax compiles text with every name allowed, so that syntax errors surface at parse time, before any
// stream is known. Names are checked per stream by compile.
func checkSyntax(p, text string) (*exprSrc, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errorf(p, "is an empty expression; write one, or null to remove the property")
	}
	env := types.Map{varRecord: anyMap(), varShort: anyMap(), varConfig: anyMap(), varSelf: types.Any, varStreamName: types.String}
	opts := append(functionOptions(time.Now), expr.Env(env), expr.AllowUndefinedVariables())
	if _, err := expr.Compile(text, opts...); err != nil {
		return nil, compileError(p, err)
	}
	return &exprSrc{path: p, text: text}, nil
}

// compile compiles an expression for one stream: its properties are the names it may read, each of any type.
// Naming anything else is an error now rather than a null in every record later.
func compile(src *exprSrc, props []string, mapConfig map[string]any, now func() time.Time) (*program, error) {
	env := types.Map{}
	for _, p := range props {
		env[p] = types.Any
	}
	cfg := types.Map{}
	for k := range mapConfig {
		cfg[k] = types.Any
	}
	env[varRecord], env[varShort], env[varConfig] = anyMap(), anyMap(), cfg
	env[varSelf], env[varStreamName] = types.Any, types.String
	opts := append(functionOptions(now), expr.Env(env))
	prog, err := expr.Compile(src.text, opts...)
	if err != nil {
		return nil, compileError(src.path, err)
	}
	pr := &program{path: src.path, text: src.text, prog: prog}
	node := prog.Node()
	ast.Walk(&node, identifiers(func(name string) {
		switch name {
		case varRecord, varShort:
			pr.whole = true
		case varSelf:
			pr.self = true
		default:
			if _, isProp := env[name]; isProp && name != varConfig && name != varStreamName {
				pr.reads = appendOnce(pr.reads, name)
			}
		}
	}))
	return pr, nil
}

// identifiers is an ast.Visitor calling fn for every name an expression reads.
type identifiers func(string)

func (f identifiers) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		f(id.Value)
	}
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// resultType is the expression's static result type as expr's checker found it, nil when it cannot tell (the
// expression returns a property of unknown type, for example).
func (p *program) resultType() reflect.Type {
	t := p.prog.Node().Type()
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

// propertyRef returns the record property the expression is nothing but a reference to (`email`, `record['email']`,
// `_.email`), or "" otherwise. Such an expression keeps the property's schema.
func (p *program) propertyRef() string {
	switch n := p.prog.Node().(type) {
	case *ast.IdentifierNode:
		if len(p.reads) == 1 && p.reads[0] == n.Value {
			return n.Value
		}
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		prop, isStr := n.Property.(*ast.StringNode)
		if ok && isStr && (id.Value == varRecord || id.Value == varShort) {
			return prop.Value
		}
	}
	return ""
}

// compileError turns an expr compile error into one sentence that names the setting and the position, and keeps
// expr's reason only as far as it cannot quote the expression: the text may hold a secret pasted in a literal.
func compileError(p string, err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errorf(p, "the expression does not compile (%s at line %d, column %d); fix it, see docs/stream-maps.md for the syntax",
			safeReason(fe.Message), fe.Line, fe.Column+1)
	}
	return errorf(p, "the expression does not compile; fix it, see docs/stream-maps.md for the syntax")
}

// safeReason keeps the part of an expr message that describes the problem and drops anything that can repeat the
// expression's text: quoted literals, token values, and the name after "unknown name".
func safeReason(msg string) string {
	if i := strings.IndexAny(msg, "\"'`(\n"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	for _, lead := range []string{"unknown name", "unknown func", "unknown method", "unknown field", "unexpected token"} {
		if strings.HasPrefix(msg, lead) {
			return lead
		}
	}
	if i := strings.Index(msg, " has no field"); i >= 0 {
		return "a map has no such field"
	}
	if msg == "" {
		return "syntax error"
	}
	return msg
}

// runtimeError is the error of an expression that failed on a record. Record values are personal data, so the
// sentence never carries them: it keeps the reason only when one of this package's functions gave it, since those
// are worded without values.
func runtimeError(p *program, stream string, err error) error {
	reason := "it failed"
	var fe *file.Error
	col := 0
	if errors.As(err, &fe) {
		col = fe.Column + 1
		for _, name := range functionNames() {
			if strings.HasPrefix(fe.Message, name+"() ") {
				reason = fe.Message
				break
			}
		}
	}
	where := ""
	if col > 0 {
		where = fmt.Sprintf(" at column %d", col)
	}
	return errorf(p.path, "the expression could not be evaluated on a record of stream %s%s (%s); make it handle every value the properties can hold, null included",
		stream, where, reason)
}
